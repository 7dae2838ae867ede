"""Shipped workflows: every UI workflow in workflows/ names its API twin in workflows/api/ (``extra.atop_api_twin``;
the UI file is named for the template browser, the twin for the command line), the twin means exactly the
same prompt (converted through the real server's node definitions), and every node type exists."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from atop_models.workflow_format import is_widget, ui_to_api
from tests.comfy_host import ROOT

pytestmark = pytest.mark.server

UI_DIR = ROOT / "workflows"
API_DIR = UI_DIR / "api"
UI_FILES = sorted(p.name for p in UI_DIR.glob("*.json"))


def api_twin(ui_name: str) -> Path:
    return UI_DIR / json.loads((UI_DIR / ui_name).read_text())["extra"]["atop_api_twin"]


def test_every_workflow_has_a_twin():
    api_files = sorted(p.name for p in API_DIR.glob("*.json"))
    assert UI_FILES, "no workflows shipped"
    twins = sorted(api_twin(name).name for name in UI_FILES)
    assert twins == api_files
    assert all(api_twin(name).parent == API_DIR for name in UI_FILES)


@pytest.mark.parametrize("name", UI_FILES)
def test_ui_workflow_matches_its_api_twin(comfy, name):
    info = comfy.object_info()
    ui = json.loads((UI_DIR / name).read_text())
    api = json.loads(api_twin(name).read_text())
    assert ui_to_api(ui, info) == {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}


@pytest.mark.parametrize("name", UI_FILES)
def test_api_twin_sets_every_widget(comfy, name):
    """Twins spell out every widget value, so a default changing in code cannot silently change a workflow."""
    info = comfy.object_info()
    api = json.loads(api_twin(name).read_text())
    for node_id, node in api.items():
        spec = info[node["class_type"]]
        for section in ("required", "optional"):
            for input_name, input_spec in spec["input"].get(section, {}).items():
                if is_widget(input_spec[0]):
                    assert input_name in node["inputs"], f"{name}: node {node_id} does not set {input_name}"
