"""Loaders: GLB/OBJ/URDF round trips, up-axis handling, PartNet-Mobility joints against the manifest, bad input."""
import json
import os

import numpy as np
import pytest
import trimesh
from PIL import Image

from atop_models.errors import InputError
from atop_models.mesh.loaders import load_part_mesh
from atop_models.mesh.normalize import transform_points
from atop_models.types import NORMALISED_EXTENT


def to_source(mesh, pts):
    return transform_points(np.linalg.inv(mesh.normalized_from_source), pts)


def two_part_glb(path):
    tex = Image.fromarray(np.tile(np.arange(16, dtype=np.uint8)[:, None, None] * 16, (1, 16, 3)))
    a = trimesh.creation.box(extents=(1, 2, 3))
    a.visual = trimesh.visual.TextureVisuals(uv=np.random.default_rng(0).random((len(a.vertices), 2)),
                                             material=trimesh.visual.material.PBRMaterial(baseColorTexture=tex))
    b = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    b.visual = trimesh.visual.TextureVisuals(uv=np.random.default_rng(1).random((len(b.vertices), 2)),
                                             material=trimesh.visual.material.PBRMaterial(
                                                 baseColorTexture=tex, baseColorFactor=[255, 0, 0, 255]))
    s = trimesh.Scene()
    s.add_geometry(a, node_name="body", geom_name="body_g")
    s.add_geometry(b, node_name="lid", geom_name="lid_g", transform=trimesh.transformations.translation_matrix([0, 3, 0]))
    s.export(path)
    return a, b


def test_glb_round_trip_and_y_up(tmp_path):
    a, b = two_part_glb(tmp_path / "two.glb")
    mesh = load_part_mesh(tmp_path / "two.glb")
    assert mesh.part_names == ["body", "lid"] and mesh.source_format == "glb"
    assert mesh.uv is not None and mesh.uv.shape == (len(mesh.vertices), 2)
    assert all(m.texture is not None for m in mesh.materials)
    lid_mat = mesh.materials[mesh.face_material[mesh.face_part == 1][0]]
    np.testing.assert_allclose(lid_mat.base_color, [1, 0, 0, 1])
    body = to_source(mesh, mesh.vertices[np.unique(mesh.faces[mesh.face_part == 0])])
    lid = to_source(mesh, mesh.vertices[np.unique(mesh.faces[mesh.face_part == 1])])
    np.testing.assert_allclose(np.sort(body, 0), np.sort(a.vertices, 0), atol=1e-9)
    np.testing.assert_allclose(np.sort(lid, 0), np.sort(b.vertices + [0, 3, 0], 0), atol=1e-9)
    # Y-up source: the lid (at +Y in glTF) is on top (+Z) in our frame; extents normalised and centred
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-12)
    assert abs((hi - lo).max() - NORMALISED_EXTENT) < 1e-12
    assert np.argmax(hi - lo) == 2
    assert mesh.vertices[np.unique(mesh.faces[mesh.face_part == 1])][:, 2].min() > 0
    z = load_part_mesh(tmp_path / "two.glb", up_axis="z")
    assert np.argmax(z.vertices.max(0) - z.vertices.min(0)) == 1


def test_obj_groups(tmp_path):
    text = ["o door", "v 0 0 0", "v 1 0 0", "v 1 0 1", "v 0 0 1", "f 1 2 3", "f 1 3 4",
            "o frame", "v 0 1 0", "v 2 1 0", "v 2 1 2", "f 5 6 7"]
    (tmp_path / "g.obj").write_text("\n".join(text) + "\n")
    mesh = load_part_mesh(tmp_path / "g.obj")
    assert mesh.part_names == ["door", "frame"]
    assert np.bincount(mesh.face_part).tolist() == [2, 1]
    src = to_source(mesh, mesh.vertices)
    door = src[np.unique(mesh.faces[mesh.face_part == 0])]
    np.testing.assert_allclose(np.sort(door, 0), np.sort([[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1.]], 0), atol=1e-12)


URDF = """<?xml version="1.0"?>
<robot name="toy">
  <link name="base"/>
  <link name="body"><visual><origin xyz="0 0 0.5"/><geometry><mesh filename="package://toypkg/meshes/box.obj" scale="2 1 1"/></geometry></visual></link>
  <link name="arm_mount"/>
  <link name="arm"><visual><origin xyz="0.25 0 0" rpy="0 0 0.3"/><geometry><mesh filename="meshes/box.obj" scale="0.5 0.2 0.2"/></geometry></visual></link>
  <link name="tip"><visual><geometry><box size="0.1 0.1 0.1"/></geometry></visual></link>
  <link name="slider"><visual><geometry><box size="0.2 0.2 0.05"/></geometry></visual></link>
  <joint name="fix" type="fixed"><parent link="base"/><child link="body"/><origin rpy="0 0 1.5707963267948966"/></joint>
  <joint name="mount" type="fixed"><parent link="body"/><child link="arm_mount"/><origin xyz="0.5 0 1" rpy="0.4 0 0"/></joint>
  <joint name="shoulder" type="revolute"><parent link="arm_mount"/><child link="arm"/><origin xyz="0 0.1 0" rpy="0 0.2 0"/>
    <axis xyz="0 0 2"/><limit lower="-1" upper="1.5"/></joint>
  <joint name="wrist" type="continuous"><parent link="arm"/><child link="tip"/><origin xyz="0.5 0 0"/><axis xyz="1 0 0"/></joint>
  <joint name="slide" type="prismatic"><parent link="body"/><child link="slider"/><origin xyz="0 -0.5 0.2"/>
    <axis xyz="0 -1 0"/><limit lower="0" upper="0.4"/></joint>
</robot>
"""


def write_toy_urdf(root):
    pkg = root / "toypkg"
    (pkg / "meshes").mkdir(parents=True)
    (pkg / "urdf").mkdir()
    trimesh.creation.box(extents=(1, 1, 1)).export(pkg / "meshes" / "box.obj")
    (pkg / "urdf" / "toy.urdf").write_text(URDF.replace('filename="meshes/box.obj"', 'filename="../meshes/box.obj"'))
    return pkg / "urdf" / "toy.urdf"


def test_urdf_nested_links_against_yourdfpy(tmp_path):
    import yourdfpy

    path = write_toy_urdf(tmp_path)
    mesh = load_part_mesh(path)
    assert mesh.part_names == ["body", "arm", "tip", "slider"]
    assert mesh.attached == {"body": "base", "arm_mount": "body"}
    robot = yourdfpy.URDF.load(str(path), build_scene_graph=True, load_meshes=False,
                               filename_handler=lambda fname: fname)
    N = mesh.normalized_from_source
    byname = {j.name: j for j in mesh.joints}
    assert set(byname) == {"shoulder", "wrist", "slide"}
    assert byname["wrist"].type == "revolute" and byname["wrist"].limits == pytest.approx((-np.pi, np.pi))
    for name, j in byname.items():
        uj = robot.joint_map[name]
        T = robot.get_transform(uj.child, "base")  # base_from_child at q = 0 = joint frame
        axis = N[:3, :3] @ (T[:3, :3] @ uj.axis)
        np.testing.assert_allclose(j.axis, axis / np.linalg.norm(axis), atol=1e-9)
        if j.type == "revolute":
            np.testing.assert_allclose(j.origin, transform_points(N, T[None, :3, 3])[0], atol=1e-9)
    s = np.cbrt(np.linalg.det(N[:3, :3]))
    assert byname["slide"].limits == pytest.approx((0.0, 0.4 * s))
    # the arm's box: link frame @ visual origin @ scale, compared with yourdfpy's link pose
    T_arm = robot.get_transform("arm", "base")
    vis = np.eye(4)
    vis[:3, :3] = trimesh.transformations.rotation_matrix(0.3, [0, 0, 1])[:3, :3]
    vis[:3, 3] = [0.25, 0, 0]
    box = trimesh.creation.box(extents=(1, 1, 1)).vertices * [0.5, 0.2, 0.2]
    expected = transform_points(T_arm @ vis, box)
    got = to_source(mesh, mesh.vertices[np.unique(mesh.faces[mesh.face_part == 1])])
    np.testing.assert_allclose(np.sort(got, 0), np.sort(expected, 0), atol=1e-9)


def test_dev_objects_match_manifest(dev_data):
    manifest = json.loads((dev_data / "manifest.json").read_text())
    assert len(manifest["objects"]) == 16
    for obj in manifest["objects"]:
        mesh = load_part_mesh(dev_data / obj["id"])
        N = mesh.normalized_from_source
        byname = {j.name: j for j in mesh.joints}
        assert len(byname) == len(obj["joints"]), obj["id"]
        for gt in obj["joints"]:
            j = byname[gt["name"]]
            assert j.child == gt["child_link"]
            assert j.type == ("prismatic" if gt["type"] == "prismatic" else "revolute")
            axis = N[:3, :3] @ np.asarray(gt["axis_world"])
            np.testing.assert_allclose(j.axis, axis / np.linalg.norm(axis), atol=1e-9)  # sign included
            if j.type == "revolute":
                origin = transform_points(N, np.asarray(gt["origin_world"])[None])[0]
                assert np.linalg.norm(np.cross(j.origin - origin, j.axis)) < 1e-9
            if gt["limits"] is not None and j.type == "revolute":
                assert j.limits == pytest.approx(tuple(gt["limits"]))
        lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
        assert abs((hi - lo).max() - 1.0) < 1e-9


@pytest.mark.parametrize("name,content,match", [
    ("x.glb", os.urandom(3000), "could not read"),
    ("x.obj", b"this is not an obj\n\x00\x01\x02", "no mesh faces"),
    ("x.glb", b"", "empty"),
    ("x.fbx", b"abc", "unsupported extension"),
    ("x.urdf", b"<robot><link", "could not parse URDF"),
    ("x.urdf", b'<robot name="r"><link name="a"><visual><geometry><mesh filename="gone.obj"/></geometry></visual></link></robot>',
     "'gone.obj' was not found"),
    ("x.obj", b"v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 3\n", "degenerate"),
])
def test_bad_inputs(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError, match=match):
        load_part_mesh(p)


def test_truncated_glb_and_missing_paths(tmp_path):
    two_part_glb(tmp_path / "ok.glb")
    data = (tmp_path / "ok.glb").read_bytes()
    (tmp_path / "cut.glb").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.glb' is truncated: its GLB header declares [\d,]+ bytes, the file has"):
        load_part_mesh(tmp_path / "cut.glb")
    with pytest.raises(InputError, match="does not exist"):
        load_part_mesh(tmp_path / "nope.glb")
    with pytest.raises(InputError, match="no mobility.urdf"):
        load_part_mesh(tmp_path)
    with pytest.raises(InputError, match="up axis"):
        load_part_mesh(tmp_path / "ok.glb", up_axis="x")


def test_triangles_from_memory_load_like_a_file():
    """ComfyUI's MESH arrays: Y-up like glTF, normalised as a loaded file; bad arrays are clear errors."""
    from atop_models.mesh.loaders import mesh_from_triangles

    v = np.array([[0, 0, 0], [2, 0, 0], [0, 4, 0], [0, 0, 1]], np.float32)  # Y-up: 4 high
    f = np.array([[0, 1, 2], [0, 1, 3]])
    mesh = mesh_from_triangles(v, f)
    assert mesh.part_names == ["mesh"] and mesh.source_format == "comfy-mesh"
    assert np.allclose(mesh.vertices.max(0) - mesh.vertices.min(0), [0.5, 0.25, 1.0])  # +Z up, largest side 1
    assert np.allclose(mesh_from_triangles(v, f, up_axis="auto").vertices, mesh.vertices)
    for bad_v, bad_f, message in [
        (v[:, :2], f, r"vertices have shape \[4, 2\]"),
        (v, f.astype(np.float32), r"faces have shape \[2, 3\] \(float32\)"),
        (v, f[:0], "has no faces"),
        (v, f + 2, "index vertices up to 5 but it has 4 vertices"),
    ]:
        with pytest.raises(InputError, match=message):
            mesh_from_triangles(bad_v, bad_f)
