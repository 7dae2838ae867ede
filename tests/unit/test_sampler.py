"""DDIM sampling with guidance: exact recovery with an oracle noise predictor, the [unconditional,
conditional] batch order, the input first frame, determinism and input checks."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from atop_models.diffusion.sampler import (MotionConditioning, _guided_eps, decode_video, encode_conditioning,
                                           sample_motion, video_grid)
from atop_models.diffusion.schedule import make_scheduler
from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from atop_models.diffusion.checkpoints import load_model
    from atop_models.diffusion.tiny import make_tiny

    d = make_tiny(tmp_path_factory.mktemp("s") / "m", "diffusers")["model"]
    return load_model(d)


@pytest.fixture(scope="module")
def cond(model):
    rng = np.random.default_rng(0)
    views = rng.random((4, 64, 64, 3)).astype(np.float32)
    masks = np.zeros((4, 64, 64), np.float32)
    masks[:, 16:48, 16:48] = 1
    return encode_conditioning(model, views, "the door is getting opened", imagedream_rig(4, resolution=64), masks,
                               negative_prompt="blurry")


def test_oracle_noise_predictor_recovers_the_clean_latents():
    """With the true noise as prediction, deterministic DDIM must land on x0 (checks the schedule use)."""
    x0 = torch.randn(3 * 2, 4, 8, 8)
    sched = make_scheduler()
    acp = sched.alphas_cumprod

    def oracle(x, t, *args, **kw):
        a = acp[int(t)]
        return (x - a.sqrt() * x0.repeat(x.shape[0] // x0.shape[0], 1, 1, 1)) / (1 - a).sqrt()

    fake = SimpleNamespace(unet=oracle, latent_size=8, device=torch.device("cpu"), make_scheduler=make_scheduler)
    cond = MotionConditioning(context=torch.zeros(2, 77, 8), image_tokens=torch.zeros(4, 1, 8),
                              camera=torch.zeros(2, 16), mask=None, first_latents=None)
    out = sample_motion(fake, cond, num_frames=3, steps=10, guidance_scale=5.0, first_frame="generate",
                        preview_every=0)
    assert out.shape == (2, 3, 4, 8, 8)
    # Deterministic DDIM keeps the noise implied by x_T and ends at alpha_bar[0] (not 1), as ImageDream does.
    x_t = torch.randn(3, 2, 4, 8, 8, generator=torch.Generator().manual_seed(0)).reshape(6, 4, 8, 8)
    sched.set_timesteps(10)
    a_T, a_0 = acp[int(sched.timesteps[0])], acp[0]  # first step 901 for 10 steps
    eps = (x_t - a_T.sqrt() * x0) / (1 - a_T).sqrt()
    want = a_0.sqrt() * x0 + (1 - a_0).sqrt() * eps
    torch.testing.assert_close(out.permute(1, 0, 2, 3, 4).reshape(6, 4, 8, 8), want, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_guidance_batch_is_unconditional_then_conditional(model, cond):
    unet = model.unet
    x = torch.randn(2 * 4, 4, 8, 8)
    t = torch.tensor(401)
    cond_only = _guided_eps(unet, x, t, cond, 2, 1.0)
    full = unet(torch.cat([x, x]), t, cond.context, cond.camera, image_tokens=cond.image_tokens, num_views=4,
                num_frames=2, mask=cond.mask)
    torch.testing.assert_close(cond_only, full[8:], atol=1e-5, rtol=1e-5)
    uncond = unet(x, t, cond.context[:1], cond.camera, image_tokens=torch.zeros_like(cond.image_tokens[:4]),
                  num_views=4, num_frames=2, mask=cond.mask[:4])
    torch.testing.assert_close(_guided_eps(unet, x, t, cond, 2, 0.0), uncond, atol=1e-5, rtol=1e-5)
    assert (cond_only - uncond).abs().max() > 1e-4  # the conditions matter
    assert torch.equal(cond.image_tokens[:4], torch.zeros_like(cond.image_tokens[:4]))


def test_sampling_is_seeded_and_keeps_the_input_first_frame(model, cond):
    a = sample_motion(model, cond, num_frames=3, steps=3, seed=1, first_frame="input", preview_every=0)
    b = sample_motion(model, cond, num_frames=3, steps=3, seed=1, first_frame="input", preview_every=0)
    c = sample_motion(model, cond, num_frames=3, steps=3, seed=2, first_frame="input", preview_every=0)
    assert a.shape == (4, 3, 4, 8, 8)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.equal(a[:, 0], cond.first_latents)
    gen = sample_motion(model, cond, num_frames=3, steps=3, seed=1, first_frame="generate", preview_every=0)
    assert not torch.allclose(gen[:, 0], cond.first_latents)
    # "auto" is the motion variant's way: the release model samples every frame from noise
    assert model.motion_variant == "release"
    assert torch.equal(sample_motion(model, cond, num_frames=3, steps=3, seed=1, preview_every=0), gen)
    with pytest.raises(InputError, match="first_frame must be one of auto, input, generate"):
        sample_motion(model, cond, num_frames=3, steps=3, first_frame="rest")
    frames = decode_video(model, a, chunk=5)
    assert frames.shape == (4, 3, 64, 64, 3) and 0 <= frames.min() and frames.max() <= 1
    assert video_grid(frames).shape == (4 * 64, 3 * 64, 3)


def test_progress_gets_previews(model, cond):
    seen = []
    sample_motion(model, cond, num_frames=2, steps=4, preview_every=2,
                  on_step=lambda s, n, p: seen.append((s, n, None if p is None else p.shape)))
    assert seen == [(1, 4, None), (2, 4, (64, 64, 3)), (3, 4, None), (4, 4, (64, 64, 3))]


def test_mismatched_inputs_are_reported(model):
    views = np.zeros((4, 64, 64, 3), np.float32)
    with pytest.raises(InputError, match="4 views but 3 cameras and 2 masks"):
        encode_conditioning(model, views, "x", imagedream_rig(3, resolution=64), np.zeros((2, 64, 64)))
    with pytest.raises(InputError, match=r"views must be images \[V, H, W, 3\]"):
        encode_conditioning(model, np.zeros((64, 64, 3)), "x", imagedream_rig(1))


def test_paper_variant_keeps_the_input_first_frame_by_default(tmp_path, cond):
    from atop_models.diffusion.checkpoints import load_model
    from atop_models.diffusion.tiny import make_tiny

    paper = load_model(make_tiny(tmp_path / "m", "diffusers")["model"], motion_variant="paper")
    out = sample_motion(paper, cond, num_frames=2, steps=2, preview_every=0)
    assert torch.equal(out[:, 0], cond.first_latents)


def test_rgba_views_are_composited_on_grey_before_the_vae_and_clip(model):
    rng = np.random.default_rng(1)
    rgba = rng.random((4, 64, 64, 4)).astype(np.float32)
    grey = rgba[..., :3] * rgba[..., 3:] + 0.5 * (1 - rgba[..., 3:])
    rig = imagedream_rig(4, resolution=64)
    a = encode_conditioning(model, rgba, "x", rig)
    b = encode_conditioning(model, grey, "x", rig)
    torch.testing.assert_close(a.first_latents, b.first_latents)
    torch.testing.assert_close(a.image_tokens, b.image_tokens)
    dropped = encode_conditioning(model, rgba[..., :3], "x", rig)  # the colours alone are another image
    assert (dropped.first_latents - a.first_latents).abs().max() > 1e-3


@torch.no_grad()
def test_pixel_mode_appends_the_image_prompt_as_a_reference_view(tmp_path):
    """reference_view "pixel": view 0's latent goes in as a 5th view (zero camera, view 0's image tokens) to
    both guidance halves, zeros for the unconditional one, and its output is dropped."""
    from atop_models.diffusion.checkpoints import load_model
    from atop_models.diffusion.tiny import make_tiny

    pixel = load_model(make_tiny(tmp_path / "m", "diffusers")["model"], reference_view="pixel")
    rng = np.random.default_rng(2)
    views = rng.random((4, 64, 64, 3)).astype(np.float32)
    masks = (rng.random((4, 64, 64)) > 0.5).astype(np.float32)
    cond = encode_conditioning(pixel, views, "open", imagedream_rig(4, resolution=64), masks)
    assert cond.reference_latent.shape == (1, 4, 8, 8)
    torch.testing.assert_close(cond.reference_latent, cond.first_latents[:1])
    x = torch.randn(2 * 4, 4, 8, 8)
    t = torch.tensor(301)
    got = _guided_eps(pixel.unet, x, t, cond, 2, 3.0)
    x5 = torch.cat([x.reshape(2, 4, 4, 8, 8), torch.zeros(2, 1, 4, 8, 8)], 1).reshape(10, 4, 8, 8)
    cam5 = torch.cat([cond.camera, torch.zeros(1, 16)])
    tok = cond.image_tokens.reshape(2, 4, *cond.image_tokens.shape[1:])
    tok5 = torch.cat([tok, tok[:, :1]], 1).reshape(10, *tok.shape[2:])
    eps = pixel.unet(torch.cat([x5, x5]), t, cond.context, cam5, image_tokens=tok5, num_views=5, num_frames=2,
                     mask=cond.mask, reference_latent=torch.cat([torch.zeros_like(cond.reference_latent),
                                                                 cond.reference_latent]))
    eps = eps.reshape(2, 2, 5, 4, 8, 8)[:, :, :4].reshape(2, 8, 4, 8, 8)
    torch.testing.assert_close(got, eps[0] + 3.0 * (eps[1] - eps[0]), atol=1e-5, rtol=1e-5)
    plain = _guided_eps(pixel.unet, x, t, dataclasses.replace(cond, reference_latent=None), 2, 3.0)
    assert (plain - got).abs().max() > 1e-4  # the reference view matters


@torch.no_grad()
def test_score_distillation_gets_the_reference_view_in_pixel_mode(tmp_path):
    from atop_models.diffusion.checkpoints import load_model
    from atop_models.diffusion.tiny import make_tiny
    from atop_models.lift.guidance import ModelNoisePredictor

    d = make_tiny(tmp_path / "m", "diffusers")["model"]
    rng = np.random.default_rng(3)
    rest = rng.random((4, 64, 64, 3)).astype(np.float32)
    masks = (rng.random((4, 64, 64)) > 0.5).astype(np.float32)
    rig = imagedream_rig(4, resolution=64)
    noisy = torch.randn(2, 4, 4, 8, 8)
    pixel = ModelNoisePredictor(load_model(d, reference_view="pixel"), rig, "open", rest, masks, num_frames=2)
    plain = ModelNoisePredictor(load_model(d), rig, "open", rest, masks, num_frames=2)
    assert plain.reference is None and pixel.reference.shape == (2, 4, 8, 8)
    assert pixel.reference[0].abs().max() == 0  # the unconditional half gets a zero latent
    u, c = pixel(noisy, 400)
    pu, pc = plain(noisy, 400)
    assert u.shape == c.shape == (2, 4, 4, 8, 8) and torch.isfinite(c).all()
    assert (c - pc).abs().max() > 1e-4 and (u - pu).abs().max() > 1e-6
