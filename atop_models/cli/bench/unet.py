"""``python -m atop_models bench unet``: speed and memory of the inflated UNet with random weights.

On CUDA: the real-size model in fp16 with PyTorch's scaled-dot-product attention, 4 views x 10 frames at
32x32 latents with classifier-free guidance (80 latent images per denoising step), and one fine-tuning step
of the motion modules (batch 1, gradient checkpointing, fp16 autocast, fp32 motion weights). Without CUDA
it measures the tiny configuration on the CPU, and says so in every line."""
from __future__ import annotations

import json
import logging
import sys
import time

import torch

log = logging.getLogger("atop")


def register(subparsers) -> None:
    p = subparsers.add_parser("unet", help="denoising-step and training-step time and memory of the inflated UNet")
    p.add_argument("--config", choices=("auto", "real", "tiny"), default="auto",
                   help="auto: real on CUDA, tiny on the CPU")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--steps", type=int, default=5, help="timed repetitions (after one warm-up)")
    p.add_argument("--no-train", action="store_true", help="skip the training step")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


@torch.no_grad()
def _random_(unet: torch.nn.Module, seed: int = 0) -> None:
    """Random weights in place on the model's device (real-size models are too slow to fill on the CPU)."""
    torch.manual_seed(seed)
    for name, p in unet.named_parameters():
        if ".motion." in name:
            continue
        if p.dim() >= 2:
            p.normal_(0, p[0].numel() ** -0.5)
        else:
            p.normal_(1.0 if "norm" in name and name.endswith("weight") else 0.0, 0.02)


def build(config_name: str, device: torch.device, dtype: torch.dtype):
    from ...diffusion.motion import set_trainable
    from ...diffusion.tiny import REAL_UNET_CONFIG, TINY_UNET_CONFIG
    from ...diffusion.unet import MultiViewUNet

    config = REAL_UNET_CONFIG if config_name == "real" else TINY_UNET_CONFIG
    with torch.device("meta"):
        unet = MultiViewUNet(**config)
    unet = unet.to_empty(device=device)
    _random_(unet)
    unet.inflate()  # fresh motion modules (zero output projection), as after loading
    torch.nn.Module.to(unet, dtype)  # (diffusers' own .to warns needlessly about fp32 modules)
    set_trainable(unet)
    return unet.eval(), config


def inputs(config: dict, batch: int, views: int, frames: int, device, dtype, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    n = batch * frames * views
    s = config["image_size"]

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    return dict(sample=rnd(n, 4, s, s), timestep=torch.full((batch,), 500, device=device),
                context=rnd(batch, 77, config["context_dim"]), camera=rnd(views, 16),
                image_tokens=rnd(batch * views, 257 if config["image_embedding_dim"] == 1280 else 17,
                                 config["image_embedding_dim"]),
                num_views=views, num_frames=frames,
                mask=(torch.rand(batch * views, 1, 8 * s, 8 * s, generator=g) > 0.5).to(device, dtype))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, steps: int) -> tuple[float, float]:
    """(seconds per call, peak memory GB during the timed calls; 0 on the CPU)."""
    fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    sec = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else 0.0
    return sec, peak


def run(args) -> int:
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    config_name = args.config if args.config != "auto" else ("real" if cuda else "tiny")
    dtype = torch.float16 if cuda else torch.float32
    label = (f"{torch.cuda.get_device_name(device)}, {config_name} model, fp16" if cuda
             else f"CPU ({torch.get_num_threads()} threads), {config_name} model, fp32 -- NOT a GPU figure")
    unet, config = build(config_name, device, dtype)
    if not cuda:
        log.warning("no CUDA device: measuring the %s model on the CPU", config_name)
    v, f = args.views, args.frames
    result = {"device": label, "config": config_name, "views": v, "frames": f,
              "latent": config["image_size"], "parameters": sum(p.numel() for p in unet.parameters())}

    # Denoising step with classifier-free guidance: [unconditional, conditional] in one batch.
    x = inputs(config, 2, v, f, device, dtype)

    @torch.no_grad()
    def step():
        eps = unet(**x)
        u, c = eps.chunk(2)
        return u + 5.0 * (c - u)

    sec, peak = _timed(step, device, args.steps)
    result.update(images_per_step=2 * v * f, sample_step_s=round(sec, 4), sample_peak_gb=round(peak, 3))

    if not args.no_train:
        from ...diffusion.motion import set_trainable

        for name, p in unet.named_parameters():
            if ".motion." in name:
                p.data = p.data.float()  # fp32 master weights for what trains
        set_trainable(unet)
        unet.train()
        unet.enable_gradient_checkpointing()
        params = [p for p in unet.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=3e-5)
        xt = inputs(config, 1, v, f, device, dtype, seed=1)
        target = torch.randn_like(xt["sample"], dtype=torch.float32)

        def train_step():
            with torch.autocast(device.type, dtype=torch.float16, enabled=cuda):
                eps = unet(**xt)
            loss = torch.nn.functional.mse_loss(eps.float(), target)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        sec, peak = _timed(train_step, device, max(1, args.steps // 2))
        result.update(train_images=v * f, train_step_s=round(sec, 4), train_peak_gb=round(peak, 3),
                      trainable_parameters=sum(p.numel() for p in params))

    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        for k, val in result.items():
            sys.stdout.write(f"{k}: {val}\n")
    return 0
