import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.export.animated_glb import motion_values, read_glb, write_animated_glb
from atop_models.export.glb import Y_UP_FROM_Z_UP
from atop_models.geometry.transforms import joint_in_frame
from atop_models.geometry.transforms import rotation_about_axis
from atop_models.mesh.procedural import make_object


def _accessor(doc, blob, i):
    acc = doc["accessors"][i]
    view = doc["bufferViews"][acc["bufferView"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    arr = np.frombuffer(blob, np.float32, acc["count"] * width, view["byteOffset"] + acc.get("byteOffset", 0))
    return arr.reshape(acc["count"], width) if width > 1 else arr


def _world(doc, node_index, times_index=None, key=None):
    """Node's world matrix (animated nodes at key ``key``)."""
    parents = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    M, i = np.eye(4), node_index
    while i is not None:
        n = doc["nodes"][i]
        L = np.eye(4)
        if key is not None and i in key:
            kind, val = key[i]
            n = dict(n, **{kind: val})
        if "rotation" in n and np.linalg.norm(n["rotation"][:3]) > 1e-12:
            x, y, z, w = n["rotation"]
            L[:3, :3] = rotation_about_axis(np.array([x, y, z]) / max(np.linalg.norm([x, y, z]), 1e-12),
                                            2 * np.arctan2(np.linalg.norm([x, y, z]), w))
        if "translation" in n:
            L[:3, 3] = n["translation"]
        M = L @ M
        i = parents.get(i)
    return M


@pytest.mark.parametrize("category", ["cabinet", "chest_of_drawers"])
def test_animation_reloads_and_turns_about_the_axis(tmp_path, category):
    import trimesh

    mesh = make_object(category, 2)
    joint = mesh.joints[0]
    path = write_animated_glb(mesh, mesh.joints, tmp_path / "a.glb", frames=20, fps=10)
    doc, blob = read_glb(path.read_bytes())
    anim = doc["animations"][0]
    assert len(anim["channels"]) == len(mesh.joints)
    ch = anim["channels"][0]
    sampler = anim["samplers"][ch["sampler"]]
    t = _accessor(doc, blob, sampler["input"])
    np.testing.assert_allclose(t, np.arange(20) / 10, atol=1e-6)
    assert doc["accessors"][sampler["input"]]["max"] == [pytest.approx(1.9)]
    out = _accessor(doc, blob, sampler["output"])
    assert ch["target"]["path"] == ("rotation" if joint.type == "revolute" else "translation")
    assert out.shape == (20, 4 if joint.type == "revolute" else 3)
    # Peak of the animation = the joint's upper limit; the part's node chain moves points as the joint does.
    k = int(np.argmax(np.linalg.norm(out, axis=1) if joint.type == "prismatic" else 1 - np.abs(out[:, 3])))
    src = joint_in_frame(joint, np.linalg.inv(mesh.normalized_from_source))
    jn = ch["target"]["node"]
    part_node = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == joint.child)
    M = _world(doc, part_node, key={jn: (ch["target"]["path"], out[k].tolist())})
    p = Y_UP_FROM_Z_UP @ (src.origin + 0.3 * np.cross(src.axis, [0.3, 0.5, 0.7]))
    from atop_models.geometry.transforms import joint_transform
    q = motion_values(src, 20)[k]
    expected = Y_UP_FROM_Z_UP @ (joint_transform(src.type, src.axis, src.origin, q)[:3, :3] @ (Y_UP_FROM_Z_UP.T @ p)
                                 + joint_transform(src.type, src.axis, src.origin, q)[:3, 3])
    np.testing.assert_allclose(M[:3, :3] @ p + M[:3, 3], expected, atol=1e-5)
    assert abs(q - src.limits[1]) < 0.05 * abs(src.limits[1])
    # trimesh still loads the geometry, one node per part, and the motion envelope's two points.
    scene = trimesh.load(path)
    assert set(scene.geometry) == set(mesh.part_names) | {"motion_envelope"}


@pytest.mark.parametrize("category", ["cabinet", "laptop", "chest_of_drawers"])
def test_motion_envelope_holds_every_key_of_the_animation(tmp_path, category):
    """The invisible envelope spans the parts at rest and at every key, so a viewer framing the file's
    bounding box keeps the whole motion in view; it is wider than the rest pose when the part swings out."""
    import trimesh

    mesh = make_object(category, 1)
    path = write_animated_glb(mesh, mesh.joints, tmp_path / "a.glb", frames=12, fps=6, frame="normalized")
    doc, blob = read_glb(path.read_bytes())
    node = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == "motion_envelope")
    prim = doc["meshes"][doc["nodes"][node]["mesh"]]["primitives"][0]
    assert prim["mode"] == 0 and doc["materials"][prim["material"]]["alphaMode"] == "BLEND"
    assert doc["materials"][prim["material"]]["pbrMetallicRoughness"]["baseColorFactor"][3] == 0.0
    lo, hi = _accessor(doc, blob, prim["attributes"]["POSITION"])
    anim = doc["animations"][0]
    geometry = trimesh.load(path, force="scene").geometry
    for k in range(12):
        pose = {}
        for ch in anim["channels"]:
            sampler = anim["samplers"][ch["sampler"]]
            pose[ch["target"]["node"]] = (ch["target"]["path"], _accessor(doc, blob, sampler["output"])[k].tolist())
        for name in mesh.part_names:
            i = next(j for j, n in enumerate(doc["nodes"]) if n.get("name") == name)
            M = _world(doc, i, key=pose)
            pts = np.asarray(geometry[name].vertices) @ M[:3, :3].T + M[:3, 3]
            assert np.all(pts >= lo - 1e-5) and np.all(pts <= hi + 1e-5), (name, k)
    rest_lo = np.min([geometry[n].bounds[0] for n in mesh.part_names], 0)
    rest_hi = np.max([geometry[n].bounds[1] for n in mesh.part_names], 0)
    assert np.all(lo <= rest_lo + 1e-5) and np.all(hi >= rest_hi - 1e-5)
    assert np.prod(hi - lo) > 1.02 * np.prod(rest_hi - rest_lo)


def test_bad_settings(tmp_path):
    mesh = make_object("box", 0)
    with pytest.raises(InputError):
        write_animated_glb(mesh, mesh.joints, tmp_path / "a.glb", frames=1)
    with pytest.raises(InputError, match="cannot write"):
        (tmp_path / "f").write_text("x")
        write_animated_glb(mesh, mesh.joints, tmp_path / "f" / "a.glb")
