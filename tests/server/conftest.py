"""One real headless ComfyUI for the server tests, with tiny random-weight models in the real layouts and a
procedural sample mesh in its input folder."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.comfy_host import ROOT, ComfyHost


def make_tiny_models(models_root) -> None:
    imagedream = models_root / "atop" / "imagedream"
    imagedream.mkdir(parents=True, exist_ok=True)
    (models_root / "atop" / "motion_modules").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "atop_models", "make-tiny", str(imagedream / "tiny-imagedream"), "--layout", "diffusers"],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )


def write_sample_mesh(input_dir) -> None:
    sys.path.insert(0, str(ROOT))
    from atop_models.export.glb import write_glb
    from atop_models.mesh.merge import outer_shell
    from atop_models.mesh.procedural import make_object

    (input_dir / "3d").mkdir(parents=True, exist_ok=True)
    cabinet = make_object("cabinet", 0)
    write_glb(cabinet, input_dir / "3d" / "atop_sample_cabinet.glb")
    write_glb(outer_shell(cabinet)[0], input_dir / "3d" / "atop_sample_cabinet_shell.glb")
    write_painted_sheet(input_dir / "atop_paint_example.png", 64)


def write_painted_sheet(path, resolution: int) -> None:
    """The sample cabinet's views side by side (Mesh Multi-View Render's defaults at ``resolution``) as an
    RGBA PNG whose door is erased to transparency: what painting the door in ComfyUI's mask editor saves."""
    import numpy as np
    from PIL import Image

    from atop_models.geometry.cameras import imagedream_rig
    from atop_models.mesh.procedural import make_object
    from atop_models.render.masks import part_masks
    from atop_models.render.painted_masks import side_by_side
    from atop_models.render.raycast import render_views

    cabinet = make_object("cabinet", 0)
    render = render_views(cabinet, imagedream_rig(resolution=resolution))
    rgb = side_by_side(render.rgb)[0]
    alpha = 1.0 - side_by_side(part_masks(cabinet, render, "door"))[0]
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(path)


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui")
    models = base / "models"
    make_tiny_models(models)
    host = ComfyHost(base, models={
        "atop_imagedream": models / "atop" / "imagedream",
        "atop_motion_modules": models / "atop" / "motion_modules",
    })
    write_sample_mesh(host.input_dir)
    host.start()
    yield host
    host.stop()
