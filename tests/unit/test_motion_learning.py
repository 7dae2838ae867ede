"""Proof that fine-tuning teaches the motion module the clip's motion, for both variants side by side
(``paper`` and ``release``), measured on the module itself rather than through sampling (opt-in: ``slow``).

The base model stands in for ImageDream, which already denoises static views: the tiny random weights are
first trained (every base weight, motion modules untouched) to denoise the clips' rest-state views, with
the VAE latents scaled to unit variance as Stable Diffusion's scale factor does. Two clips share those views:
a red block on the left or a blue block on the right slides down; each clip's part mask covers its moving
block. Then each variant's module (with what its variant trains beside it) is fine-tuned on both clips
through ``finetune_motion_module`` with the same settings, and measured against the same base with fresh
(untrained) modules:

1. the fixed-noise epsilon loss of the left clip (fixed timesteps and noise) drops by at least 70%;
2. one-step x0 predictions at t = 300 and 500 of frames 1.. move toward the true frames: the cosine between
   the predicted and the true change from frame 0 is at least 0.8 fine-tuned and at most 0.3 untrained
   (also measured, not asserted, at t = 600 and 700);
3. the predicted change falls on the masked block's side at least 90% as much as the clip's own change does;
4. mask control: with the right block's mask (the other clip), the predicted change is on the right side.

Measured limit of this stand-in: its one-step predictions pass part of the noisy input through, so even
with untrained modules the predicted change follows the true one at low t (cosine 0.84 at t = 300, 0.54
at 500, 0.41 at 600, 0.21 at 700), while the fine-tuned release module reaches 0.96 / 0.89 / 0.82 / 0.72 there
(paper: 0.94 / 0.86 / 0.79 / 0.71): no timestep gives both 0.8 fine-tuned and 0.3 untrained within this
CPU budget, so the
"untrained" half of criterion 2 fails; a base that memorises its rest views harder (more pre-training, a
GPU) or the real ImageDream is needed for it.

The variant that measures better is the pack's default (``motion.DEFAULT_VARIANT``); the last test checks
that and prints the side-by-side table that the README quotes. Sampling is not measured here: a stand-in
base that this CPU can train does not sample its own training views faithfully (DDIM from noise reproduces
the memorised rest views at cosine 0.53-0.68), so a sampling criterion would measure the base, not the
module.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from atop_models.diffusion.motion import DEFAULT_VARIANT, MOTION_VARIANTS, MotionConfig, transformer_blocks
from atop_models.geometry.cameras import imagedream_rig
from atop_models.training.dataset import encode_training_set, make_batch
from atop_models.training.finetune import FinetuneConfig, diffusion_loss, finetune_motion_module, fixed_loss

torch.set_num_threads(1)
pytestmark = pytest.mark.slow

FRAMES = 3
SIZE = 64
PROMPT = "a block slides down"
LEFT, RIGHT = (slice(8, 32), slice(4, 28)), (slice(8, 32), slice(36, 60))  # rest rows, cols of the two blocks
LEFT_COLS, RIGHT_COLS = slice(0, 4), slice(4, 8)  # latent columns of the two halves
SHIFT = 12  # pixels per frame
X0_TIMESTEPS = (300, 500)  # asserted
SWEEP_TIMESTEPS = X0_TIMESTEPS + (600, 700)  # measured and printed
# The same fine-tuning for both variants: what fits this CPU's time budget (the published release settings,
# 3e-5 for 4,000 steps, need a GPU).
TUNING = dict(steps=600, learning_rate=4e-3, lr_schedule="cosine", warmup_steps=20, batch_size=2,
              gradient_checkpointing=False, checkpoint_every=0, preview_every=0)


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
    for p in unet.parameters():
        p.requires_grad_(False)
    return fixed_loss(model, rest)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from atop_models.diffusion.checkpoints import load_model
    from atop_models.diffusion.tiny import make_tiny

    start = time.perf_counter()
    model = load_model(make_tiny(tmp_path_factory.mktemp("learn") / "m", "diffusers")["model"])
    clips = [block_clip("left"), block_clip("right")]
    std = float(encode_training_set(model, clips).clips[0].latents.std())
    model.vae.register_to_config(scaling_factor=model.vae.config.scaling_factor / std)
    data = encode_training_set(model, clips)
    rest_loss = pretrain_base(model, data)
    print(f"latent std before scaling {std:.3f}; base fixed loss on the rest views {rest_loss:.4f} "
          f"({time.perf_counter() - start:.0f} s)")
    return SimpleNamespace(model=model, data=data, clips=clips)


def with_fresh_modules(base, variant: str):
    """The stand-in base with fresh (identity) motion modules of ``variant``."""
    unet = copy.deepcopy(base.model.unet)
    for block in transformer_blocks(unet):
        block.motion = None
    unet.register_to_config(motion_module=None)
    unet.inflate(MotionConfig(variant=variant))
    return dataclasses.replace(base.model, unet=unet.eval())


@torch.no_grad()
def x0_predictions(model, data, clip: int, t: int, seed: int = 7) -> torch.Tensor:  # [F, V, 4, h, w]
    """One-step x0 predictions of every frame from the clip noised to ``t`` (fixed noise)."""
    batch = make_batch(data, [clip])
    noise = torch.randn(batch["latents"].shape, generator=torch.Generator().manual_seed(seed + t))
    acp = model.make_scheduler().alphas_cumprod
    _, noisy, eps = diffusion_loss(model.unet, data, batch, torch.tensor([t]), noise, acp)
    a = acp[t]
    x0 = (noisy - (1 - a).sqrt() * eps) / a.sqrt()
    return x0.reshape(data.num_frames, data.num_views, *x0.shape[1:])


def clip_latents(data, clip: int) -> torch.Tensor:  # [F, V, 4, h, w]
    c = data.clips[clip]
    return c.latents.reshape(c.num_frames, c.num_views, *c.latents.shape[1:])


def change_cosine(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean over frames 1.. of the cosine between predicted and true change from frame 0."""
    a, b = (pred[1:] - pred[:1]).flatten(1), (true[1:] - true[:1]).flatten(1)
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())


def change_share(frames: torch.Tensor, cols: slice) -> float:
    """Share of the change from frame 0 (summed over frames, views and channels) in the latent columns."""
    change = (frames[1:] - frames[:1]).abs().sum(dim=(0, 1, 2))  # [h, w]
    return float(change[:, cols].sum() / change.sum())


def sampled(model, clip, first_frame: str) -> torch.Tensor:  # [F, V, 4, h, w]
    from atop_models.diffusion.sampler import encode_conditioning, sample_motion

    cond = encode_conditioning(model, clip.frames[:, 0], clip.prompt, clip.rig, clip.masks)
    out = sample_motion(model, cond, num_frames=FRAMES, steps=20, guidance_scale=5.0, seed=0,
                        first_frame=first_frame, preview_every=0)
    return out.transpose(0, 1)


def measure(model, data) -> dict:
    out = {"loss": fixed_loss(model, dataclasses.replace(data, clips=data.clips[:1]))}
    for t in SWEEP_TIMESTEPS:
        left, right = x0_predictions(model, data, 0, t), x0_predictions(model, data, 1, t)
        out[f"cos{t}"] = change_cosine(left, clip_latents(data, 0))
        out[f"share_left{t}"] = change_share(left, LEFT_COLS)
        out[f"share_right{t}"] = change_share(right, RIGHT_COLS)
        out[f"cos{t}_right"] = change_cosine(right, clip_latents(data, 1))
    return out


@pytest.fixture(scope="module", params=MOTION_VARIANTS)
def variant(request, base):
    name = request.param
    fresh = with_fresh_modules(base, name)
    untrained = measure(fresh, base.data)
    start = time.perf_counter()
    tuned = with_fresh_modules(base, name)
    result = finetune_motion_module(tuned, [], FinetuneConfig(**TUNING), data=base.data)
    seconds = time.perf_counter() - start
    trained = measure(tuned, base.data)
    for mode in ("input", "generate"):  # sampling, for the record (the stand-in base limits its fidelity)
        video = sampled(tuned, base.clips[0], mode)
        trained[f"sample_cos_{mode}"] = change_cosine(video, clip_latents(base.data, 0))
        trained[f"sample_share_{mode}"] = change_share(video, LEFT_COLS)
    print(f"{name}: fine-tuning {TUNING['steps']} steps in {seconds:.0f} s; training losses "
          f"{np.round(result.losses[::50], 4)}")
    return SimpleNamespace(name=name, untrained=untrained, trained=trained, seconds=seconds, data=base.data)


RESULTS: dict[str, SimpleNamespace] = {}


def test_the_fixed_noise_loss_drops_by_70_percent(variant):
    RESULTS[variant.name] = variant
    before, after = variant.untrained["loss"], variant.trained["loss"]
    print(f"{variant.name}: fixed loss {before:.4f} -> {after:.4f} ({100 * (1 - after / before):.0f}% lower)")
    assert after <= 0.3 * before


@pytest.mark.parametrize("t", X0_TIMESTEPS)
def test_one_step_predictions_move_toward_the_true_frames(variant, t):
    trained, untrained = variant.trained[f"cos{t}"], variant.untrained[f"cos{t}"]
    print(f"{variant.name} t={t}: change cosine fine-tuned {trained:.3f}, untrained {untrained:.3f}")
    assert trained >= 0.8 and untrained <= 0.3


def clip_shares(data) -> tuple[float, float]:
    return change_share(clip_latents(data, 0), LEFT_COLS), change_share(clip_latents(data, 1), RIGHT_COLS)


@pytest.mark.parametrize("t", X0_TIMESTEPS)
def test_the_change_falls_on_the_masked_part(base, variant, t):
    truth_left, _ = clip_shares(base.data)
    got = variant.trained[f"share_left{t}"]
    print(f"{variant.name} t={t}: change on the masked side {got:.3f} (the clip's own {truth_left:.3f})")
    assert got >= 0.9 * truth_left


@pytest.mark.parametrize("t", X0_TIMESTEPS)
def test_another_mask_moves_the_other_part(base, variant, t):
    _, truth_right = clip_shares(base.data)
    got = variant.trained[f"share_right{t}"]
    print(f"{variant.name} t={t}: with the right block's mask, change on the right {got:.3f} (the clip's own "
          f"{truth_right:.3f}); change cosine {variant.trained[f'cos{t}_right']:.3f}")
    assert got >= 0.9 * truth_right


def score(r: SimpleNamespace) -> float:
    """What "measures better" means: the mean one-step change cosine over both clips and timesteps, less the
    fine-tuned loss as a share of the untrained one."""
    cos = np.mean([r.trained[f"cos{t}{s}"] for t in X0_TIMESTEPS for s in ("", "_right")])
    return float(cos - r.trained["loss"] / r.untrained["loss"])


def test_the_default_variant_is_the_one_that_measures_better():
    if set(RESULTS) != set(MOTION_VARIANTS):
        pytest.skip("needs both variants measured in this run")
    rows = ["| | " + " | ".join(MOTION_VARIANTS) + " |", "|---|" + "---|" * len(MOTION_VARIANTS)]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(RESULTS[v]) for v in MOTION_VARIANTS) + " |")

    row("fixed loss, untrained -> fine-tuned", lambda r: f"{r.untrained['loss']:.4f} -> {r.trained['loss']:.4f} "
                                                      f"(-{100 * (1 - r.trained['loss'] / r.untrained['loss']):.0f}%)")
    for t in SWEEP_TIMESTEPS:
        row(f"change cosine t={t}, fine-tuned (untrained)",
            lambda r, t=t: f"{r.trained[f'cos{t}']:.3f} ({r.untrained[f'cos{t}']:.3f})")
        row(f"change on the masked side t={t}, left / right mask",
            lambda r, t=t: f"{r.trained[f'share_left{t}']:.3f} / {r.trained[f'share_right{t}']:.3f}")
        row(f"change cosine t={t}, right block's clip, fine-tuned (untrained)",
            lambda r, t=t: f"{r.trained[f'cos{t}_right']:.3f} ({r.untrained[f'cos{t}_right']:.3f})")
    for mode in ("input", "generate"):
        row(f"sampled (20 DDIM steps, frame 0 {mode}): change cosine / masked side",
            lambda r, m=mode: f"{r.trained[f'sample_cos_{m}']:.3f} / {r.trained[f'sample_share_{m}']:.3f}")
    row("fine-tuning time (s)", lambda r: f"{r.seconds:.0f}")
    truth = clip_shares(next(iter(RESULTS.values())).data)
    rows.append(f"(the clips' own change on the masked side: left {truth[0]:.3f}, right {truth[1]:.3f})")
    row("score", lambda r: f"{score(r):.3f}")
    print("\n".join(rows))
    best = max(MOTION_VARIANTS, key=lambda v: score(RESULTS[v]))
    assert DEFAULT_VARIANT == best
