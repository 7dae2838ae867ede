"""MultiViewVideoFromMesh feeding GaussianSDSLift ("video" guidance), executed in-process."""
from __future__ import annotations

import numpy as np
import pytest

from tests.nodes.conftest import run_node


@pytest.fixture(scope="module")
def microwave(node_classes, dev_data):
    mesh, _ = run_node(node_classes["LoadPartMesh"], mesh_path=str(dev_data / "pm_7236_microwave"),
                       up_axis="auto").result
    _, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=mesh, num_views=4, elevation=15.0,
                          azimuth_start=0.0, fov=40.0, distance=2.0, resolution=64).result
    return mesh, cameras


def test_ground_truth_video(node_classes, microwave):
    mesh, cameras = microwave
    video, frames, masks = run_node(node_classes["MultiViewVideoFromMesh"], mesh=mesh, cameras=cameras,
                                    part_name="link_0", num_frames=3, fraction=0.5).result
    assert video.frames.shape == (4, 3, 64, 64, 3)
    assert tuple(frames.shape) == (12, 64, 64, 3) and tuple(masks.shape) == (4, 64, 64)
    assert np.abs(video.frames[0, 2] - video.frames[0, 0]).max() > 0.1  # the door moved in the front view
    np.testing.assert_allclose(frames[0].numpy(), video.frames[0, 0])


def test_part_without_joint_is_a_clear_error(node_classes, microwave):
    mesh, cameras = microwave
    with pytest.raises(ValueError, match=r"^ATOP Multi-View Video From Mesh: part 'link_1' has no joint"):
        run_node(node_classes["MultiViewVideoFromMesh"], mesh=mesh, cameras=cameras, part_name="link_1",
                 num_frames=3, fraction=1.0)


def test_lift_fits_the_video(node_classes, microwave):
    mesh, cameras = microwave
    video = run_node(node_classes["MultiViewVideoFromMesh"], mesh=mesh, cameras=cameras, part_name="link_0",
                     num_frames=3, fraction=0.5).result[0]
    out = run_node(node_classes["GaussianSDSLift"], mesh=mesh, part_name="link_0", cameras=cameras,
                   guidance="video", video=video, iterations=30, learning_rate=0.01, num_gaussians=400,
                   motion="rigid", guidance_scale=5.0, t_min=0.02, t_max=0.5, seed=0, backend="torch",
                   resolution=32).result
    sequence, previews, loss_map = out[0], out[1], out[2]
    assert sequence.points.shape[0] == 3 and sequence.moving.any() and (~sequence.moving).any()
    np.testing.assert_array_equal(sequence.points[0][~sequence.moving[0]], sequence.points[2][~sequence.moving[2]])
    moved = np.linalg.norm(sequence.points[2] - sequence.points[0], axis=-1)[sequence.moving[2]]
    assert moved.mean() > 0.02, "the moving part did not move"
    assert len(loss_map["loss"]) > 0 and previews.shape[-1] == 3
    assert "torch" in out[3]


def test_joint_lift_keeps_to_the_given_joint_type(node_classes, microwave):
    """The user knows the type (the views may not show it): joint motion then searches that type only."""
    mesh, cameras = microwave
    video = run_node(node_classes["MultiViewVideoFromMesh"], mesh=mesh, cameras=cameras, part_name="link_0",
                     num_frames=3, fraction=0.5).result[0]
    kw = dict(mesh=mesh, part_name="link_0", cameras=cameras, guidance="video", video=video, iterations=40,
              learning_rate=0.01, num_gaussians=400, motion="joint", guidance_scale=5.0, t_min=0.02, t_max=0.5,
              seed=0, backend="torch", resolution=32)
    info = run_node(node_classes["GaussianSDSLift"], joint_type="prismatic", **kw).result[3]
    assert "joint motion: prismatic" in info
    with pytest.raises(ValueError, match=r"^ATOP Gaussian SDS Lift: unknown joint type 'screw'"):
        run_node(node_classes["GaussianSDSLift"], joint_type="screw", **kw)


def test_sds_without_model_is_a_clear_error(node_classes, microwave):
    mesh, cameras = microwave
    with pytest.raises(ValueError, match=r"^ATOP Gaussian SDS Lift: .*model"):
        run_node(node_classes["GaussianSDSLift"], mesh=mesh, part_name="link_0", cameras=cameras, guidance="sds",
                 iterations=5, learning_rate=0.01, num_gaussians=200, motion="rigid", guidance_scale=5.0, t_min=0.02,
                 t_max=0.5, seed=0, backend="torch")


@pytest.fixture(scope="module")
def tiny_model(node_classes, tmp_path_factory):
    import folder_paths

    from atop_models.diffusion.tiny import make_tiny

    root = tmp_path_factory.mktemp("lift_models")
    make_tiny(root / "tiny-lift", "diffusers")
    folder_paths.add_model_folder_path("atop_imagedream", str(root))
    handle, _ = run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-lift", dtype="fp32").result
    return handle


def test_sds_lift_runs_with_the_model(node_classes, microwave, tiny_model):
    mesh, cameras = microwave
    video = run_node(node_classes["MultiViewVideoFromMesh"], mesh=mesh, cameras=cameras, part_name="link_0",
                     num_frames=3, fraction=0.5, prompt="the door of the microwave is being opened").result[0]
    out = run_node(node_classes["GaussianSDSLift"], mesh=mesh, part_name="link_0", cameras=cameras, guidance="sds",
                   video=video, model=tiny_model, iterations=4, learning_rate=0.01, num_gaussians=200, motion="rigid",
                   guidance_scale=5.0, t_min=0.02, t_max=0.5, seed=0, backend="torch").result
    sequence, loss_map = out[0], out[2]
    assert sequence.points.shape[0] == 3 and np.isfinite(sequence.points).all()
    assert len(loss_map["loss"]) >= 1
