"""Reference clips: rendering from ground-truth joints, exact write/read round trip, dataset validation
that reports every problem at once, procedural datasets."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig
from atop_models.mesh.procedural import make_object
from atop_models.render.raycast import render_views
from atop_models.training.clips import (load_dataset, make_procedural_dataset, read_clip, render_reference_clip,
                                        validate_dataset, write_clip)


@pytest.fixture(scope="module")
def cabinet_clip():
    mesh = make_object("cabinet", 3)
    rig = imagedream_rig(resolution=48)
    return mesh, rig, render_reference_clip(mesh, "door", num_frames=3, fraction=0.5, rig=rig)


def test_render_reference_clip(cabinet_clip):
    mesh, rig, clip = cabinet_clip
    j = mesh.joint_for_part("door")
    assert clip.frames.shape == (4, 3, 48, 48, 3) and clip.frames.dtype == np.float32
    assert clip.masks.shape == (4, 48, 48)
    assert np.allclose(clip.joint_values, [0.0, 0.25 * j.limits[1], 0.5 * j.limits[1]])
    assert np.allclose(clip.frames[:, 0], render_views(mesh, rig).rgb)  # frame 0 is the rest state
    assert np.abs(clip.frames[0, 2] - clip.frames[0, 0]).max() > 0.2  # the door moved in the front view
    assert clip.masks[0].sum() > 200 and clip.masks[2].sum() == 0  # seen from the front, hidden from behind
    assert clip.prompt == "the door of the cabinet is being opened" and clip.part == "door"
    assert clip.joint.to_dict() == j.to_dict()


def test_render_errors():
    mesh = make_object("chest_of_drawers", 0)
    rig = imagedream_rig(resolution=16)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(InputError, match="fraction"):
            render_reference_clip(mesh, "drawer_1", fraction=bad, rig=rig)
    with pytest.raises(InputError, match="articulated parts: drawer_1, drawer_2"):
        render_reference_clip(mesh, "body", rig=rig)
    with pytest.raises(InputError, match="parts are"):
        render_reference_clip(mesh, "lid", rig=rig)


def test_default_rig_keeps_the_whole_motion_in_view():
    mesh = make_object("trash_can", 1)  # an opened lid reaches far above the unit box
    clip = render_reference_clip(mesh, "lid", num_frames=2, resolution=32)
    assert clip.rig.distance > 2.5
    border = np.concatenate([clip.frames[:, :, 0], clip.frames[:, :, -1], clip.frames[:, :, :, 0],
                             clip.frames[:, :, :, -1]], axis=2)
    assert np.all(border == 1.0)  # nothing touches the image border: white everywhere there
    small = render_reference_clip(make_object("cabinet", 0), "door", num_frames=2, fraction=0.05, resolution=32)
    assert 2.0 <= small.rig.distance < 2.1  # a small motion keeps about ImageDream's default distance
    fixed = imagedream_rig(resolution=32)
    assert render_reference_clip(make_object("trash_can", 1), "lid", num_frames=2, rig=fixed).rig is fixed


def test_write_read_round_trip(tmp_path, cabinet_clip):
    _, _, clip = cabinet_clip
    folder = write_clip(clip, tmp_path / "ds" / "c0")
    assert sorted(os.listdir(tmp_path / "ds")) == ["c0"]
    assert sorted(os.listdir(folder)) == ["clip.json", "view_0", "view_1", "view_2", "view_3"]
    assert sorted(os.listdir(folder / "view_1")) == ["frame_00.png", "frame_01.png", "frame_02.png", "mask.png"]
    meta = json.loads((folder / "clip.json").read_text())
    assert meta["format"] == "atop-reference-clip" and meta["version"] == 1 and meta["resolution"] == 48
    assert meta["object"] == {"name": "cabinet_3", "category": "cabinet", "source": "procedural:cabinet:3"}
    back = read_clip(folder)
    assert np.abs(back.frames - clip.frames).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(back.masks, clip.masks)
    assert back.prompt == clip.prompt and back.part == clip.part
    assert back.joint.to_dict() == clip.joint.to_dict() and np.allclose(back.joint_values, clip.joint_values)
    assert np.allclose(back.rig.c2w, clip.rig.c2w) and back.rig.fov_deg == clip.rig.fov_deg
    with pytest.raises(InputError, match="already exists"):
        write_clip(clip, folder)
    write_clip(clip, folder, overwrite=True)
    assert sorted(os.listdir(tmp_path / "ds")) == ["c0"]  # replaced in place, no temp folders left
    assert back.name == "c0" and back.cameras is back.rig


def test_validate_reports_every_problem(tmp_path, cabinet_clip):
    _, _, clip = cabinet_clip
    ds = tmp_path / "ds"
    for name in ("a", "b", "c", "d"):
        write_clip(clip, ds / name)
    assert validate_dataset(ds) == [] and len(load_dataset(ds)) == 4
    os.remove(ds / "a" / "view_1" / "frame_02.png")  # missing frame
    (ds / "a" / "view_0" / "frame_01.png").write_bytes(b"\x89PNG not really")  # corrupt png
    for v in range(4):  # empty masks everywhere
        Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(ds / "b" / f"view_{v}" / "mask.png")
    (ds / "c" / "clip.json").write_text("{ not json")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8), "RGB").save(ds / "d" / "view_3" / "frame_00.png")  # wrong size
    problems = validate_dataset(ds)
    text = "\n".join(problems)
    assert "a/view_1: missing frame_02.png" in text
    assert "a/view_0: frame_01.png is unreadable" in text
    assert "b: every view's mask.png is empty" in text
    assert "c: clip.json is not valid JSON" in text
    assert "d/view_3: frame_00.png is 32x32, expected 48x48" in text
    assert len(problems) == 5
    with pytest.raises(InputError) as err:
        load_dataset(ds)
    assert "5 problems" in str(err.value) and "missing frame_02.png" in str(err.value) and "not valid JSON" in str(err.value)
    with pytest.raises(InputError, match="invalid"):
        read_clip(ds / "b")
    assert validate_dataset(tmp_path / "nowhere")[0].endswith("does not exist or is not a folder")


def test_make_procedural_dataset(tmp_path):
    paths = make_procedural_dataset(tmp_path / "ds", ["box", "oven"], 1, seed=5, num_frames=2, resolution=32)
    assert [p.name for p in paths] == ["box_000", "oven_000"]
    assert validate_dataset(tmp_path / "ds") == []
    clips = load_dataset(tmp_path / "ds")
    assert [c.meta["object"]["category"] for c in clips] == ["box", "oven"]
    assert clips[0].prompt == "the lid of the box is being lifted open"
    again = make_procedural_dataset(tmp_path / "ds2", ["box"], 1, seed=5, num_frames=2, resolution=32)
    assert np.array_equal(read_clip(again[0]).frames, clips[0].frames)  # deterministic
    with pytest.raises(InputError, match="unknown procedural categories"):
        make_procedural_dataset(tmp_path / "x", ["spaceship"], 1, seed=0)


def test_clip_rendering_reports_each_frame():
    from atop_models.mesh.procedural import make_object
    from atop_models.training.clips import render_reference_clip

    reports = []
    render_reference_clip(make_object("cabinet", 0), "door", num_frames=3, resolution=32,
                          on_step=lambda s, t, p: reports.append((s, t)))
    assert reports == [(1, 3), (2, 3), (3, 3)]
