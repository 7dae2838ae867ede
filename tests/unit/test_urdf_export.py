import os

import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.export.urdf import write_urdf
from atop_models.geometry.transforms import joint_in_frame
from atop_models.geometry.transforms import apply_transform, joint_matrix
from atop_models.mesh.procedural import make_object


def _robot(path):
    import yourdfpy

    return yourdfpy.URDF.load(str(path), build_scene_graph=True, load_meshes=True)


def _check_motion(mesh, joint, urdf_path, q_norm):
    """Setting the URDF joint to q moves the link's vertices as the Joint predicts (source frame)."""
    import trimesh

    robot = _robot(urdf_path)
    src_joint = joint_in_frame(joint, np.linalg.inv(mesh.normalized_from_source))
    q = q_norm if joint.type == "revolute" else q_norm * (np.linalg.norm(src_joint.limits) / max(np.linalg.norm(joint.limits), 1e-12))
    link = f"link_{joint.child}"
    folder = os.path.dirname(urdf_path)
    verts = []
    for v in robot.link_map[link].visuals:
        m = trimesh.load(os.path.join(folder, v.geometry.mesh.filename), force="mesh", process=False)
        verts.append(apply_transform(v.origin if v.origin is not None else np.eye(4), np.asarray(m.vertices)))
    local = np.concatenate(verts)
    robot.update_cfg({robot.actuated_joint_names[0]: 0.0})
    rest = apply_transform(robot.get_transform(link), local)
    robot.update_cfg({robot.actuated_joint_names[0]: q})
    posed = apply_transform(robot.get_transform(link), local)
    expected = apply_transform(joint_matrix(src_joint, q), rest)
    size = np.linalg.norm(rest.max(0) - rest.min(0))
    return np.abs(posed - expected).max() / size, rest


@pytest.mark.parametrize("category,fmt", [("cabinet", "obj"), ("chest_of_drawers", "glb")])
def test_urdf_moves_parts_like_the_joint(tmp_path, category, fmt):
    mesh = make_object(category, 3)
    joint = mesh.joints[0]
    path = write_urdf(mesh, [joint], tmp_path / "out", robot_name="thing", mesh_format=fmt)
    assert path.exists() and path.suffix == ".urdf"
    text = path.read_text()
    assert "meshes/" in text and str(tmp_path) not in text  # relative mesh paths
    if fmt == "obj":
        assert list((tmp_path / "out" / "meshes").glob("*.mtl")) and list((tmp_path / "out" / "meshes").glob("*.png"))
    q = 0.7 * joint.limits[1]
    dev, rest = _check_motion(mesh, joint, path, q)
    assert dev <= 1e-5
    # The rest pose reproduces the source-frame mesh (metres for procedural objects).
    S = np.linalg.inv(mesh.normalized_from_source)
    src = apply_transform(S, mesh.vertices[np.unique(mesh.faces[mesh.part_face_mask(mesh.parts_moved_by(joint))])])
    from scipy.spatial import cKDTree
    d, _ = cKDTree(src).query(rest)
    assert d.max() < 1e-5 * np.linalg.norm(src.max(0) - src.min(0))


def test_several_joints_and_pybullet(tmp_path):
    pybullet = pytest.importorskip("pybullet")
    mesh = make_object("fridge", 1)
    path = write_urdf(mesh, mesh.joints, tmp_path / "fridge", frame="normalized")
    robot = _robot(path)
    assert len(robot.actuated_joint_names) == len(mesh.joints)
    cid = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(path), physicsClientId=cid, useFixedBase=True)
        names = {pybullet.getJointInfo(body, i, physicsClientId=cid)[12].decode(): i
                 for i in range(pybullet.getNumJoints(body, physicsClientId=cid))}
        for j in mesh.joints:
            idx = names[f"link_{j.child}"]
            q = 0.5 * j.limits[1]
            pybullet.resetJointState(body, idx, q, physicsClientId=cid)
            state = pybullet.getLinkState(body, idx, computeForwardKinematics=True, physicsClientId=cid)
            frame_pos = np.array(state[4])  # URDF link frame, world
            expected = apply_transform(joint_matrix(j, q), j.origin[None])[0]  # the pivot stays on the axis
            np.testing.assert_allclose(frame_pos, expected, atol=1e-6)
            R = np.array(pybullet.getMatrixFromQuaternion(state[5])).reshape(3, 3)
            np.testing.assert_allclose(R, joint_matrix(j, q)[:3, :3], atol=1e-6)
    finally:
        pybullet.disconnect(cid)


def test_partnet_layout_and_replace(tmp_path):
    mesh = make_object("box", 0)
    out = tmp_path / "box"
    write_urdf(mesh, mesh.joints, out)
    path = write_urdf(mesh, mesh.joints, out, layout="partnet")
    assert path.name == "mobility.urdf" and (out / "textured_objs").is_dir() and not (out / "meshes").exists()
    dev, _ = _check_motion(mesh, mesh.joints[0], path, 0.5)
    assert dev <= 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ["box"]  # no temporary folders left


def test_bad_output_leaves_nothing(tmp_path):
    mesh = make_object("box", 0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write the URDF folder"):
        write_urdf(mesh, mesh.joints, blocker / "sub" / "out")
    with pytest.raises(InputError, match="not found"):
        write_urdf(mesh, [mesh.joints[0].replace(child="nope")], tmp_path / "x")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        with pytest.raises(InputError, match="writable"):
            write_urdf(mesh, mesh.joints, ro / "out")
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)
