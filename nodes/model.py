"""Model node: load ImageDream (diffusers folder or original single file), inflate it to multi-view video
with motion modules, and hand it to ComfyUI's model management."""
from __future__ import annotations

import torch

from ..atop_models.diffusion.bundle import REFERENCE_VIEWS, resolve_dtype
from ..atop_models.diffusion.checkpoints import load_model
from ..atop_models.diffusion.motion import DEFAULT_VARIANT, MOTION_VARIANTS
from ._comfy import io, model_folder_paths, offload_device, torch_device, user_errors
from ._models import MVModelHandle, list_model_entries, resolve_entry
from .types import MVModelType

FROM_BASE = "[from base model]"
NO_MOTION = "[none]"


def _entries(key: str, **kw) -> list[str]:
    try:
        return list_model_entries(model_folder_paths(key), **kw)
    except Exception:  # folder key not registered (pack loaded without its entrypoint)
        return []


class LoadInflatedImageDream(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoadInflatedImageDream",
            display_name="ATOP Load Inflated ImageDream",
            category="ATOP/model",
            description="Loads ImageDream (the imagedream-ipmv-diffusers folder, or the original "
                        "sd-v2.1-base-4view-ipmv .pt with its text and image encoders), inflates it to multi-view "
                        "video and attaches motion modules (fresh or fine-tuned). Weights go in models/atop/.",
            inputs=[
                io.Combo.Input("base_model", options=_entries("atop_imagedream"),
                               tooltip="models/atop/imagedream/: a diffusers folder (with model_index.json) or an "
                                       "original single-file checkpoint (.pt, .ckpt, .safetensors)."),
                io.Combo.Input("text_encoder", options=[FROM_BASE] + _entries("atop_text_encoder", files=False,
                                                                                folder_marker=None),
                               default=FROM_BASE,
                               tooltip="models/atop/text_encoder/: Stable Diffusion 2.1's text_encoder and tokenizer "
                                       "folders. Required for single-file checkpoints."),
                io.Combo.Input("image_encoder", options=[FROM_BASE] + _entries("atop_image_encoder", files=False,
                                                                                 folder_marker=None),
                               default=FROM_BASE,
                               tooltip="models/atop/image_encoder/: the OpenCLIP ViT-H/14 folder "
                                       "(laion/CLIP-ViT-H-14-laion2B-s32B-b79K). Required for single-file checkpoints."),
                io.Combo.Input("motion_module", options=[NO_MOTION] + _entries("atop_motion_modules", folders=False),
                               default=NO_MOTION,
                               tooltip="models/atop/motion_modules/: fine-tuned motion modules (.safetensors); "
                                       "[none] attaches fresh ones, which leave ImageDream unchanged."),
                io.Combo.Input("dtype", options=["auto", "fp16", "bf16", "fp32"], default="auto",
                               tooltip="Compute precision. auto = fp16 on a GPU. On a CPU everything runs in fp32."),
                io.Combo.Input("motion_variant", options=list(MOTION_VARIANTS), default=DEFAULT_VARIANT,
                               tooltip="Motion-module design. release: ATOP's published code (temporal attention "
                                       "over all frames between the multi-view and the cross-attention; trains the "
                                       "attention projections too; samples every frame from noise). paper: the "
                                       "paper's text (after the cross-attention, keys from the first frame, frame "
                                       "encoding; frame 0 is the given rest state). A motion module file must be "
                                       "of this variant."),
                io.Combo.Input("reference_view", options=list(REFERENCE_VIEWS), default="none",
                               tooltip="none: the views alone, as in ATOP. pixel: ImageDream's pixel controller, "
                                       "the image prompt's (view 0's) latent as a 5th view with a zero camera in "
                                       "sampling, score distillation and fine-tuning (pixel-controller weights "
                                       "only, not the -local checkpoint)."),
                io.Boolean.Input("train_query_projections", default=False,
                                 tooltip="Also fine-tune the attention query projections, not only the motion "
                                         "modules (the release variant always trains them)."),
            ],
            outputs=[
                MVModelType.Output(display_name="model",
                                   tooltip="Inflated ImageDream with motion modules, VAE and encoders."),
                io.String.Output(display_name="info",
                                 tooltip="What was loaded: format, sizes, precision and any fallback."),
            ],
        )

    @classmethod
    def execute(cls, base_model, text_encoder=FROM_BASE, image_encoder=FROM_BASE, motion_module=NO_MOTION,
                dtype="auto", motion_variant=DEFAULT_VARIANT, reference_view="none",
                train_query_projections=False) -> io.NodeOutput:
        with user_errors("LoadInflatedImageDream"):
            base = resolve_entry(model_folder_paths("atop_imagedream"), base_model, "base model")
            text = None if text_encoder == FROM_BASE else resolve_entry(
                model_folder_paths("atop_text_encoder"), text_encoder, "text encoder")
            image = None if image_encoder == FROM_BASE else resolve_entry(
                model_folder_paths("atop_image_encoder"), image_encoder, "image encoder")
            motion = None if motion_module == NO_MOTION else resolve_entry(
                model_folder_paths("atop_motion_modules"), motion_module, "motion module")
            compute, note = resolve_dtype(dtype, torch_device())
            # ComfyUI runs nodes under inference_mode; weights made there could never be fine-tuned.
            with torch.inference_mode(False):
                model = load_model(base, text_encoder=text, image_encoder=image, motion_module=motion,
                                   dtype=compute, device=offload_device(),
                                   train_query_projections=train_query_projections, motion_variant=motion_variant,
                                   reference_view=reference_view)
            if note:
                model.notes.append(note)
            info = model.summary()
            return io.NodeOutput(MVModelHandle.wrap(model, info), info)


NODES = [LoadInflatedImageDream]
