"""The README's main job on small settings: every output is written, the summary is consistent, and the run
says plainly that it lifted the reference motion (no weights here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yourdfpy
from PIL import Image

from tests.conftest import ROOT


def test_demo_writes_every_output(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "atop_models", "demo", "--out", str(out), "--iterations", "40", "--frames", "4",
         "--gaussians", "600", "--resolution", "96"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no ImageDream weights given: lifting the sample's reference motion" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["motion_source"] == "reference motion (ground truth)"
    assert summary["estimated_joint"]["type"] in ("revolute", "prismatic")
    assert summary["errors"]["axis_err_deg"] >= 0.0
    for key in ("urdf", "animated_glb", "contact_sheet", "sample_glb", "sample_shell_glb"):
        assert Path(summary["files"][key]).exists(), key
    robot = yourdfpy.URDF.load(summary["files"]["urdf"])
    assert [j.type for j in robot.robot.joints if j.type != "fixed"] == [summary["estimated_joint"]["type"]]
    sheet = Image.open(summary["files"]["contact_sheet"])
    assert sheet.width > 600 and sheet.height > 600
    assert (out / "reference_clip" / "clip.json").exists() and (out / "summary.txt").exists()


def test_demo_text_driven_path_runs_with_a_model(tmp_path):
    """With weights and a motion module the motion is sampled by the model (tiny random weights here, so
    only the path is checked, not the joint)."""
    from atop_models.diffusion.checkpoints import load_model, save_motion_module
    from atop_models.diffusion.tiny import make_tiny

    make_tiny(tmp_path / "tiny", "diffusers")
    save_motion_module(load_model(tmp_path / "tiny").unet, tmp_path / "motion.safetensors")
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "atop_models", "demo", "--out", str(out), "--model", str(tmp_path / "tiny"),
         "--motion-module", str(tmp_path / "motion.safetensors"), "--iterations", "10", "--frames", "3",
         "--gaussians", "300", "--resolution", "64"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["motion_source"] == "model" and summary["mode"].startswith("text-driven")
    assert Path(summary["files"]["animated_glb"]).exists()


def test_demo_model_without_motion_module_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "atop_models", "demo", "--out", str(tmp_path / "d"),
                             "--model", str(tmp_path / "nowhere")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "--model needs --motion-module" in result.stderr
