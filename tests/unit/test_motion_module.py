"""Inflation with both motion-module variants: fresh modules leave ImageDream unchanged; the paper module's
attention reads the first frame of the same view, the release module's attends over the frames of each view
at each position; what trains; gradient checkpointing gives the same gradients; motion-module files."""
from __future__ import annotations

import json

import pytest
import torch

from atop_models.diffusion.attention import VideoContext
from atop_models.diffusion.checkpoints import apply_motion_module, read_motion_module, save_motion_module
from atop_models.diffusion.motion import (MOTION_VARIANTS, MotionConfig, PaperMotionModule, ReleaseMotionModule,
                                         set_trainable, transformer_blocks)
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


def inflate(variant, seed=0):
    return tiny_unet(seed=seed).inflate(MotionConfig(variant=variant))


@pytest.fixture(scope="module", params=MOTION_VARIANTS)
def inflated(request):
    return inflate(request.param).eval()


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
    variant = inflated.config.motion_module["variant"]
    assert inflated.config.motion_module == MotionConfig(variant=variant).to_dict()
    cls = {"paper": PaperMotionModule, "release": ReleaseMotionModule}[variant]
    assert all(type(b.motion) is cls for b in blocks)
    for k, v in plain.state_dict().items():
        assert torch.equal(v, inflated.state_dict()[k])


@pytest.mark.parametrize("variant", MOTION_VARIANTS)
def test_fresh_modules_are_reproducible(variant):
    a, b = inflate(variant), inflate(variant)
    for (k, x), (_, y) in zip(a.motion_state_dict().items(), b.motion_state_dict().items()):
        assert torch.equal(x, y), k


def test_release_module_sits_before_the_cross_attention():
    """The release module's output reaches the cross-attention: with a cross-attention whose output depends
    on its input, the block differs from one where the module's update is added after it."""
    unet = _perturb(inflate("release")).eval()
    block = transformer_blocks(unet)[0]
    assert block.motion.position == "after_self_attention"
    assert transformer_blocks(inflate("paper"))[0].motion.position == "after_cross_attention"
    x = torch.randn(3 * 2, 16, 32)
    video = VideoContext(3, 2, mask=torch.rand(2, 1, 8, 8))
    context = torch.randn(6, 81, 64)
    with torch.no_grad():
        got = block(x, context, video, (4, 4))
        n = 6
        h = block.attn1(block.norm1(x.reshape(3, 32, 32))).reshape(n, 16, 32) + x
        h = block.motion(h, video, (4, 4))
        h = block.attn2(block.norm2(h), context) + h
        want = block.ff(block.norm3(h)) + h
    torch.testing.assert_close(got, want)


@torch.no_grad()
def test_release_attention_runs_over_the_frames_of_each_view_at_each_position():
    torch.manual_seed(0)
    m = ReleaseMotionModule(32, 1, MotionConfig(variant="release")).eval()
    torch.nn.init.normal_(m.to_out[0].weight)
    f, v, h, w = 3, 2, 4, 4
    x = torch.randn(f * v, h * w, 32)
    video = VideoContext(f, v, mask=torch.rand(v, 1, 16, 16))
    out = m(x, video, (h, w))
    y = x.clone()
    y[2 * v + 0, 5] += torch.randn(32)  # frame 2, view 0, position 5
    diff = (m(y, video, (h, w)) - out).abs().amax(-1).reshape(f, v, h * w)
    assert (diff[:, 0, 5] > 1e-4).all()  # every frame of that view at that position
    diff[:, 0, 5] = 0
    assert diff.max() == 0  # nothing else
    ones, zeros = (m(x, VideoContext(f, v, mask=torch.full((v, 1, 16, 16), val)), (h, w)) for val in (1.0, 0.0))
    torch.testing.assert_close(ones, zeros)  # a uniform mask standardises to zero, whatever its value
    half = torch.zeros(v, 1, 16, 16)
    half[..., :8] = 1
    assert (m(x, VideoContext(f, v, mask=half), (h, w)) - zeros).abs().mean() > 0.05 * (out - x).abs().mean()


@torch.no_grad()
def test_motion_attention_reads_the_first_frame_of_the_same_view():
    torch.manual_seed(0)
    m = PaperMotionModule(32, 1, MotionConfig(variant="paper"))
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
    variant = inflated.config.motion_module["variant"]
    unet = _perturb(inflate(variant).eval())
    a = inputs(seed=2)
    out = unet(**a)
    motion_effect = (out - inflated(**a)).abs().max()
    other = unet(**dict(a, mask=1 - a["mask"]))
    # Random weights: the mask's effect is small but far above float32 rounding (~1e-7 of the output).
    assert (out - other).abs().max() > 1e-3 * motion_effect > 0
    same = dict(a, sample=a["sample"][:V].repeat(F, 1, 1, 1))
    o = unet(**same)
    if variant == "paper":  # identical frames still differ by frame index
        assert (o[V:2 * V] - o[:V]).abs().max() > 1e-4
    else:  # no frame encoding: identical frames stay identical
        torch.testing.assert_close(o[V:2 * V], o[:V], atol=1e-6, rtol=0)


def test_what_trains():
    unet = inflate("paper")
    names = set_trainable(unet)
    assert names and all(".motion." in n for n in names)
    assert {n for n, p in unet.named_parameters() if p.requires_grad} == set(names)
    with_q = set_trainable(unet, train_query_projections=True)
    extra = set(with_q) - set(names)
    assert len(extra) == 32 and all(n.endswith(("attn1.to_q.weight", "attn2.to_q.weight")) for n in extra)
    release = inflate("release")
    names = set_trainable(release)
    extra = [n for n in names if ".motion." not in n]
    assert len(extra) == 64 and {n.split(".transformer_blocks.0.")[1] for n in extra} == {
        "attn1.to_q.weight", "attn2.to_q.weight", "attn2.to_k_ip.weight", "attn2.to_v_ip.weight"}
    assert set_trainable(release, train_query_projections=True) == names  # the release set holds them already


@pytest.mark.parametrize("variant", MOTION_VARIANTS)
def test_gradient_checkpointing_gives_the_same_gradients(variant):
    grads, stats = [], []
    for ckpt in (False, True):
        unet = _perturb(inflate(variant))
        set_trainable(unet)
        if ckpt:
            unet.enable_gradient_checkpointing()
        a = inputs(seed=3, f=2)
        loss = unet(**a).square().mean()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in unet.named_parameters() if p.requires_grad})
        stats.append({k: v.clone() for k, v in unet.motion_state_dict().items() if "running" in k})
        assert all(p.grad is None for n, p in unet.named_parameters() if not p.requires_grad)
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-6, rtol=1e-4)
    mask_weights = "film" if variant == "paper" else "mask_conv"
    assert any(g.abs().max() > 0 for k, g in grads[0].items() if mask_weights in k)
    # BatchNorm statistics move once per step, with or without recomputation
    assert len(stats[0]) == (32 if variant == "release" else 0)
    for k in stats[0]:
        torch.testing.assert_close(stats[0][k], stats[1][k])


@pytest.mark.parametrize("variant", MOTION_VARIANTS)
def test_motion_module_file_round_trip(tmp_path, variant):
    unet = _perturb(inflate(variant).eval())
    with torch.no_grad():  # what trains beside the modules is stored with them
        for n in set_trainable(unet):
            if ".motion." not in n:
                dict(unet.named_parameters())[n].mul_(1.5)
    path = save_motion_module(unet, tmp_path / "mm.safetensors", {"steps": 10, "prompts": ["a"]})
    config, meta, state = read_motion_module(path)
    assert config == MotionConfig(variant=variant) and json.loads(meta["steps"]) == 10
    assert len(json.loads(meta["base_weights"])) == (64 if variant == "release" else 0)
    fresh = tiny_unet(seed=0)
    assert apply_motion_module(fresh, path) == str(path)
    a = inputs(seed=4)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(**a), unet(**a))
    assert not list(tmp_path.glob(".*tmp"))


def test_motion_module_of_another_variant_is_refused(tmp_path):
    path = save_motion_module(inflate("paper"), tmp_path / "paper.safetensors")
    with pytest.raises(ModelFileError, match="holds 'paper' motion modules but the model was loaded with the "
                                             "'release' variant"):
        apply_motion_module(tiny_unet(seed=0), path, variant="release")
    with pytest.raises(ModelFileError, match="holds 'paper' .* 'release' variant"):
        apply_motion_module(inflate("release"), path)
    assert apply_motion_module(tiny_unet(seed=0), path) == str(path)  # no variant asked: the file's


def test_version_1_files_are_the_paper_variant():
    assert MotionConfig.from_dict({"film_hidden": 64, "version": 1}).variant == "paper"
    with pytest.raises(ValueError, match="unknown motion-module variant 'other'"):
        MotionConfig(variant="other")


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
