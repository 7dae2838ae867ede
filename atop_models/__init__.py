"""ATOP library: articulate a part of a static 3D object from a text prompt. Never imports ComfyUI."""
import logging

logging.getLogger("atop").addHandler(logging.NullHandler())

__version__ = "0.1.0"
