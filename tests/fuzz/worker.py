"""Runs fuzz cases in this process, one after another, and prints one JSON line per case.

``python -m tests.fuzz.worker CASES.json FIRST`` runs the cases from index FIRST on. Before each case it
prints ``{"start": i}`` so that the parent knows which case a crash or hang happened in; then
``{"i", "outcome", "type", "message", "notes", "seconds", "grew_mb"}`` (peak memory over the case's
start). A case gets ``CASE_SECONDS`` of wall time (SIGALRM interrupts Python code; the parent kills a
hang in C code) and the process may grow by ``MEMORY_BUDGET_MB`` (RLIMIT_AS) beyond what it holds after its
imports.
"""
from __future__ import annotations

import copy
import json
import resource
import signal
import sys
import time
from pathlib import Path

CASE_SECONDS = 30
MEMORY_BUDGET_MB = 3072


class CaseTimeout(Exception):
    pass


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


class OfflineServer:
    """The server side of ``queue``: this one knows no node types (as a ComfyUI without the pack)."""

    def object_info(self) -> dict:
        return {}


def loaders():
    from atop_models.cli.queue import load_prompt
    from atop_models.diffusion.checkpoints import apply_motion_module, load_model
    from atop_models.diffusion.tiny import tiny_unet
    from atop_models.mesh.loaders import load_part_mesh
    from atop_models.training.clips import load_dataset

    base_unet = tiny_unet()

    def mesh(path):
        return load_part_mesh(path).notes

    def weights(path):
        load_model(path)
        return []

    def motion(path):
        apply_motion_module(copy.deepcopy(base_unet), path)
        return []

    def clips(path):
        load_dataset(path)
        return []

    def workflow(path):
        load_prompt(Path(path), OfflineServer())
        return []

    return dict(mesh=mesh, weights=weights, motion=motion, clips=clips, workflow=workflow)


def main(cases_file: str, first: int) -> None:
    cases = json.loads(Path(cases_file).read_text())
    table = loaders()
    rss = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    limit = rss + MEMORY_BUDGET_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def on_alarm(signum, frame):
        raise CaseTimeout(f"took more than {CASE_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    for i in range(first, len(cases)):
        case = cases[i]
        print(json.dumps({"start": i}), flush=True)
        _reset_peak()
        base = _status_mb("VmRSS")
        t = time.perf_counter()
        signal.alarm(CASE_SECONDS)
        outcome, kind, message, notes = "loads", "", "", []
        try:
            notes = table[case["loader"]](case["path"])
        except CaseTimeout as exc:
            outcome, kind, message = "hang", "CaseTimeout", str(exc)
        except Exception as exc:  # the parent judges whether the error is a clear one
            outcome, kind, message = "error", type(exc).__name__, str(exc)
        finally:
            signal.alarm(0)
        print(json.dumps({"i": i, "outcome": outcome, "type": kind, "message": message, "notes": notes,
                          "seconds": time.perf_counter() - t, "grew_mb": _status_mb("VmHWM") - base}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
