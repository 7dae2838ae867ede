"""ATOP Part Articulation: articulate a part of a static 3D object from a text prompt, in ComfyUI."""
# ComfyUI imports this folder as a package; a test runner may import this file alone (from a folder whose
# name is no Python identifier, e.g. "ComfyUI-ATOP"), and there is nothing to export then.
if __package__:
    from .nodes import comfy_entrypoint

    __all__ = ["comfy_entrypoint"]
