"""``python -m atop_models bench joints``: joint estimation accuracy and speed on ground-truth motion.

For every revolute, continuous (as revolute) and prismatic joint of the objects in ``--data`` (a folder of
object folders with a ``manifest.json``) or of ``--procedural N`` objects, the part's exact motion through
``--frames`` joint values (rest to the upper limit) is sampled as a point sequence, optionally corrupted
(``--noise``, ``--outliers``, ``--subsample``), and the joint is estimated by the discrete OBB search and by
the full (refined) estimator. Ground truth comes from the manifest (URDF world frame, mapped into the
normalised frame by the loader's ``normalized_from_source``). An object that fails to load, a manifest
joint the loaded object lacks and a joint whose estimate fails (an input error such as "does not move", or
any other error) are listed with ``failed: true`` and their ``error``, counted in ``n_failed`` of their
category, and the run goes on; the means are over the other joints and the success rates count failures as
misses. ``ms`` is wall time, ``cpu_ms`` the process's
CPU time (the fairer figure on a shared machine). With ``--noise``, two more lines split the joints by the
size of the moving part (its bounding-box diagonal) against the noise: parts at least ``SMALL_PART_SIGMAS``
noise sigmas across, and smaller ones (knobs and buttons whose shape the noise blurs away).
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Optional

import numpy as np

from ...errors import InputError

log = logging.getLogger("atop")

SMALL_PART_SIGMAS = 8.0  # a moving part fewer noise sigmas across than this counts as small in the split


def part_size(mesh, joint) -> float:
    """Bounding-box diagonal of the parts that ``joint`` moves, as a fraction of the object's diagonal."""
    faces = mesh.faces[mesh.part_face_mask(mesh.parts_moved_by(joint))]
    v = mesh.vertices[np.unique(faces)]
    return float(np.linalg.norm(v.max(0) - v.min(0)) / mesh.bbox_diagonal)


def size_split(rows: list[dict], key: str, least: float, label: str) -> list[tuple[str, list[dict]]]:
    """Two table lines: the rows whose ``key`` is at least ``least``, and the others (``label`` names it).
    Rows without ``key`` (an object that did not load) are in neither."""
    sized = [r for r in rows if r.get(key) is not None]
    return [(f"parts >= {label}", [r for r in sized if r[key] >= least]),
            (f"parts < {label}", [r for r in sized if r[key] < least])]


def add_split_argument(p) -> None:
    from .splits import SPLITS

    p.add_argument("--split", default="all", choices=SPLITS,
                   help="the frozen split (atop_models/cli/bench/splits.py): tuning objects, validation objects "
                        "(measured, never tuned on), or all; with --procedural, validation takes up to N of its "
                        "seeds' objects")


def error_text(exc: BaseException) -> str:
    """An error as a benchmark row records it: an input error's own message, else its type too (logged
    with its traceback, since it is a fault rather than bad data)."""
    if isinstance(exc, InputError):
        return str(exc)
    log.warning("bench: unexpected %s", type(exc).__name__, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


def failed_row(oid: str, category: str, part: str, gt_type: str, error: str, **extra) -> dict:
    log.warning("bench: %s %s failed: %s", oid, part, error)
    return dict(extra, object=oid, category=category, part=part, gt_type=gt_type, failed=True, error=error)


def benchmark_objects(args, failures: Optional[list] = None):
    """Yields (object id, category, mesh, [(gt joint in the normalised frame, mesh joint)]) of the objects
    that load. The joints that cannot be benchmarked (every joint of an object that does not load, one the
    loaded object lacks, a malformed manifest entry) are appended to ``failures`` as ``failed_row`` rows
    (logged in any case), and the objects after them still come."""
    failures = [] if failures is None else failures
    from ...mesh.loaders import load_part_mesh
    from ...mesh.normalize import similarity_scale
    from ...types import Joint

    from .splits import dev_object_in_split, procedural_objects

    split = getattr(args, "split", "all")
    if args.procedural:
        from ...mesh.procedural import CATEGORIES, make_object

        for cat, seed in procedural_objects(args.procedural, split, CATEGORIES):
            mesh = make_object(cat, seed)
            yield f"{cat}_{seed}", cat, mesh, [(j, j) for j in mesh.joints]
        return
    manifest = os.path.join(args.data, "manifest.json")
    if not os.path.isfile(manifest):
        raise InputError(f"'{args.data}' has no manifest.json; give a data folder in the articulated_dev format "
                         "or use --procedural N")
    with open(manifest) as fh:
        objects = json.load(fh)["objects"]
    for obj in objects:
        oid, cat = obj.get("id", "?"), obj.get("category", "")
        if not dev_object_in_split(oid, split):
            continue
        movable = [mj for mj in obj.get("joints", []) if mj.get("type") in ("revolute", "continuous", "prismatic")]
        try:
            mesh = load_part_mesh(os.path.join(args.data, oid, obj.get("urdf", "mobility.urdf")))
        except Exception as exc:  # one bad object must not end the run
            error = f"loading failed: {error_text(exc)}"
            failures += [failed_row(oid, cat, mj.get("child_link", "?"), mj.get("type", "?"), error)
                         for mj in movable or [{"child_link": "(object)"}]]
            continue
        N = mesh.normalized_from_source
        s = similarity_scale(N)
        pairs = []
        for mj in movable:
            jt = "revolute" if mj["type"] == "continuous" else mj["type"]
            try:
                lim = mj.get("limits") or [-np.pi, np.pi]
                gt = Joint(jt, N[:3, :3] @ np.asarray(mj["axis_world"]),
                           N[:3, :3] @ np.asarray(mj["origin_world"]) + N[:3, 3],
                           tuple(lim) if jt == "revolute" else (lim[0] * s, lim[1] * s), child=mj["child_link"])
            except (KeyError, TypeError, ValueError) as exc:
                failures.append(failed_row(oid, cat, mj.get("child_link", "?"), jt, f"manifest joint "
                                           f"'{mj.get('name')}' is malformed ({type(exc).__name__}: {exc})"))
                continue
            mesh_joint = mesh.joint_for_part(mj["child_link"]) or next(
                (j for j in mesh.joints if j.name == mj.get("name")), None)
            if mesh_joint is None:
                failures.append(failed_row(oid, cat, mj["child_link"], jt, f"no loaded joint moves "
                                           f"'{mj['child_link']}' (manifest joint '{mj.get('name')}')"))
                continue
            pairs.append((gt, mesh_joint))
        yield oid, cat, mesh, pairs


def run(args) -> int:
    from ...geometry.joint_search import estimate_joint
    from ...geometry.metrics import joint_errors, summarize
    from ...geometry.point_sequences import point_sequence_from_joint
    from ...render.motion import opening_values

    if not args.procedural and not args.data:
        raise InputError("give --data DIR (a folder with manifest.json) or --procedural N")
    rows = {"discrete": [], "refined": []}
    failures: list[dict] = []
    for oid, cat, mesh, pairs in benchmark_objects(args, failures):
        for k, (gt, mj) in enumerate(pairs):
            try:
                diag = mesh.bbox_diagonal
                size = part_size(mesh, mj)
                values = opening_values(mj, args.frames)
                seq = point_sequence_from_joint(mesh, mj, values, n_points=args.points, noise=args.noise,
                                                outliers=args.outliers, subsample=args.subsample, seed=args.seed + k)
            except Exception as exc:  # one bad joint must not end the run
                for stage in rows:
                    rows[stage].append(failed_row(oid, cat, gt.child, gt.type, f"motion failed: {error_text(exc)}"))
                continue
            for stage, refine in (("discrete", False), ("refined", True)):
                t, c = time.perf_counter(), time.process_time()
                try:
                    pred = estimate_joint(seq, refine_result=refine)
                except Exception as exc:
                    rows[stage].append(failed_row(oid, cat, gt.child, gt.type, f"{stage} estimate failed: "
                                                  f"{error_text(exc)}", part_size_norm=size,
                                                  ms=(time.perf_counter() - t) * 1000))
                    continue
                ms = (time.perf_counter() - t) * 1000
                cpu_ms = (time.process_time() - c) * 1000  # CPU time of this process: fair on a shared machine
                err = joint_errors(pred, gt, diag)
                rows[stage].append(dict(err, object=oid, category=cat, part=gt.child, part_size_norm=size, ms=ms,
                                        cpu_ms=cpu_ms, method=pred.method, failed=False,
                                        pred=pred.to_dict() | {"candidates": pred.candidates[:3]}))
            r = rows["refined"][-1]
            if args.verbose:
                res = ("FAILED: " + r["error"]) if r["failed"] else (
                    f"axis {r['axis_err_deg']:7.3f} deg  pos "
                    f"{r['pos_err_norm'] if r['pos_err_norm'] is not None else float('nan'):7.4f}  {r['ms']:6.0f} ms")
                print(f"{oid:<28} {gt.child:<14} {gt.type:<9} {res}")
    for stage in rows:
        rows[stage] += failures
    if args.verbose:
        for r in failures:
            print(f"{r['object']:<28} {r['part']:<14} {r['gt_type']:<9} FAILED: {r['error']}")
    corruption = f"noise {args.noise:g}, outliers {args.outliers:g}, subsample {args.subsample}, {args.frames} frames"
    for stage in ("discrete", "refined"):
        print(f"\n{stage} ({corruption}; {args.points} part points)")
        print(f"{'category':<24} {'joints':>6} {'failed':>6} {'MAE deg':>9} {'max deg':>9} {'MPE':>8} {'MPE/diag':>9} "
              f"{'type acc':>8} {'s@5':>5} {'s@10':>5} {'ms':>6} {'cpu ms':>6}")
        cats = sorted({r["category"] for r in rows[stage]})
        lines = [(c, [r for r in rows[stage] if r["category"] == c]) for c in cats] + [("TOTAL", rows[stage])]
        if args.noise > 0:
            lines += size_split(rows[stage], "part_size_norm", SMALL_PART_SIGMAS * args.noise,
                                f"{SMALL_PART_SIGMAS:g} sigma")
        for name, sel in lines:
            s = summarize(sel)
            if not s["n_joints"]:
                continue
            if "mae_deg" not in s:  # every joint of the line failed
                print(f"{name:<24} {s['n_joints']:>6} {s['n_failed']:>6}" + "".join(
                    f" {'-':>{w}}" for w in (9, 9, 8, 9, 8, 5, 5, 6, 6)))
                continue
            f = lambda v: "   -" if v is None else f"{v:.4f}"  # noqa: E731
            print(f"{name:<24} {s['n_joints']:>6} {s['n_failed']:>6} {s['mae_deg']:>9.3f} {s['max_axis_err_deg']:>9.3f} {f(s['mpe']):>8} "
                  f"{f(s['mpe_norm']):>9} {s['type_acc']:>8.3f} {s['success_5']:>5.2f} {s['success_10']:>5.2f} "
                  f"{s['ms_per_joint']:>6.0f} {s.get('cpu_ms_per_joint', float('nan')):>6.0f}")
        failed = [r for r in rows[stage] if r.get("failed")]
        for r in failed:
            print(f"  failed: {r['object']}/{r['part']}: {r['error'][:200]}")
    if args.json:
        out = dict({"summary": summarize(rows["refined"]), "joints": rows["refined"]},
                   discrete={"summary": summarize(rows["discrete"]), "joints": rows["discrete"]},
                   settings=vars(args) | {"func": None})
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        os.replace(tmp, args.json)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("joints", help="joint estimation accuracy on ground-truth motion")
    p.add_argument("--data", default="", help="folder of object folders with manifest.json")
    p.add_argument("--procedural", type=int, default=0, help="use N procedural objects instead of --data")
    add_split_argument(p)
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise, fraction of the bounding-box diagonal")
    p.add_argument("--outliers", type=float, default=0.0, help="fraction of part points replaced by outliers")
    p.add_argument("--subsample", type=int, default=1, help="keep a random 1/K of the points in each frame")
    p.add_argument("--frames", type=int, default=10, help="frames from rest to the upper limit")
    p.add_argument("--points", type=int, default=2000, help="points on the moving part per frame (before subsampling)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="write per-joint results and the summary to this file")
    p.add_argument("--verbose", action="store_true", help="print every joint")
    p.set_defaults(func=run)
