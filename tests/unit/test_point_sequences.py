import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.geometry.point_sequences import point_sequence_from_joint
from atop_models.geometry.transforms import apply_transform, joint_matrix
from atop_models.mesh.procedural import make_object
from atop_models.render.motion import opening_values


@pytest.fixture(scope="module")
def cabinet():
    mesh = make_object("cabinet", 3)
    return mesh, mesh.joints[0]


def test_exact_motion_follows_the_joint(cabinet):
    mesh, j = cabinet
    values = opening_values(j, 5)
    seq = point_sequence_from_joint(mesh, j, values, n_points=300, n_static=200)
    assert seq.points.shape == (5, 500, 3) and seq.moving.sum(axis=1).tolist() == [300] * 5
    assert seq.part_name == j.child and seq.source == "ground truth"
    rest = seq.points[0]
    for f, v in enumerate(values):
        assert (seq.track_ids[f] == seq.track_ids[0]).all()  # same samples, same order, every frame
        m = seq.moving[f]
        np.testing.assert_allclose(seq.points[f][m], apply_transform(joint_matrix(j, v), rest[m]), atol=1e-12)
        np.testing.assert_allclose(seq.points[f][~m], rest[~m], atol=0)  # the static part stays
    assert np.linalg.norm(seq.points[-1][seq.moving[-1]] - rest[seq.moving[0]], axis=1).max() > 0.05


def test_noise_level(cabinet):
    mesh, j = cabinet
    values = opening_values(j, 3)
    clean = point_sequence_from_joint(mesh, j, values, n_points=2000, n_static=2000, seed=4)
    noisy = point_sequence_from_joint(mesh, j, values, n_points=2000, n_static=2000, noise=0.01, seed=4)
    d = noisy.points - clean.points  # the same surface samples, jittered
    assert d.std() == pytest.approx(0.01 * mesh.bbox_diagonal, rel=0.03)
    assert abs(d.mean()) < 0.001 * mesh.bbox_diagonal
    assert "noise 0.01" in noisy.source


def test_outlier_fraction(cabinet):
    mesh, j = cabinet
    values = opening_values(j, 4)
    clean = point_sequence_from_joint(mesh, j, values, n_points=1000, n_static=100, seed=2)
    dirty = point_sequence_from_joint(mesh, j, values, n_points=1000, n_static=100, outliers=0.2, seed=2)
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    for f in range(4):
        moved = np.linalg.norm(dirty.points[f] - clean.points[f], axis=1) > 0
        assert moved.sum() == 200 and dirty.moving[f][moved].all()  # 20% of the part, labelled moving
        out = dirty.points[f][moved]
        assert (out >= lo - 1e-12).all() and (out <= hi + 1e-12).all()  # uniform in the bounding box
    assert dirty.track_ids is not None  # outliers keep their ids: wrong matches


def test_subsample_and_dropped_correspondences(cabinet):
    mesh, j = cabinet
    values = opening_values(j, 6)
    seq = point_sequence_from_joint(mesh, j, values, n_points=1000, n_static=500, subsample=10,
                                    drop_correspondence=0.3, seed=7)
    assert seq.points.shape == (6, 150, 3) and (seq.moving.sum(axis=1) == 100).all()
    # different random subsets per frame
    assert not np.array_equal(seq.track_ids[0][seq.track_ids[0] >= 0][:20], seq.track_ids[1][seq.track_ids[1] >= 0][:20])
    dropped = (seq.track_ids < 0).mean()
    assert dropped == pytest.approx(0.3, abs=0.05)
    none = point_sequence_from_joint(mesh, j, values, n_points=100, drop_correspondence=1.0)
    assert none.track_ids is None


def test_seeded(cabinet):
    mesh, j = cabinet
    values = opening_values(j, 3)
    kw = dict(n_points=200, noise=0.01, outliers=0.1, subsample=2, drop_correspondence=0.2)
    a = point_sequence_from_joint(mesh, j, values, seed=5, **kw)
    b = point_sequence_from_joint(mesh, j, values, seed=5, **kw)
    c = point_sequence_from_joint(mesh, j, values, seed=6, **kw)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.track_ids, b.track_ids)
    assert not np.allclose(a.points, c.points)


@pytest.mark.parametrize("kw", [dict(values=[0.0]), dict(values=[0.0, np.nan]), dict(subsample=0),
                                dict(noise=-1.0), dict(outliers=1.5), dict(drop_correspondence=2.0)])
def test_bad_settings(cabinet, kw):
    mesh, j = cabinet
    values = kw.pop("values", [0.0, 0.5])
    with pytest.raises(InputError):
        point_sequence_from_joint(mesh, j, values, n_points=50, **kw)
