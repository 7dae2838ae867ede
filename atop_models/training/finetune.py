"""Few-shot fine-tuning of the motion modules on reference multi-view motion clips.

Loss: epsilon-prediction MSE under ImageDream's training schedule (``scaled_linear`` betas, DDPM noising
of every frame with one random timestep per clip). What trains is the motion modules plus the base weights
their variant trains with them (``motion.trained_base_keys``: none for ``paper``, the attention projections
``attn1.to_q``, ``attn2.to_q``, ``attn2.to_k_ip``, ``attn2.to_v_ip`` for ``release``; optionally also the
query projections). Trainable weights are float32 master weights; the frozen model runs under fp16/bf16
autocast on CUDA (fp32 on the CPU). With probability ``cond_dropout`` a clip's prompt is replaced by the empty
prompt; the ``paper`` variant also zeroes its CLIP tokens (and, in pixel mode, its reference latent), the
unconditional branch that classifier-free guidance uses when sampling, while ``release`` keeps them as the
published code did. The part masks and cameras are always kept. In ImageDream's pixel mode
(``model.reference_view == "pixel"``) each frame also gets the reference view (the clip's rest-state view 0),
which has no loss.

Checkpoints: ``<dir>/<name>.safetensors`` (motion-module file, loadable by the model loader) and
``<dir>/<name>.safetensors.training_state`` (optimizer, loss scaler, random generator and loss history, so a
resumed run continues exactly). Both are written atomically; an interrupted or diverged run leaves the last
good pair on disk.
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DivergenceError, InputError
from ..files import atomic_path
from ..progress import OnStep, no_progress
from .dataset import TrainingSet, encode_training_set, make_batch

log = logging.getLogger("atop")

STATE_SUFFIX = ".training_state"
DTYPE_CHOICES = ("auto", "fp16", "bf16", "fp32")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class FinetuneConfig:
    steps: int = 300  # optimiser steps in total (a resumed run continues up to this count)
    learning_rate: float = 1e-4
    batch_size: int = 1  # clips per forward pass
    grad_accumulation_steps: int = 1  # forward passes per optimiser step
    cond_dropout: float = 0.1  # probability of dropping text + image conditions together (for guidance)
    training_dtype: str = "auto"  # auto (bf16, else fp16, on CUDA) | fp16 | bf16 | fp32; always fp32 on the CPU
    gradient_checkpointing: bool = True
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-2
    seed: int = 0
    checkpoint_every: int = 100  # 0: only at the end
    train_query_projections: bool = False
    preview_every: int = 25  # steps between previews passed to on_step (0: none)
    lr_schedule: str = "constant"  # constant | cosine (decays to 0 at the last step)
    warmup_steps: int = 0  # linear warm-up from 0 over these first steps

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (1-based); a function of the step alone, so a resumed
        run continues on the same curve."""
        lr = self.learning_rate
        if self.warmup_steps > 0 and step <= self.warmup_steps:
            return lr * step / self.warmup_steps
        if self.lr_schedule == "cosine":
            span = max(self.steps - self.warmup_steps, 1)
            progress = min(max(step - self.warmup_steps, 0) / span, 1.0)
            lr *= 0.5 * (1 + math.cos(math.pi * progress))
        return lr

    def check(self) -> None:
        bad = [f"{k}={getattr(self, k)}" for k in ("steps", "batch_size", "grad_accumulation_steps")
               if getattr(self, k) < 1]
        if not self.learning_rate > 0:
            bad.append(f"learning_rate={self.learning_rate}")
        if not 0 <= self.cond_dropout < 1:
            bad.append(f"cond_dropout={self.cond_dropout}")
        if self.training_dtype not in DTYPE_CHOICES:
            bad.append(f"training_dtype={self.training_dtype!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            bad.append(f"lr_schedule={self.lr_schedule!r}")
        if self.warmup_steps < 0:
            bad.append(f"warmup_steps={self.warmup_steps}")
        if bad:
            raise InputError(f"invalid training settings: {', '.join(bad)}; steps, batch size and accumulation "
                             f"must be at least 1, the learning rate positive, dropout in [0, 1), the dtype one "
                             f"of {', '.join(DTYPE_CHOICES)}, the schedule one of {', '.join(LR_SCHEDULES)} and "
                             "the warm-up steps not negative")


@dataclass
class FinetuneResult:
    losses: list[float] = field(default_factory=list)  # one per optimiser step, from step 1 (resumed runs too)
    checkpoint: Optional[str] = None  # motion-module file of the last checkpoint
    steps_done: int = 0
    start_step: int = 0  # where this run started (0, or the resumed checkpoint's step)
    training_dtype: str = "fp32"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- precision --------------------------------------------------------------------------------------
def resolve_training_dtype(name: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The autocast dtype for a choice on ``device`` and a note when the choice was changed."""
    if device.type != "cuda":
        note = "" if name in ("auto", "fp32") else f"{name} requested but training runs on the {device.type}: fp32"
        if name == "auto":
            note = f"training on the {device.type}: fp32 (mixed precision needs a GPU)"
        return torch.float32, note
    bf16_ok = torch.cuda.is_bf16_supported()
    if name == "auto":
        return (torch.bfloat16, "") if bf16_ok else (torch.float16, "")
    if name == "bf16" and not bf16_ok:
        return torch.float16, "bf16 is not supported by this GPU: fp16 with loss scaling"
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name], ""


# --- loss ---------------------------------------------------------------------------------------------
def diffusion_loss(unet, data: TrainingSet, batch: dict, t: torch.Tensor, noise: torch.Tensor,
                   alphas_cumprod: torch.Tensor, drop: Optional[torch.Tensor] = None, drop_images: bool = True,
                   reference_view: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Epsilon MSE for a batch with timesteps ``t`` [B] and ``noise`` like the latents; ``drop`` [B] bool
    replaces those clips' text by the empty prompt and, with ``drop_images``, their CLIP tokens (and reference
    latents) by zeros. ``reference_view``: ImageDream's pixel mode. Returns (loss, noisy latents, predicted
    noise)."""
    x0 = batch["latents"]  # [B*F*V, 4, h, w]
    device = x0.device
    b = t.shape[0]
    per = x0.shape[0] // b  # F*V images per clip
    a = alphas_cumprod.to(device)[t.to(device)].repeat_interleave(per)[:, None, None, None]
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    context, tokens, reference = batch["context"], batch["image_tokens"], batch["reference"]
    if drop is not None and bool(drop.any()):
        d = drop.to(device)
        context = torch.where(d[:, None, None], data.empty_context[None].to(context.dtype), context)
        if drop_images:
            tokens = tokens * (~d).repeat_interleave(data.num_views)[:, None, None].to(tokens.dtype)
            reference = reference * (~d)[:, None, None, None].to(reference.dtype)
    common = dict(num_views=data.num_views, num_frames=data.num_frames, mask=batch["mask"])
    if reference_view:
        eps = unet.forward_with_reference_view(noisy, t.to(device), context, batch["camera"], tokens, reference,
                                               **common)
    else:
        eps = unet(noisy, t.to(device), context, batch["camera"], image_tokens=tokens, **common)
    return torch.nn.functional.mse_loss(eps.float(), noise), noisy, eps


@torch.no_grad()
def fixed_loss(model, data: TrainingSet, timesteps: Sequence[int] = (50, 200, 400, 600, 800, 950),
               seed: int = 1234) -> float:
    """Mean epsilon MSE over every clip at fixed timesteps with fixed noise and no dropout: a low-variance
    measure of how well the model fits the clips (the same value for the same weights)."""
    acp = model.make_scheduler().alphas_cumprod
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(len(data.clips)):
        batch = make_batch(data, [i])
        for t in timesteps:
            noise = torch.randn(batch["latents"].shape, generator=gen).to(batch["latents"].device)
            loss, _, _ = diffusion_loss(model.unet, data, batch, torch.tensor([int(t)]), noise, acp,
                                        reference_view=getattr(model, "reference_view", "none") == "pixel")
            total += float(loss)
    return total / (len(data.clips) * len(timesteps))


# --- checkpoints ----------------------------------------------------------------------------------------
def checkpoint_paths(checkpoint_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """(motion-module file, training-state file) for ``name`` (a file name, '.safetensors' optional)."""
    stem = name[: -len(".safetensors")] if name.endswith(".safetensors") else name
    if not stem or Path(stem).name != stem or stem.startswith("."):
        raise InputError(f"invalid checkpoint name {name!r}: give a plain file name such as 'door_motion'")
    module = Path(checkpoint_dir) / f"{stem}.safetensors"
    return module, module.with_name(module.name + STATE_SUFFIX)


def base_config_hash(unet) -> str:
    from ..diffusion.checkpoints import base_architecture

    text = json.dumps(base_architecture(unet.config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _resume(unet, module_path: Path, state_path: Path, names: list[str], config: FinetuneConfig,
            data_fp: str, notes: list[str]) -> tuple[int, Optional[dict]]:
    """Loads the motion modules of a checkpoint; returns (its step, its training state when it matches)."""
    from ..diffusion.checkpoints import load_motion_state, read_motion_module
    from ..diffusion.motion import motion_variant

    saved, meta, state = read_motion_module(module_path)
    if saved.variant != motion_variant(unet):
        raise InputError(f"checkpoint {module_path.name} holds '{saved.variant}' motion modules but the model has "
                         f"'{motion_variant(unet)}' ones; load the model with motion variant '{saved.variant}', "
                         "choose another save name, or turn resuming off")
    want = base_config_hash(unet)
    if meta.get("base_config_hash", want) != want:
        raise InputError(f"checkpoint {module_path.name} was trained on another base model configuration; "
                         "load that base model, choose another save name, or turn resuming off")
    step = int(json.loads(meta.get("steps", "0")))
    load_motion_state(unet, state, f"checkpoint {module_path.name}")
    if meta.get("data_fingerprint") not in (None, data_fp):
        notes.append(f"resuming {module_path.name} on different clips than it was trained on")
    train_state = None
    if state_path.is_file():
        try:
            train_state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unreadable state: resume the weights with a fresh optimiser
            notes.append(f"training state {state_path.name} unreadable ({exc}); fresh optimiser")
            train_state = None
    if train_state is not None and (train_state.get("step") != step or train_state.get("param_names") != names):
        notes.append(f"training state {state_path.name} does not match the checkpoint (step "
                     f"{train_state.get('step')} vs {step}, or other trainable weights); fresh optimiser")
        train_state = None
    if train_state is None and not any("fresh optimiser" in n for n in notes):
        notes.append(f"no training state next to {module_path.name}; fresh optimiser")
    return step, train_state


# --- the loop -------------------------------------------------------------------------------------------------
def finetune_motion_module(model, clips: Sequence, config: FinetuneConfig = FinetuneConfig(), *,
                           on_step: Optional[OnStep] = None, checkpoint_dir: Optional[str | os.PathLike] = None,
                           checkpoint_name: str = "motion_module", resume: bool = True,
                           metadata: Optional[dict] = None, data: Optional[TrainingSet] = None) -> FinetuneResult:
    """Trains ``model.unet``'s motion modules in place on reference ``clips`` (objects with frames
    [V, F, H, W, 3], masks [V, H, W], prompt and rig/cameras; see ``dataset``), on the model's device.

    ``on_step(step, steps, preview)`` runs after every optimiser step (preview: the decoded x0 prediction of
    view 0, frames side by side, every ``preview_every`` steps); it may raise to interrupt. With
    ``checkpoint_dir`` a checkpoint pair is written every ``checkpoint_every`` steps and at the end; with
    ``resume`` an existing checkpoint of that name continues (exactly, when its training state is there).
    A NaN/Inf loss raises DivergenceError and keeps the last checkpoint. ``data``: an already encoded set
    (skips encoding ``clips``)."""
    from ..diffusion.checkpoints import save_motion_module
    from ..diffusion.encoders import vae_decode
    from ..diffusion.motion import VARIANTS, motion_variant, set_trainable

    config.check()
    on_step = on_step or no_progress
    unet = model.unet
    if not unet.is_inflated:
        unet.inflate()
    device = model.device
    result = FinetuneResult()
    t_start = time.perf_counter()
    if data is None:
        data = encode_training_set(model, clips)
    result.notes.extend(data.notes)
    amp, note = resolve_training_dtype(config.training_dtype, device)
    if note:
        log.info(note)
        result.notes.append(note)
    result.training_dtype = str(amp).replace("torch.", "")

    variant = motion_variant(unet)
    drop_images = VARIANTS[variant].drop_image_tokens
    pixel = getattr(model, "reference_view", "none") == "pixel"
    names = set_trainable(unet, config.train_query_projections)
    base_keys = [n for n in names if ".motion." not in n]  # stored in the motion-module file with the modules
    named = dict(unet.named_parameters())
    params = [named[n] for n in names]
    module_path = state_path = None
    train_state = None
    if checkpoint_dir is not None:
        module_path, state_path = checkpoint_paths(checkpoint_dir, checkpoint_name)
        if resume and module_path.is_file():
            result.start_step, train_state = _resume(unet, module_path, state_path, names, config, data.fingerprint,
                                                     result.notes)
            result.checkpoint = str(module_path)
            result.notes.append(f"resumed {module_path.name} at step {result.start_step}")
            log.info("resuming motion-module training from %s at step %d", module_path, result.start_step)
    result.steps_done = result.start_step
    if train_state is not None:
        result.losses = [float(x) for x in train_state.get("losses", [])][: result.start_step]
    if result.start_step >= config.steps:
        result.notes.append(f"the checkpoint already has {result.start_step} of {config.steps} steps; nothing to do")
        result.seconds = time.perf_counter() - t_start
        return result

    model_dtype = params[0].dtype if params else unet.dtype
    frozen_dtype = unet.dtype
    upcast_frozen = amp == torch.float32 and frozen_dtype != torch.float32
    if upcast_frozen:  # fp32 training of a half-precision model: the whole UNet runs in fp32 meanwhile
        unet.float()
        result.notes.append("fp32 training: the UNet runs in fp32 during training")
    for p in params:  # float32 master weights for what trains
        p.data = p.data.float()
    acp = model.make_scheduler().alphas_cumprod.float()
    gen = torch.Generator().manual_seed(int(config.seed))
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    if train_state is not None:
        opt.load_state_dict(train_state["optimizer"])
        gen.set_state(train_state["generator"])
        if train_state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(train_state["scaler"])
    autocast = torch.autocast(device.type, dtype=amp, enabled=amp != torch.float32)
    meta_base = dict(metadata or {})
    meta_base.update(base_model=getattr(model, "source", ""), base_config_hash=base_config_hash(unet),
                     config=asdict(config), prompts=data.prompts, clips=len(data.clips),
                     data_fingerprint=data.fingerprint, trainable_tensors=len(names),
                     training_dtype=result.training_dtype, motion_variant=variant,
                     reference_view="pixel" if pixel else "none")

    def save(step: int) -> None:
        if module_path is None:
            return
        module_path.parent.mkdir(parents=True, exist_ok=True)
        # State first: a crash between the two writes leaves an older module with a newer state, which the
        # resume check detects (step mismatch) and answers with a fresh optimiser.
        _atomic_torch_save({"step": step, "param_names": names, "optimizer": opt.state_dict(),
                            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                            "generator": gen.get_state(), "losses": list(result.losses)}, state_path)
        save_motion_module(unet, module_path, dict(meta_base, steps=step), base_keys=base_keys)
        result.checkpoint = str(module_path)

    def diverged(what: str, step: int) -> DivergenceError:
        kept = (f"the checkpoint {Path(result.checkpoint).name} (step {result.steps_done}) is kept"
                if result.checkpoint else "no checkpoint had been written yet")
        return DivergenceError(
            f"the training {what} became NaN/Inf at step {step}; {kept}; lower the learning rate (now "
            f"{config.learning_rate:g}), keep gradient clipping on, or train in bf16 or fp32 instead of fp16")

    was_training = unet.training
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    log.info("fine-tuning %d tensors (%s motion modules%s) on %d clips (%d views x %d frames), %s, steps %d..%d",
             len(names), variant, ", pixel mode" if pixel else "", len(data.clips), data.num_views, data.num_frames,
             result.training_dtype, result.start_step + 1, config.steps)
    micro = config.batch_size * config.grad_accumulation_steps
    try:
        with torch.inference_mode(False), torch.enable_grad():
            for step in range(result.start_step + 1, config.steps + 1):
                for group in opt.param_groups:
                    group["lr"] = config.learning_rate_at(step)
                opt.zero_grad(set_to_none=True)
                total = 0.0
                for _ in range(config.grad_accumulation_steps):
                    idx = torch.randint(0, len(data.clips), (config.batch_size,), generator=gen).tolist()
                    batch = make_batch(data, idx)
                    t = torch.randint(0, acp.shape[0], (config.batch_size,), generator=gen)
                    noise = torch.randn(batch["latents"].shape, generator=gen).to(device)
                    drop = torch.rand(config.batch_size, generator=gen) < config.cond_dropout
                    with autocast:
                        loss, noisy, eps = diffusion_loss(unet, data, batch, t, noise, acp, drop, drop_images, pixel)
                    if not torch.isfinite(loss):
                        raise diverged("loss", step)
                    scaler.scale(loss * (config.batch_size / micro)).backward()
                    total += float(loss.detach()) / config.grad_accumulation_steps
                scaler.unscale_(opt)
                norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                if not torch.isfinite(norm) and not scaler.is_enabled():
                    raise diverged("gradient", step)
                scaler.step(opt)  # with fp16 loss scaling, steps with overflowing gradients are skipped
                scaler.update()
                if not all(torch.isfinite(p).all() for p in params):
                    raise diverged("weights", step)
                result.losses.append(total)
                result.steps_done = step
                if step == config.steps or (config.checkpoint_every and step % config.checkpoint_every == 0):
                    save(step)
                preview = None
                if config.preview_every and (step % config.preview_every == 0 or step == config.steps):
                    preview = _preview(model, vae_decode, noisy, eps, t[0], acp, data)
                on_step(step, config.steps, preview)
    finally:
        if config.gradient_checkpointing:
            unet.disable_gradient_checkpointing()
        unet.train(was_training)
        for p in params:
            p.grad = None
            p.data = p.data.to(model_dtype)
        if upcast_frozen:
            unet.to(frozen_dtype)
        set_trainable(unet, config.train_query_projections)
        del opt
        gc.collect()
        result.seconds = time.perf_counter() - t_start
    return result


@torch.no_grad()
def _preview(model, vae_decode, noisy, eps, t, acp, data: TrainingSet) -> np.ndarray:  # [H, F*W, 3]
    """Decoded x0 prediction of the first clip's view 0 at every frame, side by side."""
    f, v = data.num_frames, data.num_views
    a = acp[int(t)]
    x0 = (noisy[: f * v].float() - (1 - a).sqrt() * eps[: f * v].float()) / a.sqrt()
    img = vae_decode(model.vae, x0.reshape(f, v, *x0.shape[1:])[:, 0])  # [F, 3, H, W]
    return img.permute(2, 0, 3, 1).reshape(img.shape[2], -1, 3).float().cpu().numpy()
