import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.geometry.joint_search import estimate_joint
from atop_models.geometry.metrics import axis_error_deg, joint_errors, point_to_line, summarize
from atop_models.geometry.obb import candidate_origins, pca_obb
from atop_models.geometry.point_sequences import point_sequence_from_joint
from atop_models.mesh.procedural import make_object
from atop_models.render.motion import opening_values


def test_metrics_definitions():
    assert axis_error_deg([1, 0, 0], [-1, 0, 0]) == pytest.approx(0.0)
    assert axis_error_deg([1, 0, 0], [1, 1, 0]) == pytest.approx(45.0)
    assert axis_error_deg([1, 0.0, 0], [-1, 1.0 / np.tan(np.radians(30)), 0]) == pytest.approx(60.0)
    assert point_to_line([0, 2, 0], [5, 0, 0], [1, 0, 0]) == pytest.approx(2.0)
    s = summarize([{"axis_err_deg": 2.0, "pos_err": None, "pos_err_norm": None, "type_ok": True, "success_5": True,
                    "success_10": True}, {"axis_err_deg": 8.0, "pos_err": 0.1, "pos_err_norm": 0.05, "type_ok": False,
                                          "success_5": False, "success_10": False}])
    assert s["mae_deg"] == 5.0 and s["mpe_norm"] == 0.05 and s["type_acc"] == 0.5


def test_obb_candidates_of_a_box():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-2, -1, -0.1], [2, 1, 0.1], size=(3000, 3)) + [1, 2, 3]
    box = pca_obb(pts)
    assert abs(abs(box.axes[0] @ [1, 0, 0]) - 1) < 1e-3 and abs(abs(box.axes[2] @ [0, 0, 1]) - 1) < 1e-3
    np.testing.assert_allclose(box.half_extents, [2, 1, 0.1], atol=0.03)
    assert candidate_origins(box).shape == (7, 3)


@pytest.mark.parametrize("category", ["cabinet", "chest_of_drawers", "laptop"])
def test_exact_motion_is_recovered(category):
    mesh = make_object(category, 5)
    j = mesh.joints[0]
    seq = point_sequence_from_joint(mesh, j, opening_values(j, 8), n_points=800, drop_correspondence=1.0)
    pred = estimate_joint(seq)
    err = joint_errors(pred, j, mesh.bbox_diagonal)
    assert err["type_ok"] and err["axis_err_deg"] < 0.1
    assert err["pos_err_norm"] is None or err["pos_err_norm"] < 0.005
    assert pred.limits[1] == pytest.approx(j.limits[1], rel=0.02)
    assert pred.candidates[0]["stage"] == "final" and len([c for c in pred.candidates if c["stage"] == "discrete"]) == 84
    forced = estimate_joint(seq, joint_type="prismatic" if j.type == "revolute" else "revolute")
    assert forced.type != j.type


def test_corrupted_motion_stays_close():
    mesh = make_object("cabinet", 1)
    j = mesh.joints[0]
    seq = point_sequence_from_joint(mesh, j, opening_values(j, 10), noise=0.01, outliers=0.2, subsample=10)
    assert seq.points.shape == (10, 400, 3)
    err = joint_errors(estimate_joint(seq), j, mesh.bbox_diagonal)
    assert err["type_ok"] and err["axis_err_deg"] < 5.0


def test_bad_sequences():
    mesh = make_object("box", 0)
    j = mesh.joints[0]
    seq = point_sequence_from_joint(mesh, j, opening_values(j, 4), n_points=200)
    bad = seq.points.copy()
    bad[2, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        estimate_joint(type(seq)(points=bad, moving=seq.moving, part_name="lid"))
    with pytest.raises(InputError, match="labels have shape"):
        estimate_joint(type(seq)(points=seq.points, moving=seq.moving[:3], part_name="lid"))
    with pytest.raises(InputError, match="at least 2 frames"):
        estimate_joint(type(seq)(points=seq.points[:1], moving=seq.moving[:1], part_name="lid"))
    with pytest.raises(InputError, match="points on the moving part"):
        estimate_joint(type(seq)(points=seq.points, moving=np.zeros_like(seq.moving), part_name="lid"))
    still = point_sequence_from_joint(mesh, j, np.zeros(4), n_points=200)
    with pytest.raises(InputError, match="does not move"):
        estimate_joint(still)
