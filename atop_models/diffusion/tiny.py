"""Tiny configurations with the real structure, and a writer of random tiny weights in the real on-disk
layouts (diffusers folder, or original single file with separate encoder folders), so tests exercise the
same loading code as users."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from ..files import new_temp_folder, replace_folder

log = logging.getLogger("atop")

REAL_UNET_CONFIG: dict = dict(
    image_size=32, in_channels=4, model_channels=320, out_channels=4, num_res_blocks=2,
    attention_resolutions=[4, 2, 1], channel_mult=[1, 2, 4, 4], num_head_channels=64, transformer_depth=1,
    context_dim=1024, camera_dim=16, ip_dim=16, image_embedding_dim=1280, resampler_depth=4,
    resampler_heads=12, resampler_dim_head=64,
)
TINY_UNET_CONFIG: dict = dict(
    REAL_UNET_CONFIG, image_size=8, model_channels=32, num_head_channels=32, context_dim=64, ip_dim=4,
    image_embedding_dim=48, resampler_depth=1, resampler_heads=2, resampler_dim_head=16,
)
# Architectures the single-file loader recognises by their weight shapes.
KNOWN_UNET_CONFIGS: dict[str, dict] = {"imagedream-sd21": REAL_UNET_CONFIG, "tiny": TINY_UNET_CONFIG}

_VAE_BLOCKS = dict(in_channels=3, out_channels=3, latent_channels=4, act_fn="silu", scaling_factor=0.18215,
                   down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
REAL_VAE_CONFIG: dict = dict(_VAE_BLOCKS, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                             norm_num_groups=32, sample_size=256)
TINY_VAE_CONFIG: dict = dict(_VAE_BLOCKS, block_out_channels=[16, 16, 16, 16], layers_per_block=1,
                             norm_num_groups=8, sample_size=64)
KNOWN_VAE_CONFIGS: dict[str, dict] = {"imagedream-sd21": REAL_VAE_CONFIG, "tiny": TINY_VAE_CONFIG}

TINY_TEXT_CONFIG: dict = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                              max_position_embeddings=77, hidden_act="gelu", projection_dim=64)
TINY_VISION_CONFIG: dict = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                                image_size=32, patch_size=8, hidden_act="gelu", projection_dim=64)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def image_processor_config(size: int) -> dict:
    """``CLIPImageProcessor`` settings of OpenCLIP ViT-H/14 (``size`` 224), scaled for tiny models."""
    return {"crop_size": {"height": size, "width": size}, "do_center_crop": True, "do_convert_rgb": True,
            "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
            "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD, "resample": 3,
            "rescale_factor": 1 / 255, "size": {"shortest_edge": size}}


# --- random weights -------------------------------------------------------------------------------
@torch.no_grad()
def randomize_(module: nn.Module, seed: int = 0, scale: float = 1.0) -> nn.Module:
    """Fills every parameter with random values (also the zero-initialised output layers, so a random tiny
    model has non-trivial outputs): weights ~ N(0, scale/fan_in), biases ~ N(0, 0.02), norm gains ~ 1."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if ".motion." in name:
            continue  # motion modules keep their own (identity) initialisation
        if p.dim() >= 2:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=gen) * (scale / fan_in) ** 0.5)
        elif "norm" in name and name.endswith("weight"):
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
        else:
            p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return module


def tiny_unet(seed: int = 0, motion: bool = False):
    from .unet import MultiViewUNet

    unet = randomize_(MultiViewUNet(**TINY_UNET_CONFIG), seed)
    return unet.inflate() if motion else unet


def tiny_vae(seed: int = 1):
    from diffusers import AutoencoderKL

    return randomize_(AutoencoderKL(**TINY_VAE_CONFIG), seed, scale=1.0)


# --- tokenizer ------------------------------------------------------------------------------------
def _byte_unicode() -> dict[int, str]:
    """The printable-unicode stand-in for every byte used by byte-level BPE vocabularies, in CLIP's order
    (printable bytes first, so "!" is id 0 and "!</w>" id 256, as in CLIP's vocabulary)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in keep}
    for extra, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + extra)
    return table


_TINY_WORDS = ("the", "door", "drawer", "lid", "open", "opened", "getting", "of", "is", "cabinet", "box", "3d", "asset")


def tokenizer_files() -> dict[str, str]:
    """vocab.json / merges.txt / tokenizer_config.json / special_tokens_map.json of a tiny CLIP BPE
    tokenizer: every byte, its end-of-word form, and merges for a few words of our prompts."""
    chars = list(_byte_unicode().values())
    vocab: dict[str, int] = {}
    for tok in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(tok, len(vocab))
    merges: list[str] = []
    for word in _TINY_WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            if f"{a} {b}" not in merges:
                merges.append(f"{a} {b}")
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                "pad_token": "!"}
    config = dict(specials, model_max_length=77, do_lower_case=True, tokenizer_class="CLIPTokenizer")
    return {"vocab.json": json.dumps(vocab, ensure_ascii=False), "merges.txt": "#version: 0.2\n" + "\n".join(merges) + "\n",
            "tokenizer_config.json": json.dumps(config, indent=2), "special_tokens_map.json": json.dumps(specials, indent=2)}


def tiny_vocab_size() -> int:
    return len(json.loads(tokenizer_files()["vocab.json"]))


def _text_config():
    from transformers import CLIPTextConfig

    vocab = json.loads(tokenizer_files()["vocab.json"])
    return CLIPTextConfig(vocab_size=len(vocab), bos_token_id=vocab["<|startoftext|>"],
                          eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["!"], **TINY_TEXT_CONFIG)


def tiny_text_encoder(seed: int = 2):
    from transformers import CLIPTextModel

    return randomize_(CLIPTextModel(_text_config()), seed)


def tiny_image_encoder(seed: int = 3, full_clip: bool = False):
    """A tiny ``CLIPVisionModel`` (or a full ``CLIPModel`` as in OpenCLIP's Hugging Face repositories)."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

    vision = randomize_(CLIPVisionModel(CLIPVisionConfig(**TINY_VISION_CONFIG)), seed)
    if not full_clip:
        return vision
    cfg = CLIPConfig(text_config=_text_config().to_dict(), vision_config=TINY_VISION_CONFIG, projection_dim=64)
    clip = randomize_(CLIPModel(cfg), seed + 1)
    clip.vision_model.load_state_dict(vision.state_dict())  # same vision tower in both layouts
    return clip


# --- writers --------------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_tokenizer(folder: Path) -> None:
    for name, text in tokenizer_files().items():
        _write_text(folder / name, text)


def _save_diffusers_model(module, folder: Path) -> None:
    module.save_pretrained(str(folder), safe_serialization=True)


def write_diffusers_folder(out: Path, seed: int = 0) -> Path:
    """The layout of ``imagedream-ipmv-diffusers`` with random tiny weights."""
    from .schedule import IMAGEDREAM_SCHEDULER_CONFIG

    _save_diffusers_model(tiny_unet(seed), out / "unet")
    _save_diffusers_model(tiny_vae(seed + 1), out / "vae")
    tiny_text_encoder(seed + 2).save_pretrained(str(out / "text_encoder"))
    _write_tokenizer(out / "tokenizer")
    tiny_image_encoder(seed + 3).save_pretrained(str(out / "image_encoder"))
    _write_text(out / "feature_extractor" / "preprocessor_config.json",
                json.dumps(image_processor_config(TINY_VISION_CONFIG["image_size"]), indent=2))
    _write_text(out / "scheduler" / "scheduler_config.json", json.dumps(IMAGEDREAM_SCHEDULER_CONFIG, indent=2))
    index = {"_class_name": "MVDreamPipeline", "_diffusers_version": "0.23.1",
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModel"], "requires_safety_checker": False,
             "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["mv_unet", "MultiViewUNetModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    _write_text(out / "model_index.json", json.dumps(index, indent=2))
    return out


def original_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny checkpoint in the original single-file naming: ``model.diffusion_model.*``, ``vae_model.*``
    (LDM names) and the schedule buffers."""
    from .schedule import alphas_cumprod
    from .vae_keys import to_ldm_vae

    state = {f"model.diffusion_model.{k}": v for k, v in tiny_unet(seed).state_dict().items()}
    vae = to_ldm_vae(tiny_vae(seed + 1).state_dict(), len(TINY_VAE_CONFIG["block_out_channels"]))
    state.update({f"vae_model.{k}": v for k, v in vae.items()})
    state["alphas_cumprod"] = alphas_cumprod()
    return {k: v.contiguous() for k, v in state.items()}


def write_original_layout(out: Path, seed: int = 0, file_format: str = "pt") -> dict[str, Path]:
    """``out`` laid out like ``models/atop/``: ``imagedream/<file>``, ``text_encoder/<name>/{text_encoder,
    tokenizer}/`` (as in a partial Stable Diffusion 2.1 download) and ``image_encoder/<name>/`` (a full CLIP
    model folder as in OpenCLIP's Hugging Face repository)."""
    state = original_state_dict(seed)
    ckpt = out / "imagedream" / f"imagedream-tiny-4view-ipmv.{file_format}"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(ckpt))
    elif file_format in ("pt", "ckpt"):
        torch.save(state, str(ckpt))
    else:
        raise ValueError(f"file_format must be pt, ckpt or safetensors, got {file_format!r}")
    text = out / "text_encoder" / "tiny-sd21-text"
    tiny_text_encoder(seed + 2).save_pretrained(str(text / "text_encoder"))
    _write_tokenizer(text / "tokenizer")
    image = out / "image_encoder" / "tiny-clip-vit"
    tiny_image_encoder(seed + 3, full_clip=True).save_pretrained(str(image))
    _write_text(image / "preprocessor_config.json",
                json.dumps(image_processor_config(TINY_VISION_CONFIG["image_size"]), indent=2))
    return {"checkpoint": ckpt, "text_encoder": text, "image_encoder": image}


def make_tiny(out: str | os.PathLike, layout: str = "diffusers", seed: int = 0, file_format: str = "pt") -> dict[str, Path]:
    """Writes tiny random weights atomically (a temporary sibling folder renamed into place)."""
    out = Path(out)
    if layout not in ("diffusers", "original"):
        raise ValueError(f"layout must be 'diffusers' or 'original', got {layout!r}")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder")
    tmp = new_temp_folder(out)
    try:
        if layout == "diffusers":
            write_diffusers_folder(tmp, seed)
            paths = {"model": out}
        else:
            rel = write_original_layout(tmp, seed, file_format)
            paths = {k: out / p.relative_to(tmp) for k, p in rel.items()}
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote tiny %s-layout ImageDream weights to %s", layout, out)
    return paths
