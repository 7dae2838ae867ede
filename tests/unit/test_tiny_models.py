"""The make-tiny and inspect commands, as a user runs them."""
from __future__ import annotations

import json

import pytest
import torch

from atop_models.cli import main

torch.set_num_threads(1)


def test_inspect_real_configuration_counts_on_meta_device(capsys):
    assert main(["inspect", "--config", "real", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"parameters": 941_672_900, "tensors": 773}
    assert main(["inspect", "--config", "tiny", "--json"]) == 0
    tiny = json.loads(capsys.readouterr().out)
    assert tiny["tensors"] == 740 and 8e6 < tiny["parameters"] < 9e6


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["make-tiny", str(root / "d"), "--layout", "diffusers"]) == 0
    assert main(["make-tiny", str(root / "o"), "--layout", "original", "--file-format", "safetensors"]) == 0
    return root


def test_make_tiny_writes_the_real_layouts(made):
    d = made / "d"
    for sub, names in {"unet": ["config.json", "diffusion_pytorch_model.safetensors"],
                       "vae": ["config.json", "diffusion_pytorch_model.safetensors"],
                       "text_encoder": ["config.json", "model.safetensors"],
                       "tokenizer": ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"],
                       "image_encoder": ["config.json", "model.safetensors"],
                       "feature_extractor": ["preprocessor_config.json"],
                       "scheduler": ["scheduler_config.json"]}.items():
        for name in names:
            assert (d / sub / name).is_file(), f"{sub}/{name}"
    index = json.loads((d / "model_index.json").read_text())
    assert index["unet"] == ["mv_unet", "MultiViewUNetModel"] and index["vae"] == ["diffusers", "AutoencoderKL"]
    o = made / "o"
    assert (o / "imagedream" / "imagedream-tiny-4view-ipmv.safetensors").is_file()
    assert (o / "text_encoder" / "tiny-sd21-text" / "tokenizer" / "vocab.json").is_file()
    assert json.loads((o / "image_encoder" / "tiny-clip-vit" / "config.json").read_text())["model_type"] == "clip"
    assert not [p for p in made.iterdir() if p.name.startswith(".")]  # no temporary folders left behind


def test_make_tiny_refuses_a_non_empty_folder(made, caplog):
    with pytest.raises(FileExistsError):
        main(["make-tiny", str(made / "d")])


def test_inspect_reports_formats_and_problems(made, capsys, tmp_path):
    assert main(["inspect", str(made / "d"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["format"] == "diffusers folder" and rep["unet"]["tensors"] == 740 and rep["ok"]
    ckpt = made / "o" / "imagedream" / "imagedream-tiny-4view-ipmv.safetensors"
    assert main(["inspect", str(ckpt), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["format"] == "original single-file checkpoint" and rep["unet"]["architecture"] == "tiny"
    assert rep["vae"]["ok"] and rep["dtype"].startswith("float32")
    # A damaged copy: one tensor missing, one of the wrong shape.
    from safetensors.torch import load_file, save_file

    state = load_file(str(ckpt))
    del state["model.diffusion_model.middle_block.1.norm.bias"]
    state["model.diffusion_model.time_embed.0.weight"] = torch.zeros(3, 3)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad))
    assert main(["inspect", str(bad), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["unet"]["missing"] == ["middle_block.1.norm.bias"]
    assert rep["unet"]["mismatched"] == [{"key": "time_embed.0.weight", "expected": [128, 32], "found": [3, 3]}]
    assert main(["inspect", str(made / "d")]) == 0  # text output
    assert "diffusers folder" in capsys.readouterr().out


def test_inspect_of_a_non_model_is_a_clear_error(tmp_path, caplog):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not a diffusers model folder" in caplog.text
