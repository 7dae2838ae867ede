"""Workflow layout without ComfyUI: stages from categories (display and value nodes join the nodes they
serve), every node inside its titled group, nothing overlapping, and the arrangement the page's fit view shows
largest; plus the UI/API conversions around notes and titles."""
from __future__ import annotations

from atop_models.workflow_format import api_to_ui, ui_to_api
from atop_models.workflow_layout import TITLE_H, fit_scale, stage_of

WIDGETS = {"required": {"value": ["STRING", {"default": ""}]}}
INFO = {
    "Mesh": {"category": "ATOP/mesh", "input": {"required": {"mesh_path": ["STRING", {}]}}, "output": ["M"],
             "output_name": ["mesh"]},
    "Render": {"category": "ATOP/render", "input": {"required": {"mesh": ["M", {}], "part_name": ["STRING", {}],
                                                                "resolution": ["INT", {"default": 256}]}},
               "output": ["IMAGE", "C"], "output_name": ["images", "cameras"]},
    "Lift": {"category": "ATOP/lift", "input": {"required": {"mesh": ["M", {}], "cameras": ["C", {}],
                                                            "part_name": ["STRING", {}],
                                                            "seed": ["INT", {"default": 0}]}},
             "output": ["P", "STRING"], "output_name": ["points", "info"]},
    "SaveImage": {"category": "image", "input": {"required": {"images": ["IMAGE", {}],
                                                              "filename_prefix": ["STRING", {}]}}, "output": []},
    "PreviewAny": {"category": "utils", "input": {"required": {"source": ["*", {}]}}, "output": []},
    "PrimitiveString": {"category": "utils/primitive", "input": WIDGETS, "output": ["STRING"]},
}
PROMPT = {
    "1": {"class_type": "Mesh", "inputs": {"mesh_path": "a.glb"}},
    "2": {"class_type": "Render", "inputs": {"mesh": ["1", 0], "part_name": ["6", 0], "resolution": 64}},
    "3": {"class_type": "Lift", "inputs": {"mesh": ["1", 0], "cameras": ["2", 1], "part_name": ["6", 0], "seed": 3}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "views"}},
    "5": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}},
    "6": {"class_type": "PrimitiveString", "inputs": {"value": "door"}},
}


def rect(node: dict) -> tuple[float, float, float, float]:
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_H, w, h + TITLE_H


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_stages_follow_categories_and_the_nodes_served():
    stages = stage_of(PROMPT, INFO)
    assert stages == {"1": "mesh", "2": "render", "3": "lift", "4": "render", "5": "lift", "6": "render"}


def test_ui_layout_groups_every_node_without_overlap_and_round_trips():
    ui = api_to_ui(PROMPT, INFO, title="t", note="## Read me\n\n**Needs:** nothing", node_titles={"6": "Part name"})
    note = ui["nodes"][0]
    assert note["type"] == "MarkdownNote" and note["widgets_values"] == ["## Read me\n\n**Needs:** nothing"]
    assert [g["title"] for g in ui["groups"]] == ["1. Object", "2. Views and masks", "3. Lift to 3D"]
    nodes = ui["nodes"]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert not overlaps(rect(a), rect(b)), (a["type"], b["type"])
    for n in nodes[1:]:
        x, y, w, h = rect(n)
        assert any(gx <= x and gy <= y and x + w <= gx + gw and y + h <= gy + gh
                   for gx, gy, gw, gh in (g["bounding"] for g in ui["groups"])), n["type"]
    for i, a in enumerate(ui["groups"]):
        for b in ui["groups"][i + 1:]:
            assert not overlaps(a["bounding"], b["bounding"])
    assert next(n for n in nodes if n["id"] == 6)["title"] == "Part name"
    assert "ds" not in ui["extra"]  # the page fits the view itself on load
    # the note is frontend-only: the prompt the UI means is the API prompt, linked widget inputs included
    assert ui_to_api(ui, INFO) == PROMPT
    xs = [rect(n) for n in nodes] + [tuple(g["bounding"]) for g in ui["groups"]]
    width = max(x + w for x, _, w, _ in xs) - min(x for x, _, _, _ in xs)
    height = max(y + h for _, y, _, h in xs) - min(y for _, y, _, _ in xs)
    assert fit_scale(width, height) >= 0.6


def test_fit_scale_is_the_pages():
    """The page fits bounds to 75% of a 1600x1000 canvas, never for bounds under 300 px."""
    assert fit_scale(2000, 1000) == 0.75 * 0.8
    assert fit_scale(1000, 1250) == 0.75 * 0.8
    assert fit_scale(100, 100) == 0.75 * 1000 / 300


def test_large_graphs_choose_columns_one_group_at_a_time(monkeypatch):
    import atop_models.workflow_layout as layout

    exhaustive = api_to_ui(PROMPT, INFO, note="n")
    monkeypatch.setattr(layout, "SEARCH_LIMIT", 0)
    descent = api_to_ui(PROMPT, INFO, note="n")
    for ui in (exhaustive, descent):
        nodes = ui["nodes"]
        assert not any(overlaps(rect(a), rect(b)) for i, a in enumerate(nodes) for b in nodes[i + 1:])
    assert ui_to_api(descent, INFO) == PROMPT
