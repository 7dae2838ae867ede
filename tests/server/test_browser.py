"""The real ComfyUI page in headless Chromium (Debian's package, driven by Playwright): every UI workflow
loads with no missing node types or broken links, the page's own prompt equals the API twin, and a
screenshot is saved."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.comfy_host import ROOT

pytestmark = [pytest.mark.server, pytest.mark.browser]

UI_DIR = ROOT / "workflows"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(comfy, tmp_path_factory):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(comfy.url + "/", timeout=120_000)
        page.wait_for_function("window.app && window.app.graph && window.app.canvas", timeout=120_000)
        yield page
        browser.close()


@pytest.mark.parametrize("name", sorted(p.name for p in UI_DIR.glob("*.json")))
def test_workflow_loads_in_the_page(comfy, page, name):
    ui = json.loads((UI_DIR / name).read_text())
    api_twin = json.loads((UI_DIR / "api" / name).read_text())
    result = page.evaluate(
        """async (wf) => {
            await window.app.loadGraphData(wf, true, true, 'test');
            const g = window.app.graph;
            const registered = window.LiteGraph.registered_node_types;
            const missing = g._nodes.filter(n => !(n.type in registered)).map(n => n.type);
            const broken = [];
            for (const [id, link] of Object.entries(g.links || {})) {
                const l = link;
                if (!l) continue;
                const origin = g.getNodeById(l.origin_id), target = g.getNodeById(l.target_id);
                if (!origin || !target) broken.push(id);
            }
            const p = await window.app.graphToPrompt();
            return {missing, broken, prompt: p.output, count: g._nodes.length};
        }""",
        ui,
    )
    assert result["missing"] == [], f"missing node types: {result['missing']}"
    assert result["broken"] == [], f"broken links: {result['broken']}"
    assert result["count"] == len(ui["nodes"])
    # The page may add inputs of its own (Preview3D's viewer state): compare the node-defined inputs.
    info = comfy.object_info()
    page_prompt = {}
    for node_id, node in result["prompt"].items():
        defined = {n for section in info[node["class_type"]]["input"].values() for n in section}
        page_prompt[node_id] = {"class_type": node["class_type"],
                                "inputs": {k: v for k, v in node["inputs"].items() if k in defined}}
    twin = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api_twin.items()}
    for node_id in twin:
        assert page_prompt.get(node_id) == twin[node_id], f"node {node_id}: page {page_prompt.get(node_id)} != twin"
    assert page_prompt.keys() == twin.keys()
    shots = ROOT / "out" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / (name.replace(".json", ".png"))))
