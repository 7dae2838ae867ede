"""``python -m atop_models bench paint``: parts recovered from painted masks, on meshes without parts.

For every revolute, continuous (as revolute) and prismatic joint of the objects in ``--data`` (a folder with
``manifest.json``, as for ``bench joints``) or of ``--procedural N`` objects:

1. the object's parts are merged into one welded mesh with no part labels (``--shell``: only its outer
   surface, interior faces removed; ``--voxel PITCH``: the boundary of its filled voxels, one blocky closed
   surface fused across gaps narrower than PITCH, with faces unrelated to the parts', as a generator's
   marching-cubes output is; the true part is then the faces nearest the part);
2. the parts the joint moves are "painted" with their visible pixels on that mesh (what ATOP Part Mask
   Render gives) on the 4 default views (azimuth 0/90/180/270, elevation 15, ``--resolution`` px) and/or
   on the front view only (``--views 4 1``; with 1 the other masks stay empty);
3. PartFromMasks recovers the part; the score is the area-weighted face IoU against the true part (the
   true part's faces of the shell, with ``--shell``); ``--brush PX`` first grows (or, negative, shrinks)
   the masks by PX pixels, as a careless (or timid) brush would;
4. unless ``--no-lift``, the part's true motion is lifted as ``bench lift`` does, once on the true part and
   once on the recovered part of the merged mesh (same video, settings and seed), and both joint errors
   are reported. Where the recovered part is exactly the true one (the same mesh, labels and all), the
   lift's input is the same, so it runs once and the row says ``same_as_true``.

A part that no painted view shows at rest cannot be painted: it is listed as not visible and left out of
the IoU and joint lines. A part PartFromMasks refuses (its error is kept) counts as IoU 0. ``--split`` takes the benchmarks' frozen split (``splits.py``): PartFromMasks'
settings were chosen on tuning objects only; the tables report each split on its own line.
"""
from __future__ import annotations

import json
import logging
import time

import numpy as np

from ...errors import InputError
from ...files import write_bytes_atomic

log = logging.getLogger("atop")

IOU_TARGET = {4: 0.9, 1: 0.8}  # per number of painted views
JOINT_TARGET_DEG = 1.0  # recovered-part axis error within this of the true part's


def face_iou(areas: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> float:
    """Area-weighted intersection over union of two face selections [F]."""
    union = float(areas[predicted | truth].sum())
    return float(areas[predicted & truth].sum()) / union if union > 0 else float("nan")


def brushed(masks: np.ndarray, pixels: int) -> np.ndarray:  # [V, H, W]
    """Masks grown (``pixels`` > 0) or shrunk (< 0) by a disk of that radius: a careless or timid brush."""
    from scipy.ndimage import binary_dilation, binary_erosion

    if pixels == 0:
        return masks
    r = abs(pixels)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = xx ** 2 + yy ** 2 <= r * r
    grow = binary_dilation if pixels > 0 else binary_erosion
    return np.stack([grow(m >= 0.5, structure=disk) for m in masks]).astype(np.float32)


def unlabelled(mesh, shell: bool = False, voxel: float = 0.0):
    """Step 1: the object without part labels, and the source face of each of its faces: merged, its outer
    shell (``shell``), or its voxel surface (``voxel`` > 0, see ``voxel_surface``)."""
    from ...mesh.merge import merge_parts, outer_shell, voxel_surface

    if voxel > 0:
        return voxel_surface(mesh, voxel)
    if shell:
        return outer_shell(mesh)
    return merge_parts(mesh), np.arange(len(mesh.faces))


def paint_part(mesh, joint, rig, views: int, merged, source, brush: int = 0, blank_views: str = "unknown"):
    """Steps 2-3 for one joint on ``merged`` (``unlabelled``'s output): returns (its true-part faces [F],
    PaintedPart, or None when no painted view shows the part, or PartFromMasks' error message, painted
    masks). ``brush`` grows or shrinks the masks (``brushed``)."""
    from ...mesh.part_from_masks import part_from_masks
    from ...render.raycast import render_views

    truth = mesh.part_face_mask(mesh.parts_moved_by(joint))[source]
    face_id = render_views(merged, rig).face_id  # the visible pixels of the true part, as on the real object
    masks = ((face_id >= 0) & truth[np.maximum(face_id, 0)]).astype(np.float32)
    masks[views:] = 0.0
    masks = brushed(masks, brush)
    if not masks.any() or not truth.any():
        return truth, None, masks
    try:
        return truth, part_from_masks(merged, rig, masks, "painted", blank_views=blank_views), masks
    except InputError as exc:  # the paint cannot make a part (a row of its own, counted as IoU 0)
        return truth, str(exc), masks


def same_mesh(a, b) -> bool:
    """Whether two meshes are the same lift input (geometry, faces and part labels)."""
    return (a.part_names == b.part_names and a.vertices.shape == b.vertices.shape and a.faces.shape == b.faces.shape
            and np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
            and np.array_equal(a.face_part, b.face_part))


def run_benchmark(objects, *, views: tuple[int, ...] = (4,), shell: bool = False, brush: int = 0,
                  voxel: float = 0.0, blank_views: str = "unknown", resolution: int = 256, lift: bool = True,
                  lift_settings: dict | None = None, limit: int = 0, verbose: bool = False) -> dict:
    """Rows per joint and number of painted views (see the module docstring); summaries per views and split."""
    from ...geometry.cameras import imagedream_rig
    from ...mesh.part_from_masks import with_new_part
    from ...mesh.sampling import face_areas
    from .joints import part_size
    from .splits import split_of

    rig = imagedream_rig(num_views=4, resolution=resolution)
    rows, count = [], 0
    for oid, cat, mesh, pairs in objects:
        merged, source = unlabelled(mesh, shell, voxel) if pairs else (None, None)
        for gt, mj in pairs:
            if limit and count >= limit:
                break
            count += 1
            true_lift = None  # the true part's lift does not depend on the painted views: run once
            for n_views in views:
                t0 = time.perf_counter()
                truth, painted, masks = paint_part(mesh, mj, rig, n_views, merged, source, brush, blank_views)
                row = {"object": oid, "category": cat, "part": gt.child, "split": split_of(oid), "views": n_views,
                       "visible": painted is not None, "part_size_norm": part_size(mesh, mj),
                       "painted_pixels": int((masks >= 0.5).sum())}
                if isinstance(painted, str):
                    row.update(iou=0.0, error=painted)
                elif painted is not None:
                    areas = face_areas(painted.mesh.vertices, painted.mesh.faces)
                    row.update(iou=face_iou(areas, painted.selected, truth[painted.face_origin]),
                               paint_seconds=time.perf_counter() - t0, stats=painted.stats)
                    if lift:
                        true_mesh = with_new_part(merged, truth, "painted")
                        if true_lift is None:
                            true_lift = _lift(mesh, mj, gt, true_mesh, lift_settings)
                        row["true"] = true_lift
                        # the same mesh, labels and all, is the same lift input: no need to run it again
                        row["recovered"] = (dict(true_lift, same_as_true=True) if same_mesh(painted.mesh, true_mesh)
                                            else _lift(mesh, mj, gt, painted.mesh, lift_settings))
                rows.append(row)
                if verbose:
                    print(_row_line(row), flush=True)
        if limit and count >= limit:
            break
    splits = [s for s in ("tuning", "validation") if any(r["split"] == s for r in rows)]
    summaries = {}
    for n_views in views:
        of_views = [r for r in rows if r["views"] == n_views]
        for s in splits + ["all"] * (len(splits) != 1):
            summaries[f"{n_views} view{'s' * (n_views > 1)}, {s}"] = summary(
                [r for r in of_views if s == "all" or r["split"] == s], n_views)
    return {"joints": rows, "summary": summaries}


def _lift(mesh, joint, gt, target, settings: dict | None) -> dict:
    """``bench lift``'s lift of ``joint``'s true motion on ``target``'s part "painted"; its joint errors."""
    from ...geometry.metrics import joint_errors
    from .lift import lift_joint

    pred, result, seconds = lift_joint(mesh, joint, lift_mesh=target, part="painted", **(settings or {}))[:3]
    return dict(joint_errors(pred, gt, mesh.bbox_diagonal), seconds=seconds, uncertain=result.uncertain)


def summary(rows: list[dict], views: int) -> dict:
    from ...geometry.metrics import summarize

    seen = [r for r in rows if r["visible"]]
    out = {"n_joints": len(rows), "n_visible": len(seen), "n_failed": sum("error" in r for r in seen)}
    if not seen:
        return out
    iou = np.array([r["iou"] for r in seen])
    out.update(mean_iou=float(iou.mean()), min_iou=float(iou.min()),
               share_at_target=float((iou >= IOU_TARGET.get(views, 0.9)).mean()))
    lifted = [r for r in seen if "true" in r]
    if lifted:
        true, rec = summarize([r["true"] for r in lifted]), summarize([r["recovered"] for r in lifted])
        delta = np.array([r["recovered"]["axis_err_deg"] - r["true"]["axis_err_deg"] for r in lifted])
        out.update(n_lifted=len(lifted), mae_true_deg=true["mae_deg"], mae_recovered_deg=rec["mae_deg"],
                   type_acc_true=true["type_acc"], type_acc_recovered=rec["type_acc"],
                   mean_delta_deg=float(delta.mean()), max_delta_deg=float(delta.max()),
                   mpe_norm_true=true["mpe_norm"], mpe_norm_recovered=rec["mpe_norm"])
    return out


def _row_line(r: dict) -> str:
    head = f"{r['object']:<28} {r['part']:<14} {r['split']:<10} {r['views']}v"
    if not r["visible"]:
        return head + " not visible in the painted views"
    if "error" in r:
        return head + f" IoU 0 (failed: {r['error']})"
    line = head + f" IoU {r['iou']:.4f}  {r['paint_seconds']:5.1f} s"
    if "true" in r:
        line += (f"  axis true {r['true']['axis_err_deg']:7.3f} recovered {r['recovered']['axis_err_deg']:7.3f} deg"
                 f"  types {r['true']['pred_type'][:3]}/{r['recovered']['pred_type'][:3]}")
    return line


def print_table(result: dict, title: str) -> None:
    print(f"\n{title}")
    print(f"{'views, split':<19} {'joints':>6} {'visible':>7} {'mean IoU':>8} {'min IoU':>8} {'>=target':>8} "
          f"{'MAE true':>9} {'MAE rec':>8} {'mean d':>7} {'max d':>7} {'type t/r':>9}")
    f = lambda v, w, p=3: f"{v:>{w}.{p}f}" if v is not None else " " * (w - 1) + "-"  # noqa: E731
    for name, s in result["summary"].items():
        types = (f"{s['type_acc_true']:.2f}/{s['type_acc_recovered']:.2f}" if "type_acc_true" in s else "-")
        print(f"{name:<19} {s['n_joints']:>6} {s['n_visible']:>7} {f(s.get('mean_iou'), 8, 4)} "
              f"{f(s.get('min_iou'), 8, 4)} {f(s.get('share_at_target'), 8, 2)} {f(s.get('mae_true_deg'), 9)} "
              f"{f(s.get('mae_recovered_deg'), 8)} {f(s.get('mean_delta_deg'), 7)} {f(s.get('max_delta_deg'), 7)} "
              f"{types:>9}")
    for n_views in sorted({r["views"] for r in result["joints"]}, reverse=True):
        rows = [r for r in result["joints"] if r["views"] == n_views]
        hidden = [f"{r['object']}/{r['part']}" for r in rows if not r["visible"]]
        if hidden:
            print(f"{n_views} view(s): {len(hidden)} part(s) not visible in the painted views at rest: "
                  f"{', '.join(hidden)}")
        low = [f"{r['object']}/{r['part']} {r['iou']:.3f}" for r in rows
               if r["visible"] and r["iou"] < IOU_TARGET[n_views]]
        if low:
            print(f"{n_views} view(s): below the IoU target ({IOU_TARGET[n_views]}): {'; '.join(low)}")


def run(args) -> int:
    from .joints import benchmark_objects

    if not args.procedural and not args.data:
        raise InputError("give --data DIR (a folder with manifest.json) or --procedural N")
    if not set(args.views) <= {1, 4}:
        raise InputError(f"--views takes 4 (every default view painted) and/or 1 (the front view), got {args.views}")
    t0 = time.perf_counter()
    lift_settings = dict(frames=args.frames, iterations=args.iterations, resolution=args.lift_resolution,
                         num_gaussians=args.gaussians, seed=args.seed)
    result = run_benchmark(benchmark_objects(args), views=tuple(args.views), shell=args.shell, brush=args.brush,
                           voxel=args.voxel, blank_views=args.blank_views, resolution=args.resolution,
                           lift=not args.no_lift, lift_settings=lift_settings, limit=args.limit, verbose=args.verbose)
    what = (f"voxel surfaces of {args.voxel:g}" if args.voxel else "outer shells" if args.shell else "merged meshes")
    what += (f", brush {args.brush:+d} px" if args.brush else "") + (", blank views: no part" * (
        args.blank_views == "no part"))
    lifted = "" if args.no_lift else (f"; lift {args.lift_resolution} px, {args.iterations} iterations, "
                                      f"{args.frames} frames")
    print_table(result, f"parts from painted masks ({what}, views of {args.resolution} px{lifted}); IoU targets "
                        f"{IOU_TARGET[4]} (4 views), {IOU_TARGET[1]} (1); joint target: recovered within "
                        f"{JOINT_TARGET_DEG:g} deg of true")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        out = dict(result, settings={k: v for k, v in vars(args).items() if k != "func"})
        text = json.dumps(out, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        write_bytes_atomic(args.json, text.encode())
    return 0


def register(subparsers) -> None:
    from .joints import add_split_argument

    p = subparsers.add_parser("paint", help="parts from painted masks on merged meshes: face IoU and joint error")
    p.add_argument("--data", default="", help="folder of object folders with manifest.json")
    p.add_argument("--procedural", type=int, default=0, help="use N procedural objects instead of --data")
    add_split_argument(p)
    p.add_argument("--views", type=int, nargs="+", default=[4],
                   help="painted views: 4 (all), 1 (the front view), or both (4 1: the true part's lift is shared)")
    p.add_argument("--shell", action="store_true", help="recover parts on the objects' outer shells")
    p.add_argument("--voxel", type=float, default=0.0,
                   help="recover parts on the objects' blocky one-piece voxel surfaces of this cell size (e.g. 0.01)")
    p.add_argument("--blank-views", default="unknown", choices=["unknown", "no part"],
                   help="what PartFromMasks takes an unpainted view to mean")
    p.add_argument("--resolution", type=int, default=256, help="size of the painted views in pixels")
    p.add_argument("--brush", type=int, default=0,
                   help="grow (>0) or shrink (<0) the painted masks by this many pixels: imprecise painting")
    p.add_argument("--no-lift", action="store_true", help="measure the IoU only (no joint lifts)")
    p.add_argument("--lift-resolution", type=int, default=64, help="working resolution of the lifts")
    p.add_argument("--iterations", type=int, default=300, help="lift iterations per joint")
    p.add_argument("--frames", type=int, default=10, help="frames from rest to the upper limit")
    p.add_argument("--gaussians", type=int, default=1500, help="Gaussians per object (half on the moving part)")
    p.add_argument("--limit", type=int, default=0, help="stop after this many joints (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="write per-joint results and the summaries to this file")
    p.add_argument("--verbose", action="store_true", help="print every joint")
    p.set_defaults(func=run)
