"""Encoders and schedule: ImageDream's CLIP preprocessing and penultimate tokens, text tokens, VAE scaling,
the DDIM schedule."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from atop_models.diffusion.encoders import (clip_pixel_values, composite_rgba, encode_image_tokens, encode_text,
                                            tokenize, vae_decode, vae_encode)
from atop_models.diffusion.schedule import IMAGEDREAM_SCHEDULER_CONFIG, alphas_cumprod, check_scheduler_config, make_scheduler
from atop_models.diffusion.tiny import (CLIP_MEAN, CLIP_STD, image_processor_config, tiny_image_encoder,
                                        tiny_text_encoder, tiny_vae, tokenizer_files)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    d = tmp_path_factory.mktemp("tok")
    for name, text in tokenizer_files().items():
        (d / name).write_text(text, encoding="utf-8")
    return CLIPTokenizer.from_pretrained(str(d), local_files_only=True)


@pytest.fixture(scope="module")
def processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(**{k: v for k, v in image_processor_config(32).items() if k != "image_processor_type"})


def test_clip_preprocessing_is_shortest_side_bicubic_centre_crop_normalise(processor):
    rng = np.random.default_rng(0)
    img = rng.random((1, 48, 64, 3)).astype(np.float32)  # landscape: resized to 32 x 42, then cropped
    got = clip_pixel_values(processor, img)[0]
    u8 = Image.fromarray((img[0] * 255).round().astype(np.uint8))
    w = int(64 * 32 / 48)  # torchvision/OpenCLIP truncate the long side
    small = np.asarray(u8.resize((w, 32), Image.BICUBIC), dtype=np.float32) / 255
    left = round((w - 32) / 2)
    crop = small[:, left:left + 32]
    want = (crop - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    assert got.shape == (3, 32, 32)
    np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), want, atol=1e-5)


def test_rgba_is_composited_on_grey():
    rgba = np.zeros((1, 2, 2, 4), np.float32)
    rgba[0, 0, 0] = [1, 0, 0, 1]
    out = composite_rgba(rgba, 0.5)
    assert out.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(out[0, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(out[0, 1, 1], [0.5, 0.5, 0.5])


@torch.no_grad()
def test_image_tokens_are_the_penultimate_layer_without_post_norm(processor):
    enc = tiny_image_encoder(3).eval()
    img = np.random.default_rng(1).random((2, 40, 40, 3)).astype(np.float32)
    tokens = encode_image_tokens(enc, processor, img)
    assert tokens.shape == (2, 17, 48)  # 4x4 patches + class token
    px = clip_pixel_values(processor, img)
    # Independent path: embeddings -> pre-LayerNorm -> all encoder layers but the last.
    vm = enc.vision_model if hasattr(enc, "vision_model") else enc
    h = vm.pre_layrnorm(vm.embeddings(px))
    for layer in vm.encoder.layers[:-1]:
        out = layer(h, None)
        h = out[0] if isinstance(out, tuple) else out
    torch.testing.assert_close(tokens, h, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_text_tokens_are_77_and_long_prompts_warn(tokenizer, caplog):
    enc = tiny_text_encoder(2).eval()
    out = encode_text(enc, tokenizer, ["the door of the cabinet is getting opened", ""])
    assert out.shape == (2, 77, 64)
    assert not torch.allclose(out[0], out[1])
    with caplog.at_level(logging.WARNING, logger="atop"):
        ids = tokenize(tokenizer, ["door " * 100])
    assert ids.shape == (1, 77) and "the rest is dropped" in caplog.text
    vocab = tokenizer.get_vocab()
    assert ids[0, 0] == vocab["<|startoftext|>"] and ids[0, -1] == vocab["<|endoftext|>"]


@torch.no_grad()
def test_vae_scaling_and_round_trip_shapes():
    vae = tiny_vae(1).eval()
    img = torch.rand(3, 3, 64, 64)
    z = vae_encode(vae, img, sample=False, chunk=2)
    assert z.shape == (3, 4, 8, 8)
    raw = vae.encode(img * 2 - 1).latent_dist.mode()
    torch.testing.assert_close(z, raw * 0.18215)
    back = vae_decode(vae, z, chunk=2)
    assert back.shape == (3, 3, 64, 64) and back.min() >= 0 and back.max() <= 1
    torch.testing.assert_close(back, ((vae.decode(raw).sample + 1) / 2).clamp(0, 1))


def test_ddim_schedule_matches_imagedream():
    sched = make_scheduler()
    sched.set_timesteps(50)
    assert sched.timesteps.tolist() == list(range(981, 0, -20))
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(alphas_cumprod(), torch.cumprod(1 - betas, 0).float())
    assert sched.config.prediction_type == "epsilon" and not sched.config.set_alpha_to_one
    assert check_scheduler_config(dict(sched.config)) == []
    assert check_scheduler_config(dict(IMAGEDREAM_SCHEDULER_CONFIG, beta_schedule="linear")) == [
        "beta_schedule='linear' (ImageDream: 'scaled_linear')"]


def test_exclamation_marks_are_words_and_padding_is_zero(tokenizer):
    """open_clip reads "!" as the word "!" (id 256 in CLIP's vocabulary); a Hugging Face tokenizer whose pad
    token is "!" matches it as that special token (id 0) unless told not to."""
    vocab = tokenizer.get_vocab()
    assert vocab["!"] == 0 and vocab["!</w>"] == 256  # CLIP's byte order
    ids = tokenize(tokenizer, ["open the door!", "open!!"])[:, :8].tolist()
    want = [vocab[w] for w in ("<|startoftext|>", "open</w>", "the</w>", "door</w>", "!</w>", "<|endoftext|>")]
    assert ids[0] == want + [0, 0]
    assert 0 in tokenizer("open the door!")["input_ids"][1:-1]  # the pitfall the pack avoids
    assert tokenize(tokenizer, [""])[0, :3].tolist() == [vocab["<|startoftext|>"], vocab["<|endoftext|>"], 0]


def test_a_tokenizer_folder_with_only_tokenizer_json_loads(tmp_path, tokenizer):
    from atop_models.diffusion.checkpoints import load_text_encoder

    folder = tmp_path / "sd21"
    tiny_text_encoder(2).save_pretrained(str(folder / "text_encoder"))
    tokenizer.save_pretrained(str(tmp_path / "saved"))
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "tokenizer.json").write_bytes((tmp_path / "saved" / "tokenizer.json").read_bytes())
    enc, tok = load_text_encoder(folder, torch.float32)
    prompts = ["the door of the cabinet is getting opened!", "", "open " * 90]
    assert torch.equal(tokenize(tok, prompts), tokenize(tokenizer, prompts))


@dataclass
class TowerShape:
    hidden_size: int
    num_hidden_layers: int


def _text_tower(layers: int, seed: int = 2):
    from transformers import CLIPTextModel

    from atop_models.diffusion.tiny import _text_config, randomize_

    cfg = _text_config()
    cfg.num_hidden_layers = layers
    return randomize_(CLIPTextModel(cfg), seed).eval()


@torch.no_grad()
def test_a_complete_text_tower_is_read_at_its_penultimate_layer(tokenizer, tmp_path):
    """SD-2.1's text encoder is OpenCLIP's tower without its last block; a complete tower (one block more)
    gives the same context through its penultimate layer and final LayerNorm. Other layouts are refused."""
    from atop_models.diffusion.checkpoints import load_text_encoder
    from atop_models.diffusion.encoders import text_output_layer
    from atop_models.errors import ModelFileError

    full = _text_tower(3)
    cut = _text_tower(2)
    cut.load_state_dict({k: v for k, v in full.state_dict().items() if ".layers.2." not in k})
    prompts = ["the door of the cabinet is getting opened", ""]
    want = encode_text(cut, tokenizer, prompts)
    torch.testing.assert_close(encode_text(full, tokenizer, prompts), want, atol=1e-6, rtol=1e-6)
    naive = full(input_ids=tokenize(tokenizer, prompts)).last_hidden_state  # what reading the last layer gives
    off = float((naive - want).norm() / want.norm())
    print(f"complete tower read at its last layer: relative L2 {off:.2f} from the right context")
    assert off > 0.1
    assert text_output_layer(cut.config) == "last" and text_output_layer(full.config) == "penultimate"
    real = TowerShape(hidden_size=1024, num_hidden_layers=23)
    assert text_output_layer(real) == "last" and text_output_layer(dataclasses.replace(real, num_hidden_layers=24)) \
        == "penultimate"
    _text_tower(4).save_pretrained(str(tmp_path / "te" / "text_encoder"))
    tokenizer.save_pretrained(str(tmp_path / "te" / "tokenizer"))
    with pytest.raises(ModelFileError, match="4 layers of width 64 is not OpenCLIP ViT-H/14's text tower.*"
                                             "stabilityai/stable-diffusion-2-1-base"):
        load_text_encoder(tmp_path / "te", torch.float32)


def _open_clip_tokenizer():
    """open_clip's tokenizer module (open-clip-torch, a test dependency), loaded from its file so that the
    package's model code and its dependencies are not needed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("open-clip-torch is not installed (pip install -r requirements-dev.txt); it ships CLIP's BPE "
                    "vocabulary and open_clip's tokenizer")
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer.py"
    module_spec = importlib.util.spec_from_file_location("open_clip_tokenizer", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except ImportError as exc:
        pytest.skip(f"open_clip's tokenizer cannot be imported: {exc}")
    return module


def shipped_prompts() -> list[str]:
    from atop_models.mesh.procedural import CATEGORIES, default_prompt, make_object

    prompts = {default_prompt(mesh, part) for mesh in (make_object(c, 0) for c in CATEGORIES)
               for part in mesh.part_names if mesh.joint_for_part(part) is not None}
    prompts |= {"the door of the cabinet is being opened", "the left door of the fridge is being opened", "",
                "uniform low no texture ugly, boring, bad anatomy, blurry, pixelated,  obscure, unnatural colors, "
                "poor lighting, dull, and unclear.", "an astronaut riding a horse, 3d asset"}
    return sorted(prompts)


def test_token_ids_equal_open_clips_with_the_real_clip_vocabulary(tmp_path):
    """SD-2.1's tokenizer files are CLIP's BPE vocabulary (open_clip's bpe_simple_vocab_16e6.txt.gz) in
    Hugging Face's layout: built from it, the pack's tokenization equals open_clip's (what ImageDream uses)
    for every shipped prompt and for prompts with "!"."""
    import gzip
    import json

    from transformers import CLIPTokenizer

    oc = _open_clip_tokenizer()
    merges = gzip.open(oc.default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    chars = list(oc.bytes_to_unicode().values())
    words = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    words += ["<|startoftext|>", "<|endoftext|>"]
    (tmp_path / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
         "pad_token": "!", "model_max_length": 77, "do_lower_case": True}), encoding="utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert len(tokenizer.get_vocab()) == 49408
    exclaimed = ["open the door!", "the lid is being lifted open!!", "Wow! The drawer slides out !", "!",
                 "door!door", "! ! !", "the door of the cabinet is being opened" + "!" * 80]
    prompts = shipped_prompts() + exclaimed
    want = oc.SimpleTokenizer(context_length=77)(prompts)
    got = tokenize(tokenizer, prompts)
    assert got.tolist() == want.tolist()
    assert 256 in got[len(prompts) - len(exclaimed)].tolist()
