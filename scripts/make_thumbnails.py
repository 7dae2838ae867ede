"""Writes the template thumbnails: workflows/<template name>.jpg, the picture ComfyUI's template browser shows
on each card. Each comes from a real run on a real ComfyUI (tests/comfy_host.py) with the shipped settings:

- workflows that run without weights are queued from the page (headless Chromium) and the thumbnail is
  their Preview 3D mid-animation, or the images they save;
- workflows that need ImageDream weights are run up to where the weights come in (the mesh's views and the
  part's masks, or the reference clip), and say so on the card.

A caption names what the workflow needs. Run (a few minutes, no GPU): .venv/bin/python scripts/make_thumbnails.py"""
from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.make_workflows import WORKFLOWS, duration, template_file  # noqa: E402
from tests.comfy_host import ComfyHost  # noqa: E402
from tests.server.conftest import make_tiny_models, write_sample_mesh  # noqa: E402

SIZE = 512
CAPTION_H = 64
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# how each workflow's picture is taken: its Preview 3D, or the images of some of its nodes ("id" or
# "id:output"; a sub-graph that runs without weights: these nodes and everything they need)
RECIPES: dict[str, tuple[str, list[str]]] = {
    "atop_lift_reference_motion": ("preview3d", []),
    "atop_joint_from_reference": ("images", ["3:1"]),  # the joint found, drawn on the views
    "atop_reference_clips": ("images", ["4"]),
    "atop_finetune_motion": ("images", ["2"]),
    "atop_sample_motion": ("images", ["2", "3"]),
    "atop_articulate": ("images", ["2", "3"]),
    "atop_paint_part": ("images", ["2"]),  # the views to paint
}


def caption(name: str) -> str:
    if any(n["class_type"] == "LoadInflatedImageDream" for n in WORKFLOWS[name].values()):
        return "Needs ImageDream weights + GPU"
    time_text = duration(name)
    return "No weights: CPU" + (f", {time_text}" if time_text else "")


def with_caption(image: Image.Image, text: str) -> Image.Image:
    """``image`` fitted into a square above a caption bar."""
    canvas = Image.new("RGB", (SIZE, SIZE), (32, 32, 32))
    area = (SIZE, SIZE - CAPTION_H)
    image = image.convert("RGB")
    image.thumbnail(area, Image.LANCZOS)
    canvas.paste(image, ((SIZE - image.width) // 2, (area[1] - image.height) // 2))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, SIZE - CAPTION_H, SIZE, SIZE], fill=(20, 70, 120))
    font = ImageFont.load_default(size=30)
    w = draw.textlength(text, font=font)
    draw.text(((SIZE - w) / 2, SIZE - CAPTION_H + 14), text, fill=(255, 255, 255), font=font)
    return canvas


def needed(prompt: dict, keep: list[str]) -> dict:
    """``keep`` and every node they depend on."""
    out, todo = {}, list(keep)
    while todo:
        nid = todo.pop()
        if nid in out:
            continue
        out[nid] = prompt[nid]
        todo += [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]
    return out


def run_images(host: ComfyHost, name: str, keep: list[str]) -> Image.Image:
    """Runs the nodes ``keep`` (and their inputs) as shipped, with a Preview Image after each; returns their
    images side by side, one row per node."""
    outputs = [(k.split(":")[0], int(k.split(":")[1]) if ":" in k else 0) for k in keep]
    prompt = needed(json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text()), [n for n, _ in outputs])
    for i, (nid, slot) in enumerate(outputs):
        source = [nid, slot]
        if prompt[nid]["class_type"] == "PartMaskRender":  # masks as images
            prompt[f"m{i}"] = {"class_type": "MaskToImage", "inputs": {"mask": [nid, 0]}}
            source = [f"m{i}", 0]
        prompt[f"p{i}"] = {"class_type": "PreviewImage", "inputs": {"images": source}}
    entry = host.wait(host.queue(prompt), timeout=1800)
    assert entry["status"]["status_str"] == "success", entry["status"]
    rows = []
    for i in range(len(keep)):
        files = [f for f in host.output_files({"outputs": {"x": entry["outputs"][f"p{i}"]}})]
        images = [Image.open(f).convert("RGB") for f in sorted(files)]
        if len(images) > 8:  # a clip, view-major: a row per moment (rest, half-open, open), a column per view
            per_view = len(images) // 4
            rows += [[images[v * per_view + f] for v in range(4)] for f in (0, per_view // 2, per_view - 1)]
        else:
            rows.append(images)
    if len(rows) == 1 and len(rows[0]) == 4:  # four views: two by two
        rows = [rows[0][:2], rows[0][2:]]
    # every picture cropped to the box that holds the object in all of them (white backgrounds, black masks)
    boxes = [np.argwhere(np.abs(np.asarray(im, dtype=np.int32) - np.asarray(im)[0, 0]).sum(-1) > 30)
             for row in rows for im in row]
    lo = np.min([b.min(0) for b in boxes if len(b)], 0)
    hi = np.max([b.max(0) for b in boxes if len(b)], 0)
    pad = 4
    crop = (max(lo[1] - pad, 0), max(lo[0] - pad, 0), hi[1] + pad, hi[0] + pad)
    rows = [[im.crop(crop) for im in row] for row in rows]
    cell_w, cell_h = rows[0][0].size
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * cell_w, len(rows) * cell_h), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            sheet.paste(im, (c * cell_w, r * cell_h))
    return sheet


def run_preview3d(host: ComfyHost, browser, name: str) -> Image.Image:
    """Loads the UI workflow in the page, queues it, plays its Preview 3D and takes the view when the part is
    most open."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.goto(host.url + "/", timeout=120_000)
    page.wait_for_function("window.app && window.app.graph && window.app.canvas", timeout=120_000)
    ui = json.loads((ROOT / "workflows" / f"{template_file(name)}.json").read_text())
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'thumbnail'); }", ui)
    page.wait_for_timeout(1500)
    page.evaluate("window.app.queuePrompt(0, 1)")
    time.sleep(2)
    while True:
        q = host.queue_status()
        if not q["queue_running"] and not q["queue_pending"]:
            break
        time.sleep(1)
    page.wait_for_timeout(3000)
    page.evaluate("""() => {  // the view large on the screen, for a sharp picture
        const n = window.app.graph._nodes.find(n => n.type === 'Preview3D'), ds = window.app.canvas.ds;
        ds.scale = 1.4;
        ds.offset[0] = -n.pos[0] + (1600 / 1.4 - n.size[0]) / 2;
        ds.offset[1] = -n.pos[1] + (1000 / 1.4 - n.size[1]) / 2;
        window.app.canvas.setDirty(true, true); }""")
    page.wait_for_timeout(1500)
    box = page.evaluate("""() => {
        const c = document.querySelector('canvas[data-engine^="three.js"]');
        const root = c.closest('.dom-widget');
        Array.from(root.querySelectorAll('button')).find(b => b.querySelector('.pi-play')).click();
        c.parentElement.parentElement.querySelector('.pointer-events-none.absolute').style.visibility = 'hidden';
        const r = c.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }""")
    page.mouse.move(box[0] + box[2] / 2, box[1] + box[3] / 2)
    best = None
    for _ in range(10):  # over one open-and-close loop (2 s): keep the most open moment
        page.wait_for_timeout(240)
        png = page.screenshot(clip={"x": box[0], "y": box[1], "width": box[2], "height": box[3]})
        image = Image.open(io.BytesIO(png)).convert("RGB")
        rgb = np.asarray(image, dtype=np.int32)
        shown = (rgb.max(-1) - rgb.min(-1) >= 30) | (rgb.mean(-1) >= 140)  # the object, not the dark floor grid
        shown[int(0.7 * rgb.shape[0]):, :int(0.3 * rgb.shape[1])] = False  # nor the axes gizmo in the corner
        ys, xs = np.nonzero(shown)
        area = (ys.max() - ys.min()) * (xs.max() - xs.min())
        if best is None or area > best[0]:
            best = (area, image, ys, xs)
    context.close()
    _, image, ys, xs = best
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    half = int(0.6 * max(ys.max() - ys.min(), xs.max() - xs.min())) + 8
    return image.crop((cx - half, cy - half, cx + half, cy + half))


def main() -> int:
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="atop_thumbnails_"))
    make_tiny_models(base / "models")
    host = ComfyHost(base, models={"atop_imagedream": base / "models" / "atop" / "imagedream",
                                   "atop_motion_modules": base / "models" / "atop" / "motion_modules"})
    write_sample_mesh(host.input_dir)
    host.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=BROWSER_ARGS)
            for name in WORKFLOWS:
                kind, keep = RECIPES.get(name, ("images", []))
                if kind == "preview3d":
                    picture = run_preview3d(host, browser, name)
                elif keep:
                    picture = run_images(host, name, keep)
                else:
                    sys.stderr.write(f"{name}: no thumbnail recipe; add one to RECIPES\n")
                    continue
                out = ROOT / "workflows" / f"{template_file(name)}.jpg"
                with_caption(picture, caption(name)).save(out, quality=88)
                sys.stdout.write(f"wrote {out.name}\n")
            browser.close()
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
