"""Finding, checking and loading ImageDream weights: the diffusers folder (layout of
``imagedream-ipmv-diffusers``), the original single-file checkpoints (``model.diffusion_model.*`` UNet keys,
``vae_model.*`` LDM autoencoder keys) with encoders from their own folders, and motion-module files
(safetensors with their settings in the metadata). Nothing here downloads anything: every missing file is
an error that says what to download and where to put it."""
from __future__ import annotations

import functools
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import torch

from ..errors import ModelFileError
from ..files import atomic_path
from .bundle import REFERENCE_VIEWS, MVModel
from .motion import MotionConfig, is_motion_key
from .tiny import KNOWN_UNET_CONFIGS, KNOWN_VAE_CONFIGS, REAL_UNET_CONFIG

log = logging.getLogger("atop")

SINGLE_FILE_EXTS = (".pt", ".ckpt", ".safetensors", ".pth", ".bin")
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "vae_model."
MOTION_FORMAT = "atop-motion-module"
MAX_FILM_HIDDEN = 4096  # the motion modules' mask MLP width (64 by default)

HINT_IMAGEDREAM = (
    "download ImageDream: either the diffusers folder 'ashawkey/imagedream-ipmv-diffusers' (the whole "
    "repository) into models/atop/imagedream/<name>/, or 'sd-v2.1-base-4view-ipmv.pt' from 'Peng-Wang/ImageDream' "
    "into models/atop/imagedream/ together with the encoders (see the README's model table)")
HINT_TEXT = ("download the 'text_encoder' and 'tokenizer' folders of 'stabilityai/stable-diffusion-2-1-base' into "
             "models/atop/text_encoder/<name>/")
HINT_IMAGE = ("download 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K' (config.json, model.safetensors, "
              "preprocessor_config.json) into models/atop/image_encoder/<name>/")
# Top-level entries of the original checkpoints that are not UNet/VAE weights and are not used.
_IGNORED_ORIGINAL = re.compile(r"^(clip_model\.|cond_stage_model\.|model_ema\.|betas$|alphas_cumprod|"
                               r"alphas_cumprod_prev$|sqrt_|log_one_minus|posterior_|logvar$|scale_factor$)")


# --- reading --------------------------------------------------------------------------------------
def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file or a torch file (``weights_only=True``, memory-mapped when possible);
    a ``{"state_dict": ...}`` wrapper (Lightning .ckpt) is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ModelFileError(f"cannot read {path.name}: not a valid safetensors file ({exc})") from exc
    try:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            obj = torch.load(str(path), map_location="cpu", weights_only=True)  # legacy (non-zip) torch format
    except Exception as exc:
        raise ModelFileError(
            f"cannot read {path.name} as a weights-only torch checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is corrupt, incomplete, or holds pickled objects other than tensors") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelFileError(f"{path.name} does not hold a flat dictionary of tensors")
    return obj


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:
        raise ModelFileError(f"cannot read {path.name}: not a valid safetensors file ({exc})") from exc


# --- key comparison -------------------------------------------------------------------------------
@dataclass
class KeyReport:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, expected, found

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, first: int = 5) -> str:
        parts = []
        for label, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                more = f" (+{len(items) - first} more)" if len(items) > first else ""
                parts.append(f"{len(items)} {label} keys, first: {', '.join(items[:first])}{more}")
        if self.mismatched:
            shown = ", ".join(f"{k} expected {list(a)} found {list(b)}" for k, a, b in self.mismatched[:first])
            parts.append(f"{len(self.mismatched)} keys with other shapes, first: {shown}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"missing": self.missing, "unexpected": self.unexpected,
                "mismatched": [{"key": k, "expected": list(a), "found": list(b)} for k, a, b in self.mismatched]}


def compare_keys(expected: dict[str, tuple], found: dict[str, tuple]) -> KeyReport:
    return KeyReport(
        missing=[k for k in expected if k not in found],
        unexpected=[k for k in found if k not in expected],
        mismatched=[(k, tuple(expected[k]), tuple(found[k])) for k in expected
                    if k in found and tuple(expected[k]) != tuple(found[k])])


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items()}


def expected_unet_shapes(config: dict, motion: bool = False) -> dict[str, tuple]:
    """Key -> shape of the UNet of ``config`` (built on the meta device; cached)."""
    return dict(_unet_shapes(json.dumps(config, sort_keys=True), motion))


@functools.lru_cache(maxsize=8)
def _unet_shapes(config_json: str, motion: bool) -> tuple:
    from .unet import MultiViewUNet

    with torch.device("meta"):
        unet = MultiViewUNet(**json.loads(config_json))
        if motion:
            unet.inflate()
    return tuple(shapes(unet.state_dict()).items())


def expected_vae_shapes(config: dict) -> dict[str, tuple]:
    return dict(_vae_shapes(json.dumps(config, sort_keys=True)))


@functools.lru_cache(maxsize=4)
def _vae_shapes(config_json: str) -> tuple:
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        return tuple(shapes(AutoencoderKL(**json.loads(config_json)).state_dict()).items())


def identify_unet(found: dict[str, tuple], fmt: str) -> tuple[str, dict]:
    """The known architecture whose shapes ``found`` (UNet keys without prefix) match exactly; otherwise a
    ModelFileError naming what the weights look like and what is wrong."""
    base = {k: v for k, v in found.items() if not is_motion_key(k)}
    for name, config in KNOWN_UNET_CONFIGS.items():
        if compare_keys(expected_unet_shapes(config), base).ok:
            return name, config
    if "input_blocks.0.0.weight" in base and "camera_embed.0.weight" not in base:
        what = ("a Stable Diffusion 2.x UNet" if base.get("input_blocks.1.1.proj_in.weight", (0, 0))[-1] == 320
                and _context_dim(base) == 1024 else "a Stable Diffusion UNet")
        raise ModelFileError(f"{fmt}: this is {what}, not ImageDream (no camera embedding); {HINT_IMAGEDREAM}")
    if "camera_embed.0.weight" in base and "image_embed.latents" not in base:
        raise ModelFileError(f"{fmt}: this is an MVDream (text-only multi-view) UNet, not ImageDream (no image "
                             f"prompt resampler); {HINT_IMAGEDREAM}")
    name, report = closest_unet(base)
    raise ModelFileError(f"{fmt}: the UNet weights do not match ImageDream's architecture (closest known "
                         f"configuration: {name}): {report.describe()}; {HINT_IMAGEDREAM}")


def closest_unet(base: dict[str, tuple]) -> tuple[str, KeyReport]:
    """The known UNet configuration with the fewest differing keys, and the differences."""
    reports = {name: compare_keys(expected_unet_shapes(cfg), base) for name, cfg in KNOWN_UNET_CONFIGS.items()}
    name = min(reports, key=lambda n: len(reports[n].missing) + len(reports[n].unexpected) + len(reports[n].mismatched))
    return name, reports[name]


def _context_dim(base: dict[str, tuple]) -> int:
    for k, v in base.items():
        if k.endswith("attn2.to_k.weight"):
            return int(v[1])
    return 0


def identify_vae(found: dict[str, tuple], fmt: str) -> dict:
    for config in KNOWN_VAE_CONFIGS.values():
        if compare_keys(expected_vae_shapes(config), found).ok:
            return config
    report = compare_keys(expected_vae_shapes(KNOWN_VAE_CONFIGS["imagedream-sd21"]), found)
    raise ModelFileError(f"{fmt}: the VAE weights do not match Stable Diffusion's autoencoder: "
                         f"{report.describe()}; {HINT_IMAGEDREAM}")


# --- building modules -----------------------------------------------------------------------------
def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def build_unet(config: dict, state: dict[str, torch.Tensor], dtype: torch.dtype, fmt: str):
    """A MultiViewUNet with exactly these weights (strict: any missing, extra or mis-shaped key is an error)."""
    from .unet import MultiViewUNet

    try:
        with torch.device("meta"):
            unet = MultiViewUNet(**config)
    except Exception as exc:  # a config.json with wrong types or impossible sizes
        raise ModelFileError(f"{fmt}: the UNet configuration (config.json) is invalid ({type(exc).__name__}: "
                             f"{str(exc)[:160]}); {HINT_IMAGEDREAM}") from exc
    report = compare_keys(shapes(unet.state_dict()), shapes(state))
    if not report.ok:
        raise ModelFileError(f"{fmt}: UNet weights do not match the configuration: {report.describe()}; "
                             f"{HINT_IMAGEDREAM}")
    unet.load_state_dict(_cast(state, dtype), strict=True, assign=True)
    return unet.eval()


def build_vae(config: dict, state: dict[str, torch.Tensor], fmt: str):
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        vae = AutoencoderKL(**config)
    report = compare_keys(shapes(vae.state_dict()), shapes(state))
    if not report.ok:
        raise ModelFileError(f"{fmt}: VAE weights do not match: {report.describe()}; {HINT_IMAGEDREAM}")
    vae.load_state_dict(_cast(state, torch.float32), strict=True, assign=True)
    return vae.eval()


def _read_json(path: Path, fmt: str, hint: str) -> dict:
    if not path.is_file():
        raise ModelFileError(f"{fmt}: {path.name} not found in {path.parent}; {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"it holds a {type(data).__name__}, not an object")
        return data
    except (OSError, ValueError, RecursionError) as exc:  # ValueError covers JSON and text decoding
        raise ModelFileError(f"{fmt}: cannot parse {path}: {type(exc).__name__}: {str(exc)[:160]}") from exc


def _weights_file(folder: Path, names: Iterable[str], fmt: str, hint: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise ModelFileError(f"{fmt}: no weights file ({' or '.join(names)}) in {folder}; {hint}")


def load_unet_folder(folder: Path, dtype: torch.dtype, fmt: str = "diffusers folder"):
    """``unet/``: config.json (ImageDream's or ours) + diffusion_pytorch_model.safetensors."""
    raw = _read_json(folder / "config.json", fmt, HINT_IMAGEDREAM)
    if "block_out_channels" in raw or raw.get("_class_name") == "UNet2DConditionModel":
        raise ModelFileError(f"{fmt}: {folder} holds a diffusers '{raw.get('_class_name', 'UNet')}' (plain Stable "
                             f"Diffusion layout), not ImageDream's multi-view UNet; {HINT_IMAGEDREAM}")
    known = {k: v for k, v in raw.items() if not k.startswith("_")}
    params = set(REAL_UNET_CONFIG) | {"motion_module"}
    config = dict(REAL_UNET_CONFIG)
    config.update({k: v for k, v in known.items() if k in params})
    dropped = sorted(set(known) - params)
    if dropped:
        log.debug("unet config entries not used by this implementation: %s", dropped)
    wfile = _weights_file(folder, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"), fmt,
                          HINT_IMAGEDREAM)
    state = read_state_dict(wfile)
    base_state = {k: v for k, v in state.items() if not is_motion_key(k)}
    motion_state = {k: v for k, v in state.items() if is_motion_key(k)}
    motion_cfg = config.pop("motion_module", None)
    unet = build_unet(config, base_state, dtype, f"{fmt} ({wfile.relative_to(folder.parent)})")
    if motion_cfg is not None or motion_state:
        unet.inflate(MotionConfig.from_dict(motion_cfg))
        load_motion_state(unet, motion_state, f"{fmt} ({wfile.name})")
    return unet


def load_vae_folder(folder: Path, fmt: str = "diffusers folder"):
    raw = _read_json(folder / "config.json", fmt, HINT_IMAGEDREAM)
    from diffusers import AutoencoderKL

    config = {k: v for k, v in raw.items() if not k.startswith("_")}
    accepted = set(AutoencoderKL.extract_init_dict(config)[0])
    config = {k: v for k, v in config.items() if k in accepted}
    wfile = _weights_file(folder, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"), fmt,
                          HINT_IMAGEDREAM)
    return build_vae(config, read_state_dict(wfile), f"{fmt} ({folder.name}/{wfile.name})")


class _quiet_transformers:
    """Silences transformers' own load report and progress bars: the checks here report problems instead."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self.level = hf_logging.get_verbosity()
        self.bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self.level)
        if self.bars:
            hf_logging.enable_progress_bar()
        return False


def _hf_loading_errors(info: dict, ignore: tuple[str, ...] = ()) -> KeyReport:
    report = KeyReport(missing=list(info.get("missing_keys", [])),
                       unexpected=[k for k in info.get("unexpected_keys", []) if not k.startswith(ignore)],
                       mismatched=[(k, tuple(a), tuple(b)) for k, b, a in
                                   [tuple(x) for x in info.get("mismatched_keys", [])]])
    return report


def load_text_encoder(folder: Path, dtype: torch.dtype, fmt: str = "text encoder folder"):
    """``CLIPTextModel`` + ``CLIPTokenizer`` from a folder holding ``text_encoder/`` and ``tokenizer/``
    sub-folders (a Stable Diffusion 2.1 download) or both sets of files side by side."""
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    enc_dir = folder / "text_encoder" if (folder / "text_encoder").is_dir() else folder
    tok_dir = folder / "tokenizer" if (folder / "tokenizer").is_dir() else folder
    cfg = _read_json(enc_dir / "config.json", fmt, HINT_TEXT)
    if cfg.get("model_type") not in ("clip_text_model", None) or "vision_config" in cfg:
        raise ModelFileError(f"{fmt}: {enc_dir} holds a '{cfg.get('model_type')}' model, not a CLIP text encoder; "
                             f"{HINT_TEXT}")
    if not (tok_dir / "tokenizer.json").is_file():
        for name in ("vocab.json", "merges.txt"):
            if not (tok_dir / name).is_file():
                raise ModelFileError(f"{fmt}: tokenizer files not found in {tok_dir} (tokenizer.json, or vocab.json "
                                     f"and merges.txt; {name} is missing); {HINT_TEXT}")
    from transformers import CLIPTextConfig

    from .encoders import text_output_layer

    try:
        layer = text_output_layer(CLIPTextConfig.from_pretrained(str(enc_dir), local_files_only=True))
    except ValueError as exc:
        raise ModelFileError(f"{fmt}: {enc_dir}: {exc}; {HINT_TEXT}") from exc
    _weights_file(enc_dir, ("model.safetensors", "pytorch_model.bin"), fmt, HINT_TEXT)
    with _quiet_transformers():
        model, info = CLIPTextModel.from_pretrained(str(enc_dir), torch_dtype=dtype, local_files_only=True,
                                                    output_loading_info=True)
    report = _hf_loading_errors(info)
    if not report.ok:
        raise ModelFileError(f"{fmt}: text encoder weights in {enc_dir} do not match its config: "
                             f"{report.describe()}; {HINT_TEXT}")
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    if layer == "penultimate":
        log.info("%s: a complete OpenCLIP text tower (%d layers); its penultimate layer is used, as ImageDream does",
                 fmt, model.config.num_hidden_layers)
    return model.eval(), tokenizer


def load_image_encoder(folder: Path, dtype: torch.dtype, processor_dir: Optional[Path] = None,
                       fmt: str = "image encoder folder"):
    """``CLIPVisionModel`` (from a vision-only or a full CLIP folder) and its ``CLIPImageProcessor``."""
    from transformers import CLIPImageProcessor, CLIPVisionModel

    folder = Path(folder)
    cfg = _read_json(folder / "config.json", fmt, HINT_IMAGE)
    if cfg.get("model_type") not in ("clip", "clip_vision_model"):
        raise ModelFileError(f"{fmt}: {folder} holds a '{cfg.get('model_type')}' model, not a CLIP image encoder; "
                             f"{HINT_IMAGE}")
    _weights_file(folder, ("model.safetensors", "pytorch_model.bin"), fmt, HINT_IMAGE)
    with _quiet_transformers():
        model, info = CLIPVisionModel.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True,
                                                      output_loading_info=True)
    # A full CLIP folder also holds the text tower and projections: not needed here.
    report = _hf_loading_errors(info, ignore=("text_model.", "text_projection", "visual_projection", "logit_scale"))
    if not report.ok:
        raise ModelFileError(f"{fmt}: image encoder weights in {folder} do not match its config: "
                             f"{report.describe()}; {HINT_IMAGE}")
    pdir = processor_dir or folder
    if not (pdir / "preprocessor_config.json").is_file():
        raise ModelFileError(f"{fmt}: preprocessor_config.json not found in {pdir}; {HINT_IMAGE}")
    processor = CLIPImageProcessor.from_pretrained(str(pdir), local_files_only=True)
    return model.eval(), processor


def _check_compatible(unet, text_encoder, image_encoder, fmt: str) -> None:
    ctx, emb = unet.config.context_dim, unet.config.image_embedding_dim
    if text_encoder.config.hidden_size != ctx:
        raise ModelFileError(f"{fmt}: the text encoder's width {text_encoder.config.hidden_size} does not match the "
                             f"UNet's context width {ctx}; {HINT_TEXT}")
    if image_encoder.config.hidden_size != emb:
        raise ModelFileError(f"{fmt}: the image encoder's width {image_encoder.config.hidden_size} does not match "
                             f"the UNet's image-token width {emb}; {HINT_IMAGE}")


# --- formats --------------------------------------------------------------------------------------
@dataclass
class FormatInfo:
    kind: str  # diffusers-folder | original-single-file | unet-folder | motion-module | unet-state-dict
    path: Path
    variant: str = ""

    @property
    def label(self) -> str:
        return {"diffusers-folder": "diffusers folder", "original-single-file": "original single-file checkpoint",
                "unet-folder": "UNet folder", "motion-module": "motion-module file",
                "unet-state-dict": "bare UNet weights file"}.get(self.kind, self.kind)


def _variant(name: str) -> str:
    name = name.lower()
    if "ipmv-local" in name or name.endswith("-local"):
        return "ipmv-local"
    return "ipmv" if "ipmv" in name else ""


def _file_keys(path: Path) -> list[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return list(f.keys())
        except Exception as exc:
            raise ModelFileError(f"cannot read {path.name}: not a valid safetensors file ({exc})") from exc
    return list(read_state_dict(path))


def detect_format(path: str | os.PathLike) -> FormatInfo:
    """What kind of weights ``path`` holds, or a ModelFileError saying why it is none of them."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path} does not exist; {HINT_IMAGEDREAM}")
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return FormatInfo("diffusers-folder", path, _variant(path.name) or "ipmv")
        if (path / "config.json").is_file() and any((path / n).is_file() for n in
                                                     ("diffusion_pytorch_model.safetensors",
                                                      "diffusion_pytorch_model.bin")):
            return FormatInfo("unet-folder", path)
        if (path / "unet").is_dir():
            raise ModelFileError(f"{path} has a unet/ folder but no model_index.json: not a complete diffusers "
                                 f"model folder; {HINT_IMAGEDREAM}")
        raise ModelFileError(f"{path} is a folder without model_index.json: not a diffusers model folder; "
                             f"{HINT_IMAGEDREAM}")
    if path.suffix.lower() not in SINGLE_FILE_EXTS:
        raise ModelFileError(f"{path.name}: unsupported file type '{path.suffix}' (expected .pt, .ckpt or "
                             f".safetensors); {HINT_IMAGEDREAM}")
    if path.suffix == ".safetensors" and _safetensors_metadata(path).get("format") == MOTION_FORMAT:
        return FormatInfo("motion-module", path)
    keys = _file_keys(path)
    if any(k.startswith(UNET_PREFIX) for k in keys):
        return FormatInfo("original-single-file", path, _variant(path.stem))
    if any(k.startswith(("input_blocks.", "middle_block.")) for k in keys):
        return FormatInfo("unet-state-dict", path)
    if any(is_motion_key(k) for k in keys):
        raise ModelFileError(f"{path.name}: motion-module weights without their metadata (format="
                             f"'{MOTION_FORMAT}'); save motion modules with save_motion_module")
    if any(k.startswith(("down_blocks.", "conv_in.")) for k in keys):
        raise ModelFileError(f"{path.name}: a diffusers-named UNet or VAE weights file, not an ImageDream "
                             f"checkpoint; {HINT_IMAGEDREAM}")
    raise ModelFileError(f"{path.name}: no UNet weights (keys '{UNET_PREFIX}*') found in {len(keys)} entries "
                         f"(first: {', '.join(keys[:3])}); {HINT_IMAGEDREAM}")


# --- motion modules -------------------------------------------------------------------------------
ARCH_KEYS = tuple(REAL_UNET_CONFIG)


def base_architecture(config) -> dict:
    return {k: (list(config[k]) if isinstance(config[k], (list, tuple)) else config[k]) for k in ARCH_KEYS}


def save_motion_module(unet, path: str | os.PathLike, metadata: Optional[dict] = None,
                       base_keys: Optional[Iterable[str]] = None) -> Path:
    """Writes the motion-module weights of ``unet`` (floating tensors as fp32) atomically as safetensors,
    together with the base weights that trained with them (``base_keys``; by default the variant's own set,
    e.g. the release variant's attention projections), so that loading the file reproduces the fine-tuned
    model. The metadata holds the motion settings, the base architecture, the names of the stored base
    weights and the caller's ``metadata`` (JSON-encoded values)."""
    from safetensors.torch import save_file

    from .motion import trained_base_keys

    if not unet.is_inflated:
        raise ValueError("the UNet has no motion modules to save")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base_keys = sorted(trained_base_keys(unet) if base_keys is None else base_keys)
    params = dict(unet.named_parameters())
    tensors = dict(unet.motion_state_dict(), **{k: params[k] for k in base_keys})
    state = {k: (v.detach().float() if v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in tensors.items()}
    meta = {"format": MOTION_FORMAT, "motion_config": json.dumps(unet.config.motion_module),
            "base_architecture": json.dumps(base_architecture(unet.config)), "base_weights": json.dumps(base_keys)}
    for k, v in (metadata or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def read_motion_module(path: str | os.PathLike) -> tuple[MotionConfig, dict, dict[str, torch.Tensor]]:
    """(motion settings, metadata, weights) of a motion-module file; the weights include the base weights
    that trained with the modules (metadata ``base_weights``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"motion-module file not found: {path}")
    if path.suffix != ".safetensors":
        raise ModelFileError(f"{path.name}: motion modules are .safetensors files written by fine-tuning")
    meta = _safetensors_metadata(path)
    if meta.get("format") != MOTION_FORMAT:
        raise ModelFileError(f"{path.name} is not a motion-module file (its metadata has no format="
                             f"'{MOTION_FORMAT}'); choose a file written by MotionModuleFinetune")
    try:
        config = MotionConfig.from_dict(json.loads(meta["motion_config"]))
        if "base_architecture" in meta and not isinstance(json.loads(meta["base_architecture"]), dict):
            raise ValueError("base_architecture is not an object")
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise ModelFileError(f"{path.name}: unreadable motion settings in the metadata ({type(exc).__name__}: "
                             f"{str(exc)[:160]}); choose a file written by MotionModuleFinetune") from exc
    state = read_state_dict(path)
    # The settings size the modules that are built before the weights are loaded: they must fit the weights.
    widths = {tuple(v.shape)[0] for k, v in state.items() if k.endswith("film_scale.0.weight")}
    if not 1 <= config.film_hidden <= MAX_FILM_HIDDEN or widths - {config.film_hidden}:
        raise ModelFileError(f"{path.name}: its motion settings say film_hidden={config.film_hidden}, its weights "
                             f"{sorted(widths)}; the file is damaged; choose a file written by MotionModuleFinetune")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelFileError(f"{path.name}: {len(bad)} of {len(state)} tensors hold values that are not finite "
                             f"(NaN/inf; first: {bad[0]}); the file is damaged (a diverged fine-tuning run?); use "
                             "an earlier checkpoint")
    return config, meta, state


def load_motion_state(unet, state: dict[str, torch.Tensor], fmt: str) -> None:
    """Loads motion-module weights, and the base weights stored beside them, into ``unet``."""
    motion = {k: v for k, v in state.items() if is_motion_key(k)}
    base = {k: v for k, v in state.items() if not is_motion_key(k)}
    report = compare_keys(shapes(unet.motion_state_dict()), shapes(motion))
    params = shapes(dict(unet.named_parameters()))
    report.unexpected += [k for k in base if k not in params]
    report.mismatched += [(k, params[k], tuple(v.shape)) for k, v in base.items() if k in params
                          and params[k] != tuple(v.shape)]
    if not report.ok:
        raise ModelFileError(f"{fmt}: motion-module weights do not fit this UNet: {report.describe()}")
    unet.load_state_dict(_cast(state, unet.dtype), strict=False)


def apply_motion_module(unet, path: Optional[str | os.PathLike], variant: Optional[str] = None) -> str:
    """Inflates ``unet`` with fresh motion modules of ``variant`` (``path`` None) or the ones stored at
    ``path`` (which must be of ``variant`` when one is given); returns a description of the source."""
    if path is None:
        if not unet.is_inflated:
            unet.inflate(MotionConfig(variant=variant) if variant else None)
        return "fresh"
    config, meta, state = read_motion_module(path)
    fmt = f"motion module {Path(path).name}"
    if "base_architecture" in meta:
        want = json.loads(meta["base_architecture"])
        have = base_architecture(unet.config)
        diff = [f"{k}: module {want.get(k)!r} vs model {have[k]!r}" for k in have if want.get(k) != have[k]]
        if diff:
            raise ModelFileError(f"{fmt} was trained for another base model configuration ({'; '.join(diff[:4])}); "
                                 "load the base model it was trained with")
    have = MotionConfig.from_dict(unet.config.motion_module) if unet.is_inflated else None
    wanted = variant or (have.variant if have else None)
    if wanted and config.variant != wanted:
        raise ModelFileError(f"{fmt} holds '{config.variant}' motion modules but the model was loaded with the "
                             f"'{wanted}' variant; load the model with motion variant '{config.variant}' or choose "
                             f"a '{wanted}' motion module")
    if have is not None and have != config:
        raise ModelFileError(f"{fmt}: its settings {config.to_dict()} differ from the model's motion modules "
                             f"{have.to_dict()}")
    if not unet.is_inflated:
        unet.inflate(config)
    load_motion_state(unet, state, fmt)
    return str(path)


# --- whole models ---------------------------------------------------------------------------------
def load_diffusers_folder(folder: Path, dtype: torch.dtype, text_encoder_dir: Optional[Path] = None,
                          image_encoder_dir: Optional[Path] = None) -> MVModel:
    """The diffusers layout; ``text_encoder_dir`` / ``image_encoder_dir`` replace its own encoders (and may
    stand in for missing ``text_encoder/``+``tokenizer/`` or ``image_encoder/`` sub-folders)."""
    fmt = "diffusers folder"
    index = _read_json(folder / "model_index.json", fmt, HINT_IMAGEDREAM)
    unet_class = (index.get("unet") or [None, None])[-1]
    if unet_class == "UNet2DConditionModel" or "StableDiffusion" in str(index.get("_class_name", "")):
        raise ModelFileError(f"{fmt} {folder.name}: this is a '{index.get('_class_name')}' folder (a plain Stable "
                             f"Diffusion UNet), not ImageDream; {HINT_IMAGEDREAM}")
    for sub in ("unet", "vae", "scheduler"):
        if not (folder / sub).is_dir():
            raise ModelFileError(f"{fmt} {folder.name}: sub-folder '{sub}/' is missing; {HINT_IMAGEDREAM}")
    for subs, given, what, hint in ((("text_encoder", "tokenizer"), text_encoder_dir, "text encoder", HINT_TEXT),
                                    (("image_encoder",), image_encoder_dir, "image encoder (OpenCLIP ViT-H/14's "
                                     "vision tower, which encodes the image prompt)", HINT_IMAGE)):
        missing = [s for s in subs if not (folder / s).is_dir()]
        if missing and given is None:
            raise ModelFileError(f"{fmt} {folder.name}: sub-folder '{missing[0]}/' is missing: the {what} is needed; "
                                 f"download it with the rest of 'ashawkey/imagedream-ipmv-diffusers', or choose an "
                                 f"{what.split(' (')[0]} folder: {hint}")
    if "unet" not in index:
        raise ModelFileError(f"{fmt} {folder.name}: model_index.json lists no unet; {HINT_IMAGEDREAM}")
    unet = load_unet_folder(folder / "unet", dtype, fmt)
    vae = load_vae_folder(folder / "vae", fmt)
    if text_encoder_dir is None:
        text_encoder, tokenizer = load_text_encoder(folder, dtype, fmt)
    else:
        text_encoder, tokenizer = load_text_encoder(Path(text_encoder_dir), dtype)
    if image_encoder_dir is None:
        processor_dir = folder / "feature_extractor" if (folder / "feature_extractor").is_dir() else None
        image_encoder, processor = load_image_encoder(folder / "image_encoder", dtype, processor_dir, fmt)
    else:
        image_encoder, processor = load_image_encoder(Path(image_encoder_dir), dtype)
    scheduler = _read_json(folder / "scheduler" / "scheduler_config.json", fmt, HINT_IMAGEDREAM)
    _check_compatible(unet, text_encoder, image_encoder, fmt)
    return MVModel(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, image_encoder=image_encoder,
                   image_processor=processor, scheduler_config=scheduler, dtype=dtype, source=str(folder),
                   source_format=fmt, variant=_variant(folder.name) or "ipmv")


def split_original(state: dict[str, torch.Tensor]) -> tuple[dict, dict, list[str], list[str]]:
    """(UNet weights, LDM VAE weights, ignored keys, unknown keys) of an original checkpoint."""
    unet, vae, ignored, unknown = {}, {}, [], []
    for k, v in state.items():
        if k.startswith(UNET_PREFIX):
            unet[k[len(UNET_PREFIX):]] = v
        elif k.startswith(VAE_PREFIX):
            vae[k[len(VAE_PREFIX):]] = v
        elif _IGNORED_ORIGINAL.match(k):
            ignored.append(k)
        else:
            unknown.append(k)
    return unet, vae, ignored, unknown


def load_original_single_file(path: Path, text_encoder_dir: Optional[Path], image_encoder_dir: Optional[Path],
                              dtype: torch.dtype, with_encoders: bool = True) -> MVModel:
    """An original checkpoint with the encoders from their own folders; ``with_encoders`` False loads the UNet
    and the VAE only (the folders are then not needed, and the model has no encoders)."""
    from .vae_keys import convert_ldm_vae

    fmt = f"original single-file checkpoint {path.name}"
    if with_encoders and (text_encoder_dir is None or image_encoder_dir is None):
        missing = [n for n, d in (("text encoder", text_encoder_dir), ("image encoder", image_encoder_dir)) if d is None]
        raise ModelFileError(f"{fmt}: single-file checkpoints need the {' and '.join(missing)} from their own "
                             f"folders; {HINT_TEXT}; {HINT_IMAGE}")
    state = read_state_dict(path)
    unet_sd, vae_ldm, ignored, unknown = split_original(state)
    if unknown:
        log.info("%s: %d entries that are neither UNet nor VAE weights are not used (first: %s)", fmt,
                 len(unknown), ", ".join(unknown[:3]))
    name, config = identify_unet(shapes(unet_sd), fmt)
    unet = build_unet(config, unet_sd, dtype, fmt)
    if not vae_ldm:
        raise ModelFileError(f"{fmt}: no VAE weights (keys '{VAE_PREFIX}*') in the file; {HINT_IMAGEDREAM}")
    levels = len({m[1] for k in vae_ldm if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
    vae_sd, vae_unknown = convert_ldm_vae(vae_ldm, levels)
    if vae_unknown:
        raise ModelFileError(f"{fmt}: {len(vae_unknown)} VAE keys with unknown names, first: "
                             f"{', '.join(vae_unknown[:5])}; {HINT_IMAGEDREAM}")
    vae = build_vae(identify_vae(shapes(vae_sd), fmt), vae_sd, fmt)
    text_encoder = tokenizer = image_encoder = processor = None
    if with_encoders:
        text_encoder, tokenizer = load_text_encoder(Path(text_encoder_dir), dtype)
        image_encoder, processor = load_image_encoder(Path(image_encoder_dir), dtype)
        _check_compatible(unet, text_encoder, image_encoder, fmt)
    from .schedule import IMAGEDREAM_SCHEDULER_CONFIG

    return MVModel(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, image_encoder=image_encoder,
                   image_processor=processor, scheduler_config=dict(IMAGEDREAM_SCHEDULER_CONFIG), dtype=dtype,
                   source=str(path), source_format="original single-file checkpoint", variant=_variant(path.stem),
                   notes=[f"architecture: {name}"] + ([] if with_encoders else ["UNet and VAE only (no encoders)"]))


def check_reference_view(model: MVModel, reference_view: str) -> None:
    """ModelFileError unless the loaded UNet can take ImageDream's reference (5th) view in ``reference_view``
    "pixel" mode ("none" always works)."""
    if reference_view not in REFERENCE_VIEWS:
        raise ModelFileError(f"reference_view must be one of {', '.join(REFERENCE_VIEWS)}, got {reference_view!r}")
    if reference_view == "none":
        return
    if model.unet.config.ip_dim <= 0:
        raise ModelFileError("reference_view 'pixel' needs a UNet with an image prompt (ImageDream); this UNet has "
                             f"none; use reference_view 'none'; {HINT_IMAGEDREAM}")
    if model.variant == "ipmv-local":
        raise ModelFileError(f"reference_view 'pixel' needs ImageDream's pixel-controller weights "
                             f"(sd-v2.1-base-4view-ipmv.pt or the diffusers port), which were trained with the 5th "
                             f"view; {Path(model.source).name} is the local variant, trained without it: use "
                             "reference_view 'none' or load the pixel-controller weights")


def load_model(path: str | os.PathLike, text_encoder: Optional[str | os.PathLike] = None,
               image_encoder: Optional[str | os.PathLike] = None, motion_module: Optional[str | os.PathLike] = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
               train_query_projections: bool = False, motion_variant: Optional[str] = None,
               reference_view: str = "none", with_encoders: bool = True) -> MVModel:
    """Loads ImageDream from a diffusers folder or an original single file (``text_encoder`` /
    ``image_encoder`` folders then required unless ``with_encoders`` is False; for a diffusers folder they
    replace its own when given), inflates it with motion modules of ``motion_variant`` (fresh, or from
    ``motion_module``, whose variant must match; None: the file's variant, or the default for fresh modules),
    freezes all but what trains with them (and the attention query projections when asked), sets the
    ``reference_view`` mode ("none" or ImageDream's "pixel"), and moves it to ``device``."""
    from .motion import set_trainable

    info = detect_format(path)
    if info.kind == "diffusers-folder":
        model = load_diffusers_folder(info.path, dtype, Path(text_encoder) if text_encoder else None,
                                      Path(image_encoder) if image_encoder else None)
    elif info.kind == "original-single-file":
        model = load_original_single_file(info.path, Path(text_encoder) if text_encoder else None,
                                          Path(image_encoder) if image_encoder else None, dtype, with_encoders)
    elif info.kind == "motion-module":
        raise ModelFileError(f"{info.path.name} is a motion-module file; choose it as the motion module and an "
                             "ImageDream model as the base model")
    else:
        raise ModelFileError(f"{info.path.name} is a {info.label}, not a complete ImageDream model; choose the "
                             f"whole diffusers folder (with model_index.json) or the original .pt checkpoint")
    check_reference_view(model, reference_view)
    model.reference_view = reference_view
    model.motion_source = apply_motion_module(model.unet, motion_module, motion_variant)
    trainable = set_trainable(model.unet, train_query_projections)
    for module in (model.vae, model.text_encoder, model.image_encoder):
        if module is not None:
            module.requires_grad_(False)
    model.notes.append(f"trainable UNet tensors: {len(trainable)}")
    return model.to(device)
