"""MultiViewMotionSample: the personalised model generates the part's motion from the rest-state views."""
from __future__ import annotations

import torch

from ..atop_models.diffusion.sampler import FIRST_FRAME_CHOICES, sample_video, video_grid
from ..atop_models.errors import InputError
from ._comfy import comfy_to_images, images_to_comfy, io, progress_callback, soft_empty_cache, user_errors
from .types import CamerasType, MVModelType, MVVideoType


class MultiViewMotionSample(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="MultiViewMotionSample",
            display_name="ATOP Multi-View Motion Sample",
            category="ATOP/motion",
            description="Samples the part's motion as a multi-view video (4 views x 10 frames by default) with "
                        "DDIM and classifier-free guidance, conditioned on the prompt, the rest-state views, the "
                        "part masks and the cameras.",
            inputs=[
                MVModelType.Input("model", tooltip="Inflated ImageDream with a fine-tuned motion module."),
                io.Image.Input("views", tooltip="Rest-state views, one per camera (ATOP Mesh Multi-View Render)."),
                CamerasType.Input("cameras", tooltip="The cameras of the views."),
                io.Mask.Input("part_masks", tooltip="Visible pixels of the moving part in each view "
                                                    "(ATOP Part Mask Render): where the motion happens."),
                io.String.Input("prompt", default="the door of the cabinet is being opened", multiline=True,
                                tooltip="What moves and how, e.g. 'the left door of the fridge is being opened'."),
                io.String.Input("negative_prompt", default="", multiline=True,
                                tooltip="Text for the unconditional branch of the guidance (empty = none)."),
                io.Int.Input("num_frames", default=10, min=2, max=32, tooltip="Frames to generate (frame 0 = rest)."),
                io.Int.Input("steps", default=50, min=1, max=1000, tooltip="DDIM steps."),
                io.Float.Input("guidance_scale", default=5.0, min=1.0, max=30.0, step=0.1,
                               tooltip="Classifier-free guidance scale (1 = no guidance)."),
                io.Float.Input("eta", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="DDIM eta: 0 = deterministic, 1 = ancestral-like noise."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=False,
                             tooltip="Seed of the initial noise."),
                io.Combo.Input("first_frame", options=list(FIRST_FRAME_CHOICES), default="auto",
                               tooltip="input: frame 0 is the given rest state (the paper variant's way); "
                                       "generate: every frame from noise, the rest state enters through the image "
                                       "tokens (the release variant's way); auto: the motion variant's way."),
            ],
            outputs=[
                MVVideoType.Output("video", tooltip="Frames [views, frames, H, W, 3] with latents, cameras, "
                                                    "prompt and part masks: lift it with ATOP Gaussian SDS Lift."),
                io.Image.Output("grid", tooltip="All frames as one image: a row per view, a column per frame."),
            ],
        )

    @classmethod
    def execute(cls, model, views, cameras, part_masks, prompt, negative_prompt, num_frames, steps, guidance_scale,
                eta, seed, first_frame="auto") -> io.NodeOutput:
        with user_errors("MultiViewMotionSample"):
            images = comfy_to_images(views)
            masks = part_masks.detach().cpu().float().numpy()
            if masks.ndim == 2:
                masks = masks[None]
            if not prompt.strip():
                raise InputError("the prompt is empty; describe the motion, e.g. 'the door of the cabinet is "
                                 "being opened'")
            if images.shape[0] != cameras.num_views or masks.shape[0] != cameras.num_views:
                raise InputError(f"{images.shape[0]} views, {masks.shape[0]} masks and {cameras.num_views} cameras; "
                                 "render views and masks with the same cameras")
            bundle = model.load("unet", "vae", "text_encoder", "image_encoder")
            if not bundle.unet.is_inflated:
                raise InputError("the model has no motion module; load it with ATOP Load Inflated ImageDream")
            with torch.inference_mode():
                video = sample_video(bundle, images, prompt, cameras, masks, negative_prompt=negative_prompt,
                                     num_frames=num_frames, steps=steps, guidance_scale=guidance_scale, eta=eta,
                                     seed=seed, first_frame=first_frame, on_step=progress_callback(steps))
        soft_empty_cache()
        return io.NodeOutput(video, images_to_comfy(video_grid(video.frames)[None]))


NODES = [MultiViewMotionSample]
