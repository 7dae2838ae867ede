"""``python -m atop_models bench lift``: stage-2 accuracy from ground-truth motion.

For every revolute, continuous (as revolute) and prismatic joint of the objects in ``--data`` (a folder of
object folders with a ``manifest.json``, as for ``bench joints``) or of ``--procedural N`` objects, the
part's ground-truth motion (rest to the upper limit, ``--frames`` frames) is rendered from the 4-view
ImageDream rig, lifted to per-frame Gaussians with "video" guidance (``--motion``, joint by default), and the joint is
estimated from the lifted point sequence. Errors are measured against the ground-truth joint with the
project's metrics (axis error, position error raw and over the bounding-box diagonal, type accuracy).

The camera distance is chosen per joint as the smallest at which the object, at rest, half open and fully
open, stays inside every view (the opened part stays in view, as large as possible). The tables add lines for
parts at least ``SMALL_PART_PIXELS`` across at the render size (moving part's box diagonal over the object's,
times the resolution) and for smaller ones, whose motion barely changes the images. An object that fails
to load and a joint whose lift or estimate fails are rows with ``failed: true`` and their ``error`` (also
listed under ``failed``), counted in their category's ``failed`` column; the run goes on.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from typing import Optional

import numpy as np

from ...errors import InputError

log = logging.getLogger("atop")

SMALL_PART_PIXELS = 8.0  # a moving part spanning fewer pixels than this counts as small in the tables
SUMMARY_FIELDS = ("n_joints", "mae_deg", "mpe", "mpe_norm", "type_acc", "ms_per_joint", "seconds_per_joint")


def motion_rig(mesh, joint, values, *, resolution: int, fov_deg: float = 40.0, border: float = 0.04,
               elevation_deg: Optional[float] = None):
    """ImageDream rig (4 views, at ``elevation_deg``, by default the pack's) at the smallest distance where the
    object, at rest, half open and fully open, projects inside every view with ``border`` (a fraction of the
    image) to spare."""
    from ...geometry.cameras import DEFAULT_ELEVATION, imagedream_rig, world_to_pixels

    elevation = DEFAULT_ELEVATION if elevation_deg is None else float(elevation_deg)
    from ...mesh.articulate import posed_vertices

    joints = [joint] + [j for j in mesh.joints if j.child != joint.child]
    picks = sorted({0, len(values) // 2, len(values) - 1})
    pts = np.concatenate([posed_vertices(mesh, {joint.child: float(values[i])}, joints) for i in picks])

    def fits(d: float) -> bool:
        rig = imagedream_rig(num_views=4, elevation_deg=elevation, fov_deg=fov_deg, distance=d, resolution=resolution)
        px, depth = world_to_pixels(rig, pts)
        lo, hi = border * resolution, (1 - border) * resolution
        return bool((depth > 0.05).all() and (px >= lo).all() and (px <= hi).all())

    lo, hi = 0.5, 2.0
    while not fits(hi):
        hi *= 1.5
        if hi > 100:
            raise InputError("the object does not fit the cameras at any distance; check the mesh")
    for _ in range(20):  # bisection on the distance
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return imagedream_rig(num_views=4, elevation_deg=elevation, fov_deg=fov_deg, distance=hi, resolution=resolution)


def lift_joint(mesh, joint, *, frames: int = 10, iterations: int = 300, resolution: int = 64,
               num_gaussians: int = 1500, supersample: int = 2, seed: int = 0, joint_type: str = "auto",
               motion: str = "joint", lift_mesh=None, part: str = ""):
    """Render ``joint``'s ground-truth motion, lift it with video guidance and estimate the joint. The lift
    runs on ``lift_mesh``'s ``part`` when given (another segmentation of the same surface), else on the
    joint's own part of ``mesh``.

    Returns (estimated Joint, LiftResult, seconds for lift + estimation, camera distance)."""
    from ...geometry.joint_search import estimate_joint
    from ...lift.guidance import VideoGuidance
    from ...lift.lift import lift_gaussians
    from ...render.motion import opening_values, render_joint_motion

    values = opening_values(joint, frames)
    rig = motion_rig(mesh, joint, values, resolution=resolution * supersample)
    video = render_joint_motion(mesh, joint, values, rig)
    t0 = time.perf_counter()
    guidance = VideoGuidance(video, rig, target="rgb", resolution=resolution)
    target = mesh if lift_mesh is None else lift_mesh
    result = lift_gaussians(target, part or joint.child, rig, guidance, iterations=iterations,
                            num_gaussians=num_gaussians, motion=motion, seed=seed, backend="torch")
    pred = estimate_joint(result.sequence, joint_type=joint_type)
    return pred, result, time.perf_counter() - t0, rig.distance


def run_benchmark(objects, *, frames: int = 10, iterations: int = 300, resolution: int = 64,
                  num_gaussians: int = 1500, limit: int = 0, seed: int = 0, verbose: bool = False,
                  motion: str = "joint", failures: Optional[list] = None) -> dict:
    """Lift every (object id, category, mesh, [(gt joint, mesh joint)]) of ``objects``; returns
    {"summary", "joints", "failed"} (summary as in ``bench joints`` plus seconds_per_joint; "joints" holds
    the failed rows too, "failed" only them). ``failures``: rows of joints that could not even be tried
    (``benchmark_objects`` fills it as it goes), counted with the others."""
    from ...geometry.metrics import joint_errors
    from .joints import error_text, failed_row, part_size
    from .splits import split_of

    rows = []
    count = 0
    for oid, cat, mesh, pairs in objects:
        for gt, mj in pairs:
            if limit and count >= limit:
                break
            count += 1
            try:
                pred, result, seconds, distance = lift_joint(
                    mesh, mj, frames=frames, iterations=iterations, resolution=resolution,
                    num_gaussians=num_gaussians, seed=seed, motion=motion)
                err = joint_errors(pred, gt, mesh.bbox_diagonal)
                size = part_size(mesh, mj)
            except Exception as exc:  # one bad joint must not end the run
                rows.append(failed_row(oid, cat, gt.child, gt.type, f"lift failed: {error_text(exc)}"))
                print(f"{oid} {gt.child}: failed: {rows[-1]['error']}", flush=True)
                continue
            row = dict(err, object=oid, category=cat, part=gt.child, split=split_of(oid), part_size_norm=size,
                       part_pixels=size * resolution, seconds=seconds, ms=1000 * seconds,
                       camera_distance=distance, lift_seconds=result.seconds, backend=result.backend,
                       final_loss=float(np.nanmean(result.losses[-10:])), method=pred.method,
                       uncertain=result.uncertain, failed=False,
                       pred=pred.to_dict() | {"candidates": pred.candidates[:3]}, gt=gt.to_dict())
            rows.append(row)
            if verbose:
                pos = row["pos_err_norm"]
                print(f"{oid:<28} {gt.child:<14} {gt.type:<9} -> {pred.type:<9} axis {row['axis_err_deg']:7.3f} deg"
                      f"  pos/diag {'   -   ' if pos is None else f'{pos:7.4f}'}  {seconds:6.1f} s"
                      f"{'  (uncertain)' if result.uncertain else ''}", flush=True)
        if limit and count >= limit:
            break
    rows += failures or []
    certain = [r for r in rows if not r.get("uncertain") and not r["failed"]]
    return {"summary": summary(rows), "summary_not_uncertain": summary(certain), "joints": rows,
            "failed": [r for r in rows if r["failed"]]}


def summary(rows: list[dict]) -> dict:
    """``summarize`` (failed rows counted in n_failed) plus seconds_per_joint over the lifted joints."""
    from ...geometry.metrics import summarize

    s = summarize(rows)
    seconds = [r["seconds"] for r in rows if not r.get("failed")]
    if seconds:
        s["seconds_per_joint"] = float(np.mean(seconds))
    return s


def print_table(result: dict, title: str) -> None:
    from .joints import size_split

    print(f"\n{title}")
    print(f"{'category':<24} {'joints':>6} {'failed':>6} {'MAE deg':>9} {'max deg':>9} {'MPE':>8} {'MPE/diag':>9} "
          f"{'type acc':>8} {'s@5':>5} {'s@10':>5} {'s/joint':>8}")
    rows = result["joints"]
    cats = sorted({r["category"] for r in rows})
    f = lambda v: "   -" if v is None else f"{v:.4f}"  # noqa: E731
    certain = [r for r in rows if not r.get("uncertain")]
    lines = [(c, [r for r in rows if r["category"] == c]) for c in cats] + [("TOTAL", rows)]
    lines += [("not flagged uncertain", certain)] * (len(certain) < len(rows))
    splits = [(f"{name} split", [r for r in rows if r.get("split") == name]) for name in ("tuning", "validation")]
    if all(sel for _, sel in splits):  # both splits side by side
        lines += splits
    split = size_split(rows, "part_pixels", SMALL_PART_PIXELS, f"{SMALL_PART_PIXELS:g} px")
    if split[1][1]:  # only when some parts are small
        lines += split
    for name, sel in lines:
        s = summary(sel)
        if not s["n_joints"]:
            continue
        if "mae_deg" not in s:  # every joint of the line failed
            print(f"{name:<24} {s['n_joints']:>6} {s['n_failed']:>6}" + "".join(
                f" {'-':>{w}}" for w in (9, 9, 8, 9, 8, 5, 5, 8)))
            continue
        print(f"{name:<24} {s['n_joints']:>6} {s['n_failed']:>6} {s['mae_deg']:>9.3f} {s['max_axis_err_deg']:>9.3f} "
              f"{f(s['mpe']):>8} {f(s['mpe_norm']):>9} {s['type_acc']:>8.3f} {s['success_5']:>5.2f} "
              f"{s['success_10']:>5.2f} {s['seconds_per_joint']:>8.1f}")
    if len(certain) < len(rows):
        print(f"{len(rows) - len(certain)} joint(s) flagged uncertain by the lift (the part spans too few pixels, "
              "or other joints explain the video as well)")
    for r in result["failed"]:
        print(f"  failed: {r['object']}/{r['part']}: {r['error'][:200]}")


def run(args) -> int:
    from .joints import benchmark_objects

    if not args.procedural and not args.data:
        raise InputError("give --data DIR (a folder with manifest.json) or --procedural N")
    t0 = time.perf_counter()
    failures: list[dict] = []
    result = run_benchmark(benchmark_objects(args, failures), failures=failures, frames=args.frames,
                           iterations=args.iterations, resolution=args.resolution, num_gaussians=args.gaussians,
                           limit=args.limit, seed=args.seed, verbose=args.verbose, motion=args.motion)
    print_table(result, f"lift from ground-truth motion ({args.frames} frames, 4 views, {args.resolution} px, "
                        f"{args.iterations} iterations, {args.gaussians} Gaussians, video guidance, {args.motion} motion)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "func"}
        out = dict(result, settings=settings)
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        os.replace(tmp, args.json)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("lift", help="lift accuracy: ground-truth motion video -> Gaussians -> joint")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .joints import add_split_argument

    p.add_argument("--data", default="", help="folder of object folders with manifest.json")
    p.add_argument("--procedural", type=int, default=0, help="use N procedural objects instead of --data")
    add_split_argument(p)
    p.add_argument("--iterations", type=int, default=300, help="lift iterations per joint")
    p.add_argument("--resolution", type=int, default=64, help="working resolution of the lift (pixels)")
    p.add_argument("--frames", type=int, default=10, help="frames from rest to the upper limit")
    p.add_argument("--gaussians", type=int, default=1500, help="Gaussians per object (half on the moving part)")
    p.add_argument("--motion", default="joint", choices=["joint", "rigid", "free"],
                   help="motion model of the lift's moving part")
    p.add_argument("--limit", type=int, default=0, help="stop after this many joints (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="write per-joint results and the summary to this file")
    p.add_argument("--verbose", action="store_true", help="print every joint")
