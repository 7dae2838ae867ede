import json

import numpy as np
import pytest

from atop_models.cli import main

SUMMARY_KEYS = {"n_joints", "n_failed", "mae_deg", "mpe", "mpe_norm", "type_acc", "ms_per_joint", "cpu_ms_per_joint"}


def test_bench_joints_procedural_json(tmp_path, capsys):
    out = tmp_path / "joints.json"
    assert main(["bench", "joints", "--procedural", "2", "--frames", "6", "--points", "800", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "discrete (noise 0" in printed and "refined (noise 0" in printed and "TOTAL" in printed
    data = json.loads(out.read_text())
    assert set(data) >= {"summary", "joints", "discrete", "settings"}
    s = data["summary"]
    assert SUMMARY_KEYS <= set(s) and SUMMARY_KEYS <= set(data["discrete"]["summary"])
    n = s["n_joints"]
    assert n >= 2 and len(data["joints"]) == n and len(data["discrete"]["joints"]) == n
    # exact motion: the refined estimate recovers every joint
    assert s["n_failed"] == 0 and s["type_acc"] == 1.0 and s["mae_deg"] < 0.1
    assert s["mpe_norm"] is None or s["mpe_norm"] < 0.005
    row = data["joints"][0]
    assert {"object", "category", "part", "gt_type", "pred_type", "axis_err_deg", "pos_err", "pos_err_norm",
            "ms", "cpu_ms", "method", "pred", "part_size_norm"} <= set(row)
    assert all(0.05 < r["part_size_norm"] < 1.0 for r in data["joints"])  # doors and drawers of the object
    assert "sigma" not in printed  # no size split without noise
    assert row["object"] == "cabinet_0" and row["pred"]["type"] in ("revolute", "prismatic")
    assert {r["category"] for r in data["joints"]} == {"cabinet", "chest_of_drawers"}
    assert data["settings"]["procedural"] == 2 and data["settings"]["frames"] == 6


def test_part_size_is_the_moving_parts_box_diagonal():
    from atop_models.cli.bench.joints import part_size
    from atop_models.mesh.procedural import make_object

    mesh = make_object("cabinet", 0)
    joint = mesh.joints[0]
    faces = mesh.faces[mesh.part_face_mask(mesh.parts_moved_by(joint))]
    v = mesh.vertices[faces.reshape(-1)]
    want = np.linalg.norm(v.max(0) - v.min(0)) / np.linalg.norm(mesh.vertices.max(0) - mesh.vertices.min(0))
    assert part_size(mesh, joint) == pytest.approx(want, rel=1e-12)
    assert 0.1 < part_size(mesh, joint) < 1.0


def test_bench_joints_splits_by_part_size_with_noise(tmp_path, capsys):
    out = tmp_path / "joints.json"
    assert main(["bench", "joints", "--procedural", "2", "--frames", "4", "--points", "400", "--noise", "0.11",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())["joints"]
    big = [r for r in rows if r["part_size_norm"] >= 8 * 0.11]
    small = [r for r in rows if r["part_size_norm"] < 8 * 0.11]
    # the cabinet's door (0.92 of the object) is at least 8 sigma across, the chest's drawers (0.85) are not
    assert {r["category"] for r in big} == {"cabinet"} and {r["category"] for r in small} == {"chest_of_drawers"}
    assert printed.count("parts >= 8 sigma") == 2 and printed.count("parts < 8 sigma") == 2


def test_bench_joints_needs_data(tmp_path):
    assert main(["bench", "joints"]) == 2
    assert main(["bench", "joints", "--data", str(tmp_path)]) == 2  # no manifest.json
