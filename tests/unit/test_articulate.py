"""Posing: chained joints, rigid attachments, limits, opening fractions."""
import numpy as np
import pytest
import trimesh

from atop_models.errors import InputError
from atop_models.geometry.transforms import rotation_about_axis
from atop_models.mesh.articulate import joint_values_for_fraction, pose_mesh, posed_vertices
from atop_models.types import Joint, PartMesh


def chain_mesh():
    """base (static) -> door (revolute about +Z through (1,0,0)) -> handle (attached) ; door -> flap (revolute about +X)."""
    specs = [("base", (0, 0, 0)), ("door", (0.5, 0, 0)), ("handle", (0.5, -0.1, 0)), ("flap", (0.5, 0, 0.5))]
    V, F, P = [], [], []
    for i, (_, c) in enumerate(specs):
        b = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
        F.append(b.faces + 8 * i)
        V.append(b.vertices + c)
        P.append(np.full(12, i))
    joints = [Joint("revolute", [0, 0, 1], [1, 0, 0], (-np.pi / 2, np.pi / 2), child="door", parent="base", name="j_door"),
              Joint("revolute", [1, 0, 0], [0.5, 0, 0.4], (0, 1.0), child="flap", parent="door", name="j_flap")]
    return PartMesh(vertices=np.concatenate(V), faces=np.concatenate(F), face_part=np.concatenate(P),
                    part_names=[s[0] for s in specs], joints=joints, attached={"handle": "door"})


def rot(axis, origin, q, p):
    R = rotation_about_axis(np.asarray(axis, float), q)
    return (p - origin) @ R.T + origin


def test_parent_moves_descendants_and_attached():
    m = chain_mesh()
    assert m.parts_moved_by(m.joints[0]) == ["door", "handle", "flap"]
    v = posed_vertices(m, {"j_door": 0.7})
    for i, name in enumerate(m.part_names):
        sel = slice(8 * i, 8 * i + 8)
        expected = m.vertices[sel] if name == "base" else rot([0, 0, 1], [1, 0, 0], 0.7, m.vertices[sel])
        np.testing.assert_allclose(v[sel], expected, atol=1e-12)


def test_chained_joints_compose_child_first():
    m = chain_mesh()
    v = posed_vertices(m, {"door": 0.7, "flap": 0.4})  # keys may be child part names
    flap = m.vertices[24:32]
    expected = rot([0, 0, 1], [1, 0, 0], 0.7, rot([1, 0, 0], [0.5, 0, 0.4], 0.4, flap))
    np.testing.assert_allclose(v[24:32], expected, atol=1e-12)
    np.testing.assert_allclose(v[16:24], rot([0, 0, 1], [1, 0, 0], 0.7, m.vertices[16:24]), atol=1e-12)
    # an attached part's name resolves to the joint moving it
    np.testing.assert_allclose(posed_vertices(m, {"handle": 0.7}), posed_vertices(m, {"j_door": 0.7}))
    posed = pose_mesh(m, {"j_flap": 0.4})
    assert not np.allclose(posed.vertices, m.vertices) and np.allclose(chain_mesh().vertices, m.vertices)


def test_limits_and_unknown_names():
    m = chain_mesh()
    with pytest.raises(InputError, match=r"value 2 for joint 'j_door' is outside its range \[-1.5708, 1.5708\]"):
        posed_vertices(m, {"j_door": 2.0})
    posed_vertices(m, {"j_flap": 1.0 + 5e-7})  # within tolerance
    with pytest.raises(InputError, match="no joint or part named 'lid'"):
        posed_vertices(m, {"lid": 0.1})
    with pytest.raises(InputError, match="part 'base' has no joint"):
        posed_vertices(m, {"base": 0.1})


def test_override_joints():
    m = chain_mesh()
    est = Joint("prismatic", [0, -1, 0], [0, 0, 0], (0, 0.5), child="door", name="estimated")
    v = posed_vertices(m, {"door": 0.3}, joints=[est])
    np.testing.assert_allclose(v[8:16], m.vertices[8:16] + [0, -0.3, 0], atol=1e-12)
    np.testing.assert_allclose(v[16:24], m.vertices[16:24] + [0, -0.3, 0], atol=1e-12)  # attached handle
    np.testing.assert_allclose(v[24:32], m.vertices[24:32], atol=1e-12)  # flap's joint not in the override


def test_fraction_rule():
    j = Joint("revolute", [0, 0, 1], [0, 0, 0], (-2.27, 0.52))
    assert joint_values_for_fraction(j, 0.0) == 0.0 and joint_values_for_fraction(j, 1.0) == pytest.approx(0.52)
    np.testing.assert_allclose(joint_values_for_fraction(j, np.array([0.5, 2.0])), [0.26, 0.52])
    assert joint_values_for_fraction(Joint("revolute", [0, 0, 1], [0, 0, 0], (-1.0, 0.0)), 1.0) == -1.0
    assert joint_values_for_fraction(Joint("prismatic", [0, 0, 1], [0, 0, 0], (0.1, 0.3)), 0.5) == pytest.approx(0.2)


def test_dev_object_door_opens(dev_data):
    from atop_models.mesh.loaders import load_part_mesh

    m = load_part_mesh(dev_data / "pm_11846_refrigerator")
    j = m.joints[0]
    moved = m.part_face_mask(m.parts_moved_by(j))
    assert len(m.parts_moved_by(j)) == 2  # the door and its rigidly attached handle
    v = posed_vertices(m, {j.name: joint_values_for_fraction(j, 1.0)})
    idx_moved = np.unique(m.faces[moved])
    idx_static = np.unique(m.faces[~moved])
    assert np.abs(v[idx_moved] - m.vertices[idx_moved]).max() > 0.1
    np.testing.assert_array_equal(v[idx_static], m.vertices[idx_static])
