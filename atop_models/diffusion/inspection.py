"""Reports on weights without building the models: counts, dtypes, and the key/shape differences against
the architecture the weights claim to be (used by ``python -m atop_models inspect``)."""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import torch

from ..errors import ModelFileError
from .checkpoints import (MOTION_FORMAT, UNET_PREFIX, VAE_PREFIX, closest_unet, compare_keys, detect_format,
                          expected_unet_shapes, expected_vae_shapes, split_original)
from .motion import is_motion_key
from .tiny import KNOWN_VAE_CONFIGS, REAL_UNET_CONFIG, TINY_UNET_CONFIG


def count_config(name: str, motion: bool = False) -> dict:
    """``{"parameters": n, "tensors": k}`` of the UNet of a named configuration (meta device)."""
    config = {"real": REAL_UNET_CONFIG, "tiny": TINY_UNET_CONFIG}[name]
    found = expected_unet_shapes(config, motion=motion)
    return {"parameters": sum(math.prod(s) for s in found.values()), "tensors": len(found)}


def file_shapes(path: Path) -> tuple[dict[str, tuple], Counter]:
    """Shapes and dtype counts of the tensors in a weights file (safetensors read from the header only)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        shapes, dtypes = {}, Counter()
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                sl = f.get_slice(key)
                shapes[key] = tuple(sl.get_shape())
                dtypes[str(sl.get_dtype()).lower()] += 1
        return shapes, dtypes
    from .checkpoints import read_state_dict

    state = read_state_dict(path)
    return ({k: tuple(v.shape) for k, v in state.items()},
            Counter(str(v.dtype).replace("torch.", "") for v in state.values()))


def _dtype_name(dtypes: Counter) -> str:
    names = {"f16": "float16", "f32": "float32", "bf16": "bfloat16"}
    return ", ".join(f"{names.get(k, k)} x{n}" for k, n in dtypes.most_common())


def _unet_section(found: dict[str, tuple], config: dict | None = None) -> dict:
    base = {k: v for k, v in found.items() if not is_motion_key(k)}
    if config is not None:
        name, report = "from config.json", compare_keys(expected_unet_shapes(config), base)
    else:
        name, report = closest_unet(base)
    return {"architecture": name, "parameters": sum(math.prod(s) for s in base.values()), "tensors": len(base),
            "motion_tensors": len(found) - len(base), "ok": report.ok, **report.to_dict()}


def _vae_section(found: dict[str, tuple]) -> dict:
    reports = [compare_keys(expected_vae_shapes(cfg), found) for cfg in KNOWN_VAE_CONFIGS.values()]
    report = min(reports, key=lambda r: len(r.missing) + len(r.unexpected) + len(r.mismatched))
    return {"parameters": sum(math.prod(s) for s in found.values()), "tensors": len(found), "ok": report.ok,
            **report.to_dict()}


def inspect_path(path: str) -> dict:
    """Format, counts, dtypes and key differences of a model folder, checkpoint or motion-module file."""
    info = detect_format(path)
    out: dict = {"path": str(info.path), "format": info.label}
    if info.variant:
        out["variant"] = info.variant
    if info.kind == "original-single-file":
        from .vae_keys import convert_ldm_vae

        found, dtypes = file_shapes(info.path)
        unet, vae_ldm, ignored, unknown = split_original({k: torch.empty(0) for k in found})
        unet = {k[len(UNET_PREFIX):]: v for k, v in found.items() if k.startswith(UNET_PREFIX)}
        vae_ldm = {k[len(VAE_PREFIX):]: v for k, v in found.items() if k.startswith(VAE_PREFIX)}
        out.update(dtype=_dtype_name(dtypes), tensors=len(found),
                   parameters=sum(math.prod(s) for s in found.values()))
        out["unet"] = _unet_section(unet)
        levels = len({m[1] for k in vae_ldm if (m := re.match(r"encoder\.down\.(\d+)\.", k))}) or 4
        vae, vae_unknown = convert_ldm_vae({k: torch.empty(s, device="meta") for k, s in vae_ldm.items()}, levels)
        out["vae"] = _vae_section({k: tuple(v.shape) for k, v in vae.items()})
        out["vae"]["unexpected"] += [VAE_PREFIX + k for k in vae_unknown]
        out["vae"]["ok"] = out["vae"]["ok"] and not vae_unknown and bool(vae_ldm)
        out["not_used"] = ignored + unknown
        out["ok"] = out["unet"]["ok"] and out["vae"]["ok"]
    elif info.kind in ("unet-state-dict",):
        found, dtypes = file_shapes(info.path)
        out.update(dtype=_dtype_name(dtypes), unet=_unet_section(found))
        out["ok"] = False
        out["note"] = "a bare UNet weights file: choose the whole model folder or the original checkpoint"
    elif info.kind in ("diffusers-folder", "unet-folder"):
        folder = info.path / "unet" if info.kind == "diffusers-folder" else info.path
        out.update(_folder_unet(folder))
        ok = out["unet"]["ok"]
        if info.kind == "diffusers-folder":
            subs = ["unet", "vae", "text_encoder", "tokenizer", "image_encoder", "feature_extractor", "scheduler"]
            out["missing_folders"] = [s for s in subs if not (info.path / s).is_dir()]
            vfile = info.path / "vae" / "diffusion_pytorch_model.safetensors"
            if vfile.is_file():
                vfound, _ = file_shapes(vfile)
                out["vae"] = _vae_section(vfound)
                ok = ok and out["vae"]["ok"]
            ok = ok and not out["missing_folders"]
        out["ok"] = ok
    elif info.kind == "motion-module":
        from .checkpoints import _safetensors_metadata

        found, dtypes = file_shapes(info.path)
        meta = _safetensors_metadata(info.path)
        out.update(dtype=_dtype_name(dtypes), tensors=len(found), parameters=sum(math.prod(s) for s in found.values()))
        out["metadata"] = {k: v for k, v in meta.items() if k != "format"}
        out["ok"] = meta.get("format") == MOTION_FORMAT
    return out


def _folder_unet(folder: Path) -> dict:
    cfg_path = folder / "config.json"
    wfile = folder / "diffusion_pytorch_model.safetensors"
    if not cfg_path.is_file() or not wfile.is_file():
        raise ModelFileError(f"{folder}: config.json or diffusion_pytorch_model.safetensors missing")
    raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    config = dict(REAL_UNET_CONFIG)
    config.update({k: v for k, v in raw.items() if k in REAL_UNET_CONFIG})
    found, dtypes = file_shapes(wfile)
    return {"dtype": _dtype_name(dtypes), "unet": _unet_section(found, config)}
