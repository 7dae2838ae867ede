"""Motion-module fine-tuning mechanics on the tiny model: what trains, checkpoints, resuming, divergence."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from atop_models.errors import DivergenceError, InputError
from atop_models.geometry.cameras import imagedream_rig
from atop_models.training.finetune import FinetuneConfig, TrainingClip, finetune_motion

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from atop_models.diffusion.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("ft") / "m", "diffusers")["model"]


def load(model_dir):
    from atop_models.diffusion.checkpoints import load_model

    return load_model(model_dir)


def bar_clip(frames=2, shift=8) -> TrainingClip:
    fr = np.zeros((4, frames, 64, 64, 3), np.float32)
    for f in range(frames):
        fr[:, f, :, 8 + shift * f:24 + shift * f] = 1.0  # a bar moving right
    masks = np.zeros((4, 64, 64), np.float32)
    masks[:, :, 8:24] = 1
    return TrainingClip(fr, masks, imagedream_rig(4, resolution=64), "the door is getting opened", "bar")


def test_only_motion_modules_change_and_a_checkpoint_is_written(model_dir, tmp_path):
    model = load(model_dir)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    ckpt = tmp_path / "mm.safetensors"
    steps = []
    res = finetune_motion(model, [bar_clip()], FinetuneConfig(steps=3, learning_rate=1e-3), checkpoint=ckpt,
                          on_step=lambda s, n, p: steps.append((s, n)))
    assert steps == [(1, 3), (2, 3), (3, 3)] and len(res.losses) == 3 and all(np.isfinite(res.losses))
    after = model.unet.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".motion." in k for k in changed)
    from atop_models.diffusion.checkpoints import read_motion_module

    _, meta, _ = read_motion_module(ckpt)
    assert json.loads(meta["steps"]) == 3 and json.loads(meta["prompts"]) == ["the door is getting opened"]
    assert not model.unet.gradient_checkpointing  # switched back off after training
    assert all(p.dtype == model.dtype for p in model.unet.parameters())


def test_resume_continues_from_the_checkpoint(model_dir, tmp_path):
    ckpt = tmp_path / "mm.safetensors"
    finetune_motion(load(model_dir), [bar_clip()], FinetuneConfig(steps=2, learning_rate=1e-3), checkpoint=ckpt)
    res = finetune_motion(load(model_dir), [bar_clip()], FinetuneConfig(steps=4, learning_rate=1e-3), checkpoint=ckpt)
    assert res.steps_done == 4 and len(res.losses) == 2 and "resumed" in res.notes[0]


def test_nan_loss_stops_and_keeps_the_last_checkpoint(model_dir, tmp_path):
    ckpt = tmp_path / "mm.safetensors"
    model = load(model_dir)
    finetune_motion(model, [bar_clip()], FinetuneConfig(steps=1), checkpoint=ckpt)
    good = ckpt.read_bytes()
    bad = bar_clip()
    bad.frames[0, 1, 0, 0, 0] = np.nan
    with pytest.raises(DivergenceError, match="became nan at step 2"):
        finetune_motion(model, [bad], FinetuneConfig(steps=3), checkpoint=ckpt)
    assert ckpt.read_bytes() == good


def test_bad_training_input(model_dir):
    model = load(model_dir)
    with pytest.raises(InputError, match="no training clips"):
        finetune_motion(model, [])
    clip = bar_clip()
    clip.masks = clip.masks[:3]
    with pytest.raises(InputError, match="4 views but 4 cameras and 3 masks"):
        finetune_motion(model, [clip], FinetuneConfig(steps=1))
