"""Lift node: per-frame 3D Gaussians fitted to a multi-view motion (score distillation or a given video)."""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..atop_models.errors import InputError
from ..atop_models.geometry.joint_search import JOINT_TYPE_CHOICES
from ..atop_models.lift.gaussians import moving_parts_for
from ..atop_models.lift.guidance import ModelNoisePredictor, SDSGuidance, VideoGuidance
from ..atop_models.lift.lift import lift_gaussians
from ..atop_models.render.painted_masks import part_disagreement
from ._comfy import images_to_comfy, io, progress_callback, soft_empty_cache, torch_device, user_errors
from .types import CamerasType, MVModelType, MVVideoType, PartMeshType, PointSequenceType

log = logging.getLogger("atop")


class GaussianSDSLift(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GaussianSDSLift",
            display_name="ATOP Gaussian SDS Lift",
            category="ATOP/lift",
            description="Per-frame 3D Gaussians on the mesh (static part fixed; the moving part follows a "
                        "joint, a rigid motion per frame, or moves freely), "
                        "optimised by score distillation with the motion model, or fitted to a given "
                        "multi-view video. Outputs the Gaussian centres per frame as a point sequence.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="Segmented mesh (rest state) from ATOP Load Part Mesh."),
                io.String.Input("part_name", default="", tooltip="Name of the part that moves."),
                CamerasType.Input("cameras", tooltip="The cameras of the multi-view motion (ATOP Mesh "
                                                     "Multi-View Render's cameras)."),
                io.Combo.Input("guidance", options=["sds", "video"], default="sds",
                               tooltip="sds: score distillation with the model; video: fit the given video."),
                MVVideoType.Input("video", optional=True,
                                  tooltip="Multi-view motion video: the target for 'video' guidance; for 'sds' "
                                          "its prompt, rest-state frames and part masks condition the model."),
                MVModelType.Input("model", optional=True,
                                  tooltip="Inflated ImageDream with a motion module (required for 'sds')."),
                io.Int.Input("iterations", default=150, min=1, max=100000,
                             tooltip="Optimisation steps. 150 fit a video (joint motion, 2,000 Gaussians, 64 px) "
                                     "as well as the demo does; score distillation wants 300 or more (GPU). "
                                     "Progress counts these steps and the joint ranking's candidates."),
                io.Float.Input("learning_rate", default=0.01, min=1e-5, max=1.0, step=0.001,
                               tooltip="Adam learning rate of the motion parameters."),
                io.Int.Input("num_gaussians", default=2000, min=64, max=200000,
                             tooltip="Gaussians in total, half on the moving part."),
                io.Combo.Input("motion", options=["joint", "rigid", "free"], default="rigid",
                               tooltip="How the moving part's Gaussians move. joint: one hinge or slide for "
                                       "all frames, searched among the part's bounding-box axes against the "
                                       "video, then refined (video guidance only); rigid: one rigid transform "
                                       "per frame; free: every Gaussian on its own."),
                io.Float.Input("guidance_scale", default=5.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Classifier-free guidance scale (sds)."),
                io.Float.Input("t_min", default=0.02, min=0.0, max=1.0, step=0.01,
                               tooltip="Final lower bound of the timestep range, fraction of the schedule (sds)."),
                io.Float.Input("t_max", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Final upper bound of the timestep range; both bounds anneal from 0.98 "
                                       "(sds)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, tooltip="Seed for sampling and noise."),
                io.Combo.Input("backend", options=["auto", "gsplat", "torch"], default="auto",
                               tooltip="Gaussian rasteriser: auto = gsplat on CUDA when it works, else torch."),
                io.Int.Input("resolution", default=64, min=8, max=1024, optional=True,
                             tooltip="Working resolution for RGB video guidance (latents use their own size)."),
                io.Combo.Input("joint_type", options=list(JOINT_TYPE_CHOICES), default="auto", optional=True,
                               tooltip="Joint motion only: the joint's type when you know it (a knob turns, a "
                                       "button slides), for parts whose motion the views barely show; auto "
                                       "lets the video decide."),
            ],
            outputs=[
                PointSequenceType.Output(display_name="points", tooltip="Gaussian centres per frame, moving-part "
                                                                         "labels and track ids."),
                io.Image.Output(display_name="previews", tooltip="Final renders per frame, views side by side "
                                                                  "(video guidance: above the target)."),
                io.Custom("LOSS_MAP").Output(display_name="loss_map", tooltip="Loss per iteration."),
                io.String.Output(display_name="info", tooltip="Rasteriser used and notes; a warning when the "
                                                              "video's part masks and the mesh's part disagree."),
            ],
        )

    @classmethod
    def execute(cls, mesh, part_name, cameras, guidance, iterations, learning_rate, num_gaussians, motion,
                guidance_scale, t_min, t_max, seed, backend, video=None, model=None, resolution=64,
                joint_type="auto") -> io.NodeOutput:
        with user_errors("GaussianSDSLift"):
            if guidance == "video" and video is None:
                raise InputError("'video' guidance needs a video input; connect a multi-view motion video")
            if guidance == "sds" and model is None:
                raise InputError("'sds' guidance needs a model; connect ATOP Load Inflated ImageDream")
            if guidance == "sds" and video is None:
                raise InputError("'sds' guidance needs a video for its prompt, rest-state views and part "
                                 "masks; connect ATOP Multi-View Motion Sample's video")
            # ComfyUI runs nodes under inference_mode: the optimisation needs autograd back, and every tensor
            # it touches must be made outside inference mode.
            with torch.inference_mode(False), torch.enable_grad():
                if guidance == "video":
                    device = torch_device()
                    guide = VideoGuidance(video, cameras, resolution=resolution, device=device)
                else:
                    bundle = model.load()  # ComfyUI places every component on its compute device
                    device = bundle.device
                    predictor = ModelNoisePredictor(bundle, cameras, video.prompt, video.frames[:, 0],
                                                    video.part_masks, video.num_frames)
                    guide = SDSGuidance(predictor, guidance_scale=guidance_scale, t_min=t_min, t_max=t_max,
                                        seed=seed)
                note = "" if video is None or video.part_masks is None else part_disagreement(
                    mesh, moving_parts_for(mesh, part_name), cameras, video.part_masks)
                if note:
                    log.warning("GaussianSDSLift: %s", note)
                result = lift_gaussians(mesh, part_name, cameras, guide, iterations=iterations,
                                        learning_rate=learning_rate, num_gaussians=num_gaussians, motion=motion,
                                        joint_type=joint_type, seed=seed, backend=backend, device=device,
                                        on_step=progress_callback(iterations))
        soft_empty_cache()
        losses = [float(x) for x in result.losses if np.isfinite(x)]  # skipped steps are NaN
        info = f"{result.info}; {result.seconds:.1f} s" + (f"\nWARNING: {note}" if note else "")
        return io.NodeOutput(result.sequence, images_to_comfy(np.asarray(result.previews)), {"loss": losses}, info)


NODES = [GaussianSDSLift]
