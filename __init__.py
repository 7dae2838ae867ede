"""ATOP Part Articulation: articulate a part of a static 3D object from a text prompt, in ComfyUI."""
from .nodes import comfy_entrypoint

__all__ = ["comfy_entrypoint"]
