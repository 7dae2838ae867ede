"""``python -m atop_models bench finetune``: time and memory of one motion-module fine-tuning step through the
real training loop (``training.finetune``), random weights.

On CUDA: the real-size inflated UNet (fp16 weights, bf16/fp16 autocast, fp32 motion weights, AdamW, gradient
clipping), batch 1 of 4 views x 10 frames at 32x32 latents, gradient checkpointing. The clip is given already
encoded (random latents, text and CLIP tokens of the real shapes): the frozen encoders run once per dataset,
not per step. Without CUDA it measures the tiny configuration on the CPU and says so in every line."""
from __future__ import annotations

import json
import logging
import sys
import time

import torch
from torch import nn

log = logging.getLogger("atop")


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="one motion-module fine-tuning step: time and peak memory")
    p.add_argument("--config", choices=("auto", "real", "tiny"), default="auto",
                   help="auto: real on CUDA, tiny on the CPU")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed steps (after two warm-up steps)")
    p.add_argument("--dtype", choices=("auto", "fp16", "bf16", "fp32"), default="auto", help="training dtype")
    p.add_argument("--no-checkpointing", action="store_true", help="without gradient checkpointing")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def random_training_set(config: dict, views: int, frames: int, clips: int, device, dtype, seed: int = 0):
    """A TrainingSet of ``clips`` random clips with the shapes the real encoders produce."""
    from ...training.dataset import EncodedClip, TrainingSet

    g = torch.Generator().manual_seed(seed)
    s = config["image_size"]
    tokens = 257 if config["image_embedding_dim"] == 1280 else 17

    def rnd(*shape, dt=dtype):
        return torch.randn(*shape, generator=g).to(device, dt)

    out = [EncodedClip(latents=rnd(frames * views, 4, s, s, dt=torch.float32), context=rnd(77, config["context_dim"]),
                       image_tokens=rnd(views, tokens, config["image_embedding_dim"]), camera=rnd(views, 16),
                       mask=(torch.rand(views, 1, 8 * s, 8 * s, generator=g) > 0.5).to(device, dtype),
                       num_views=views, num_frames=frames, prompt=f"clip {i}", name=f"clip {i}")
           for i in range(clips)]
    return TrainingSet(clips=out, empty_context=rnd(77, config["context_dim"]), num_views=views, num_frames=frames,
                       fingerprint="random", notes=[])


def build_model(config_name: str, device: torch.device, dtype: torch.dtype):
    """An MVModel around a random inflated UNet (encoders left out: the clips come encoded)."""
    from ...diffusion.bundle import MVModel
    from ...diffusion.schedule import IMAGEDREAM_SCHEDULER_CONFIG
    from ...diffusion.tiny import tiny_vae
    from .unet import build

    unet, config = build(config_name, device, dtype)
    model = MVModel(unet=unet, vae=tiny_vae().to(device), text_encoder=nn.Identity(), tokenizer=None,
                    image_encoder=nn.Identity(), image_processor=None,
                    scheduler_config=dict(IMAGEDREAM_SCHEDULER_CONFIG), dtype=dtype, source=f"random {config_name}")
    return model, config


def measure(config_name: str, device: torch.device, views: int = 4, frames: int = 10, batch: int = 1,
            steps: int = 5, training_dtype: str = "auto", checkpointing: bool = True) -> dict:
    from ...training.finetune import FinetuneConfig, finetune_motion_module

    cuda = device.type == "cuda"
    model, config = build_model(config_name, device, torch.float16 if cuda else torch.float32)
    data = random_training_set(config, views, frames, max(1, batch), device, model.dtype)
    warmup = 2
    stamps: list[float] = []

    def on_step(step, total, preview):
        if cuda:
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())
        if step == warmup and cuda:
            torch.cuda.reset_peak_memory_stats(device)

    cfg = FinetuneConfig(steps=warmup + steps, learning_rate=1e-5, batch_size=batch, training_dtype=training_dtype,
                         gradient_checkpointing=checkpointing, checkpoint_every=0, preview_every=0)
    res = finetune_motion_module(model, [], cfg, on_step=on_step, data=data)
    sec = (stamps[-1] - stamps[warmup - 1]) / steps
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if cuda else 0.0
    trainable = sum(p.numel() for k, p in model.unet.named_parameters() if ".motion." in k)
    label = (f"{torch.cuda.get_device_name(device)}, {config_name} model" if cuda
             else f"CPU ({torch.get_num_threads()} threads), {config_name} model -- NOT a GPU figure")
    return {"device": label, "config": config_name, "views": views, "frames": frames, "batch": batch,
            "training_dtype": res.training_dtype, "gradient_checkpointing": checkpointing,
            "trainable_parameters": trainable, "train_step_s": round(sec, 4), "train_peak_gb": round(peak, 3),
            "final_loss": round(res.losses[-1], 4)}


def run(args) -> int:
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    config_name = args.config if args.config != "auto" else ("real" if cuda else "tiny")
    if not cuda:
        log.warning("no CUDA device: measuring the %s model on the CPU", config_name)
    result = measure(config_name, device, args.views, args.frames, args.batch, args.steps, args.dtype,
                     not args.no_checkpointing)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        for k, val in result.items():
            sys.stdout.write(f"{k}: {val}\n")
    return 0
