"""Joint metrics (DESIGN.md section 4): axis error min(angle, 180 - angle) in degrees; position error of
revolute joints = distance from the predicted origin to the ground-truth axis line, raw (normalised frame)
and divided by the object's bounding-box diagonal; type accuracy; success at 5 and 10 degrees."""
from __future__ import annotations

import numpy as np

from ..types import Joint


def axis_error_deg(pred_axis, gt_axis) -> float:
    a = np.asarray(pred_axis, float) / np.linalg.norm(pred_axis)
    b = np.asarray(gt_axis, float) / np.linalg.norm(gt_axis)
    c = float(np.clip(abs(a @ b), 0.0, 1.0))
    return float(np.degrees(np.arccos(c)))


def point_to_line(point, line_origin, line_axis) -> float:
    a = np.asarray(line_axis, float) / np.linalg.norm(line_axis)
    return float(np.linalg.norm(np.cross(np.asarray(point, float) - np.asarray(line_origin, float), a)))


def joint_errors(pred: Joint, gt: Joint, bbox_diagonal: float) -> dict:
    """Per-joint errors; position errors are None for prismatic ground truth (meaningless there)."""
    ax = axis_error_deg(pred.axis, gt.axis)
    pos = point_to_line(pred.origin, gt.origin, gt.axis) if gt.type == "revolute" else None
    return {
        "gt_type": gt.type, "pred_type": pred.type, "type_ok": pred.type == gt.type, "axis_err_deg": ax,
        "pos_err": pos, "pos_err_norm": None if pos is None else pos / bbox_diagonal,
        "success_5": pred.type == gt.type and ax <= 5.0, "success_10": pred.type == gt.type and ax <= 10.0,
    }


def summarize(rows: list[dict]) -> dict:
    """Means over the joints that were estimated: mae_deg (axis), mpe / mpe_norm (revolute only), type_acc,
    success rates; ``n_failed`` counts rows marked ``failed`` (no estimate: excluded from the means, counted
    as failures in success_5/10); ``n_joints`` counts all rows."""
    failed = [r for r in rows if r.get("failed")]
    done = [r for r in rows if not r.get("failed")]
    if not done:
        return {"n_joints": len(rows), "n_failed": len(failed)}
    pos = [r["pos_err"] for r in done if r.get("pos_err") is not None]
    posn = [r["pos_err_norm"] for r in done if r.get("pos_err_norm") is not None]
    out = {
        "n_joints": len(rows),
        "n_failed": len(failed),
        "mae_deg": float(np.mean([r["axis_err_deg"] for r in done])),
        "max_axis_err_deg": float(np.max([r["axis_err_deg"] for r in done])),
        "mpe": float(np.mean(pos)) if pos else None,
        "mpe_norm": float(np.mean(posn)) if posn else None,
        "max_pos_err_norm": float(np.max(posn)) if posn else None,
        "type_acc": float(np.mean([r["type_ok"] for r in done])),
        "success_5": float(np.sum([r["success_5"] for r in done]) / len(rows)),
        "success_10": float(np.sum([r["success_10"] for r in done]) / len(rows)),
    }
    ms = [r["ms"] for r in done if r.get("ms") is not None]
    if ms:
        out["ms_per_joint"] = float(np.mean(ms))
    cpu = [r["cpu_ms"] for r in done if r.get("cpu_ms") is not None]
    if cpu:
        out["cpu_ms_per_joint"] = float(np.mean(cpu))
    return out


def report(errors: dict) -> str:
    pos = "n/a (prismatic)" if errors["pos_err"] is None else f"{errors['pos_err']:.4g} ({errors['pos_err_norm']:.4g} of the diagonal)"
    return (f"type {errors['pred_type']} (ground truth {errors['gt_type']}, {'correct' if errors['type_ok'] else 'WRONG'}); "
            f"axis error {errors['axis_err_deg']:.3f} deg; position error {pos}; "
            f"success@5 {errors['success_5']}, success@10 {errors['success_10']}")
