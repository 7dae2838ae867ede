"""MotionModuleFinetune in process (under inference mode, as ComfyUI runs nodes): reads a clip dataset from
the output folder, trains a copy of the model, saves a loadable motion module, returns a LOSS_MAP, and leaves
the input model untouched; bad dataset names give a clear message."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tests.nodes.conftest import run_node


@pytest.fixture(scope="module")
def setup(tmp_path_factory, comfy_dirs, pack, node_classes):
    import folder_paths

    from atop_models.diffusion.tiny import make_tiny
    from atop_models.geometry.cameras import imagedream_rig
    from atop_models.training.clips import ReferenceClip, write_clip

    root = tmp_path_factory.mktemp("ft_models")
    make_tiny(root / "imagedream" / "tiny-ft", "diffusers")
    (root / "motion").mkdir()
    folder_paths.add_model_folder_path("atop_imagedream", str(root / "imagedream"))
    folder_paths.add_model_folder_path("atop_motion_modules", str(root / "motion"), is_default=True)
    frames = np.zeros((4, 2, 64, 64, 3), np.float32)
    frames[:, 0, :, 8:24] = 1
    frames[:, 1, :, 16:32] = 1
    masks = np.zeros((4, 64, 64), np.float32)
    masks[:, :, 8:24] = 1
    clip = ReferenceClip(frames=frames, masks=masks, prompt="a bar slides right", rig=imagedream_rig(4, resolution=64),
                         joint=None, part="bar", joint_values=np.array([0.0, 1.0]), meta={})
    write_clip(clip, os.path.join(folder_paths.get_output_directory(), "atop_clips", "ft_tests", "bar_000"))
    out = run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-ft", dtype="auto")
    return root, out.args[0] if hasattr(out, "args") else out.result[0]


def test_finetune_node_trains_a_copy_and_saves_a_loadable_module(node_classes, setup):
    root, handle = setup
    before = {k: v.clone() for k, v in handle.model.unet.motion_state_dict().items()}
    with torch.inference_mode():
        out = run_node(node_classes["MotionModuleFinetune"], model=handle, dataset="ft_tests", steps=3,
                       learning_rate=1e-3, batch_size=1, grad_accumulation_steps=1, seed=0,
                       gradient_checkpointing=True, training_dtype="auto", checkpoint_every=2, save_name="bar_motion",
                       resume=False)
    new, path, loss_map = out.args if hasattr(out, "args") else out.result
    assert path == str(root / "motion" / "bar_motion.safetensors") and os.path.isfile(path)
    assert len(loss_map["loss"]) == 3 and all(np.isfinite(loss_map["loss"]))
    assert new.model.unet is not handle.model.unet and new.model.vae is handle.model.vae
    after_in = handle.model.unet.motion_state_dict()
    assert all(torch.equal(before[k], after_in[k]) for k in before)  # the input model is unchanged
    trained = new.model.unet.motion_state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    assert "fine-tuned, 3 steps" in new.info
    schema = node_classes["LoadInflatedImageDream"].GET_SCHEMA()
    motion_opts = next(i.options for i in schema.inputs if i.id == "motion_module")
    assert "bar_motion.safetensors" in motion_opts
    loaded = run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-ft", motion_module="bar_motion.safetensors")
    lh = loaded.args[0] if hasattr(loaded, "args") else loaded.result[0]
    got = lh.model.unet.motion_state_dict()
    assert all(torch.equal(got[k], trained[k]) for k in trained)


def test_missing_dataset_is_a_clear_error(node_classes, setup):
    _, handle = setup
    with pytest.raises(Exception, match="ATOP Motion Module Finetune: dataset folder 'nope' not found"):
        run_node(node_classes["MotionModuleFinetune"], model=handle, dataset="nope", steps=1)
