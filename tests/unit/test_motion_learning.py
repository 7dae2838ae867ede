"""Proof that motion-module fine-tuning learns, on the CPU with the tiny model (about 13 minutes on two cores):

1. fine-tuning on one clip lowers the training loss (fixed timesteps and noise) by at least 80%;
2. sampling from the fine-tuned model reproduces the clip's latents (mean cosine similarity >= 0.9 over the
   generated frames and every view) while the model with untrained motion modules does not;
3. mask control: trained on two clips with the same views but different part masks (and the motion at the
   masked part), the sampled motion appears where the given mask is.

The base model stands in for ImageDream, which already denoises static views: the tiny random weights are
first trained (every base weight, motion modules untouched) to denoise the clips' rest-state views, with
the VAE latents scaled to unit variance as Stable Diffusion's scale factor does. Then only the motion
modules train, through ``finetune_motion_module``; sampling uses the DDIM sampler with guidance.

Known limit of this stand-in (measured on two cores): the tiny base does not sample its own training views
faithfully. DDIM from noise (guidance 1) reproduces the rest views it memorised at cosine 0.53-0.58 after
the 400 pre-training steps here and 0.68 after 1,600, with latents about 1.5x too large: near t = 1000 an
eps error of 0.1 becomes an x0 error of over 1. Even fine-tuning every UNet weight on the clip (fixed loss
-89%) samples it at 0.49. So test 2 measures the base's sampling fidelity more than the motion module; it
needs a base trained far longer (a GPU) or the real ImageDream weights.
"""
from __future__ import annotations

import copy
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from atop_models.geometry.cameras import imagedream_rig
from atop_models.training.dataset import encode_training_set, make_batch
from atop_models.training.finetune import FinetuneConfig, diffusion_loss, finetune_motion_module, fixed_loss

torch.set_num_threads(1)
pytestmark = pytest.mark.slow

FRAMES = 3
SIZE = 64
PROMPT = "a block slides down"
LEFT, RIGHT = (slice(8, 32), slice(4, 28)), (slice(8, 32), slice(36, 60))  # rest rows, cols of the two blocks
SHIFT = 12  # pixels per frame


def block_clip(moving: str):
    """Grey background, a red block on the left and a blue block on the right (tinted per view); the
    ``moving`` block slides down SHIFT px per frame. The mask is that block's rest position."""
    fr = np.full((4, FRAMES, SIZE, SIZE, 3), 0.5, np.float32)
    masks = np.zeros((4, SIZE, SIZE), np.float32)
    for v in range(4):
        colours = {"left": np.array([0.95, 0.15 + 0.2 * v, 0.1]), "right": np.array([0.1, 0.3, 0.95 - 0.2 * v])}
        for f in range(FRAMES):
            for side, (rows, cols) in (("left", LEFT), ("right", RIGHT)):
                dy = SHIFT * f if side == moving else 0
                fr[v, f, rows.start + dy:rows.stop + dy, cols] = colours[side]
        rows, cols = LEFT if moving == "left" else RIGHT
        masks[v, rows, cols] = 1
    return SimpleNamespace(frames=fr, masks=masks, prompt=PROMPT, rig=imagedream_rig(4, resolution=SIZE),
                           name=f"{moving} block")


def pretrain_base(model, data, steps: int = 400, batch: int = 8, lr: float = 2e-3, seed: int = 0) -> float:
    """Trains every non-motion weight to denoise the rest-state views (single frames); returns the fixed loss."""
    unet = model.unet
    with torch.no_grad():  # standard norm initialisation (unit gains) before training the base
        for m in unet.modules():
            if isinstance(m, (nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
    v = data.num_views
    rest = dataclasses.replace(data, num_frames=1, clips=[dataclasses.replace(c, latents=c.latents[:v], num_frames=1)
                                                          for c in data.clips[:1]])
    params = [p for n, p in unet.named_parameters() if ".motion." not in n]
    for n, p in unet.named_parameters():
        p.requires_grad_(".motion." not in n)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    acp = model.make_scheduler().alphas_cumprod
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = make_batch(rest, [0] * batch)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        noise = torch.randn(b["latents"].shape, generator=gen)
        loss, _, _ = diffusion_loss(unet, rest, b, t, noise, acp)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    from atop_models.diffusion.motion import set_trainable

    set_trainable(unet)
    return fixed_loss(model, rest)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from atop_models.diffusion.checkpoints import load_model
    from atop_models.diffusion.tiny import make_tiny

    model = load_model(make_tiny(tmp_path_factory.mktemp("learn") / "m", "diffusers")["model"])
    clips = [block_clip("left"), block_clip("right")]
    std = float(encode_training_set(model, clips).clips[0].latents.std())
    model.vae.register_to_config(scaling_factor=model.vae.config.scaling_factor / std)
    data = encode_training_set(model, clips)
    rest_loss = pretrain_base(model, data)
    print(f"latent std before scaling {std:.3f}; base fixed loss on the rest views {rest_loss:.4f}")
    return SimpleNamespace(model=model, clips=clips, data=data)


def tuned(base, clip_ids, steps=600):
    model = dataclasses.replace(base.model, unet=copy.deepcopy(base.model.unet))
    data = dataclasses.replace(base.data, clips=[base.data.clips[i] for i in clip_ids])
    before = fixed_loss(model, data)
    # The best of the settings measured on this tiny model: query projections train too, cosine decay.
    config = FinetuneConfig(steps=steps, learning_rate=4e-3, lr_schedule="cosine", warmup_steps=30, batch_size=4,
                            train_query_projections=True, gradient_checkpointing=False, checkpoint_every=0,
                            preview_every=0)
    res = finetune_motion_module(model, [], config, data=data)
    return SimpleNamespace(model=model, data=data, before=before, after=fixed_loss(model, data), result=res)


@pytest.fixture(scope="module")
def left_only(base):
    return tuned(base, [0])


def sample(model, clip, seed=0):  # [V, F, 4, h, w]
    from atop_models.diffusion.sampler import encode_conditioning, sample_motion

    cond = encode_conditioning(model, clip.frames[:, 0], clip.prompt, clip.rig, clip.masks)
    return sample_motion(model, cond, num_frames=FRAMES, steps=25, guidance_scale=5.0, seed=seed, preview_every=0)


def clip_latents(data, i):  # [V, F, 4, h, w]
    c = data.clips[i]
    return c.latents.reshape(c.num_frames, c.num_views, *c.latents.shape[1:]).transpose(0, 1)


def mean_cosine(a, b):
    """Mean cosine similarity over the generated frames (1..F-1) and every view."""
    a, b = a[:, 1:].flatten(2), b[:, 1:].flatten(2)
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())


def test_finetuning_lowers_the_training_loss_by_80_percent(left_only):
    print(f"fixed loss {left_only.before:.4f} -> {left_only.after:.4f}; training losses "
          f"{np.round(left_only.result.losses[::50], 4)}")
    assert left_only.after <= 0.2 * left_only.before


def test_sampling_reproduces_the_clip(base, left_only):
    target = clip_latents(base.data, 0)
    fresh = dataclasses.replace(base.model, unet=copy.deepcopy(base.model.unet))
    trained_cos = mean_cosine(sample(left_only.model, base.clips[0]), target)
    untrained_cos = mean_cosine(sample(fresh, base.clips[0]), target)
    print(f"cosine to the clip's latents: fine-tuned {trained_cos:.3f}, untrained {untrained_cos:.3f}")
    assert trained_cos >= 0.9
    assert untrained_cos < 0.9


def change_share(latents, cols):  # share of |z_last - z_first| inside the latent columns ``cols``
    change = (latents[:, -1] - latents[:, 0]).abs().sum(1).mean(0)  # [h, w]
    return float(change[:, cols].sum() / change.sum())


def test_the_part_mask_places_the_motion(base):
    both = tuned(base, [0, 1])
    left_cols, right_cols = slice(0, 4), slice(4, 8)  # latent columns of the left and right halves
    truth = [change_share(clip_latents(base.data, 0), left_cols), change_share(clip_latents(base.data, 1), right_cols)]
    got_left = change_share(sample(both.model, base.clips[0]), left_cols)
    got_right = change_share(sample(both.model, base.clips[1]), right_cols)
    print(f"share of the change in the masked half: clips {np.round(truth, 3)}, sampled with the left mask "
          f"{got_left:.3f}, with the right mask {got_right:.3f}; fixed loss {both.before:.4f} -> {both.after:.4f}")
    # The clips themselves put 0.80 / 0.71 of the change in the masked half (the moved block also uncovers
    # background there): ask for most of that share.
    assert got_left >= 0.9 * truth[0] and got_right >= 0.9 * truth[1]
