"""Shared test fixtures. Tests import the library as ``atop_models`` from the repository root; node tests
load the pack as a package (see tests/nodes/conftest.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEV_DATA = SHARED / "data" / "articulated_dev"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def dev_data() -> Path:
    """The real articulated objects beside the repository (research-only data, never copied in)."""
    if not (DEV_DATA / "manifest.json").exists():
        pytest.skip(f"development data not found at {DEV_DATA}")
    return DEV_DATA
