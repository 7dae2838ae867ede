"""The multi-view UNet: ImageDream's exact key set and sizes, its attention semantics, both call modes."""
from __future__ import annotations

import math

import pytest
import torch

from atop_models.diffusion.attention import CrossAttention
from atop_models.diffusion.tiny import REAL_UNET_CONFIG, TINY_UNET_CONFIG, tiny_unet
from atop_models.diffusion.unet import MultiViewUNet, timestep_embedding

torch.set_num_threads(1)


def meta_unet(config):
    with torch.device("meta"):
        return MultiViewUNet(**config)


def test_real_configuration_has_imagedreams_size_on_meta_device():
    sd = meta_unet(REAL_UNET_CONFIG).state_dict()
    assert sum(v.numel() for v in sd.values()) == 941_672_900
    assert len(sd) == 773
    by_part = {}
    for k, v in sd.items():
        by_part[k.split(".")[0]] = by_part.get(k.split(".")[0], 0) + v.numel()
    assert by_part["image_embed"] == 48_541_696
    assert by_part["camera_embed"] == 1_661_440
    assert sum(v.numel() for k, v in sd.items() if "_ip." in k) == 25_559_040
    assert set(by_part) == {"time_embed", "camera_embed", "image_embed", "input_blocks", "middle_block",
                            "output_blocks", "out"}


@pytest.mark.parametrize("key,shape", [
    ("time_embed.0.weight", (1280, 320)),
    ("camera_embed.0.weight", (1280, 16)),
    ("image_embed.latents", (1, 16, 1024)),
    ("image_embed.proj_in.weight", (1024, 1280)),
    ("image_embed.layers.3.0.to_kv.weight", (1536, 1024)),
    ("image_embed.layers.3.1.3.weight", (1024, 4096)),
    ("input_blocks.0.0.weight", (320, 4, 3, 3)),
    ("input_blocks.1.1.proj_in.weight", (320, 320)),
    ("input_blocks.1.1.transformer_blocks.0.attn2.to_k_ip.weight", (320, 1024)),
    ("input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight", (2560, 320)),
    ("input_blocks.3.0.op.weight", (320, 320, 3, 3)),
    ("input_blocks.4.0.skip_connection.weight", (640, 320, 1, 1)),
    ("input_blocks.11.0.emb_layers.1.weight", (1280, 1280)),
    ("middle_block.1.transformer_blocks.0.attn1.to_q.weight", (1280, 1280)),
    ("middle_block.2.out_layers.3.weight", (1280, 1280, 3, 3)),
    ("output_blocks.0.0.in_layers.0.weight", (2560,)),
    ("output_blocks.2.1.conv.weight", (1280, 1280, 3, 3)),
    ("output_blocks.5.2.conv.weight", (1280, 1280, 3, 3)),
    ("output_blocks.8.2.conv.weight", (640, 640, 3, 3)),
    ("output_blocks.11.1.proj_out.weight", (320, 320)),
    ("out.0.weight", (320,)),
    ("out.2.weight", (4, 320, 3, 3)),
])
def test_original_key_names_and_shapes(key, shape):
    sd = meta_unet(REAL_UNET_CONFIG).state_dict()
    assert tuple(sd[key].shape) == shape


def test_tiny_configuration_has_the_same_structure():
    real = set(meta_unet(REAL_UNET_CONFIG).state_dict())
    tiny = set(meta_unet(TINY_UNET_CONFIG).state_dict())
    assert tiny <= real
    # Only the resampler depth differs (4 layers vs 1: 33 tensors).
    assert all(k.startswith("image_embed.layers.") and int(k.split(".")[2]) >= 1 for k in real - tiny)
    assert len(real - tiny) == 33 and len(tiny) == 740


def test_timestep_embedding_is_cos_then_sin():
    e = timestep_embedding(torch.tensor([0.0, 3.0]), 8)
    assert torch.allclose(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    freqs = torch.exp(-math.log(10000) * torch.arange(4) / 4)
    assert torch.allclose(e[1, :4], torch.cos(3 * freqs)) and torch.allclose(e[1, 4:], torch.sin(3 * freqs))


def _naive_attention(q, k, v, heads):
    b, lq, inner = q.shape
    d = inner // heads
    q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2) for t in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    return (w @ v).transpose(1, 2).reshape(b, lq, inner)


def test_decoupled_cross_attention_matches_a_naive_implementation():
    torch.manual_seed(0)
    attn = CrossAttention(32, 24, heads=2, dim_head=16, ip_dim=3)
    x, ctx = torch.randn(2, 5, 32), torch.randn(2, 7 + 3, 24)
    text, ip = ctx[:, :7], ctx[:, 7:]
    q = attn.to_q(x)
    want = _naive_attention(q, attn.to_k(text), attn.to_v(text), 2) + \
        _naive_attention(q, attn.to_k_ip(ip), attn.to_v_ip(ip), 2)
    assert torch.allclose(attn(x, ctx), attn.to_out(want), atol=1e-5)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet(seed=0).eval()


def inputs(b=1, f=1, v=4, seed=0, cfg=TINY_UNET_CONFIG):
    g = torch.Generator().manual_seed(seed)
    n = b * f * v
    s = cfg["image_size"]
    return dict(sample=torch.randn(n, 4, s, s, generator=g), timestep=torch.tensor(500),
                context=torch.randn(b, 77, cfg["context_dim"], generator=g),
                camera=torch.randn(v, 16, generator=g),
                image_tokens=torch.randn(b * v, 17, cfg["image_embedding_dim"], generator=g),
                num_views=v, num_frames=f)


@torch.no_grad()
def test_views_attend_to_each_other_within_a_group_only(unet):
    a = inputs(v=4)
    out = unet(**a)
    assert out.shape == a["sample"].shape and out.abs().mean() > 1e-3
    changed = dict(a, sample=a["sample"].clone())
    changed["sample"][3] += 1.0
    out2 = unet(**changed)
    assert (out2[0] - out[0]).abs().max() > 1e-4  # view 0 sees view 3 through multi-view attention
    # As four groups of one view each, view 0 no longer depends on view 3.
    single = dict(a, camera=a["camera"], num_views=1, image_tokens=a["image_tokens"], context=a["context"].expand(4, -1, -1))
    o1, o2 = unet(**single), unet(**dict(single, sample=changed["sample"]))
    assert torch.allclose(o1[0], o2[0], atol=1e-6)


@torch.no_grad()
def test_frames_are_independent_without_motion_modules(unet):
    a = inputs(b=1, f=3, v=4, seed=1)
    out = unet(**a)
    for f in range(3):
        per = dict(a, sample=a["sample"][f * 4:(f + 1) * 4], num_frames=1)
        assert torch.allclose(unet(**per), out[f * 4:(f + 1) * 4], atol=1e-5)


@torch.no_grad()
def test_reference_view_mode_replaces_last_view_without_mutating_inputs(unet):
    a = inputs(b=2, v=5, seed=2)
    a["image_tokens"] = a["image_tokens"][:2]  # [B, T, D]: one reference image per sample
    ref = torch.randn(2, 4, 8, 8)
    sample0, camera0 = a["sample"].clone(), a["camera"].clone()
    out = unet(**a, reference_latent=ref)
    assert torch.equal(a["sample"], sample0) and torch.equal(a["camera"], camera0)
    manual = a["sample"].clone().reshape(2, 5, 4, 8, 8)
    manual[:, -1] = ref
    cams = camera0.clone()
    cams[-1] = 0
    want = unet(**dict(a, sample=manual.reshape(10, 4, 8, 8), camera=cams))
    assert torch.allclose(out, want, atol=1e-6)


@torch.no_grad()
def test_per_image_and_broadcast_inputs_agree(unet):
    a = inputs(b=1, v=4, seed=3)
    full = dict(a, timestep=torch.full((4,), 500), camera=a["camera"], context=a["context"].expand(4, -1, -1))
    assert torch.allclose(unet(**a), unet(**full), atol=1e-6)
    with pytest.raises(ValueError, match="context has leading size 3"):
        unet(**dict(a, context=torch.zeros(3, 77, 64)))
    with pytest.raises(ValueError, match="not a multiple"):
        unet(**dict(a, num_frames=3))


def test_bfloat16_forward_matches_float32(unet):
    # Group norms compute in float32 internally; the rest runs in bfloat16 (supported on the CPU).
    half = tiny_unet(seed=0).to(torch.bfloat16).eval()
    a = inputs(seed=4)
    with torch.no_grad():
        out = half(**a)
        ref = unet(**a)
    assert out.dtype == a["sample"].dtype and torch.isfinite(out).all()
    assert torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), dim=0) > 0.99
