"""The real ComfyUI page in headless Chromium (Debian's package, driven by Playwright), at 1600x1000:

- the template browser lists every workflow of the pack with its thumbnail (no 404) and loads it;
- every UI workflow loads with no missing node types or broken links, the page's own prompt equals the API
  twin, no two nodes overlap, every node sits in its stage's group, a note comes first, and the page's
  "fit view" shows the whole graph at 60% or more (where the page draws text);
- a workflow queued from the page runs, and its Preview 3D shows the object in colour, whole, and moving,
  with the page's content security policy blocking textures (as ComfyUI sets it under --disable-api-nodes,
  the flag the test server runs with) and with textures allowed; the files it wrote follow the umask;
- a model workflow queued without its weights is refused with the download hint and the folder.

Screenshots go to out/screenshots/."""
from __future__ import annotations

import io
import json
import os
import shutil
import time

import numpy as np
import pytest
import requests

from tests.comfy_host import PACK_DIR_NAME, ROOT, execution_error

pytestmark = [pytest.mark.server, pytest.mark.browser]

UI_DIR = ROOT / "workflows"
UI_FILES = sorted(p.name for p in UI_DIR.glob("*.json"))
PAINT_TEMPLATE = "ATOP Paint the part of a mesh without parts (needs ImageDream weights, GPU)"
SHOTS = ROOT / "out" / "screenshots"
VIEWPORT = {"width": 1600, "height": 1000}
READABLE_ZOOM = 0.6  # below this the page stops drawing node text
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def shot(page, name: str, **kw) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), **kw)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, comfy, *, allow_textures: bool = False):
    """A fresh page on the test server. ``allow_textures`` lifts the server's content security policy (as a
    ComfyUI started without --disable-api-nodes would have none)."""
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=allow_textures)
    page = context.new_page()
    page.console_lines, page.failed = [], []
    page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text}"))
    page.on("response", lambda r: page.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(comfy.url + "/", timeout=120_000)
    page.wait_for_function("window.app && window.app.graph && window.app.canvas", timeout=120_000)
    return page


@pytest.fixture(scope="module")
def page(browser, comfy):
    page = open_page(browser, comfy)
    yield page
    page.context.close()


def load(page, ui: dict) -> None:
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'test'); }", ui)
    page.wait_for_timeout(1500)  # the page fits the view on the next animation frame


def node_rects(page) -> list[dict]:
    """Every node's rectangle as the page draws it (title bar included) and every group's."""
    return page.evaluate("""() => ({
        nodes: window.app.graph._nodes.map(n => ({id: n.id, type: n.type, title: n.title,
                                                  r: Array.from(n.boundingRect)})),
        groups: (window.app.graph._groups || []).map(g => ({title: g.title, r: Array.from(g._bounding)}))})""")


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(a, b) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]


def wait_idle(comfy, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(1.0)
    while time.monotonic() < deadline:
        q = comfy.queue_status()
        if not q["queue_running"] and not q["queue_pending"]:
            return
        time.sleep(0.5)
    raise TimeoutError("the queued workflow did not finish")


# --- the template browser ----------------------------------------------------------------------------
def test_template_browser_shows_every_workflow_with_its_thumbnail(comfy, page):
    listed = requests.get(f"{comfy.url}/workflow_templates", timeout=30).json().get(PACK_DIR_NAME, [])
    assert sorted(f"{n}.json" for n in listed) == UI_FILES
    for name in listed:  # ComfyUI serves each template and the .jpg of the same name as its thumbnail
        thumb = requests.get(f"{comfy.url}/api/workflow_templates/{PACK_DIR_NAME}/{name}.jpg", timeout=30)
        assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg", name
        from PIL import Image

        image = Image.open(io.BytesIO(thumb.content))
        assert image.size[0] >= 256 and abs(image.size[0] - image.size[1]) <= 0.1 * image.size[0], (name, image.size)
    page.failed.clear()
    page.evaluate("window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text(PACK_DIR_NAME, exact=True).first.click(timeout=30_000)
    for name in listed:  # every card: its title is the file name (the page's only source for custom nodes)
        page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(2000)
    shot(page, "template_browser.png")
    missing = [f for f in page.failed if "/workflow_templates/" in f]
    assert not missing, missing
    lift = next(n for n in listed if "Lift a reference motion" in n)
    page.get_by_text(lift, exact=True).first.click()
    page.wait_for_function("window.app.graph._nodes.some(n => n.type === 'GaussianSDSLift')", timeout=30_000)
    shot(page, "template_loaded.png")


# --- every workflow, as laid out ----------------------------------------------------------------------
@pytest.mark.parametrize("name", UI_FILES)
def test_workflow_loads_readable_and_tidy(comfy, page, name):
    ui = json.loads((UI_DIR / name).read_text())
    api_twin = json.loads((UI_DIR / ui["extra"]["atop_api_twin"]).read_text())
    load(page, ui)
    result = page.evaluate(
        """async () => {
            const g = window.app.graph;
            const registered = window.LiteGraph.registered_node_types;
            const missing = g._nodes.filter(n => !(n.type in registered)).map(n => n.type);
            const broken = [];
            for (const [id, link] of Object.entries(g.links || {})) {
                if (!link) continue;
                if (!g.getNodeById(link.origin_id) || !g.getNodeById(link.target_id)) broken.push(id);
            }
            const p = await window.app.graphToPrompt();
            return {missing, broken, prompt: p.output, count: g._nodes.length, scale: window.app.canvas.ds.scale};
        }""")
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
    assert page_prompt == twin
    # Readable: the page fitted the graph on load (no saved view), at a zoom where it draws text.
    assert result["scale"] >= READABLE_ZOOM, f"fit view zooms to {result['scale']:.2f}"
    # Tidy, with the page's own node sizes: no overlaps; every node but the note in a group; groups apart.
    rects = node_rects(page)
    nodes, groups = rects["nodes"], rects["groups"]
    clashes = [(a["title"], b["title"]) for i, a in enumerate(nodes) for b in nodes[i + 1:] if overlaps(a["r"], b["r"])]
    assert not clashes, f"overlapping nodes: {clashes}"
    assert not [(a["title"], b["title"]) for i, a in enumerate(groups) for b in groups[i + 1:]
                if overlaps(a["r"], b["r"])]
    notes = [n for n in nodes if n["type"] in ("MarkdownNote", "Note")]
    assert len(notes) == 1, "one note says what the workflow needs and what to change"
    note = next(n for n in ui["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
    assert "**Needs:**" in note and "**Change:**" in note
    for n in nodes:
        if n["type"] not in ("MarkdownNote", "Note"):
            assert any(inside(n["r"], g["r"]) for g in groups), f"{n['title']} is in no group"
    shot(page, name.replace(".json", ".png"))


# --- a run from the page: Preview 3D, displays, umask ------------------------------------------------
def object_pixels(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the model in a Preview 3D render: coloured or bright, unlike the dark grey floor grid."""
    rgb = rgb.astype(np.int32)
    return (rgb.max(-1) - rgb.min(-1) >= 30) | (rgb.mean(-1) >= 140)


def preview_frames(page, count: int, gap_ms: int) -> list[np.ndarray]:
    """Screenshots of the Preview 3D view alone (its menus hidden, the corner axes gizmo blanked) while the
    pointer is over it and the animation plays."""
    from PIL import Image

    box = page.evaluate("""() => {
        const c = document.querySelector('canvas[data-engine^="three.js"]');
        c.parentElement.parentElement.querySelector('.pointer-events-none.absolute').style.visibility = 'hidden';
        const r = c.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }""")
    page.mouse.move(box[0] + box[2] / 2, box[1] + box[3] / 2)
    page.wait_for_timeout(500)
    frames = []
    for _ in range(count):
        png = page.screenshot(clip={"x": box[0], "y": box[1], "width": box[2], "height": box[3]})
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).copy()
        gizmo = int(round(128 * box[2] / page.evaluate(
            "document.querySelector('canvas[data-engine^=\"three.js\"]').clientWidth")))
        rgb[-gizmo:, :gizmo] = 0  # the view's axes gizmo, drawn in its bottom-left corner
        frames.append(rgb)
        page.wait_for_timeout(gap_ms)
    return frames


def press_play(page) -> None:
    page.evaluate("""() => {
        const c = document.querySelector('canvas[data-engine^="three.js"]');
        const root = c.closest('.dom-widget');
        const play = Array.from(root.querySelectorAll('button')).find(b => b.querySelector('.pi-play'));
        play.click(); }""")


@pytest.mark.parametrize("textures", ["blocked", "allowed"])
def test_run_from_the_page_shows_the_object_in_colour_whole_and_moving(comfy, browser, textures):
    page = open_page(browser, comfy, allow_textures=textures == "allowed")
    try:
        name = next(n for n in UI_FILES if "Joint from ground-truth points" in n)
        load(page, json.loads((UI_DIR / name).read_text()))
        # a user's change: a chest of drawers (brown wood, textured parts), its top drawer
        page.evaluate("""() => {
            const set = (type, widget, value) => {
                const n = window.app.graph._nodes.find(n => n.type === type);
                n.widgets.find(w => w.name === widget).value = value; };
            set('ProceduralObject', 'category', 'chest_of_drawers');
            set('GroundTruthPointSequence', 'part_name', 'drawer_1'); }""")
        started = time.time()
        page.evaluate("window.app.queuePrompt(0, 1)")
        wait_idle(comfy)
        entry = max(requests.get(f"{comfy.url}/history", timeout=30).json().values(),
                    key=lambda e: e["status"]["messages"][0][1]["timestamp"])
        assert entry["status"]["status_str"] == "success", entry["status"]
        page.wait_for_timeout(3000)
        shot(page, f"run_textures_{textures}.png")
        texture_errors = [m for m in page.console_lines if "Couldn't load texture" in m]
        assert bool(texture_errors) == (textures == "blocked")  # the policy really blocks them, or not

        # The result displays show text: the joint's error and the URDF path.
        shown = page.evaluate("""() => window.app.graph._nodes.filter(n => n.type === 'PreviewAny')
            .map(n => [n.title, (n.widgets || []).map(w => String(w.value || '')).join(' ')])""")
        shown = dict(shown)
        assert "drawer_1: type prismatic" in shown["Joint error against the ground truth"]
        assert shown["URDF path"].endswith(".urdf")

        rest = preview_frames(page, 1, 0)[0]
        press_play(page)
        frames = preview_frames(page, 6, 250)
        shot(page, f"preview3d_textures_{textures}.png")
        for k, rgb in enumerate([rest] + frames):
            obj = object_pixels(rgb)
            assert obj.mean() > 0.03, f"frame {k}: the view shows almost nothing ({obj.mean():.1%})"
            # the object's colours, not flat white: most of the chest is brown wood
            coloured = (rgb.max(-1).astype(int) - rgb.min(-1) >= 30) & obj
            assert coloured.sum() > 0.3 * obj.sum(), f"frame {k}: {coloured.sum() / obj.sum():.0%} coloured"
            # whole: the motion stays inside the view (nothing of the object on its border)
            border = np.zeros_like(obj)
            border[:3], border[-3:], border[:, :3], border[:, -3:] = True, True, True, True
            assert not (obj & border).any(), f"frame {k}: the object touches the edge of the view"
        changed = [np.mean(np.abs(frames[i].astype(int) - frames[i + 1]).sum(-1) > 30) for i in range(len(frames) - 1)]
        assert max(changed) > 0.002, f"the animation does not move: {changed}"

        # Files the pack wrote follow the umask, as a plain write would.
        mask = os.umask(0)
        os.umask(mask)
        urdf = shown["URDF path"]
        folder = os.path.dirname(urdf)
        written = [os.path.join(folder, f) for f in os.listdir(folder)] + [os.path.join(folder, "animated.glb")]
        for path in written:
            if os.path.isfile(path) and os.path.getmtime(path) >= started - 1:
                assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask, (path, oct(os.stat(path).st_mode))
        assert os.stat(folder).st_mode & 0o777 == 0o777 & ~mask, folder
    finally:
        page.context.close()


# --- missing weights --------------------------------------------------------------------------------
def test_missing_weights_are_refused_at_queue_time_with_the_hint(comfy, page):
    """The shipped model workflows name 'imagedream-ipmv-diffusers', which this server does not have: queueing
    one from the page is refused before anything runs, and the page shows the download hint and the folder."""
    name = next(n for n in UI_FILES if "Articulate a part" in n)
    load(page, json.loads((UI_DIR / name).read_text()))
    replies = []
    page.on("response", lambda r: replies.append(r) if r.request.method == "POST" else None)
    page.evaluate("window.app.queuePrompt(0, 1)")
    page.wait_for_timeout(3000)
    assert replies and replies[-1].status == 400
    body = json.dumps(replies[-1].json())
    assert "ashawkey/imagedream-ipmv-diffusers" in body and "models/atop/imagedream" in body
    shown = page.locator("text=ashawkey/imagedream-ipmv-diffusers").first
    shown.wait_for(timeout=10_000)
    shot(page, "missing_weights.png")
    assert comfy.queue_status()["queue_pending"] == []


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

    ui = json.loads((UI_DIR / f"{PAINT_TEMPLATE}.json").read_text())
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
