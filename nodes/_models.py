"""ComfyUI model management for ATOP's diffusion models: every component of a loaded ImageDream sits in its
own ``ModelPatcher`` so ComfyUI moves it to the GPU just before use (unloading other models when memory is
short) and back to the offload device afterwards."""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

log = logging.getLogger("atop")

MODEL_FILE_EXTS = (".pt", ".ckpt", ".safetensors", ".pth")


class _Holder(nn.Module):
    """ComfyUI's ModelPatcher sets ``model.device``; diffusers and transformers models expose ``device`` as a
    read-only property, so each one is held in this plain module."""

    def __init__(self, module: nn.Module, device: torch.device):
        super().__init__()
        self.module = module
        self.device = device


def make_patcher(module: nn.Module):
    import comfy.model_management as mm
    import comfy.model_patcher

    return comfy.model_patcher.ModelPatcher(_Holder(module, mm.unet_offload_device()), load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


@dataclass
class MVModelHandle:
    """The ATOP_MV_MODEL payload: the library bundle (``model``) plus one ModelPatcher per component.

    Before using components call ``load("unet", "vae", ...)``: it asks ComfyUI to place them on the compute
    device (fully loaded: these are plain torch layers) and returns the bundle."""

    model: object  # atop_models.diffusion.bundle.MVModel
    patchers: dict = field(default_factory=dict)
    info: str = ""

    @classmethod
    def wrap(cls, model, info: str = "") -> "MVModelHandle":
        return cls(model=model, patchers={name: make_patcher(m) for name, m in model.modules().items()}, info=info)

    def load(self, *names: str):
        import comfy.model_management as mm

        names = names or tuple(self.patchers)
        unknown = [n for n in names if n not in self.patchers]
        if unknown:
            raise KeyError(f"unknown model components {unknown}; components: {sorted(self.patchers)}")
        mm.load_models_gpu([self.patchers[n] for n in names], force_full_load=True)
        return self.model

    def replace(self, **components) -> "MVModelHandle":
        """A new handle sharing the untouched components (e.g. ``unet=`` a fine-tuned copy)."""
        model = dataclasses.replace(self.model, **components)
        patchers = dict(self.patchers)
        for name, module in components.items():
            if name in patchers:
                patchers[name] = make_patcher(module)
        return MVModelHandle(model=model, patchers=patchers, info=self.info)

    @property
    def load_device(self) -> torch.device:
        import comfy.model_management as mm

        return mm.get_torch_device()


def list_model_entries(roots: list[str], folders: bool = True, files: bool = True,
                       folder_marker: str | None = "model_index.json") -> list[str]:
    """Names (relative, '/'-separated) of model folders (containing ``folder_marker``; any folder when None)
    and model files under ``roots``; a model folder is listed itself, not its content."""
    out: set[str] = set()
    for root in roots:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if rel != ".":
                is_model = folder_marker is None or os.path.isfile(os.path.join(dirpath, folder_marker))
                if folders and is_model:
                    out.add(rel)
                    dirnames[:] = []
                    continue
            if files:
                for f in filenames:
                    if f.lower().endswith(MODEL_FILE_EXTS) and not f.startswith("."):
                        out.add(f if rel == "." else f"{rel}/{f}")
    return sorted(out)


def resolve_entry(roots: list[str], name: str, what: str, hint: str = "") -> str:
    """The path of a listed model ``name`` under ``roots``; a missing one is an error naming the folders
    (and ``hint``: where to get it)."""
    for root in roots:
        path = os.path.join(root, *name.split("/"))
        if os.path.exists(path):
            return path
    from ..atop_models.errors import ModelFileError

    where = ", ".join(roots) or "(no folders registered)"
    raise ModelFileError(f"{what} '{name}' not found in {where}" + (f"; {hint}" if hint else ""))
