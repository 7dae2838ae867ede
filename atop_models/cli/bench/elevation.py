"""``python -m atop_models bench elevation``: how much of each moving part, and of its motion, the 4 ImageDream
views show at a camera elevation (0, 5, 15 and 30 degrees by default).

For every joint of the objects in ``--data`` (as for ``bench joints``) or of ``--procedural N`` objects, the
object is rendered at rest and fully open from the 4-view rig at each elevation (camera distance as in
``bench lift``: the smallest that keeps the whole motion in view). Per elevation the table gives the visible
part's share of the image at rest, the share of pixels that the motion changes, and the share of joints whose
part, and whose motion, at least two views show (``MIN_PIXELS`` pixels or more). A joint that cannot be
measured (its object does not load, the object lacks it, its render fails) is counted in the ``failed``
column and listed with its error, and the run goes on.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

MIN_PIXELS = 16  # a view shows the part (or its motion) when at least this many pixels do
CHANGE = 0.05  # a pixel changes when a colour channel moves by more than this (0..1)


def measure_joint(mesh, joint, elevation: float, resolution: int) -> dict:
    from ...errors import InputError
    from ...render.masks import part_masks
    from ...render.motion import opening_values
    from ...render.raycast import render_views
    from ...mesh.articulate import posed_vertices
    from .lift import motion_rig

    values = opening_values(joint, 3)
    rig = motion_rig(mesh, joint, values, resolution=resolution, elevation_deg=elevation)
    joints = [joint] + [j for j in mesh.joints if j.child != joint.child]
    rest = render_views(mesh, rig)
    opened = render_views(mesh, rig, vertices=posed_vertices(mesh, {joint.child: float(values[-1])}, joints))
    try:
        part = part_masks(mesh, rest, mesh.parts_moved_by(joint)).reshape(4, -1).sum(1)  # [V] pixels
    except InputError:  # hidden in every view
        part = np.zeros(4)
    changed = (np.abs(opened.rgb - rest.rgb).max(-1) > CHANGE).reshape(4, -1).sum(1)  # [V] pixels
    area = resolution * resolution
    return {"part_share": float(part.mean() / area), "motion_share": float(changed.mean() / area),
            "views_part": int((part >= MIN_PIXELS).sum()), "views_motion": int((changed >= MIN_PIXELS).sum())}


def summarize(rows: list[dict]) -> dict:
    return {"joints": len(rows), "part_share": float(np.mean([r["part_share"] for r in rows])),
            "motion_share": float(np.mean([r["motion_share"] for r in rows])),
            "part_in_2_views": float(np.mean([r["views_part"] >= 2 for r in rows])),
            "motion_in_2_views": float(np.mean([r["views_motion"] >= 2 for r in rows])),
            "motion_in_4_views": float(np.mean([r["views_motion"] >= 4 for r in rows]))}


def run(args) -> int:
    from ...errors import InputError
    from .joints import benchmark_objects, error_text, failed_row

    if not args.procedural and not args.data:
        raise InputError("give --data DIR (a folder with manifest.json) or --procedural N")
    elevations = [float(e) for e in args.elevations.split(",")]
    t0 = time.perf_counter()
    rows, failures = [], []
    for oid, cat, mesh, pairs in benchmark_objects(args, failures):
        for gt, mj in pairs:
            try:
                measured = [dict(measure_joint(mesh, mj, e, args.resolution), object=oid, category=cat,
                                 part=mj.child, elevation=e) for e in elevations]
            except Exception as exc:  # one bad joint must not end the run
                failures.append(failed_row(oid, cat, gt.child, gt.type, f"render failed: {error_text(exc)}"))
                continue
            rows += measured
            if args.verbose:
                print(f"{oid:<28} {mj.child:<14} " + "  ".join(
                    f"{r['elevation']:g}: {r['motion_share']:.4f}" for r in rows[-len(elevations):]), flush=True)
    table = {e: summarize([r for r in rows if r["elevation"] == e]) for e in elevations if rows}
    print(f"\nvisibility of the moving parts and their motion per camera elevation (4 views, {args.resolution} px)")
    print(f"{'elevation':>9} {'joints':>6} {'failed':>6} {'part share':>10} {'motion share':>12} "
          f"{'part >=2 views':>14} {'motion >=2 views':>16} {'motion 4 views':>14}")
    for e, s in table.items():
        print(f"{e:>9g} {s['joints'] + len(failures):>6} {len(failures):>6} {s['part_share']:>10.4f} "
              f"{s['motion_share']:>12.4f} {s['part_in_2_views']:>14.3f} {s['motion_in_2_views']:>16.3f} "
              f"{s['motion_in_4_views']:>14.3f}")
    for r in failures:
        print(f"  failed: {r['object']}/{r['part']}: {r['error'][:200]}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"summary": {str(e): s for e, s in table.items()}, "joints": rows, "failed": failures,
                       "settings": {k: v for k, v in vars(args).items() if k != "func"}}, fh, indent=1)
        os.replace(tmp, args.json)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("elevation", help="how much of the moving parts and their motion each camera "
                                                "elevation shows")
    p.add_argument("--data", default="", help="folder of object folders with manifest.json")
    p.add_argument("--procedural", type=int, default=0, help="use N procedural objects instead of --data")
    p.add_argument("--elevations", default="0,5,15,30", help="comma-separated elevations in degrees")
    p.add_argument("--resolution", type=int, default=128, help="render size in pixels")
    p.add_argument("--json", default="", help="write per-joint results and the summary to this file")
    p.add_argument("--verbose", action="store_true", help="print every joint")
    p.set_defaults(func=run)
