"""ProceduralObject and RenderReferenceMotion executed in-process, as ComfyUI calls them."""
from __future__ import annotations

import os

import pytest

from tests.nodes.conftest import run_node


def test_procedural_object_and_reference_clip(node_classes, lib, comfy_dirs):
    mesh, text = run_node(node_classes["ProceduralObject"], category="microwave", seed=2).result
    assert mesh.part_names == ["body", "door"] and "revolute" in text and "microwave" in text
    frames, masks, folder = run_node(node_classes["RenderReferenceMotion"], mesh=mesh, part_name="door", prompt="",
                                     num_frames=3, fraction=0.5, elevation=15.0, resolution=64,
                                     dataset_name="tests").result
    assert tuple(frames.shape) == (12, 64, 64, 3) and tuple(masks.shape) == (4, 64, 64)
    assert folder.startswith(os.path.join(str(comfy_dirs / "output"), "atop_clips", "tests"))
    clip = lib.training.clips.read_clip(folder)
    assert clip.prompt == "the door of the microwave is being opened" and clip.num_frames == 3
    again = run_node(node_classes["RenderReferenceMotion"], mesh=mesh, part_name="door", prompt="opening",
                     num_frames=2, fraction=1.0, elevation=15.0, resolution=32, dataset_name="tests").result[2]
    assert again != folder and os.path.dirname(again) == os.path.dirname(folder)  # a new numbered clip
    assert lib.training.clips.validate_dataset(os.path.dirname(folder)) == []


def test_errors_are_prefixed(node_classes):
    mesh = run_node(node_classes["ProceduralObject"], category="box", seed=0).result[0]
    with pytest.raises(ValueError, match="ATOP Render Reference Motion: part 'body' has no joint"):
        run_node(node_classes["RenderReferenceMotion"], mesh=mesh, part_name="body", prompt="", num_frames=2,
                 fraction=1.0, elevation=15.0, resolution=32, dataset_name="tests")
    with pytest.raises(ValueError, match="ATOP Render Reference Motion: dataset name"):
        run_node(node_classes["RenderReferenceMotion"], mesh=mesh, part_name="lid", prompt="", num_frames=2,
                 fraction=1.0, elevation=15.0, resolution=32, dataset_name="../..")
