"""bench paint: the painted-part benchmark's helpers and its command line, on small settings."""
import json

import numpy as np
import pytest

from atop_models.cli import main
from atop_models.cli.bench.paint import brushed, face_iou, print_table, unlabelled
from atop_models.mesh.procedural import make_object


def test_face_iou_weighs_faces_by_area():
    area = np.array([1.0, 2.0, 3.0, 4.0])
    assert face_iou(area, np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool)) == pytest.approx(2 / 6)


def test_brush_grows_and_shrinks_masks():
    m = np.zeros((1, 9, 9), np.float32)
    m[0, 3:6, 3:6] = 1
    assert brushed(m, 1).sum() == 21 and brushed(m, -1).sum() == 1 and brushed(m, 0) is m


def test_unlabelled_surfaces_keep_their_source_faces():
    mesh = make_object("box", 0)
    for kw in ({}, {"shell": True}, {"voxel": 0.03}):
        surface, source = unlabelled(mesh, **kw)
        assert surface.part_names == ["object"] and len(source) == len(surface.faces)
        assert source.min() >= 0 and source.max() < len(mesh.faces)
        assert mesh.part_face_mask("lid")[source].any()


def test_cli_writes_both_view_counts_with_a_shared_true_lift(tmp_path):
    out = tmp_path / "paint.json"
    rc = main(["bench", "paint", "--procedural", "1", "--views", "4", "1", "--resolution", "128",
               "--iterations", "12", "--lift-resolution", "24", "--frames", "3", "--gaussians", "200",
               "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    rows = data["joints"]
    assert [(r["part"], r["views"]) for r in rows] == [("door", 4), ("door", 1)]
    assert all(r["iou"] == pytest.approx(1.0) and r["split"] == "tuning" for r in rows)
    assert rows[0]["true"] == rows[1]["true"]  # lifted once
    assert rows[0]["recovered"]["same_as_true"] and rows[0]["recovered"]["axis_err_deg"] >= 0
    assert set(data["summary"]) == {"4 views, tuning", "1 view, tuning"}
    s = data["summary"]["4 views, tuning"]
    assert s["n_joints"] == 1 and s["mean_iou"] == pytest.approx(1.0) and s["mean_delta_deg"] == 0.0
    assert data["settings"]["views"] == [4, 1]


def test_table_lists_parts_below_the_target_and_unseen_ones(capsys):
    def row(part, views, iou, visible=True):
        return {"object": "o", "part": part, "views": views, "visible": visible, "iou": iou}

    print_table({"summary": {}, "joints": [row("a", 4, 0.5), row("b", 1, 0.85), row("c", 1, 0.0, False)]}, "t")
    text = capsys.readouterr().out
    assert "4 view(s): below the IoU target (0.9): o/a 0.500" in text
    assert "1 view(s): 1 part(s) not visible in the painted views at rest: o/c" in text
    assert "o/b" not in text
