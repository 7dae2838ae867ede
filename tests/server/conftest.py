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
    from atop_models.mesh.procedural import make_object

    (input_dir / "3d").mkdir(parents=True, exist_ok=True)
    write_glb(make_object("cabinet", 0), input_dir / "3d" / "atop_sample_cabinet.glb")


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
