"""Key conversion between the LDM autoencoder names used in ImageDream's single-file checkpoints
(``vae_model.*``) and diffusers' ``AutoencoderKL`` names. Attention projections are 1x1 convolutions in
LDM and linears in diffusers; the conversion reshapes them."""
from __future__ import annotations

import re

import torch

_RESNET = {"nin_shortcut": "conv_shortcut"}
_ATTN_TO_DIFFUSERS = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_ATTN_TO_LDM = {v: k for k, v in _ATTN_TO_DIFFUSERS.items()}
_TOP = {"norm_out": "conv_norm_out"}


def ldm_to_diffusers_key(key: str, num_levels: int) -> str:
    """``encoder.down.1.block.0.nin_shortcut.weight`` -> ``encoder.down_blocks.1.resnets.0.conv_shortcut.weight``;
    decoder ``up.k`` becomes ``up_blocks.(num_levels-1-k)``. Raises KeyError for a name it does not know."""
    m = re.fullmatch(r"(encoder|decoder)\.(.+)", key)
    if not m:
        if re.fullmatch(r"(post_)?quant_conv\.(weight|bias)", key):
            return key
        raise KeyError(key)
    side, rest = m.groups()
    if m2 := re.fullmatch(r"(conv_in|conv_out|norm_out)\.(weight|bias)", rest):
        return f"{side}.{_TOP.get(m2[1], m2[1])}.{m2[2]}"
    if m2 := re.fullmatch(r"(down|up)\.(\d+)\.block\.(\d+)\.(\w+)\.(weight|bias)", rest):
        kind, level, j, name, p = m2.groups()
        level = int(level) if kind == "down" else num_levels - 1 - int(level)
        return f"{side}.{kind}_blocks.{level}.resnets.{j}.{_RESNET.get(name, name)}.{p}"
    if m2 := re.fullmatch(r"down\.(\d+)\.downsample\.conv\.(weight|bias)", rest):
        return f"{side}.down_blocks.{m2[1]}.downsamplers.0.conv.{m2[2]}"
    if m2 := re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(weight|bias)", rest):
        return f"{side}.up_blocks.{num_levels - 1 - int(m2[1])}.upsamplers.0.conv.{m2[2]}"
    if m2 := re.fullmatch(r"mid\.block_(\d)\.(\w+)\.(weight|bias)", rest):
        return f"{side}.mid_block.resnets.{int(m2[1]) - 1}.{_RESNET.get(m2[2], m2[2])}.{m2[3]}"
    if m2 := re.fullmatch(r"mid\.attn_1\.(\w+)\.(weight|bias)", rest):
        if m2[1] in _ATTN_TO_DIFFUSERS:
            return f"{side}.mid_block.attentions.0.{_ATTN_TO_DIFFUSERS[m2[1]]}.{m2[2]}"
    raise KeyError(key)


def diffusers_to_ldm_key(key: str, num_levels: int) -> str:
    """The inverse of :func:`ldm_to_diffusers_key`."""
    m = re.fullmatch(r"(encoder|decoder)\.(.+)", key)
    if not m:
        if re.fullmatch(r"(post_)?quant_conv\.(weight|bias)", key):
            return key
        raise KeyError(key)
    side, rest = m.groups()
    if m2 := re.fullmatch(r"(conv_in|conv_out|conv_norm_out)\.(weight|bias)", rest):
        return f"{side}.{'norm_out' if m2[1] == 'conv_norm_out' else m2[1]}.{m2[2]}"
    if m2 := re.fullmatch(r"(down|up)_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(weight|bias)", rest):
        kind, level, j, name, p = m2.groups()
        level = int(level) if kind == "down" else num_levels - 1 - int(level)
        return f"{side}.{kind}.{level}.block.{j}.{'nin_shortcut' if name == 'conv_shortcut' else name}.{p}"
    if m2 := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)", rest):
        return f"{side}.down.{m2[1]}.downsample.conv.{m2[2]}"
    if m2 := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)", rest):
        return f"{side}.up.{num_levels - 1 - int(m2[1])}.upsample.conv.{m2[2]}"
    if m2 := re.fullmatch(r"mid_block\.resnets\.(\d)\.(\w+)\.(weight|bias)", rest):
        name = "nin_shortcut" if m2[2] == "conv_shortcut" else m2[2]
        return f"{side}.mid.block_{int(m2[1]) + 1}.{name}.{m2[3]}"
    if m2 := re.fullmatch(r"mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)", rest):
        return f"{side}.mid.attn_1.{_ATTN_TO_LDM[m2[1]]}.{m2[2]}"
    raise KeyError(key)


def _is_attn_proj(diffusers_key: str) -> bool:
    return bool(re.search(r"mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$", diffusers_key))


def convert_ldm_vae(state: dict[str, torch.Tensor], num_levels: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """LDM-named VAE weights -> (diffusers-named weights, keys that are not VAE weights)."""
    out, unknown = {}, []
    for key, value in state.items():
        try:
            new = ldm_to_diffusers_key(key, num_levels)
        except KeyError:
            unknown.append(key)
            continue
        if _is_attn_proj(new) and value.dim() == 4:
            value = value[:, :, 0, 0]  # 1x1 conv -> linear
        out[new] = value
    return out, unknown


def to_ldm_vae(state: dict[str, torch.Tensor], num_levels: int) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL weights -> LDM names (as stored in the original checkpoints)."""
    out = {}
    for key, value in state.items():
        if _is_attn_proj(key) and value.dim() == 2:
            value = value[:, :, None, None]
        out[diffusers_to_ldm_key(key, num_levels)] = value
    return out
