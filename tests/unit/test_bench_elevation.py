"""bench elevation: a joint that cannot be measured is a failed row with its error and the run goes on."""
from __future__ import annotations

import json
import re

from atop_models.cli import main

from .test_bench_joints import EXPECTED_FAILURES, write_dataset_with_bad_objects


def test_a_bad_object_is_a_failed_row_and_the_run_goes_on(tmp_path, capsys):
    data = write_dataset_with_bad_objects(tmp_path)
    out = tmp_path / "elevation.json"
    assert main(["bench", "elevation", "--data", str(data), "--elevations", "0,15", "--resolution", "32",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {(r["object"], r["part"]) for r in result["failed"]} == EXPECTED_FAILURES
    errors = {r["object"]: r["error"] for r in result["failed"]}
    assert "axis has an invalid value '[0, 0, 1]'" in errors["bad_urdf"]
    # the two good doors are measured at both elevations
    assert sorted((r["object"], r["elevation"]) for r in result["joints"]) == [
        ("extra", 0.0), ("extra", 15.0), ("good", 0.0), ("good", 15.0)]
    assert all(r["part_share"] > 0 for r in result["joints"])
    printed = capsys.readouterr().out
    assert len(re.findall(r"^ +(0|15) +5 +3 ", printed, flags=re.M)) == 2, printed
    assert "failed: missing/door: loading failed:" in printed
