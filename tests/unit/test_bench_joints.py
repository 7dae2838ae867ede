import json
import re

import numpy as np
import pytest

from atop_models.cli import main

DOOR_URDF = """<robot name="box"><link name="base"><visual><geometry><box size="1 1 1"/></geometry></visual></link>
<link name="door"><visual><origin xyz="0 -0.55 0"/><geometry><box size="1 0.1 1"/></geometry></visual></link>
<joint name="hinge" type="revolute"><parent link="base"/><child link="door"/><origin xyz="0.5 0 0"/>
<axis xyz="0 0 1"/><limit lower="0" upper="1.5"/></joint></robot>"""
GOOD_JOINT = {"name": "hinge", "type": "revolute", "axis_world": [0, 0, 1], "origin_world": [0.5, 0, 0],
              "limits": [0, 1.5], "child_link": "door"}
EXPECTED_FAILURES = {("bad_urdf", "lid"), ("missing", "door"), ("good", "ghost")}


def write_dataset_with_bad_objects(root):
    """A manifest of four objects: one good, one whose URDF is broken, one whose folder is missing, and a
    good one whose manifest names a joint the URDF lacks (its real joint still benchmarks)."""
    data = root / "data"
    for name, text in (("good", DOOR_URDF), ("bad_urdf", DOOR_URDF.replace('xyz="0 0 1"', 'xyz="[0, 0, 1]"')),
                       ("extra", DOOR_URDF)):
        (data / name).mkdir(parents=True)
        (data / name / "mobility.urdf").write_text(text)
    ghost = dict(GOOD_JOINT, name="j2", child_link="ghost")
    objects = [{"id": "good", "category": "box", "joints": [GOOD_JOINT, ghost]},
               {"id": "bad_urdf", "category": "broken", "joints": [dict(GOOD_JOINT, child_link="lid")]},
               {"id": "missing", "category": "box", "joints": [GOOD_JOINT]},
               {"id": "extra", "category": "box", "joints": [GOOD_JOINT]}]
    (data / "manifest.json").write_text(json.dumps({"objects": objects}))
    return data


def check_failures(rows, summary):
    failed = [r for r in rows if r["failed"]]
    assert {(r["object"], r["part"]) for r in failed} == EXPECTED_FAILURES
    errors = {r["object"]: r["error"] for r in failed}
    assert errors["bad_urdf"].startswith("loading failed: URDF '")
    assert "axis has an invalid value '[0, 0, 1]'" in errors["bad_urdf"]
    assert errors["missing"].startswith("loading failed: ") and "does not exist" in errors["missing"]
    assert errors["good"] == "no loaded joint moves 'ghost' (manifest joint 'j2')"
    done = [r for r in rows if not r["failed"]]
    assert {r["object"] for r in done} == {"good", "extra"}
    assert summary["n_joints"] == 5 and summary["n_failed"] == 3

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


def test_a_bad_object_is_a_failed_row_and_the_run_goes_on(tmp_path, capsys):
    data = write_dataset_with_bad_objects(tmp_path)
    out = tmp_path / "joints.json"
    assert main(["bench", "joints", "--data", str(data), "--frames", "4", "--points", "300", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for stage in (result, result["discrete"]):
        check_failures(stage["joints"], stage["summary"])
    assert all(r["axis_err_deg"] < 0.5 for r in result["joints"] if not r["failed"])  # the good door is found
    printed = capsys.readouterr().out
    # per category: the broken object's line shows its failure; the box line counts the others
    assert len(re.findall(r"^broken +1 +1( +-)+$", printed, flags=re.M)) == 2, printed
    assert len(re.findall(r"^box +4 +2 ", printed, flags=re.M)) == 2, printed
    assert "failed: missing/door: loading failed:" in printed


def test_bench_joints_needs_data(tmp_path):
    assert main(["bench", "joints"]) == 2
    assert main(["bench", "joints", "--data", str(tmp_path)]) == 2  # no manifest.json
