"""The fuzz tier: every file loader (GLB/GLTF, OBJ+MTL, URDF, PartNet folders, .pt/.ckpt/.safetensors,
motion-module files, clip datasets, workflow JSON for ``queue``) fed truncated, random, empty, zero-face,
NaN/Inf, absurd-count, hostile-tree and out-of-folder files, and seeded random mutations of valid files
(cases.py).

Every case runs in a worker process (worker.py) with a time limit and a memory budget; a crash or hang
restarts the worker on the next case. A case passes when it ends in the loader's own error type
(InputError, ModelFileError) whose message names the file and holds the expected words, or, for the layouts
that must keep working and the references a loader drops with a note, when it loads (with that note); a
mutation may also load.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.comfy_host import ROOT

from .cases import write_cases
from .worker import CASE_SECONDS, MEMORY_BUDGET_MB

CLEAR_ERRORS = ("InputError", "ModelFileError")
STARTUP_SECONDS = 120  # the worker's imports, before its first case


def run_worker(cases_file: Path, n: int) -> dict[int, dict]:
    """Results by case index; a case the worker died or hung in is recorded as "crash" or "hang"."""
    results: dict[int, dict] = {}
    first = 0
    while first < n:
        proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker", str(cases_file), str(first)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        try:
            out, err = proc.communicate(timeout=STARTUP_SECONDS + (n - first) * (CASE_SECONDS + 5))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        started = None
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if "start" in msg:
                started = msg["start"]
            else:
                results[msg["i"]] = msg
        if started is None:
            raise RuntimeError(f"the fuzz worker did not start (exit {proc.returncode}): {err[-2000:]}")
        if started not in results:  # it died or hung in this case
            kind = "hang" if proc.returncode in (-9,) else "crash"
            results[started] = {"i": started, "outcome": kind, "type": f"exit {proc.returncode}",
                                "message": err[-500:], "notes": [], "seconds": float("nan"), "grew_mb": float("nan")}
        first = max(results) + 1
    return results


def judge(case: dict, r: dict) -> str:
    """'' when the case behaved, else what was wrong."""
    if r["outcome"] in ("crash", "hang"):
        return f"{r['outcome']}: {r['message'][-300:]}"
    if r["grew_mb"] > MEMORY_BUDGET_MB / 2:
        return f"used {r['grew_mb']:.0f} MB"
    if case["expect"] == "either" and r["outcome"] == "loads":
        return ""
    if case["expect"] == "loads":
        if r["outcome"] != "loads":
            return f"should load, got {r['type']}: {r['message'][:300]}"
        text = " ".join(r["notes"])
    else:
        if r["outcome"] != "error":
            return "loaded, should be refused"
        if r["type"] not in CLEAR_ERRORS:
            return f"unclear error {r['type']}: {r['message'][:300]}"
        text = r["message"]
        if case["name"] not in text:
            return f"the message does not name '{case['name']}': {text[:300]}"
    missing = [w for w in case["words"] if w.lower() not in text.lower()]
    return f"lacks {missing}: {text[:400]}" if missing else ""


def test_every_loader_refuses_damaged_files_clearly(tmp_path):
    cases = write_cases(tmp_path / "cases")
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases))
    results = run_worker(cases_file, len(cases))
    failures, counts = [], collections.Counter()
    for i, case in enumerate(cases):
        r = results[i]
        bad = judge(case, r)
        counts[(case["id"].split("/")[0], r["outcome"] if not bad else "FAILED")] += 1
        if bad:
            failures.append(f"{case['id']}: {bad}")
    slowest = max(results.values(), key=lambda r: r["seconds"])
    print(f"\n{len(cases)} fuzz cases; outcomes by format: "
          + ", ".join(f"{loader} {outcome} {n}" for (loader, outcome), n in sorted(counts.items()))
          + f"; slowest {cases[slowest['i']]['id']} {slowest['seconds']:.1f} s; most memory "
          + f"{max(r['grew_mb'] for r in results.values()):.0f} MB")
    assert not os.path.exists("/tmp/atop-fuzz-pwned"), "a pickle ran code"
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
