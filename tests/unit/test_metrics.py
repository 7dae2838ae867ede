import numpy as np
import pytest

from atop_models.geometry.metrics import axis_error_deg, joint_errors, point_to_line, summarize
from atop_models.types import Joint


def test_axis_error_removes_the_sign():
    assert axis_error_deg([0, 0, 1], [0, 0, -1]) == pytest.approx(0.0)
    assert axis_error_deg([0, 0, 2], [0, 0, 1]) == pytest.approx(0.0)  # lengths do not matter
    t = np.radians(30)
    assert axis_error_deg([np.sin(t), 0, np.cos(t)], [0, 0, 1]) == pytest.approx(30.0)
    assert axis_error_deg([np.sin(t), 0, -np.cos(t)], [0, 0, 1]) == pytest.approx(30.0)  # 150 -> 30
    assert axis_error_deg([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)


def test_point_to_line():
    assert point_to_line([1, 3, 4], [1, 0, -7], [0, 0, 5]) == pytest.approx(3.0)
    assert point_to_line([0, 0, 0], [1, 1, 0], [1, -1, 0]) == pytest.approx(np.sqrt(2.0))


def test_joint_errors_revolute():
    gt = Joint("revolute", [0, 0, 1], [1, 0, 0])
    t = np.radians(10)
    pred = Joint("revolute", [0, np.sin(t), np.cos(t)], [1, 0.3, 5.0])
    e = joint_errors(pred, gt, bbox_diagonal=2.0)
    assert e["axis_err_deg"] == pytest.approx(10.0)
    assert e["pos_err"] == pytest.approx(0.3) and e["pos_err_norm"] == pytest.approx(0.15)
    assert e["type_ok"] and not e["success_5"] and e["success_10"]


def test_joint_errors_prismatic_has_no_position_and_type_matters():
    gt = Joint("prismatic", [1, 0, 0], [0, 0, 0])
    e = joint_errors(Joint("prismatic", [-1, 0, 0], [9, 9, 9]), gt, 1.0)
    assert e["axis_err_deg"] == pytest.approx(0.0) and e["pos_err"] is None and e["pos_err_norm"] is None
    assert e["success_5"]
    wrong = joint_errors(Joint("revolute", [1, 0, 0], [0, 0, 0]), gt, 1.0)
    assert not wrong["type_ok"] and not wrong["success_5"] and not wrong["success_10"]


def test_summarize_means_and_failures():
    rows = [
        {"axis_err_deg": 2.0, "pos_err": None, "pos_err_norm": None, "type_ok": True, "success_5": True,
         "success_10": True, "ms": 10.0},
        {"axis_err_deg": 8.0, "pos_err": 0.1, "pos_err_norm": 0.05, "type_ok": False, "success_5": False,
         "success_10": False, "ms": 30.0},
        {"failed": True, "error": "does not move"},
    ]
    s = summarize(rows)
    assert s["n_joints"] == 3 and s["n_failed"] == 1
    assert s["mae_deg"] == pytest.approx(5.0) and s["max_axis_err_deg"] == pytest.approx(8.0)
    assert s["mpe"] == pytest.approx(0.1) and s["mpe_norm"] == pytest.approx(0.05)
    assert s["type_acc"] == pytest.approx(0.5)
    assert s["success_5"] == pytest.approx(1 / 3) and s["success_10"] == pytest.approx(1 / 3)  # failures count
    assert s["ms_per_joint"] == pytest.approx(20.0)
    assert summarize([]) == {"n_joints": 0, "n_failed": 0}
