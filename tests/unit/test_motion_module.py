"""Inflation: fresh motion modules leave ImageDream unchanged; the module's attention reads the first frame
of the same view; only motion parameters train; gradient checkpointing gives the same gradients."""
from __future__ import annotations

import json

import pytest
import torch

from atop_models.diffusion.attention import VideoContext
from atop_models.diffusion.checkpoints import apply_motion_module, read_motion_module, save_motion_module
from atop_models.diffusion.motion import MotionConfig, MotionModule, set_trainable, transformer_blocks
from atop_models.diffusion.tiny import TINY_UNET_CONFIG, tiny_unet
from atop_models.errors import ModelFileError

torch.set_num_threads(1)
B, F, V, S = 1, 3, 4, 8


def inputs(seed=0, b=B, f=F, v=V):
    g = torch.Generator().manual_seed(seed)
    return dict(sample=torch.randn(b * f * v, 4, S, S, generator=g), timestep=torch.tensor([700] * b),
                context=torch.randn(b, 77, 64, generator=g), camera=torch.randn(v, 16, generator=g),
                image_tokens=torch.randn(b * v, 17, 48, generator=g), num_views=v, num_frames=f,
                mask=(torch.rand(b * v, 1, 32, 32, generator=g) > 0.5).float())


@pytest.fixture(scope="module")
def plain():
    return tiny_unet(seed=0).eval()


@pytest.fixture(scope="module")
def inflated():
    return tiny_unet(seed=0).inflate().eval()


def _perturb(unet, seed=5, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".motion.to_out" in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[-1] ** 0.5)
    return unet


@torch.no_grad()
def test_fresh_motion_modules_equal_the_plain_model_for_every_frame(plain, inflated):
    a = inputs()
    want = plain(**{k: v for k, v in a.items() if k != "mask"})
    got = inflated(**a)
    assert got.abs().mean() > 1e-3
    for f in range(F):
        torch.testing.assert_close(got[f * V:(f + 1) * V], want[f * V:(f + 1) * V], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_single_frame_equals_plain_imagedream(plain, inflated):
    a = inputs(seed=1, f=1)
    torch.testing.assert_close(inflated(**a), plain(**{k: v for k, v in a.items() if k != "mask"}), atol=1e-5, rtol=1e-5)


def test_inflation_adds_one_module_per_transformer_block_and_keeps_base_keys(plain, inflated):
    blocks = transformer_blocks(inflated)
    assert len(blocks) == 16 and all(b.motion is not None for b in blocks)
    assert set(inflated.base_state_dict()) == set(plain.state_dict())
    assert all(".motion." in k for k in inflated.motion_state_dict())
    assert inflated.config.motion_module == MotionConfig().to_dict()
    for k, v in plain.state_dict().items():
        assert torch.equal(v, inflated.state_dict()[k])


def test_fresh_modules_are_reproducible():
    a, b = tiny_unet(seed=0).inflate(), tiny_unet(seed=0).inflate()
    for (k, x), (_, y) in zip(a.motion_state_dict().items(), b.motion_state_dict().items()):
        assert torch.equal(x, y), k


@torch.no_grad()
def test_motion_attention_reads_the_first_frame_of_the_same_view():
    torch.manual_seed(0)
    m = MotionModule(32, 1, MotionConfig())
    torch.nn.init.normal_(m.to_out[0].weight)
    b, f, v, h, w = 1, 3, 2, 4, 4
    x = torch.randn(b * f * v, h * w, 32)
    video = VideoContext(f, v, mask=torch.rand(b * v, 1, 16, 16))
    out = m(x, video, (h, w))
    assert (out - x).abs().max() > 1e-3
    ones, zeros = (m(x, VideoContext(f, v, mask=torch.full((b * v, 1, 16, 16), val)), (h, w)) for val in (1.0, 0.0))
    assert (ones - zeros).abs().mean() > 0.05 * (out - x).abs().mean()  # the mask steers the module

    def idx(fi, vi):
        return fi * v + vi

    y = x.clone()
    y[idx(2, 0)] += torch.randn(h * w, 32) # frame 2 of view 0 changes: only that image's output changes
    diff = (m(y, video, (h, w)) - out).abs().flatten(1).max(1).values
    assert diff[idx(2, 0)] > 1e-3 and diff[torch.arange(f * v) != idx(2, 0)].max() == 0
    y = x.clone()
    y[idx(0, 1)] += torch.randn(h * w, 32) # frame 0 of view 1 changes: every frame of view 1 changes, view 0 does not
    diff = (m(y, video, (h, w)) - out).abs().flatten(1).max(1).values
    assert all(diff[idx(fi, 1)] > 1e-3 for fi in range(f))
    assert all(diff[idx(fi, 0)] == 0 for fi in range(f))


@torch.no_grad()
def test_mask_and_frame_index_drive_a_trained_module(inflated):
    unet = _perturb(tiny_unet(seed=0).inflate().eval())
    a = inputs(seed=2)
    out = unet(**a)
    motion_effect = (out - inflated(**a)).abs().max()
    other = unet(**dict(a, mask=1 - a["mask"]))
    # Random weights: the mask's effect is small but far above float32 rounding (~1e-7 of the output).
    assert (out - other).abs().max() > 1e-3 * motion_effect > 0
    same = dict(a, sample=a["sample"][:V].repeat(F, 1, 1, 1))  # identical frames still differ by frame index
    o = unet(**same)
    assert (o[V:2 * V] - o[:V]).abs().max() > 1e-4


def test_only_motion_modules_train_by_default():
    unet = tiny_unet(seed=0).inflate()
    names = set_trainable(unet)
    assert names and all(".motion." in n for n in names)
    assert {n for n, p in unet.named_parameters() if p.requires_grad} == set(names)
    with_q = set_trainable(unet, train_query_projections=True)
    extra = set(with_q) - set(names)
    assert len(extra) == 32 and all(n.endswith(("attn1.to_q.weight", "attn2.to_q.weight")) for n in extra)


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for ckpt in (False, True):
        unet = _perturb(tiny_unet(seed=0).inflate())
        set_trainable(unet)
        if ckpt:
            unet.enable_gradient_checkpointing()
        a = inputs(seed=3, f=2)
        loss = unet(**a).square().mean()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in unet.named_parameters() if p.requires_grad})
        assert all(p.grad is None for n, p in unet.named_parameters() if not p.requires_grad)
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-6, rtol=1e-4)
    assert any(g.abs().max() > 0 for k, g in grads[0].items() if "film" in k)


def test_motion_module_file_round_trip(tmp_path):
    unet = _perturb(tiny_unet(seed=0).inflate().eval())
    path = save_motion_module(unet, tmp_path / "mm.safetensors", {"steps": 10, "prompts": ["a"]})
    config, meta, state = read_motion_module(path)
    assert config == MotionConfig() and json.loads(meta["steps"]) == 10
    fresh = tiny_unet(seed=0)
    assert apply_motion_module(fresh, path) == str(path)
    a = inputs(seed=4)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(**a), unet(**a))
    assert not list(tmp_path.glob(".*tmp"))


def test_motion_module_for_another_base_is_rejected(tmp_path):
    other = tiny_unet(seed=0)
    other.register_to_config(context_dim=65)  # as if trained on a different configuration
    other.inflate()
    path = save_motion_module(other, tmp_path / "mm.safetensors")
    with pytest.raises(ModelFileError, match="another base model configuration.*context_dim"):
        apply_motion_module(tiny_unet(seed=0), path)
    plain = tmp_path / "not_motion.safetensors"
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(plain))
    with pytest.raises(ModelFileError, match="not a motion-module file"):
        apply_motion_module(tiny_unet(seed=0), plain)
