"""ATOP io types. Payloads are the dataclasses of ``atop_models.types`` (or small wrappers around them).

Each type subclasses ``io.ComfyTypeIO`` so that ``io.comfytype`` gives it its own Input/Output classes;
without the base class every type would share one Input class and report the last type's name."""
from __future__ import annotations

from ._comfy import io


@io.comfytype(io_type="ATOP_PART_MESH")
class PartMeshType(io.ComfyTypeIO):
    """atop_models.types.PartMesh: a segmented mesh in the normalised frame, with its part names."""


@io.comfytype(io_type="ATOP_CAMERAS")
class CamerasType(io.ComfyTypeIO):
    """atop_models.types.CameraRig: ImageDream-convention cameras (c2w, field of view, image size)."""


@io.comfytype(io_type="ATOP_MV_MODEL")
class MVModelType(io.ComfyTypeIO):
    """nodes._models.MVModelHandle: inflated ImageDream with motion modules, VAE and encoders."""


@io.comfytype(io_type="ATOP_MV_VIDEO")
class MVVideoType(io.ComfyTypeIO):
    """atop_models.types.MultiViewVideo: frames [V, F, H, W, 3], camera rig, latents and prompt."""


@io.comfytype(io_type="ATOP_POINT_SEQUENCE")
class PointSequenceType(io.ComfyTypeIO):
    """atop_models.types.PointSequence: per-frame points [F, N, 3] with moving-part labels."""


@io.comfytype(io_type="ATOP_JOINT")
class JointType(io.ComfyTypeIO):
    """atop_models.types.Joint, or a list of them (several parts of one object)."""
