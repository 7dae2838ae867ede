import json

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
            "ms", "cpu_ms", "method", "pred"} <= set(row)
    assert row["object"] == "cabinet_0" and row["pred"]["type"] in ("revolute", "prismatic")
    assert {r["category"] for r in data["joints"]} == {"cabinet", "chest_of_drawers"}
    assert data["settings"]["procedural"] == 2 and data["settings"]["frames"] == 6


def test_bench_joints_needs_data(tmp_path):
    assert main(["bench", "joints"]) == 2
    assert main(["bench", "joints", "--data", str(tmp_path)]) == 2  # no manifest.json
