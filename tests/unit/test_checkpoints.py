"""Loading ImageDream from both on-disk layouts, strict checking, and the errors users see."""
from __future__ import annotations

import shutil

import pytest
import torch

from atop_models.diffusion.bundle import resolve_dtype
from atop_models.diffusion.checkpoints import detect_format, load_model, read_state_dict
from atop_models.diffusion.tiny import REAL_VAE_CONFIG, TINY_UNET_CONFIG, make_tiny, original_state_dict
from atop_models.diffusion.unet import MultiViewUNet
from atop_models.diffusion.vae_keys import convert_ldm_vae, to_ldm_vae
from atop_models.errors import ModelFileError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    d = make_tiny(root / "diffusers", "diffusers")["model"]
    o = make_tiny(root / "original", "original")
    return d, o


def load_original(o, **kw):
    return load_model(o["checkpoint"], text_encoder=o["text_encoder"], image_encoder=o["image_encoder"], **kw)


def unet_inputs(seed=0, v=4):
    g = torch.Generator().manual_seed(seed)
    return dict(sample=torch.randn(v, 4, 8, 8, generator=g), timestep=torch.tensor(300),
                context=torch.randn(1, 77, 64, generator=g), camera=torch.randn(v, 16, generator=g),
                image_tokens=torch.randn(v, 17, 48, generator=g), num_views=v)


def test_both_layouts_load_the_same_model(tiny_dirs):
    d, o = tiny_dirs
    a, b = load_model(d), load_original(o)
    assert a.source_format == "diffusers folder" and b.source_format == "original single-file checkpoint"
    for name in ("unet", "vae", "text_encoder", "image_encoder"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys(), name
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    with torch.no_grad():
        torch.testing.assert_close(a.unet(**unet_inputs()), b.unet(**unet_inputs()), atol=1e-6, rtol=1e-5)
        z = torch.randn(2, 4, 8, 8)
        torch.testing.assert_close(a.vae.decode(z).sample, b.vae.decode(z).sample)
    assert a.unet.is_inflated and a.motion_source == "fresh"
    assert a.tokenizer("the door")["input_ids"] == b.tokenizer("the door")["input_ids"]


@pytest.mark.parametrize("file_format", ["safetensors", "ckpt"])
def test_other_single_file_formats(tmp_path, tiny_dirs, file_format):
    _, o = tiny_dirs
    state = original_state_dict(0)
    path = tmp_path / f"imagedream.{file_format}"
    if file_format == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "global_step": torch.tensor(1)}, str(path))  # Lightning wrapper
    m = load_model(path, text_encoder=o["text_encoder"], image_encoder=o["image_encoder"])
    got = m.unet.state_dict()
    assert all(torch.equal(got[k[len("model.diffusion_model."):]], v) for k, v in state.items()
               if k.startswith("model.diffusion_model."))


def test_unet_save_pretrained_round_trip(tmp_path):
    from atop_models.diffusion.tiny import tiny_unet

    unet = tiny_unet(seed=3).inflate()
    with torch.no_grad():
        for n, p in unet.named_parameters():
            if ".motion.to_out" in n:
                p.normal_(0, 0.05)
    unet.eval().save_pretrained(str(tmp_path / "unet"))
    back = MultiViewUNet.from_pretrained(str(tmp_path / "unet"), local_files_only=True).eval()
    assert back.is_inflated
    with torch.no_grad():
        torch.testing.assert_close(back(**unet_inputs(1)), unet(**unet_inputs(1)), atol=1e-6, rtol=1e-5)


def test_ldm_vae_names_round_trip_on_the_real_autoencoder():
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        sd = AutoencoderKL(**REAL_VAE_CONFIG).state_dict()
    ldm = to_ldm_vae(sd, 4)
    assert "encoder.down.1.block.0.nin_shortcut.weight" in ldm and "decoder.up.3.upsample.conv.weight" in ldm
    assert tuple(ldm["encoder.mid.attn_1.q.weight"].shape) == (512, 512, 1, 1)
    assert "decoder.mid.block_2.conv2.bias" in ldm and "encoder.norm_out.weight" in ldm
    back, unknown = convert_ldm_vae(ldm, 4)
    assert not unknown and back.keys() == sd.keys()
    assert all(back[k].shape == sd[k].shape for k in sd)
    # up.k in LDM is up_blocks.(3-k) in diffusers: the 128-channel decoder level is up.0 / up_blocks.3
    assert tuple(ldm["decoder.up.0.block.0.conv1.weight"].shape) == tuple(sd["decoder.up_blocks.3.resnets.0.conv1.weight"].shape)


def test_motion_module_and_query_projection_options(tiny_dirs, tmp_path):
    d, _ = tiny_dirs
    m = load_model(d, train_query_projections=True)
    trainable = [n for n, p in m.unet.named_parameters() if p.requires_grad]
    assert any(n.endswith("attn2.to_q.weight") for n in trainable)
    assert not any(p.requires_grad for p in m.vae.parameters())
    from atop_models.diffusion.checkpoints import save_motion_module

    path = save_motion_module(m.unet, tmp_path / "mm.safetensors", {"base_model": "tiny"})
    again = load_model(d, motion_module=path)
    assert again.motion_source == str(path)
    assert detect_format(path).kind == "motion-module"
    with pytest.raises(ModelFileError, match="motion-module file; choose it as the motion module"):
        load_model(path)


# --- bad input ------------------------------------------------------------------------------------
def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match="without model_index.json.*Peng-Wang/ImageDream"):
        load_model(tmp_path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_missing_sub_folder(tiny_dirs, tmp_path):
    d, _ = tiny_dirs
    broken = tmp_path / "broken"
    shutil.copytree(d, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(ModelFileError, match="sub-folder 'vae/' is missing"):
        load_model(broken)


def test_single_file_needs_its_encoders(tiny_dirs):
    _, o = tiny_dirs
    with pytest.raises(ModelFileError, match="need the text encoder and image encoder.*stable-diffusion-2-1-base"):
        load_model(o["checkpoint"])
    with pytest.raises(ModelFileError, match="not a CLIP text encoder"):
        load_model(o["checkpoint"], text_encoder=o["image_encoder"], image_encoder=o["image_encoder"])


def test_plain_stable_diffusion_checkpoint_is_named(tmp_path, tiny_dirs):
    _, o = tiny_dirs
    state = {k: v for k, v in original_state_dict(0).items()
             if not any(s in k for s in ("camera_embed", "image_embed", "_ip."))}
    path = tmp_path / "sd21.pt"
    torch.save(state, str(path))
    with pytest.raises(ModelFileError, match="Stable Diffusion.*not ImageDream"):
        load_model(path, text_encoder=o["text_encoder"], image_encoder=o["image_encoder"])


def test_stable_diffusion_pipeline_folder_is_named(tiny_dirs, tmp_path):
    import json

    d, _ = tiny_dirs
    sd = tmp_path / "stable-diffusion-2-1-base"
    shutil.copytree(d, sd)
    index = json.loads((sd / "model_index.json").read_text())
    index.update(_class_name="StableDiffusionPipeline", unet=["diffusers", "UNet2DConditionModel"])
    (sd / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFileError, match="'StableDiffusionPipeline' folder .*not ImageDream"):
        load_model(sd)


def test_mis_shaped_and_missing_keys_are_listed(tmp_path, tiny_dirs):
    _, o = tiny_dirs
    state = original_state_dict(0)
    state["model.diffusion_model.out.2.weight"] = torch.zeros(4, 32, 1, 1)
    del state["model.diffusion_model.input_blocks.1.0.in_layers.0.bias"]
    path = tmp_path / "bad.pt"
    torch.save(state, str(path))
    with pytest.raises(ModelFileError) as err:
        load_model(path, text_encoder=o["text_encoder"], image_encoder=o["image_encoder"])
    msg = str(err.value)
    assert "original single-file checkpoint bad.pt" in msg
    assert "input_blocks.1.0.in_layers.0.bias" in msg and "out.2.weight expected [4, 32, 3, 3] found [4, 32, 1, 1]" in msg


class Payload:
    """An arbitrary pickled object: weights-only loading must refuse it."""


def test_corrupt_and_unsafe_files(tmp_path):
    trunc = tmp_path / "trunc.pt"
    torch.save(original_state_dict(0), str(trunc))
    trunc.write_bytes(trunc.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="cannot read trunc.pt"):
        read_state_dict(trunc)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model.diffusion_model.x": torch.zeros(1), "obj": Payload()}, str(unsafe))
    with pytest.raises(ModelFileError, match="weights-only"):
        read_state_dict(unsafe)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        detect_format(bad)
    other = tmp_path / "weights.txt"
    other.write_text("x")
    with pytest.raises(ModelFileError, match="unsupported file type"):
        detect_format(other)


def test_half_precision_on_cpu_falls_back_to_fp32_with_a_note(caplog):
    with caplog.at_level("WARNING", logger="atop"):
        dtype, note = resolve_dtype("fp16", "cpu")
    assert dtype == torch.float32 and "fp32" in note and note in caplog.text
    assert resolve_dtype("auto", "cpu") == (torch.float32, "")
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_dtype("int8", "cpu")


def test_unet_config_of_the_diffusers_port_is_understood(tiny_dirs, tmp_path):
    """The port's unet/config.json names its class MultiViewUNetModel and has no resampler settings."""
    import json

    d, _ = tiny_dirs
    copy = tmp_path / "port"
    shutil.copytree(d, copy)
    cfg_path = copy / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["_class_name"] = "MultiViewUNetModel"
    cfg.pop("motion_module")
    cfg_path.write_text(json.dumps(cfg))
    m = load_model(copy)
    assert m.unet.config.context_dim == TINY_UNET_CONFIG["context_dim"]


def test_diffusers_folder_without_image_encoder(tiny_dirs, tmp_path):
    d, o = tiny_dirs
    broken = tmp_path / "no_image_encoder"
    shutil.copytree(d, broken)
    shutil.rmtree(broken / "image_encoder")
    with pytest.raises(ModelFileError, match="sub-folder 'image_encoder/' is missing: the image encoder .*vision "
                                             "tower.*laion/CLIP-ViT-H-14"):
        load_model(broken)
    m = load_model(broken, image_encoder=o["image_encoder"])  # another image encoder folder stands in
    assert m.image_encoder is not None


def test_unet_and_vae_only_from_a_single_file(tiny_dirs):
    _, o = tiny_dirs
    m = load_model(o["checkpoint"], with_encoders=False)
    assert m.text_encoder is m.image_encoder is m.tokenizer is None and set(m.modules()) == {"unet", "vae"}
    assert "UNet and VAE only (no encoders)" in m.summary()
    full = load_original(o)
    for k, v in full.unet.state_dict().items():
        assert torch.equal(v, m.unet.state_dict()[k])


def test_reference_view_and_motion_variant_in_the_info(tiny_dirs, tmp_path):
    d, o = tiny_dirs
    m = load_model(d, reference_view="pixel", motion_variant="paper")
    assert m.reference_view == "pixel" and m.motion_variant == "paper"
    info = m.summary()
    assert "motion variant: paper" in info and "reference view: pixel" in info
    assert "reference view: none" in load_model(d).summary()
    local = tmp_path / "imagedream" / "sd-v2.1-base-4view-ipmv-local.pt"
    local.parent.mkdir()
    shutil.copy(o["checkpoint"], local)
    with pytest.raises(ModelFileError, match="pixel-controller weights .*local variant, trained without it"):
        load_model(local, o["text_encoder"], o["image_encoder"], reference_view="pixel")
    with pytest.raises(ModelFileError, match="reference_view must be one of none, pixel"):
        load_model(d, reference_view="latent")
    plain = load_model(d)
    plain.unet.register_to_config(ip_dim=0)  # as if the UNet had no image prompt (MVDream)
    from atop_models.diffusion.checkpoints import check_reference_view

    with pytest.raises(ModelFileError, match="needs a UNet with an image prompt"):
        check_reference_view(plain, "pixel")
