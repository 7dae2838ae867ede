"""Motion-module fine-tuning mechanics on the tiny model: what trains, checkpoints and their metadata, exact
resuming, interruption, divergence, gradient checkpointing and bad input."""
from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from atop_models.errors import DivergenceError, InputError
from atop_models.geometry.cameras import imagedream_rig
from atop_models.training.finetune import FinetuneConfig, checkpoint_paths, finetune_motion_module

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from atop_models.diffusion.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("ft") / "m", "diffusers")["model"]


def load(model_dir, **kw):
    from atop_models.diffusion.checkpoints import load_model

    return load_model(model_dir, **kw)


def bar_clip(frames=2, shift=8, views=4, prompt="the door is getting opened"):
    """A bright bar sliding right on black, in every view; the mask covers its rest position."""
    fr = np.zeros((views, frames, 64, 64, 3), np.float32)
    for f in range(frames):
        fr[:, f, :, 8 + shift * f:24 + shift * f] = 1.0
    masks = np.zeros((views, 64, 64), np.float32)
    masks[:, :, 8:24] = 1
    return SimpleNamespace(frames=fr, masks=masks, rig=imagedream_rig(views, resolution=64), prompt=prompt,
                           name="bar")


def cfg(**kw):
    base = dict(steps=3, learning_rate=1e-3, checkpoint_every=0, preview_every=0, gradient_checkpointing=False)
    base.update(kw)
    return FinetuneConfig(**base)


def motion_state(model):
    return {k: v.clone() for k, v in model.unet.motion_state_dict().items()}


@pytest.mark.parametrize("variant", ["paper", "release"])
def test_what_the_variant_trains_is_saved_in_the_checkpoint_pair(model_dir, tmp_path, variant):
    from atop_models.diffusion.checkpoints import read_motion_module
    from atop_models.diffusion.motion import trained_base_keys

    model = load(model_dir, motion_variant=variant)
    extra = set(trained_base_keys(model.unet))
    assert len(extra) == (64 if variant == "release" else 0)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    calls = []
    res = finetune_motion_module(model, [bar_clip()], cfg(preview_every=2), checkpoint_dir=tmp_path,
                                 checkpoint_name="door", on_step=lambda s, n, p: calls.append((s, n, p)))
    assert [(s, n) for s, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert calls[0][2] is None and calls[1][2].shape == (64, 2 * 64, 3) and calls[2][2] is not None
    assert 0.0 <= calls[1][2].min() and calls[1][2].max() <= 1.0
    assert res.steps_done == 3 and len(res.losses) == 3 and all(np.isfinite(res.losses))
    after = model.unet.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".motion." in k or k in extra for k in changed) and extra <= changed
    module, state = checkpoint_paths(tmp_path, "door")
    assert res.checkpoint == str(module) and module.is_file() and state.is_file()
    config, meta, weights = read_motion_module(module)
    assert config.variant == variant and meta["motion_variant"] == variant
    assert set(json.loads(meta["base_weights"])) == extra and extra <= set(weights)
    assert json.loads(meta["steps"]) == 3
    assert json.loads(meta["prompts"]) == ["the door is getting opened"]
    assert json.loads(meta["config"])["learning_rate"] == 1e-3 and len(meta["base_config_hash"]) == 16
    assert all(torch.equal(weights[k].to(after[k].dtype), after[k]) for k in weights)
    # Model left as found: no checkpointing, eval/train mode restored, compute dtype, only motion trainable.
    assert not model.unet.gradient_checkpointing
    assert all(p.dtype == model.dtype for p in model.unet.parameters())
    assert all(p.grad is None for p in model.unet.parameters())
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_resume_continues_exactly(model_dir, tmp_path):
    straight = load(model_dir)
    full = finetune_motion_module(straight, [bar_clip()], cfg(steps=4))
    first = load(model_dir)
    finetune_motion_module(first, [bar_clip()], cfg(steps=2), checkpoint_dir=tmp_path, checkpoint_name="mm")
    resumed = load(model_dir)
    res = finetune_motion_module(resumed, [bar_clip()], cfg(steps=4), checkpoint_dir=tmp_path, checkpoint_name="mm")
    assert res.start_step == 2 and res.steps_done == 4 and "resumed mm.safetensors at step 2" in res.notes
    assert res.losses == pytest.approx(full.losses, rel=1e-5)
    a, b = motion_state(straight), motion_state(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_off_starts_again_and_finished_runs_do_nothing(model_dir, tmp_path):
    finetune_motion_module(load(model_dir), [bar_clip()], cfg(steps=2), checkpoint_dir=tmp_path, checkpoint_name="mm")
    again = finetune_motion_module(load(model_dir), [bar_clip()], cfg(steps=2), checkpoint_dir=tmp_path,
                                   checkpoint_name="mm")
    assert again.start_step == 2 and again.losses and "nothing to do" in again.notes[-1]
    fresh = finetune_motion_module(load(model_dir), [bar_clip()], cfg(steps=1), checkpoint_dir=tmp_path,
                                   checkpoint_name="mm", resume=False)
    assert fresh.start_step == 0 and fresh.steps_done == 1


def test_interrupt_keeps_the_last_checkpoint(model_dir, tmp_path):
    module, _ = checkpoint_paths(tmp_path, "mm")

    def stop_at_3(step, total, preview):
        if step == 3:
            raise KeyboardInterrupt("stopped by the user")

    model = load(model_dir)
    with pytest.raises(KeyboardInterrupt):
        finetune_motion_module(model, [bar_clip()], cfg(steps=6, checkpoint_every=2), checkpoint_dir=tmp_path,
                               checkpoint_name="mm", on_step=stop_at_3)
    from atop_models.diffusion.checkpoints import read_motion_module

    assert json.loads(read_motion_module(module)[1]["steps"]) == 2
    assert sorted(f.name for f in tmp_path.iterdir()) == ["mm.safetensors", "mm.safetensors.training_state"]
    assert not model.unet.gradient_checkpointing and all(p.dtype == model.dtype for p in model.unet.parameters())
    res = finetune_motion_module(load(model_dir), [bar_clip()], cfg(steps=6, checkpoint_every=2),
                                 checkpoint_dir=tmp_path, checkpoint_name="mm")
    assert res.start_step == 2 and res.steps_done == 6


def test_nan_loss_stops_and_keeps_the_last_checkpoint(model_dir, tmp_path):
    module, _ = checkpoint_paths(tmp_path, "mm")
    finetune_motion_module(load(model_dir), [bar_clip()], cfg(steps=1), checkpoint_dir=tmp_path, checkpoint_name="mm")
    good = module.read_bytes()
    bad = bar_clip()
    bad.frames[0, 1, 0, 0, 0] = np.nan
    with pytest.raises(DivergenceError, match=r"loss became NaN/Inf at step 2; the checkpoint mm.safetensors "
                                              r"\(step 1\) is kept; lower the learning rate"):
        finetune_motion_module(load(model_dir), [bad], cfg(steps=3), checkpoint_dir=tmp_path, checkpoint_name="mm")
    assert module.read_bytes() == good


def test_gradient_checkpointing_gives_the_same_step(model_dir):
    a, b = load(model_dir), load(model_dir)
    ra = finetune_motion_module(a, [bar_clip()], cfg(steps=2, gradient_checkpointing=False))
    rb = finetune_motion_module(b, [bar_clip()], cfg(steps=2, gradient_checkpointing=True))
    assert ra.losses == pytest.approx(rb.losses, rel=1e-5)
    sa, sb = motion_state(a), motion_state(b)
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)


def test_batches_and_accumulation_average_the_same_loss(model_dir):
    """Batch 2 with the same clip twice equals accumulation of 2 batches of 1 when both draw the same
    timesteps and noise; here we only check both run and produce finite, similar-scale losses."""
    res = finetune_motion_module(load(model_dir), [bar_clip(), bar_clip(prompt="a drawer slides out")],
                                 cfg(steps=2, batch_size=2, grad_accumulation_steps=2))
    assert res.steps_done == 2 and all(0.0 < x < 10.0 for x in res.losses)


def test_bad_training_input(model_dir, tmp_path, caplog):
    model = load(model_dir)
    with pytest.raises(InputError, match="no training clips"):
        finetune_motion_module(model, [], cfg())
    clip = bar_clip()
    clip.masks = clip.masks[:3]
    with pytest.raises(InputError, match="4 views of images but 3 masks"):
        finetune_motion_module(model, [clip], cfg())
    clip = bar_clip()
    clip.rig = imagedream_rig(2, resolution=64)
    with pytest.raises(InputError, match="4 views of images but 2 cameras"):
        finetune_motion_module(model, [clip], cfg())
    with pytest.raises(InputError, match=r"different view counts \[2, 4\]"):
        finetune_motion_module(model, [bar_clip(), bar_clip(views=2)], cfg())
    with pytest.raises(InputError, match=r"different frame counts \[2, 3\]"):
        finetune_motion_module(model, [bar_clip(), bar_clip(frames=3)], cfg())
    with pytest.raises(InputError, match="learning_rate=0"):
        finetune_motion_module(model, [bar_clip()], cfg(learning_rate=0.0))
    with pytest.raises(InputError, match="invalid checkpoint name"):
        finetune_motion_module(model, [bar_clip()], cfg(), checkpoint_dir=tmp_path, checkpoint_name="../x")
    with caplog.at_level(logging.WARNING, logger="atop"):
        res = finetune_motion_module(model, [bar_clip(prompt="open the door " * 40)], cfg(steps=1))
    assert res.steps_done == 1 and any("the rest is dropped" in r.getMessage() for r in caplog.records)


def test_learning_rate_schedules():
    constant = FinetuneConfig(steps=100, learning_rate=1e-3)
    assert [constant.learning_rate_at(s) for s in (1, 50, 100)] == [1e-3] * 3
    cosine = FinetuneConfig(steps=110, learning_rate=1e-3, lr_schedule="cosine", warmup_steps=10)
    assert cosine.learning_rate_at(5) == pytest.approx(5e-4)  # half-way through the warm-up
    assert cosine.learning_rate_at(10) == pytest.approx(1e-3)
    assert cosine.learning_rate_at(60) == pytest.approx(5e-4)  # half-way through the decay
    assert cosine.learning_rate_at(110) == pytest.approx(0.0, abs=1e-12)
    rates = [cosine.learning_rate_at(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    with pytest.raises(InputError, match="lr_schedule='linear'"):
        FinetuneConfig(lr_schedule="linear").check()
    with pytest.raises(InputError, match="warmup_steps=-1"):
        FinetuneConfig(warmup_steps=-1).check()


def test_resuming_a_checkpoint_of_another_variant_is_refused(model_dir, tmp_path):
    finetune_motion_module(load(model_dir, motion_variant="paper"), [bar_clip()], cfg(steps=1), checkpoint_dir=tmp_path,
                           checkpoint_name="mm")
    with pytest.raises(InputError, match="holds 'paper' motion modules but the model has 'release' ones"):
        finetune_motion_module(load(model_dir, motion_variant="release"), [bar_clip()], cfg(steps=2),
                               checkpoint_dir=tmp_path, checkpoint_name="mm")


@pytest.mark.parametrize("variant", ["paper", "release"])
def test_pixel_mode_adds_the_reference_view_without_a_loss_on_it(model_dir, variant):
    """Every training forward pass gets the rest-state view 0 as a 5th view with ImageDream's pixel
    controller; condition dropout zeroes it with the CLIP tokens for the paper variant only."""
    model = load(model_dir, motion_variant=variant, reference_view="pixel")
    seen = []
    forward = model.unet.forward

    def spy(sample, *args, **kw):
        seen.append((sample.shape[0], kw.get("num_views"), kw.get("reference_latent")))
        return forward(sample, *args, **kw)

    model.unet.forward = spy
    res = finetune_motion_module(model, [bar_clip()], cfg(steps=4, cond_dropout=0.5, seed=3))
    assert res.steps_done == 4 and all(np.isfinite(res.losses))
    assert all(n == 2 * 5 and v == 5 and ref is not None for n, v, ref in seen)
    dropped = [float(ref.abs().sum()) == 0 for _, _, ref in seen]
    assert any(dropped) == (variant == "paper")
