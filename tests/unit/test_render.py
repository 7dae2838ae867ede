"""Ray-cast renderer and part masks: geometry against projection, occlusion, texture placement."""
import numpy as np
import pytest
import trimesh
from PIL import Image

from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig, world_to_pixels
from atop_models.mesh.loaders import load_part_mesh
from atop_models.render.masks import part_masks, part_silhouettes
from atop_models.render.raycast import render_views, sample_texture
from atop_models.types import Material, PartMesh


def boxes(specs):
    """PartMesh of axis-aligned boxes: specs = [(name, centre, extents)]."""
    V, F, P = [], [], []
    for i, (name, c, e) in enumerate(specs):
        b = trimesh.creation.box(extents=e)
        F.append(b.faces + sum(len(v) for v in V))
        V.append(b.vertices + np.asarray(c))
        P.append(np.full(len(b.faces), i))
    return PartMesh(vertices=np.concatenate(V), faces=np.concatenate(F), face_part=np.concatenate(P),
                    part_names=[s[0] for s in specs])


def test_cube_silhouette_matches_projection():
    mesh = boxes([("cube", (0, 0, 0), (0.6, 0.6, 0.6))])
    rig = imagedream_rig(elevation_deg=20.0, azimuth_start_deg=30.0, resolution=96)
    out = render_views(mesh, rig)
    corners = np.array([[x, y, z] for x in (-.3, .3) for y in (-.3, .3) for z in (-.3, .3)])
    px, depth = world_to_pixels(rig, corners)
    yy, xx = np.mgrid[:96, :96] + 0.5
    for v in range(4):
        from scipy.spatial import Delaunay

        inside = Delaunay(px[v]).find_simplex(np.stack([xx.ravel(), yy.ravel()], 1)) >= 0
        inside = inside.reshape(96, 96)
        disagree = (inside != (out.alpha[v] > 0)).mean()
        assert disagree < 0.01, (v, disagree)  # only edge pixels may differ
        assert inside.sum() > 400
        hit = out.face_id[v] >= 0
        assert np.all(out.depth[v][hit] >= depth[v].min() - 1e-6) and np.all(out.depth[v][hit] <= depth[v].max() + 1e-6)
        assert np.all(np.isinf(out.depth[v][~hit])) and np.all(out.rgb[v][~hit] == 1.0)


def test_masks_occlusion_and_silhouette():
    # "front" box sits between the azimuth-0 camera (at -Y) and the "back" box
    mesh = boxes([("back", (0, 0.3, 0), (0.5, 0.2, 0.5)), ("front", (0.15, -0.3, 0), (0.3, 0.1, 0.3))])
    rig = imagedream_rig(elevation_deg=0.0, resolution=64)
    out = render_views(mesh, rig)
    vis = part_masks(mesh, out, ["back"])
    sil = part_silhouettes(mesh, rig, ["back"])
    front = part_masks(mesh, out, "front")
    assert np.all(vis <= sil)  # visible pixels are a subset of the silhouette
    occluded = (sil[0] > 0) & (vis[0] == 0)
    assert occluded.sum() > 50 and np.all(front[0][occluded] == 1)  # hidden exactly where "front" covers
    assert np.array_equal(vis[0] + front[0], out.alpha[0])
    # silhouette = projection of the back box's corners in view 0
    c = np.array([[x, y, z] for x in (-.25, .25) for y in (.2, .4) for z in (-.25, .25)])
    px, _ = world_to_pixels(rig, c)
    cols = np.nonzero(sil[0].any(0))[0]
    assert abs(cols.min() - px[0, :, 0].min()) <= 1.5 and abs(cols.max() + 1 - px[0, :, 0].max()) <= 1.5


def test_invisible_part_error():
    mesh = boxes([("big", (0, 0, 0), (0.8, 0.8, 0.8)), ("inner", (0, 0, 0), (0.1, 0.1, 0.1))])
    rig = imagedream_rig(resolution=32)
    with pytest.raises(InputError, match="'inner' is visible in none of the 4 views"):
        part_masks(mesh, render_views(mesh, rig), ["inner"])
    assert part_silhouettes(mesh, rig, ["inner"]).sum() > 0


def quadrant_texture():
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:32, :32] = (255, 0, 0)  # top-left (image rows from the top) red
    tex[:32, 32:] = (0, 255, 0)  # top-right green
    tex[32:, :32] = (0, 0, 255)  # bottom-left blue
    tex[32:, 32:] = (255, 255, 255)
    return tex


def check_quadrants(rgb):
    """The quad fills the image centre: its top-left must be red, top-right green, bottom-left blue."""
    H = rgb.shape[0]
    q = lambda y, x: rgb[int(y * H), int(x * H)]  # noqa: E731
    tl, tr, bl, br = q(0.4, 0.4), q(0.4, 0.6), q(0.6, 0.4), q(0.6, 0.6)
    assert tl[0] > 0.5 and tl[1] < 0.2 and tl[2] < 0.2, tl
    assert tr[1] > 0.5 and tr[0] < 0.2 and tr[2] < 0.2, tr
    assert bl[2] > 0.5 and bl[0] < 0.2 and bl[1] < 0.2, bl
    assert br.min() > 0.5, br


def test_texture_placement_procedural():
    v = np.array([[-.5, 0, -.5], [.5, 0, -.5], [.5, 0, .5], [-.5, 0, .5]])
    mesh = PartMesh(vertices=v, faces=[[0, 1, 2], [0, 2, 3]], face_part=[0, 0], part_names=["quad"],
                    materials=[Material("t", np.ones(4), quadrant_texture())],
                    uv=np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]))
    out = render_views(mesh, imagedream_rig(elevation_deg=0.0, resolution=64, fov_deg=30.0))
    check_quadrants(out.rgb[0])


@pytest.mark.parametrize("fmt", ["glb", "obj"])
def test_texture_placement_through_files(tmp_path, fmt):
    tex = Image.fromarray(quadrant_texture())
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]])
    if fmt == "glb":  # glTF is Y-up and its front is +Z: the quad lies in the XY plane
        v = np.array([[-.5, -.5, 0], [.5, -.5, 0], [.5, .5, 0], [-.5, .5, 0]])
        mat = trimesh.visual.material.PBRMaterial(baseColorTexture=tex)
    else:  # Z-up, front -Y: the quad lies in the XZ plane
        v = np.array([[-.5, 0, -.5], [.5, 0, -.5], [.5, 0, .5], [-.5, 0, .5]])
        mat = trimesh.visual.material.SimpleMaterial(image=tex)
    m = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False,
                        visual=trimesh.visual.TextureVisuals(uv=uv, material=mat))
    path = tmp_path / f"quad.{fmt}"
    m.export(path)
    mesh = load_part_mesh(path)
    assert mesh.materials[mesh.face_material[0]].texture is not None
    out = render_views(mesh, imagedream_rig(elevation_deg=0.0, resolution=64, fov_deg=30.0))
    check_quadrants(out.rgb[0])


def test_sample_texture_wraps_and_interpolates():
    tex = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)  # 1x2: black | white
    c = sample_texture(tex, np.array([[0.25, 0.5], [0.75, 0.5], [1.25, 0.5], [0.5, 0.5]]))
    np.testing.assert_allclose(c[:3, 0], [0.0, 1.0, 0.0], atol=1e-6)
    assert 0.1 < c[3, 0] < 0.9  # half-way between the texel centres: a blend
    assert np.all(c[:, 3] == 1.0)
