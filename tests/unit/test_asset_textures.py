"""Textures inside an asset's folder load whatever trimesh's own path rules are (PartNet-Mobility's
``textured_objs/*.mtl`` name ``../images/texture_*.jpg``); references leaving the folder are refused.

The dev-set thresholds were measured on the 16 development objects (96 px, 4 views; see
``test_dev_objects_render_their_textures``): a texture changes its pixels by at least 0.054 on average
against the same part painted in the texture's mean colour (0.054 on storage furniture 35059 .. 0.221 on
table 32052), and the mean colour of textured pixels has channels at least 0.027 apart (oven 101940;
0.055 .. 0.31 on the others). With the textures dropped, as trimesh 5 did with ``../images/``, no pixel is
textured and the dev box rendered as a neutral grey (mean colour channels 0.835 .. 0.839).
"""
import copy
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from atop_models.geometry.cameras import imagedream_rig
from atop_models.mesh.assets import asset_root, locate
from atop_models.mesh.loaders import describe_parts, load_part_mesh
from atop_models.render.raycast import render_views

MIN_TEXTURE_DETAIL = 0.02  # measured minimum 0.054
MIN_TEXTURED_CHROMA = 0.01  # measured minimum 0.027


def chroma(rgb: np.ndarray) -> float:
    """How far the channels of the mean colour are apart (0 for any grey)."""
    mean = rgb.reshape(-1, 3).mean(0)
    return float(mean.max() - mean.min())


def declared_materials(folder):
    """(texture image paths, diffuse colours) the object's own URDF -> OBJ -> MTL files name, read here
    with regular expressions, independently of the loader. Only references inside the folder count."""
    urdf = (folder / "mobility.urdf").read_text()
    urdf = re.sub(r"<!--.*?-->", "", urdf, flags=re.S)
    images, kds = set(), []
    for obj in set(re.findall(r'<visual.*?filename="([^"]+\.obj)"', urdf, flags=re.S)):
        obj = folder / obj
        for mtl in re.findall(r"^mtllib\s+(.+?)\s*$", obj.read_text(errors="replace"), flags=re.M):
            text = (obj.parent / mtl).read_text(errors="replace")
            kds += [tuple(map(float, k.split()[:3])) for k in re.findall(r"^\s*Kd\s+(.+)$", text, flags=re.M)]
            for name in re.findall(r"^\s*map_Kd\s+(.+?)\s*$", text, flags=re.M):
                path = os.path.normpath(obj.parent / name)
                if path.startswith(str(folder) + os.sep) and os.path.isfile(path):
                    images.add(path)
    return images, kds


def render_stats(mesh, res=96):
    """Colours of the textured pixels, and of the same pixels rendered with each texture replaced by its
    mean colour."""
    rig = imagedream_rig(elevation_deg=20.0, azimuth_start_deg=30.0, resolution=res)
    out = render_views(mesh, rig)
    flat = copy.deepcopy(mesh)
    for m in flat.materials:
        if m.texture is not None:
            m.base_color = m.base_color * np.append(m.texture[..., :3].reshape(-1, 3).mean(0) / 255.0, 1.0)
            m.texture = None
    hit = out.face_id >= 0
    textured = [i for i, m in enumerate(mesh.materials) if m.texture is not None]
    sel = np.isin(mesh.face_material[out.face_id[hit]], textured)
    flat_rgb = render_views(flat, rig).rgb[hit][sel] if sel.any() else np.zeros((0, 3))
    return out.rgb[hit][sel], flat_rgb


def test_dev_objects_render_their_textures(dev_data):
    manifest = json.loads((dev_data / "manifest.json").read_text())
    report = []
    for obj in manifest["objects"]:
        folder = dev_data / obj["id"]
        images, kds = declared_materials(folder)
        mesh = load_part_mesh(folder)
        tex_rgb, flat_rgb = render_stats(mesh)
        if images:
            loaded = [m.texture for m in mesh.materials if m.texture is not None]
            for path in images:  # every texture the files name arrives, pixel for pixel
                want = np.asarray(Image.open(path).convert("RGB"))
                assert any(t.shape[:2] == want.shape[:2] and np.array_equal(t[..., :3], want) for t in loaded), \
                    f"{obj['id']}: texture {path} not loaded"
            assert len(tex_rgb) > 0, f"{obj['id']}: no textured pixel in the views"
            detail = float(np.abs(tex_rgb - flat_rgb).mean())
            assert detail > MIN_TEXTURE_DETAIL, (obj["id"], detail)
            assert chroma(tex_rgb) > MIN_TEXTURED_CHROMA, (obj["id"], chroma(tex_rgb))
            report.append((obj["id"], detail, chroma(tex_rgb)))
        for kd in {k for k in kds if max(k) - min(k) > 0.05}:  # coloured materials arrive with their colour
            assert any(np.abs(m.base_color[:3] - kd).max() <= 1 / 255 for m in mesh.materials), (obj["id"], kd)
    print("\n".join(f"{o}: texture detail {d:.4f}, chroma {c:.4f}" for o, d, c in report))
    assert len(report) == 10, report  # the dev set's textured objects


def write_partnet_object(root, with_outside=True):
    """A PartNet-Mobility folder as the dataset lays it out: mobility.urdf, textured_objs/*.obj + .mtl
    naming ../images/texture_0.png, and images/. Part 'door' is a red/green checker. With ``with_outside``,
    part 'lid' names a texture outside the folder (which exists, beside it) and part 'knob' an absolute path
    from another machine whose tail exists inside the folder."""
    obj_dir = root / "obj_1"
    (obj_dir / "textured_objs").mkdir(parents=True)
    (obj_dir / "images").mkdir()
    cell = (np.arange(64)[:, None] // 32 + np.arange(64)[None] // 32) % 2  # 2 x 2 squares
    checker = np.where(cell[..., None] == 0, np.uint8([230, 20, 20]), np.uint8([20, 200, 20])).astype(np.uint8)
    Image.fromarray(checker).save(obj_dir / "images" / "texture_0.png")
    Image.fromarray(np.full((4, 4, 3), (20, 20, 230), np.uint8)).save(root / "outside.png")
    corners = [(-0.5, 0, -0.5), (0.5, 0, -0.5), (0.5, 0, 0.5), (-0.5, 0, 0.5)]
    textures = {"door": "../images/texture_0.png", "lid": "../../outside.png",
                "knob": "/home/someone/dataset/obj_1/images/texture_0.png"}
    parts = ["door", "lid", "knob"] if with_outside else ["door"]
    links = []
    for i, part in enumerate(parts):
        (obj_dir / "textured_objs" / f"{part}.mtl").write_text(
            f"newmtl m_{part}\nKd 1 1 1\nmap_Kd {textures[part]}\n")
        lines = ([f"mtllib {part}.mtl", f"usemtl m_{part}"] + [f"v {x + 1.2 * i} {y} {z}" for x, y, z in corners]
                 + ["vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1", "f 1/1 2/2 3/3", "f 1/1 3/3 4/4"])
        (obj_dir / "textured_objs" / f"{part}.obj").write_text("\n".join(lines) + "\n")
        links.append(f'<link name="{part}"><visual><origin xyz="0 0 0"/><geometry>'
                     f'<mesh filename="textured_objs/{part}.obj"/></geometry></visual></link>')
    joints = [f'<joint name="j_{p}" type="fixed"><parent link="{parts[0]}"/><child link="{p}"/></joint>'
              for p in parts[1:]]
    (obj_dir / "mobility.urdf").write_text(f'<robot name="obj_1">{"".join(links + joints)}</robot>')
    return obj_dir


def test_written_partnet_folder_loads_its_textures(tmp_path):
    folder = write_partnet_object(tmp_path)
    mesh = load_part_mesh(folder)
    by_part = {p: mesh.materials[mesh.face_material[mesh.face_part == i][0]] for i, p in enumerate(mesh.part_names)}
    want = np.asarray(Image.open(folder / "images" / "texture_0.png"))
    np.testing.assert_array_equal(by_part["door"].texture[..., :3], want)  # ../images/ from textured_objs/
    np.testing.assert_array_equal(by_part["knob"].texture[..., :3], want)  # tail of an absolute path, inside
    assert by_part["lid"].texture is None  # ../../outside.png exists, but outside the object: refused
    notes = " | ".join(mesh.notes)
    assert "'../../outside.png' lies outside the asset folder" in notes and "refused" in notes, notes
    assert "used 'images/texture_0.png' inside the asset folder" in notes, notes
    assert "note: 'textured_objs/lid.obj'" in describe_parts(mesh)
    # the door's render shows the checker's red and green, not grey
    rig = imagedream_rig(elevation_deg=0.0, resolution=64, fov_deg=40.0)
    out = render_views(mesh, rig, faces=np.nonzero(mesh.face_part == mesh.part_names.index("door"))[0])
    px = out.rgb[out.face_id >= 0]
    assert len(px) > 100
    assert ((px[:, 0] > 0.5) & (px[:, 1] < 0.3)).mean() > 0.2  # red squares
    assert ((px[:, 1] > 0.4) & (px[:, 0] < 0.3)).mean() > 0.2  # green squares
    # an OBJ loaded on its own from textured_objs/ belongs to the object folder (mobility.urdf above it)
    door = load_part_mesh(folder / "textured_objs" / "door.obj")
    assert door.materials[0].texture is not None and not door.notes


def test_asset_root_and_locate(tmp_path):
    obj = write_partnet_object(tmp_path, with_outside=False)
    root = asset_root(obj / "textured_objs" / "door.obj")
    assert root == os.path.realpath(obj)
    assert asset_root(obj / "mobility.urdf") == root
    ros = tmp_path / "robot"
    (ros / "urdf").mkdir(parents=True)
    assert asset_root(ros / "urdf" / "r.urdf") == os.path.realpath(ros)  # urdf/ beside meshes/
    plain = tmp_path / "plain"
    plain.mkdir()
    assert asset_root(plain / "x.glb") == os.path.realpath(plain)
    folder = str(obj / "textured_objs")
    assert locate("../images/texture_0.png", folder, root) == (str(obj / "images" / "texture_0.png"), "direct")
    assert locate("gone.png", folder, root) == (None, "missing")
    assert locate("../../outside.png", folder, root) == (None, "outside")
    assert locate(str(tmp_path / "outside.png"), folder, root) == (None, "outside")
    assert locate("/etc/passwd", folder, root) == (None, "outside")
    assert locate("C:\\Users\\me\\obj\\images\\texture_0.png", folder, root)[1] == "relocated"
    assert locate("../images/texture%5F0.png", folder, root)[1] == "direct"  # URI-escaped names (glTF)
    link = obj / "images" / "link.png"
    link.symlink_to(tmp_path / "outside.png")
    assert locate("../images/link.png", folder, root) == (None, "outside")  # a symlink leaving the folder


@pytest.mark.parametrize("bad", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_unreadable_texture_is_a_note_not_a_crash(tmp_path, bad):
    folder = write_partnet_object(tmp_path, with_outside=False)
    (folder / "images" / "texture_0.png").write_bytes(bad)
    mesh = load_part_mesh(folder)
    assert mesh.materials[0].texture is None
    assert any("texture_0.png" in n and "not a readable image" in n for n in mesh.notes), mesh.notes
