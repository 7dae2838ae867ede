"""Motion-module fine-tuning node: trains the motion modules of an inflated ImageDream on a folder of
reference clips and saves them under models/atop/motion_modules/."""
from __future__ import annotations

import copy
import os

import torch

from ..atop_models.errors import InputError
from ..atop_models.training.clips import load_dataset, read_clip
from ..atop_models.training.finetune import FinetuneConfig, checkpoint_paths, finetune_motion_module
from ._comfy import (input_directory, io, model_folder_paths, output_directory, progress_callback, soft_empty_cache,
                     user_errors)
from .types import MVModelType

CLIPS_SUBFOLDER = "atop_clips"


def resolve_dataset(name: str) -> str:
    """An absolute folder, or one relative to ComfyUI's output folder, its atop_clips/ sub-folder (where
    RenderReferenceMotion writes) or the input folder."""
    name = name.strip()
    if not name:
        raise InputError("no dataset folder given; enter the folder of reference clips (e.g. the dataset name "
                         "used in ATOP Render Reference Motion)")
    if os.path.isabs(name):
        candidates = [name]
    else:
        out = output_directory()
        candidates = [os.path.join(out, name), os.path.join(out, CLIPS_SUBFOLDER, name),
                      os.path.join(input_directory(), name)]
    for path in candidates:
        if os.path.isdir(path):
            return path
    raise InputError(f"dataset folder '{name}' not found (looked in {', '.join(candidates)}); give an absolute "
                     "path or a folder under ComfyUI's output or input folder")


def load_clips(folder: str) -> list:
    """One clip folder (with clip.json) or a dataset of clip folders, validated as a whole."""
    if os.path.isfile(os.path.join(folder, "clip.json")):
        return [read_clip(folder)]
    return load_dataset(folder)


class MotionModuleFinetune(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MotionModuleFinetune",
            display_name="ATOP Motion Module Finetune",
            category="ATOP/motion",
            is_experimental=True,
            description="Fine-tunes the motion modules of the inflated ImageDream on reference multi-view motion "
                        "clips (few-shot motion personalisation). Saves the modules under models/atop/"
                        "motion_modules/ (checkpoints on the way, resumable) and outputs the fine-tuned model.",
            inputs=[
                MVModelType.Input("model", tooltip="Inflated ImageDream from ATOP Load Inflated ImageDream; it is "
                                                   "copied, the input model stays unchanged."),
                io.String.Input("dataset", default="reference",
                                tooltip="Folder of reference clips: absolute, or relative to ComfyUI's output "
                                        "folder (ATOP Render Reference Motion writes output/atop_clips/<name>) or "
                                        "input folder. A single clip folder also works."),
                io.Int.Input("steps", default=300, min=1, max=100000, tooltip="Optimiser steps in total (a "
                             "resumed run continues up to this count)."),
                io.Float.Input("learning_rate", default=1e-4, min=1e-7, max=1e-1, step=1e-5,
                               tooltip="AdamW learning rate of the motion modules (paper-like: 1e-4 for a few "
                                       "hundred steps; lower it if the loss turns NaN)."),
                io.Combo.Input("lr_schedule", options=["constant", "cosine"], default="constant",
                               tooltip="constant: the learning rate throughout; cosine: decays it to 0 by the last "
                                       "step (allows a larger starting rate)."),
                io.Int.Input("warmup_steps", default=0, min=0, max=100000,
                             tooltip="Raise the learning rate linearly from 0 over these first steps."),
                io.Int.Input("batch_size", default=1, min=1, max=64,
                             tooltip="Clips per forward pass (each is views x frames images)."),
                io.Int.Input("grad_accumulation_steps", default=1, min=1, max=1024,
                             tooltip="Forward passes per optimiser step (a larger batch without more memory)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1,
                             tooltip="Seed for timesteps, noise, condition dropout and clip order."),
                io.Boolean.Input("gradient_checkpointing", default=True,
                                 tooltip="Recompute UNet blocks in the backward pass: much less memory, ~30% slower."),
                io.Combo.Input("training_dtype", options=["auto", "fp16", "bf16", "fp32"], default="auto",
                               tooltip="Mixed precision of the frozen model (trained weights stay fp32). auto = "
                                       "bf16 where the GPU supports it, else fp16. On a CPU: fp32."),
                io.Int.Input("checkpoint_every", default=100, min=0, max=100000,
                             tooltip="Save a checkpoint every N steps (0: only at the end)."),
                io.String.Input("save_name", default="motion_module",
                                tooltip="File name under models/atop/motion_modules/ (.safetensors added); "
                                        "ATOP Load Inflated ImageDream lists it."),
                io.Boolean.Input("resume", default=True,
                                 tooltip="Continue from an existing checkpoint of this name (exactly, with its "
                                         "optimiser state); off: start again and overwrite it."),
            ],
            outputs=[
                MVModelType.Output(display_name="model", tooltip="A copy of the model carrying the fine-tuned "
                                                                 "motion modules."),
                io.String.Output(display_name="path", tooltip="The saved motion-module file."),
                io.Custom("LOSS_MAP").Output(display_name="loss_map", tooltip="Training loss per step, for "
                                                                              "Plot Loss Graph."),
            ],
        )

    @classmethod
    def execute(cls, model, dataset, steps=300, learning_rate=1e-4, lr_schedule="constant", warmup_steps=0,
                batch_size=1, grad_accumulation_steps=1, seed=0, gradient_checkpointing=True, training_dtype="auto", checkpoint_every=100,
                save_name="motion_module", resume=True) -> io.NodeOutput:
        with user_errors("MotionModuleFinetune"):
            clips = load_clips(resolve_dataset(dataset))
            folder = model_folder_paths("atop_motion_modules")[0]
            module_path, _ = checkpoint_paths(folder, save_name)
            config = FinetuneConfig(steps=steps, learning_rate=learning_rate, lr_schedule=lr_schedule,
                                    warmup_steps=warmup_steps, batch_size=batch_size,
                                    grad_accumulation_steps=grad_accumulation_steps, seed=seed,
                                    gradient_checkpointing=gradient_checkpointing, training_dtype=training_dtype,
                                    checkpoint_every=checkpoint_every)
            # ComfyUI caches the input model: train a deep copy of its UNet (the frozen base weights are copied
            # too; sharing them would let ComfyUI move one model's weights under the other), keep the rest.
            with torch.inference_mode(False):
                unet = copy.deepcopy(model.model.unet)
            handle = model.replace(unet=unet)
            try:
                bundle = handle.load("unet", "vae", "text_encoder", "image_encoder")
                with torch.inference_mode(False), torch.enable_grad():
                    result = finetune_motion_module(
                        bundle, clips, config, on_step=progress_callback(steps), checkpoint_dir=folder,
                        checkpoint_name=module_path.name, resume=resume,
                        metadata={"dataset": os.path.basename(os.path.normpath(dataset))})
            finally:
                soft_empty_cache()
            handle.model.motion_source = str(module_path)
            handle.info = "\n".join([handle.info, f"motion modules: fine-tuned, {result.steps_done} steps "
                                                  f"({result.training_dtype}), {module_path.name}"] + result.notes)
        return io.NodeOutput(handle, result.checkpoint or str(module_path), {"loss": list(result.losses)})


NODES = [MotionModuleFinetune]
