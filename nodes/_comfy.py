"""The only module (with nodes/types.py) that imports ComfyUI. Everything ComfyUI-specific lives here."""
from __future__ import annotations

import functools
import logging
import os

import numpy as np
import torch
from comfy_api.latest import ComfyExtension, io, ui  # noqa: F401  (re-exported for the node modules)

log = logging.getLogger("atop")

# models/atop/<sub> folders, registered so that node dropdowns list their files.
MODEL_FOLDERS = {
    "atop_imagedream": "imagedream",
    "atop_motion_modules": "motion_modules",
    "atop_text_encoder": "text_encoder",
    "atop_image_encoder": "image_encoder",
}


def register_model_folders() -> None:
    import folder_paths

    base = os.path.join(folder_paths.models_dir, "atop")
    for key, sub in MODEL_FOLDERS.items():
        path = os.path.join(base, sub)
        if key in folder_paths.folder_names_and_paths:
            paths, exts = folder_paths.folder_names_and_paths[key]
            if path not in paths:
                paths.append(path)
        else:
            # An empty extension set matches every file and folder name we list ourselves.
            folder_paths.folder_names_and_paths[key] = ([path], set())


def model_folder_paths(key: str) -> list[str]:
    import folder_paths

    return list(folder_paths.get_folder_paths(key))


def output_directory() -> str:
    import folder_paths

    return folder_paths.get_output_directory()


def input_directory() -> str:
    import folder_paths

    return folder_paths.get_input_directory()


def progress_callback(total: int, every: int = 1):
    """An ``on_step(step, total, preview)`` for library loops: interrupt check plus ComfyUI progress."""
    import comfy.model_management
    import comfy.utils

    bar = comfy.utils.ProgressBar(total)

    def on_step(step: int, total_steps: int = total, preview=None) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if step % every == 0 or step >= total_steps:
            preview_arg = None
            if preview is not None:
                preview_arg = ("JPEG", to_pil(preview), 512)
            bar.update_absolute(step, total_steps, preview_arg)

    return on_step


def to_pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(arr)


def images_to_comfy(images: np.ndarray) -> torch.Tensor:
    """[B, H, W, 3] float 0..1 numpy -> ComfyUI IMAGE tensor."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))


def comfy_to_images(image: torch.Tensor) -> np.ndarray:
    """ComfyUI IMAGE [B, H, W, C] -> [B, H, W, 3] float32 numpy (alpha dropped)."""
    return image.detach().cpu().float().numpy()[..., :3]


def torch_device() -> torch.device:
    import comfy.model_management

    return comfy.model_management.get_torch_device()


def offload_device() -> torch.device:
    import comfy.model_management

    return comfy.model_management.unet_offload_device()


def soft_empty_cache() -> None:
    import comfy.model_management

    comfy.model_management.soft_empty_cache()


@functools.lru_cache(maxsize=None)
def display_names() -> dict[str, str]:
    """node id -> display name of every node of the pack ("PartMaskRender" -> "ATOP Part Mask Render")."""
    from . import _node_classes

    names = {}
    for cls in _node_classes():
        schema = cls.define_schema()
        names[schema.node_id] = schema.display_name
    return names


class user_errors:
    """Context manager: library input errors reach the UI prefixed with the node's display name, the name the
    user sees on the node ("ATOP Part Mask Render: part 'door' not found; parts are: body, lid")."""

    def __init__(self, node: str):
        self.node = node  # the node id

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        from ..atop_models.errors import DivergenceError, InputError

        if exc is None:
            return False
        if isinstance(exc, (InputError, FileNotFoundError, DivergenceError)) and not str(exc).startswith("ATOP "):
            name = display_names().get(self.node, f"ATOP {self.node}")
            raise type(exc)(f"{name}: {exc}") from exc
        return False
