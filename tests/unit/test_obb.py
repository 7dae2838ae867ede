import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.geometry.obb import candidate_directions, candidate_origins, pca_obb
from atop_models.geometry.transforms import rotation_about_axis


def _rotated_box(n=50000, half=(2.0, 1.0, 0.25), centre=(0.5, -1.0, 2.0), seed=0):
    rng = np.random.default_rng(seed)
    R = rotation_about_axis(np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0), 0.7)
    local = rng.uniform(-np.array(half), np.array(half), size=(n, 3))
    return local @ R.T + np.array(centre), R


def test_rotated_box_recovers_axes_extents_and_centre():
    pts, R = _rotated_box()
    box = pca_obb(pts, robust=False)
    for k in range(3):  # largest variance first: the box's x, y, z in that order (up to sign)
        assert abs(box.axes[k] @ R[:, k]) == pytest.approx(1.0, abs=1e-3)
    assert np.linalg.det(box.axes) == pytest.approx(1.0)
    np.testing.assert_allclose(box.half_extents, [2.0, 1.0, 0.25], atol=0.02)  # a tilt of the PCA axes widens it
    np.testing.assert_allclose(box.centre, [0.5, -1.0, 2.0], atol=0.01)


def test_face_centres_corners_and_candidates():
    pts, _ = _rotated_box()
    box = pca_obb(pts, robust=False)
    faces = box.face_centres()
    np.testing.assert_allclose(faces[0], box.centre + box.half_extents[0] * box.axes[0])
    np.testing.assert_allclose(faces[5], box.centre - box.half_extents[2] * box.axes[2])
    corners = box.corners()
    assert corners.shape == (8, 3)
    np.testing.assert_allclose(np.linalg.norm(corners - box.centre, axis=1), np.linalg.norm(box.half_extents))
    origins = candidate_origins(box)
    assert origins.shape == (7, 3) and np.allclose(origins[0], box.centre) and np.allclose(origins[1:], faces)
    dirs = candidate_directions(box)
    np.testing.assert_allclose(dirs[::2], box.axes)
    np.testing.assert_allclose(dirs[1::2], -box.axes)


def test_robust_box_ignores_floaters():
    pts, R = _rotated_box()
    rng = np.random.default_rng(1)
    floaters = rng.uniform(-30, 30, size=(500, 3))  # 1% far away points
    box = pca_obb(np.concatenate([pts, floaters]))
    for k in range(3):
        assert abs(box.axes[k] @ R[:, k]) == pytest.approx(1.0, abs=2e-3)
    # percentiles 0.5..99.5 trim 1% of each range
    np.testing.assert_allclose(box.half_extents, [2.0 * 0.99, 1.0 * 0.99, 0.25 * 0.99], atol=0.02)
    plain = pca_obb(np.concatenate([pts, floaters]), robust=False)
    assert plain.half_extents.max() > 10  # without robustness the floaters stretch the box


def test_too_few_points():
    with pytest.raises(InputError, match="at least 4 points"):
        pca_obb(np.zeros((3, 3)))
