"""LoadInflatedImageDream in process: lists the registered model folders, loads tiny weights of both
layouts, reports the CPU precision fallback, and hands the components to ComfyUI's model management."""
from __future__ import annotations

import pytest
import torch

from tests.nodes.conftest import run_node


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, comfy_dirs, pack):
    import folder_paths

    from atop_models.diffusion.tiny import make_tiny

    root = tmp_path_factory.mktemp("models_atop")
    make_tiny(root / "imagedream" / "tiny-diffusers", "diffusers")
    make_tiny(root / "orig", "original")
    for key, sub in (("atop_imagedream", "imagedream"), ("atop_text_encoder", "orig/text_encoder"),
                     ("atop_image_encoder", "orig/image_encoder"), ("atop_motion_modules", "motion")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        folder_paths.add_model_folder_path(key, str(root / sub))
    folder_paths.add_model_folder_path("atop_imagedream", str(root / "orig" / "imagedream"))
    return root


def test_dropdowns_list_folders_and_files(node_classes, tiny_models):
    schema = node_classes["LoadInflatedImageDream"].GET_SCHEMA()
    opts = {i.id: i.options for i in schema.inputs if hasattr(i, "options") and i.options is not None}
    assert "tiny-diffusers" in opts["base_model"] and "imagedream-tiny-4view-ipmv.pt" in opts["base_model"]
    assert opts["text_encoder"] == ["[from base model]", "tiny-sd21-text"]
    assert opts["image_encoder"] == ["[from base model]", "tiny-clip-vit"]
    assert opts["motion_module"][0] == "[none]"
    assert schema.display_name == "ATOP Load Inflated ImageDream" and schema.category == "ATOP/model"


def test_loads_diffusers_folder_and_reports_cpu_fallback(node_classes, tiny_models):
    out = run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-diffusers", dtype="fp16")
    handle, info = out.args if hasattr(out, "args") else out.result
    assert "fp16 requested but the device is cpu: using fp32" in info
    model = handle.load("unet", "vae")
    assert model.unet.dtype == torch.float32 and model.unet.is_inflated
    assert not any(p.is_inference() for p in model.unet.parameters())  # trainable later despite inference_mode
    assert any(p.requires_grad for p in model.unet.parameters())
    assert set(handle.patchers) == {"unet", "vae", "text_encoder", "image_encoder"}


def test_single_file_needs_encoders_with_a_clear_message(node_classes, tiny_models):
    with pytest.raises(Exception, match="ATOP LoadInflatedImageDream: original single-file checkpoint .* need the text "
                                        "encoder and image encoder"):
        run_node(node_classes["LoadInflatedImageDream"], base_model="imagedream-tiny-4view-ipmv.pt")
    out = run_node(node_classes["LoadInflatedImageDream"], base_model="imagedream-tiny-4view-ipmv.pt",
                   text_encoder="tiny-sd21-text", image_encoder="tiny-clip-vit", dtype="fp32")
    handle, info = out.args if hasattr(out, "args") else out.result
    assert "original single-file checkpoint" in info


def test_motion_variant_and_reference_view_options(node_classes, tiny_models):
    from atop_models.diffusion.checkpoints import save_motion_module
    from atop_models.diffusion.tiny import tiny_unet
    from atop_models.diffusion.motion import MotionConfig

    schema = node_classes["LoadInflatedImageDream"].GET_SCHEMA()
    opts = {i.id: i.options for i in schema.inputs if hasattr(i, "options") and i.options is not None}
    assert opts["motion_variant"] == ["paper", "release"] and opts["reference_view"] == ["none", "pixel"]
    out = run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-diffusers", dtype="fp32",
                   motion_variant="paper", reference_view="pixel")
    handle, info = out.args if hasattr(out, "args") else out.result
    assert "motion variant: paper" in info and "reference view: pixel" in info
    assert handle.load("unet").reference_view == "pixel"
    unet = tiny_unet().inflate(MotionConfig(variant="paper"))
    save_motion_module(unet, tiny_models / "motion" / "paper_mm.safetensors")
    with pytest.raises(Exception, match="ATOP LoadInflatedImageDream: motion module paper_mm.safetensors holds "
                                        "'paper' motion modules but the model was loaded with the 'release' variant"):
        run_node(node_classes["LoadInflatedImageDream"], base_model="tiny-diffusers", dtype="fp32",
                 motion_variant="release", motion_module="paper_mm.safetensors")
