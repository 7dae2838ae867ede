"""Static GLB export: named parts, exact vertices and UVs, textures kept, Y-up on disk, atomic writes."""
import os

import numpy as np
import pytest
import trimesh

from atop_models.errors import InputError
from atop_models.export.glb import (Y_UP_FROM_Z_UP, _linear_to_srgb, _srgb_to_linear, colour_in_factor,
                                    part_mesh_to_scene, write_glb)
from atop_models.mesh.articulate import posed_vertices
from atop_models.mesh.loaders import load_part_mesh
from atop_models.mesh.procedural import make_object
from atop_models.types import Material, PartMesh


def shown_colour(material):  # [H, W, 3] sRGB 0..1: what a viewer shows, factor times texture
    linear = _srgb_to_linear(np.asarray(material.texture, dtype=np.float64)[..., :3] / 255)
    return _linear_to_srgb(linear * np.asarray(material.base_color)[:3])


def test_texture_colour_is_also_in_the_factor():
    """Without its texture a part shows its factor: the texture's brightest linear value per channel (not
    white); with it, factor times texture is the source texture."""
    tex = np.zeros((4, 4, 3), np.uint8)
    tex[..., 0], tex[..., 1], tex[..., 2] = 120, 60, 30
    tex[0, 0] = (200, 90, 40)
    factor, out = colour_in_factor(np.array([1.0, 1.0, 0.5, 1.0]), tex)
    peak = _srgb_to_linear(np.array([200, 90, 40]) / 255)
    np.testing.assert_allclose(factor, [peak[0], peak[1], 0.5 * peak[2], 1.0])
    assert tuple(out[0, 0]) == (255, 255, 255)
    back = _linear_to_srgb(_srgb_to_linear(out / 255) * factor[:3]) * 255
    expected = _linear_to_srgb(_srgb_to_linear(tex / 255) * [1.0, 1.0, 0.5]) * 255
    assert np.abs(back - expected).max() <= 1.5


def part_vertices(mesh, name):
    return mesh.vertices[np.unique(mesh.faces[mesh.face_part == mesh.part_index(name)])]


@pytest.mark.parametrize("category", ["cabinet", "chest_of_drawers", "washing_machine", "laptop"])
@pytest.mark.parametrize("frame", ["source", "normalized"])
def test_round_trip_through_the_loader(tmp_path, category, frame):
    mesh = make_object(category, 2)
    path = write_glb(mesh, tmp_path / "obj.glb", frame=frame)
    assert os.listdir(tmp_path) == ["obj.glb"]  # no temp file left behind
    back = load_part_mesh(path)  # glTF Y-up -> Z-up, then normalised again
    assert sorted(back.part_names) == sorted(mesh.part_names)
    for name in mesh.part_names:
        assert np.allclose(part_vertices(back, name), part_vertices(mesh, name), atol=1e-6)
        a, b = mesh.part_index(name), back.part_index(name)
        mat_a = mesh.materials[mesh.face_material[mesh.face_part == a][0]]
        mat_b = back.materials[back.face_material[back.face_part == b][0]]
        # the file splits the colour between factor and texture (see glb.py); their product is unchanged
        assert np.abs(shown_colour(mat_a) - shown_colour(mat_b)).max() <= 1.5 / 255
    assert np.allclose(np.sort(back.uv, axis=0), np.sort(mesh.uv, axis=0), atol=1e-6)


def test_file_is_y_up_in_source_units_with_named_nodes(tmp_path):
    mesh = make_object("fridge", 4)
    scene = trimesh.load(write_glb(mesh, tmp_path / "f.glb"), force="scene", process=False)
    assert sorted(scene.graph.nodes_geometry) == sorted(mesh.part_names)
    lo, hi = scene.bounds
    s = mesh.normalized_from_source[0, 0]
    extent_z_up = (mesh.vertices.max(0) - mesh.vertices.min(0)) / s  # metres
    assert np.allclose(hi - lo, extent_z_up[[0, 2, 1]], atol=1e-6)  # height along glTF +Y
    assert lo[1] > -1e-6  # standing on the floor (source frame: z = 0 -> y = 0)
    for geom in scene.geometry.values():
        mat = geom.visual.material
        assert mat.baseColorTexture is not None and mat.baseColorTexture.size[0] >= 64


def test_vertex_override_exports_the_pose():
    mesh = make_object("cabinet", 0)
    posed = posed_vertices(mesh, {"door": 1.2})
    scene = part_mesh_to_scene(mesh, frame="normalized", vertices=posed)
    door = np.asarray(scene.geometry["door"].vertices) @ Y_UP_FROM_Z_UP  # back to Z-up
    idx = np.unique(mesh.faces[mesh.face_part == mesh.part_index("door")])
    assert np.allclose(door, posed[idx]) and not np.allclose(door, mesh.vertices[idx], atol=1e-3)
    with pytest.raises(InputError, match="shape"):
        part_mesh_to_scene(mesh, vertices=posed[:10])
    with pytest.raises(InputError, match="frame"):
        part_mesh_to_scene(mesh, frame="world")


def test_part_with_several_materials_gets_one_atlas(tmp_path):
    box = trimesh.creation.box(extents=(1, 1, 1))
    V = np.concatenate([box.vertices, box.vertices + [2, 0, 0]])
    F = np.concatenate([box.faces, box.faces + 8])
    tex = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    mesh = PartMesh(vertices=V, faces=F, face_part=np.zeros(len(F), np.int64), part_names=["thing"],
                    materials=[Material("a", np.array([1.0, 1, 1, 1]), tex), Material("b", np.array([0.2, 0.4, 0.8, 1]))],
                    face_material=np.repeat([0, 1], len(box.faces)), uv=np.random.default_rng(1).random((16, 2)))
    scene = part_mesh_to_scene(mesh, frame="normalized")
    assert list(scene.geometry) == ["thing"]
    img = np.asarray(scene.geometry["thing"].visual.material.baseColorTexture)
    assert img.shape[1] == 2 * img.shape[0]  # two tiles side by side
    back = load_part_mesh(write_glb(mesh, tmp_path / "t.glb", frame="normalized"))
    assert back.part_names == ["thing"] and len(back.faces) == len(F)


def test_preview_colours_per_texture_region():
    """Region colours (the animated preview): a drawer's atlas (wood front, tan inside, metal handle) splits into
    three regions, each vertex colour is its region's brightest texel, and vertex colour times texture gives
    back the source texture wherever a face samples it."""
    from atop_models.export.glb import region_colour_split, texture_regions

    mesh = make_object("chest_of_drawers", 0)
    part = mesh.part_index("drawer_1")
    faces = mesh.faces[mesh.face_part == part]
    tex = mesh.materials[mesh.face_material[mesh.face_part == part][0]].texture
    face_region, _ = texture_regions(mesh.uv[faces], tex.shape[:2])
    assert len(np.unique(face_region)) == 3
    v, f, uv, out, colours = region_colour_split(mesh.vertices, faces, mesh.uv, tex)
    assert len(v) == len(uv) == len(colours) and f.max() < len(v)
    assert np.allclose(v[f], mesh.vertices[faces]) and np.allclose(uv[f], mesh.uv[faces])
    assert len(np.unique(colours, axis=0)) == 3
    H, W = tex.shape[:2]
    centres = uv[f].mean(1)  # sample each face at its UV centroid: shown = colour * texture
    x = np.clip((centres[:, 0] * W).astype(int), 0, W - 1)
    y = np.clip(((1 - centres[:, 1]) * H).astype(int), 0, H - 1)
    shown = _linear_to_srgb(_srgb_to_linear(out[y, x, :3] / 255) * colours[f[:, 0], :3] / 255) * 255
    assert np.abs(shown - tex[y, x, :3]).max() <= 3.0
    wood = colours[f[:, 0]][np.argmin(colours[f[:, 0], :3].sum(1))]
    assert wood[0] > wood[2] + 10  # the front's colour is brown (red over blue), not a grey
