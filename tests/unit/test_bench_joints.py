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
    import trimesh

    from atop_models.cli.bench.joints import part_size
    from atop_models.types import Joint, PartMesh

    # base 2 x 1 x 1 at the origin; a 0.2 x 0.1 x 0.1 door at x = 0.5 carrying a 0.1 cube handle at x = 0.7
    specs = [("base", (2, 1, 1), (0, 0, 0)), ("door", (0.2, 0.1, 0.1), (0.5, 0, 0)),
             ("handle", (0.1, 0.1, 0.1), (0.7, 0, 0))]
    boxes = [trimesh.creation.box(extents=e) for _, e, _ in specs]
    mesh = PartMesh(vertices=np.concatenate([b.vertices + c for b, (_, _, c) in zip(boxes, specs)]),
                    faces=np.concatenate([b.faces + 8 * i for i, b in enumerate(boxes)]),
                    face_part=np.repeat(np.arange(3), 12), part_names=[s[0] for s in specs],
                    joints=[Joint("revolute", [0, 0, 1], [0.4, 0, 0], (0, 1), child="door", name="j")],
                    attached={"handle": "door"})
    # door and handle together span x 0.4..0.75, y and z -0.05..0.05; the object's diagonal is sqrt(6)
    assert part_size(mesh, mesh.joints[0]) == pytest.approx(np.sqrt(0.35 ** 2 + 0.1 ** 2 + 0.1 ** 2) / np.sqrt(6))


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
