"""Encoders and schedule: ImageDream's CLIP preprocessing and penultimate tokens, text tokens, VAE scaling,
the DDIM schedule."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from atop_models.diffusion.encoders import (clip_pixel_values, composite_rgba, encode_image_tokens, encode_text,
                                            tokenize, vae_decode, vae_encode)
from atop_models.diffusion.schedule import IMAGEDREAM_SCHEDULER_CONFIG, alphas_cumprod, check_scheduler_config, make_scheduler
from atop_models.diffusion.tiny import (CLIP_MEAN, CLIP_STD, image_processor_config, tiny_image_encoder,
                                        tiny_text_encoder, tiny_vae, tokenizer_files)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    d = tmp_path_factory.mktemp("tok")
    for name, text in tokenizer_files().items():
        (d / name).write_text(text, encoding="utf-8")
    return CLIPTokenizer.from_pretrained(str(d), local_files_only=True)


@pytest.fixture(scope="module")
def processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(**{k: v for k, v in image_processor_config(32).items() if k != "image_processor_type"})


def test_clip_preprocessing_is_shortest_side_bicubic_centre_crop_normalise(processor):
    rng = np.random.default_rng(0)
    img = rng.random((1, 48, 64, 3)).astype(np.float32)  # landscape: resized to 32 x 42, then cropped
    got = clip_pixel_values(processor, img)[0]
    u8 = Image.fromarray((img[0] * 255).round().astype(np.uint8))
    w = int(64 * 32 / 48)  # torchvision/OpenCLIP truncate the long side
    small = np.asarray(u8.resize((w, 32), Image.BICUBIC), dtype=np.float32) / 255
    left = round((w - 32) / 2)
    crop = small[:, left:left + 32]
    want = (crop - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    assert got.shape == (3, 32, 32)
    np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), want, atol=1e-5)


def test_rgba_is_composited_on_grey():
    rgba = np.zeros((1, 2, 2, 4), np.float32)
    rgba[0, 0, 0] = [1, 0, 0, 1]
    out = composite_rgba(rgba, 0.5)
    assert out.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(out[0, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(out[0, 1, 1], [0.5, 0.5, 0.5])


@torch.no_grad()
def test_image_tokens_are_the_penultimate_layer_without_post_norm(processor):
    enc = tiny_image_encoder(3).eval()
    img = np.random.default_rng(1).random((2, 40, 40, 3)).astype(np.float32)
    tokens = encode_image_tokens(enc, processor, img)
    assert tokens.shape == (2, 17, 48)  # 4x4 patches + class token
    px = clip_pixel_values(processor, img)
    # Independent path: embeddings -> pre-LayerNorm -> all encoder layers but the last.
    vm = enc.vision_model if hasattr(enc, "vision_model") else enc
    h = vm.pre_layrnorm(vm.embeddings(px))
    for layer in vm.encoder.layers[:-1]:
        out = layer(h, None)
        h = out[0] if isinstance(out, tuple) else out
    torch.testing.assert_close(tokens, h, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_text_tokens_are_77_and_long_prompts_warn(tokenizer, caplog):
    enc = tiny_text_encoder(2).eval()
    out = encode_text(enc, tokenizer, ["the door of the cabinet is getting opened", ""])
    assert out.shape == (2, 77, 64)
    assert not torch.allclose(out[0], out[1])
    with caplog.at_level(logging.WARNING, logger="atop"):
        ids = tokenize(tokenizer, ["door " * 100])
    assert ids.shape == (1, 77) and "the rest is dropped" in caplog.text
    vocab = tokenizer.get_vocab()
    assert ids[0, 0] == vocab["<|startoftext|>"] and ids[0, -1] == vocab["<|endoftext|>"]


@torch.no_grad()
def test_vae_scaling_and_round_trip_shapes():
    vae = tiny_vae(1).eval()
    img = torch.rand(3, 3, 64, 64)
    z = vae_encode(vae, img, sample=False, chunk=2)
    assert z.shape == (3, 4, 8, 8)
    raw = vae.encode(img * 2 - 1).latent_dist.mode()
    torch.testing.assert_close(z, raw * 0.18215)
    back = vae_decode(vae, z, chunk=2)
    assert back.shape == (3, 3, 64, 64) and back.min() >= 0 and back.max() <= 1
    torch.testing.assert_close(back, ((vae.decode(raw).sample + 1) / 2).clamp(0, 1))


def test_ddim_schedule_matches_imagedream():
    sched = make_scheduler()
    sched.set_timesteps(50)
    assert sched.timesteps.tolist() == list(range(981, 0, -20))
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(alphas_cumprod(), torch.cumprod(1 - betas, 0).float())
    assert sched.config.prediction_type == "epsilon" and not sched.config.set_alpha_to_one
    assert check_scheduler_config(dict(sched.config)) == []
    assert check_scheduler_config(dict(IMAGEDREAM_SCHEDULER_CONFIG, beta_schedule="linear")) == [
        "beta_schedule='linear' (ImageDream: 'scaled_linear')"]
