"""The real ComfyUI page in headless Chromium (Debian's package, driven by Playwright): every UI workflow
loads with no missing node types or broken links, the page's own prompt equals the API twin, and a
screenshot is saved."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.comfy_host import ROOT, execution_error

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


WAIT_FOR_PROMPT = """async ([before, timeout]) => {
    // the newest prompt the page queued (not in ``before``), once it has finished
    const end = Date.now() + timeout;
    while (Date.now() < end) {
        const history = await (await fetch('/history')).json();
        const fresh = Object.keys(history).filter(id => !before.includes(id));
        const done = fresh.filter(id => history[id].status && history[id].status.completed !== undefined
                                        && ['success', 'error'].includes(history[id].status.status_str));
        if (done.length) return [done[0], history[done[0]]];
        await new Promise(r => setTimeout(r, 500));
    }
    return [null, null];
}"""


def _queued_by_page(comfy, page, node_ids: list[int], timeout_ms: int = 300_000) -> dict:
    """Queue the given output nodes through the page (the selection toolbox's Execute does this), wait."""
    import requests

    before = list(requests.get(f"{comfy.url}/history", timeout=30).json())
    page.evaluate("async (ids) => { await window.app.queuePrompt(0, 1, ids.map(String)); }", node_ids)
    prompt_id, entry = page.evaluate(WAIT_FOR_PROMPT, [before, timeout_ms])
    assert prompt_id, "the page queued nothing, or it did not finish"
    return entry


def test_painting_flow_in_the_page(comfy, page, tmp_path):
    """atop_paint_part as its note says: the views rendered alone (Execute on their Save Image), copied to
    Load Image through the clipspace (its blank mask stops Part From Masks with the fix), then an RGBA image
    whose transparency is the painted door uploaded to Load Image and queued through the page."""
    import base64

    from tests.server.conftest import write_painted_sheet

    ui = json.loads((UI_DIR / "atop_paint_part.json").read_text())
    ids = {n["type"]: n["id"] for n in ui["nodes"] if n["type"] in ("LoadImage", "PartFromMasks", "PreviewAny",
                                                                     "PreviewImage")}
    views_save = next(n["id"] for n in ui["nodes"] if n["type"] == "SaveImage"
                      and n["widgets_values"][0] == "atop/paint_views")
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'paint'); }", ui)

    # 1. only the views: rendered, side by side, saved
    entry = _queued_by_page(comfy, page, [views_save])
    assert entry["status"]["status_str"] == "success"
    saved = entry["outputs"][str(views_save)]["images"][0]
    assert saved["subfolder"] == "atop" and saved["type"] == "output"
    # 2. Copy (Clipspace) on the Save Image node, Paste (Clipspace) on Load Image
    value = page.evaluate("""([save, load]) => {
        const App = window.app.constructor, g = window.app.graph;
        App.copyToClipspace(g.getNodeById(save));
        App.pasteFromClipspace(g.getNodeById(load));
        return g.getNodeById(load).widgets.find(w => w.name === 'image').value;
    }""", [views_save, ids["LoadImage"]])
    assert value == f"atop/{saved['filename']} [output]"
    entry = _queued_by_page(comfy, page, [ids["PreviewAny"]])  # not painted yet: a clear error, with the fix
    error = execution_error(entry)
    assert error and error["node_type"] == "PartFromMasks"
    assert "nothing has been painted yet" in error["exception_message"]
    assert "Open in MaskEditor" in error["exception_message"]
    page.keyboard.press("Escape")  # the page showed that error in a dialog

    # 3. the painted image: the door erased to transparency, uploaded as Load Image's upload button does
    sheet = tmp_path / "painted_door.png"
    write_painted_sheet(sheet, 256)
    uploaded = page.evaluate("""async ([png, load]) => {
        const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
        const body = new FormData();
        body.append('image', new Blob([bytes], {type: 'image/png'}), 'painted_door.png');
        body.append('overwrite', 'true');
        const res = await (await fetch('/upload/image', {method: 'POST', body})).json();
        const widget = window.app.graph.getNodeById(load).widgets.find(w => w.name === 'image');
        widget.value = res.name;
        if (widget.callback) widget.callback(res.name);
        return res.name;
    }""", [base64.b64encode(sheet.read_bytes()).decode(), ids["LoadImage"]])
    assert uploaded == "painted_door.png"
    # 4. run: the part is split out; its info and preview come back
    entry = _queued_by_page(comfy, page, [ids["PreviewAny"], ids["PreviewImage"]])
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    info = entry["outputs"][str(ids["PreviewAny"])]["text"][0]
    assert info.startswith("part 'door':") and "painted on view(s) 0, 1, 3" in info and "WARNING" not in info
    assert "view 0: 1.000" in info
    assert entry["outputs"][str(ids["PreviewImage"])]["images"]
    shots = ROOT / "out" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "atop_paint_part_painted.png"))
