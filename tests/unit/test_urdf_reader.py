"""URDF files as found in the wild, written here: deviations from the specification that are read (and read
exactly like their standard spelling), those refused with a message naming the file and the problem, and
mesh references inside and outside the asset's folder."""
import math
import os

import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.mesh.loaders import load_part_mesh
from atop_models.mesh.urdf_reader import read_urdf

TRI_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"

STANDARD = """<robot name="r">
  <material name="red"><color rgba="1 0 0 1"/></material>
  <link name="base"><visual><origin xyz="0 0 0.1" rpy="0 0 0.2"/>
    <geometry><box size="1 0.5 0.25"/></geometry><material name="red"/></visual></link>
  <link name="door"><visual><origin xyz="0.2 0 0" rpy="0.1 0 0"/>
    <geometry><mesh filename="meshes/tri.obj" scale="0.5 0.5 0.5"/></geometry>
    <material name="m"><color rgba="0 0.5 1 1"/></material></visual></link>
  <joint name="hinge" type="revolute"><parent link="base"/><child link="door"/>
    <origin xyz="0.5 0 0" rpy="0 0 0.3"/><axis xyz="0 0 1"/><limit lower="0" upper="1.5"/></joint>
</robot>"""

# The same robot as real exporters write it: commas with and without spaces in every vector, tabs and
# newlines, a namespace, upper-case tags and types, a single scale number, a colour in 0..255 with 3 values,
# the named material defined after its use, a backslash path.
DEVIANT = """<robot name="r" xmlns="http://example.com/urdf">
  <LINK name="base"><visual><origin xyz="0, 0, 0.1" rpy="0,0,0.2"/>
    <geometry><box size="1,\t0.5,\n 0.25"/></geometry><material name="red"/></visual></LINK>
  <link name="door"><visual><origin xyz=" 0.2 , 0 , 0 " rpy="0.1,0,0"/>
    <geometry><mesh filename="meshes\\tri.obj" scale="0.5"/></geometry>
    <material name="m"><color rgba="0, 127.5, 255"/></material></visual></link>
  <joint name="hinge" type="Revolute"><parent link="base"/><child link="door"/>
    <origin xyz="0.5,0,0" rpy="0, 0, 0.3"/><axis xyz="0,0,1"/><limit lower="0" upper="1.5"/></joint>
  <material name="red"><color rgba="1, 0, 0, 1"/></material>
</robot>"""


def write(folder, text, name="r.urdf"):
    (folder / "meshes").mkdir(parents=True, exist_ok=True)
    (folder / "meshes" / "tri.obj").write_text(TRI_OBJ)
    (folder / name).write_text(text)
    return folder / name


def test_deviant_spelling_reads_like_the_standard(tmp_path):
    a = load_part_mesh(write(tmp_path / "a", STANDARD))
    b = load_part_mesh(write(tmp_path / "b", DEVIANT))
    assert a.part_names == b.part_names == ["base", "door"]
    np.testing.assert_allclose(b.vertices, a.vertices, atol=1e-12)
    np.testing.assert_array_equal(b.faces, a.faces)
    (ja,), (jb,) = a.joints, b.joints
    np.testing.assert_allclose(jb.axis, ja.axis, atol=1e-12)
    np.testing.assert_allclose(jb.origin, ja.origin, atol=1e-12)
    assert ja.limits == jb.limits == (0.0, 1.5)
    colors = lambda m: sorted(tuple(np.round(x.base_color, 3)) for x in m.materials)  # noqa: E731
    assert colors(a) == colors(b) == [(0.0, 0.5, 1.0, 1.0), (1.0, 0.0, 0.0, 1.0)]
    # the exact spelling
    for scale in ('scale="1.0, 1.0, 1.0"', 'scale="1, 1, 1"', 'scale="1,1,1"'):
        model = read_urdf(write(tmp_path / "s", STANDARD.replace('scale="0.5 0.5 0.5"', scale)))
        np.testing.assert_array_equal(model.links["door"].visuals[0].scale, [1, 1, 1])


def test_lenient_joints_and_collision_only(tmp_path):
    text = STANDARD.replace('<limit lower="0" upper="1.5"/>', "")
    model = read_urdf(write(tmp_path / "a", text))
    assert model.joints[0].limits == (-math.pi, math.pi)
    assert model.notes == ["joint 'hinge' (revolute) has no <limit>; read as a full turn [-pi, pi]"]
    text = STANDARD.replace('lower="0" upper="1.5"', 'lower="1.5" upper="-0.5"')
    mesh = load_part_mesh(write(tmp_path / "b", text))
    assert mesh.joints[0].limits == (-0.5, 1.5)
    assert mesh.notes == ["joint 'hinge' has its lower limit 1.5 above the upper -0.5; read as [-0.5, 1.5]"]
    capsule = STANDARD.replace('<box size="1 0.5 0.25"/>', '<capsule radius="0.1" length="0.5"/>')
    mesh = load_part_mesh(write(tmp_path / "c", capsule))
    base = mesh.vertices[np.unique(mesh.faces[mesh.face_part == 0])]
    assert len(base) > 20  # a real capsule, not a placeholder
    collision = STANDARD.replace("visual>", "collision>")
    mesh = load_part_mesh(write(tmp_path / "d", collision))
    assert mesh.part_names == ["base", "door"]
    assert mesh.notes == ["the URDF has no <visual> elements; its <collision> geometry is shown"]


REFUSED = [
    ('xyz="0.5 0 0" rpy="0 0 0.3"', 'xyz="[0.5, 0, 0]" rpy="0 0 0.3"', "joint 'hinge' origin xyz has an invalid value"),
    ('xyz="0 0 1"', 'xyz="0 0 nan"', "joint 'hinge' axis has an invalid value"),
    ('xyz="0 0 1"', 'xyz="0 0 0"', "joint 'hinge' has a zero axis"),
    ('scale="0.5 0.5 0.5"', 'scale="1 0 1"', "has a zero factor"),
    ('scale="0.5 0.5 0.5"', 'scale="1 1"', "expected 1 or 3 finite numbers"),
    ('<box size="1 0.5 0.25"/>', '<box size="1 -0.5 0.25"/>', "box size '1 -0.5 0.25' must be positive"),
    ('<box size="1 0.5 0.25"/>', '<cylinder radius="0.1"/>', "cylinder has no 'length'"),
    ('<box size="1 0.5 0.25"/>', '<sphere radius="abc"/>', "invalid radius 'abc'"),
    ('<box size="1 0.5 0.25"/>', '<heightmap/>', "unsupported geometry <heightmap>"),
    ('<color rgba="0 0.5 1 1"/>', '<color rgba="0 0.5"/>', "expected 3 or 4 finite numbers"),
    ('type="revolute"', 'type="hinge"', "has type 'hinge'; URDF joint types are"),
    ('type="revolute"', "", "has type ''"),
    ('type="revolute"', 'type="prismatic"', None),  # a valid prismatic joint: read
    ('<limit lower="0" upper="1.5"/></joint>', "</joint>", None),  # revolute without limit: read
    ('upper="1.5"', 'upper="1,5"', "invalid upper '1,5'"),
    ('<child link="door"/>', '<child link="lid"/>', "refers to unknown link 'lid'"),
    ('<child link="door"/>', "<child/>", "lacks <child link=...>"),
    ('<link name="door">', '<link name="base">', "defines link 'base' twice"),
    ('<link name="door">', "<link>", "a <link> without a name"),
    ("</robot>", '<joint name="hinge" type="fixed"><parent link="base"/><child link="door"/></joint></robot>',
     "defines joint 'hinge' twice"),
    ('filename="meshes/tri.obj"', 'filename=""', "mesh has no filename"),
    ('filename="meshes/tri.obj"', 'filename="package://"', "is not a URI of the form package://"),
    ('filename="meshes/tri.obj"', 'filename="$(find pkg)/meshes/tri.obj"', "unexpanded xacro"),
    ('<robot name="r">',
     '<robot name="r" xmlns:xacro="http://www.ros.org/wiki/xacro"><xacro:property name="a" value="1"/>',
     "unexpanded xacro"),
]


@pytest.mark.parametrize("old,new,match", REFUSED)
def test_refused_with_a_clear_message(tmp_path, old, new, match):
    assert old in STANDARD
    path = write(tmp_path, STANDARD.replace(old, new))
    if match is None:
        load_part_mesh(path)
        return
    with pytest.raises(InputError, match=match) as err:
        load_part_mesh(path)
    assert f"URDF '{path}'" in str(err.value)


def test_prismatic_without_limit_and_other_roots_are_refused(tmp_path):
    text = STANDARD.replace('type="revolute"', 'type="prismatic"').replace('<limit lower="0" upper="1.5"/>', "")
    with pytest.raises(InputError, match=r"\(prismatic\) has no <limit>; a sliding joint needs its range"):
        read_urdf(write(tmp_path / "a", text))
    text = STANDARD.replace("<robot", "<rbt").replace("</robot>", "</rbt>")
    with pytest.raises(InputError, match="is not a URDF; its root element is <rbt>"):
        read_urdf(write(tmp_path / "b", text))


def tree(n, edges=None):
    """Links l0 .. l(n-1) with boxes, joined by fixed joints along ``edges`` (default: a chain)."""
    links = "".join(f'<link name="l{i}"><visual><geometry><box size="1 1 1"/></geometry></visual></link>'
                    for i in range(n))
    edges = [(i, i + 1) for i in range(n - 1)] if edges is None else edges
    joints = "".join(f'<joint name="j{k}" type="fixed"><parent link="l{a}"/><child link="l{b}"/>'
                     f'<origin xyz="0 0 1"/></joint>' for k, (a, b) in enumerate(edges))
    return f'<robot name="tree">{links}{joints}</robot>'


def test_trees_deep_and_cyclic(tmp_path):
    model = read_urdf(write(tmp_path / "deep", tree(2000)))  # deep: read without recursion
    assert len(model.links) == 2000 and model.root == "l0"
    with pytest.raises(InputError, match="one root link, found 0 .*loop"):
        read_urdf(write(tmp_path / "loop", tree(3, [(0, 1), (1, 2), (2, 0)])))
    with pytest.raises(InputError, match="l1, l2 are not reachable from the root link 'l0'"):
        read_urdf(write(tmp_path / "side", tree(3, [(1, 2), (2, 1)])))
    with pytest.raises(InputError, match="link 'l2' has two parents"):
        read_urdf(write(tmp_path / "two", tree(3, [(0, 1), (0, 2), (1, 2)])))
    with pytest.raises(InputError, match="has 5000 links, more than the 4096"):
        read_urdf(write(tmp_path / "many", tree(5000)))


def test_xml_bombs_and_external_entities(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE robot [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
            + ']><robot name="&i;"><link name="l"/></robot>')
    with pytest.raises(InputError, match="declares XML entities"):
        read_urdf(write(tmp_path / "bomb", bomb))
    xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><robot name="&x;"/>'
    with pytest.raises(InputError, match="declares XML entities"):
        read_urdf(write(tmp_path / "xxe", xxe))


def ros_package(root, name="robot_description"):
    """root/<name>/urdf/r.urdf beside root/<name>/meshes/tri.obj (the ROS description layout)."""
    pkg = root / name
    (pkg / "urdf").mkdir(parents=True)
    (pkg / "meshes").mkdir()
    (pkg / "meshes" / "tri.obj").write_text(TRI_OBJ)
    return pkg


def one_mesh(filename):
    return (f'<robot name="r"><link name="a"><visual><geometry><mesh filename="{filename}"/></geometry>'
            '</visual></link></robot>')


def test_mesh_references_inside_and_outside_the_asset(tmp_path):
    pkg = ros_package(tmp_path)
    other = ros_package(tmp_path, "other_description")
    (tmp_path / "secret.obj").write_text(TRI_OBJ)
    urdf = pkg / "urdf" / "r.urdf"
    ok = {"../meshes/tri.obj": pkg / "meshes" / "tri.obj",  # urdf/ beside meshes/
          "package://robot_description/meshes/tri.obj": pkg / "meshes" / "tri.obj",
          "package://other_description/meshes/tri.obj": other / "meshes" / "tri.obj",  # a sibling package
          "model://robot_description/meshes/tri.obj": pkg / "meshes" / "tri.obj",
          f"file://{pkg}/meshes/tri.obj": pkg / "meshes" / "tri.obj",
          "..\\meshes\\tri.obj": pkg / "meshes" / "tri.obj"}
    for ref, want in ok.items():
        urdf.write_text(one_mesh(ref))
        assert read_urdf(urdf).links["a"].visuals[0].mesh_path == str(want), ref
    refused = {"../../secret.obj": "lies outside the asset folder",
               str(tmp_path / "secret.obj"): "lies outside the asset folder",
               "/etc/passwd": "lies outside the asset folder",
               "package://robot_description/../secret.obj": "climbs out of its package folder",
               "package://robot_description/../../secret.obj": "climbs out of its package folder",
               "package://no_such_package/meshes/tri.obj": "package 'no_such_package' does not resolve",
               "package://etc/passwd": "package 'etc' does not resolve",
               "../meshes/gone.obj": "was not found"}
    for ref, match in refused.items():
        urdf.write_text(one_mesh(ref))
        with pytest.raises(InputError, match=match) as err:
            load_part_mesh(urdf)
        assert str(urdf) in str(err.value) or ref in str(err.value), (ref, str(err.value))
    # PartNet-style: package:// meaning "relative to the URDF" still works
    flat = tmp_path / "flat"
    write(flat, one_mesh("package://anything/meshes/tri.obj"))
    assert read_urdf(flat / "r.urdf").links["a"].visuals[0].mesh_path == str(flat / "meshes" / "tri.obj")
    assert os.path.isfile(read_urdf(flat / "r.urdf").links["a"].visuals[0].mesh_path)
