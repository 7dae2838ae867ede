"""MultiViewMotionSample in-process with a tiny random model: shapes, the rest-state first frame, seeding,
and clear errors for mismatched inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.nodes.conftest import run_node


@pytest.fixture(scope="module")
def setup(node_classes, tmp_path_factory):
    import folder_paths

    from atop_models.diffusion.tiny import make_tiny

    root = tmp_path_factory.mktemp("sample_models")
    make_tiny(root / "tiny-sample", "diffusers")
    folder_paths.add_model_folder_path("atop_imagedream", str(root))
    handle, _ = run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-sample", dtype="fp32").result
    mesh, _ = run_node(node_classes["ProceduralObject"], category="cabinet", seed=0).result
    views, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=mesh, num_views=4, elevation=15.0,
                              azimuth_start=0.0, fov=40.0, distance=2.0, resolution=64).result
    masks = run_node(node_classes["PartMaskRender"], mesh=mesh, cameras=cameras, part_name="door",
                     mode="visible").result[0]
    return handle, views, cameras, masks


def sample(node_classes, setup, **kw):
    handle, views, cameras, masks = setup
    args = dict(model=handle, views=views, cameras=cameras, part_masks=masks, prompt="the door is being opened",
                negative_prompt="", num_frames=3, steps=2, guidance_scale=5.0, eta=0.0, seed=1)
    args.update(kw)
    return run_node(node_classes["MultiViewMotionSample"], **args).result


def test_sample_shapes_and_seed(node_classes, setup):
    video, grid = sample(node_classes, setup)
    assert video.frames.shape == (4, 3, 64, 64, 3) and video.latents.shape == (4, 3, 4, 8, 8)
    assert tuple(grid.shape) == (1, 4 * 64, 3 * 64, 3)
    again, _ = sample(node_classes, setup)
    np.testing.assert_array_equal(video.latents, again.latents)
    other, _ = sample(node_classes, setup, seed=2)
    assert not np.allclose(video.latents[:, 1:], other.latents[:, 1:])
    assert video.prompt == "the door is being opened" and video.part_masks.shape == (4, 64, 64)


def test_a_mask_painted_over_the_views_side_by_side_works_as_the_rendered_ones(node_classes, setup):
    handle, views, cameras, masks = setup
    sheet = torch.cat(list(masks), dim=1)[None]  # [1, 64, 4 * 64]: Load Image's mask of a painted sheet
    video, _ = sample(node_classes, setup, part_masks=sheet)
    rendered, _ = sample(node_classes, setup)
    np.testing.assert_array_equal(video.part_masks, rendered.part_masks)
    np.testing.assert_array_equal(video.latents, rendered.latents)


def test_mismatched_views_and_masks(node_classes, setup):
    handle, views, cameras, masks = setup
    with pytest.raises(ValueError, match=r"^ATOP Multi-View Motion Sample: the masks have shape \[2, 64, 64\] but the 4 "
                                         r"cameras see 64x64 px: expected \[4, 64, 64\]"):
        sample(node_classes, setup, part_masks=masks[:2])
    with pytest.raises(ValueError, match=r"^ATOP Multi-View Motion Sample: 3 views and 4 cameras"):
        sample(node_classes, setup, views=views[:3])
    with pytest.raises(ValueError, match=r"^ATOP Multi-View Motion Sample: the prompt is empty"):
        sample(node_classes, setup, prompt="  ")
