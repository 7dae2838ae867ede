import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.mesh.sampling import sample_surface
from atop_models.types import PartMesh


def two_squares() -> PartMesh:
    # Part "a": unit square at z=0; part "b": 2x2 square at z=1 (four times the area).
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [2, 0, 1], [2, 2, 1], [0, 2, 1]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    return PartMesh(vertices=v, faces=f, face_part=np.array([0, 0, 1, 1]), part_names=["a", "b"])


def test_points_lie_on_the_named_parts_and_follow_area():
    mesh = two_squares()
    pts, faces = sample_surface(mesh, ["a", "b"], 20000, seed=1)
    assert pts.shape == (20000, 3) and faces.shape == (20000,)
    on_b = pts[:, 2] == 1.0
    assert abs(on_b.mean() - 0.8) < 0.02  # area ratio 4:1
    assert np.all(np.isin(faces[on_b], [2, 3])) and np.all(np.isin(faces[~on_b], [0, 1]))
    a = pts[~on_b]
    assert a[:, :2].min() >= 0 and a[:, :2].max() <= 1
    assert abs(a[:, 0].mean() - 0.5) < 0.02 and abs(a[:, 1].mean() - 0.5) < 0.02  # uniform within the square


def test_seeded_and_posed():
    mesh = two_squares()
    p1, _ = sample_surface(mesh, "a", 100, seed=3)
    p2, _ = sample_surface(mesh, "a", 100, seed=3)
    np.testing.assert_array_equal(p1, p2)
    shifted, _ = sample_surface(mesh, "a", 100, seed=3, vertices=mesh.vertices + [0, 0, 5])
    np.testing.assert_allclose(shifted, p1 + [0, 0, 5])


def test_degenerate_part_is_an_error():
    mesh = two_squares()
    mesh.vertices[:4] = 0.0
    with pytest.raises(InputError, match="no surface area"):
        sample_surface(mesh, "a", 10)
