"""Layout of generated UI workflows: every node in a titled group per stage, groups arranged so that the whole
graph is readable when ComfyUI's page fits it to a 1600x1000 screen.

Stages come from the nodes themselves: an ATOP node's stage is its category (``ATOP/<stage>``); any other
node (Save Image, Preview Any, Preview 3D) joins the stage of the node that feeds it. Inside a group, nodes
stand in columns by their depth in the group's own sub-graph. The groups (and a note, when there is one) are
then arranged in reading order into rows and columns: every arrangement of that order and every column
count (1 to 3) of every group is tried (for very large graphs, column counts one group at a time), and the
one the page's "fit view" shows largest is kept.

Sizes: LiteGraph places a node's title bar ``TITLE_H`` above its ``pos``; the page grows a node to its
computed minimum size on load, so the sizes estimated here follow that computation (14 px, 20 px per socket
row, 24 px per widget row, more for multi-line text) with room to spare, and nodes that show results (images,
text, the 3D view) get room for them.
"""
from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field
from typing import Any

TITLE_H = 30  # LiteGraph's node title bar, drawn above the node's pos
SLOT_H, WIDGET_H, MULTILINE_H = 20, 24, 60
NODE_W = 300
GAP_X, GAP_Y = 24, 20  # between nodes in a group (GAP_Y is below a node's title bar)
GROUP_TITLE_H, GROUP_PAD, GROUP_GAP = 58, 12, 24  # the title bar leaves room for node badges
MAX_COLUMNS = 3  # columns a group may use
SEARCH_LIMIT = 2_000_000  # arrangements tried exhaustively; beyond, columns per group by descent
SCREEN = (1600, 1000)  # the page's canvas size the arrangement is chosen for
FIT_ZOOM = 0.75  # the page's "fit view" fills this share of the canvas

# stage (from the node category ATOP/<stage>) -> group title and colour, in pipeline order
STAGES: dict[str, tuple[str, str]] = {
    "mesh": ("Object", "#3f5f7f"),
    "render": ("Views and masks", "#3f6f6f"),
    "training": ("Reference clips", "#5f5f3f"),
    "model": ("Model (weights)", "#6f4f4f"),
    "motion": ("Motion", "#5f4f6f"),
    "lift": ("Lift to 3D", "#4f6f4f"),
    "joint": ("Joint", "#6f5f3f"),
    "export": ("Export and preview", "#3f4f6f"),
}

# Nodes that show results get room for them: (width, height of the body)
SHOWN_SIZES: dict[str, tuple[int, int]] = {
    "Preview3D": (480, 480),
    "SaveImage": (NODE_W, 300),
    "PreviewImage": (NODE_W, 300),
    "LossGraphNode": (NODE_W, 300),
    "PreviewAny": (NODE_W, 100),
}
NOTE_WIDTHS = (520, 640)  # a long note may be wider and shorter, whichever the page shows larger
NOTE_TYPES = ("MarkdownNote", "Note")  # frontend-only nodes: never part of a prompt


@dataclass
class Placed:
    pos: tuple[float, float]
    size: tuple[float, float]


@dataclass
class Layout:
    nodes: dict[str, Placed] = field(default_factory=dict)  # node id (or "note") -> placement
    groups: list[dict] = field(default_factory=list)  # LiteGraph groups
    bounds: tuple[float, float, float, float] = (0, 0, 0, 0)  # x, y, w, h of everything, title bars included

    @property
    def fit_scale(self) -> float:
        """The zoom of the page's "fit view" on a ``SCREEN``-sized canvas (texts show from 0.6 on)."""
        return fit_scale(self.bounds[2], self.bounds[3])


def fit_scale(width: float, height: float) -> float:
    return FIT_ZOOM * min(SCREEN[0] / max(width, 300), SCREEN[1] / max(height, 300))


def widget_rows(info: dict, ordered_inputs) -> tuple[int, int]:
    """(single-line widget rows, multi-line text widgets) of a node, seed controls included."""
    from .workflow_format import has_seed_control, is_widget

    rows = multi = 0
    for name, io_type, options in ordered_inputs:
        if not is_widget(io_type):
            continue
        if io_type == "STRING" and options.get("multiline"):
            multi += 1
        else:
            rows += 1
        if has_seed_control(name, io_type, options):
            rows += 1
    return rows, multi


def node_size(class_type: str, info: dict, ordered_inputs) -> tuple[int, int]:
    """Body size (without the title bar) that holds the node's sockets and widgets, or its shown results."""
    from .workflow_format import is_widget

    if class_type in SHOWN_SIZES:
        return SHOWN_SIZES[class_type]
    sockets = sum(1 for _, io_type, _ in ordered_inputs if not is_widget(io_type))
    rows, multi = widget_rows(info, ordered_inputs)
    height = 14 + SLOT_H * max(sockets, len(info.get("output", [])), 1) + WIDGET_H * rows + MULTILINE_H * multi
    return NODE_W, height + 6


def note_size(text: str, width: int = NOTE_WIDTHS[0]) -> tuple[int, int]:
    """A Markdown note's body size at ``width``: the page writes about one character per 6.5 px (80 a line
    at 520 px), lines 17 px apart, and a blank line is about half a line."""
    height = 40
    for para in text.split("\n"):
        height += 17 * len(textwrap.wrap(para, int(width / 6.5))) if para.strip() else 8
    return width, height


def stage_of(prompt: dict, object_info: dict) -> dict[str, str]:
    """Stage of every node: ATOP nodes by category, others by the node feeding their first linked input, or
    (a value node feeding others) by the first node they feed."""
    stages: dict[str, str] = {}

    def linked(nid: str) -> list[str]:
        return [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]

    def stage(nid: str, seen=()) -> str:
        if nid in stages:
            return stages[nid]
        category = object_info[prompt[nid]["class_type"]].get("category", "")
        if category.startswith("ATOP/"):
            return category.split("/", 1)[1]
        seen = seen + (nid,)
        sources = [s for s in linked(nid) if s not in seen]
        if sources:
            return stage(sources[0], seen)
        order = list(STAGES)
        fed = [stage(c, seen) for c in sorted(prompt, key=int) if nid in linked(c) and c not in seen]
        return min(fed, key=lambda s: order.index(s) if s in order else len(order)) if fed else "other"

    for nid in prompt:
        stages[nid] = stage(nid)
    return stages


def _depths(prompt: dict, members: list[str]) -> dict[str, int]:
    inside = set(members)
    depth: dict[str, int] = {}

    def level(nid: str) -> int:
        if nid not in depth:
            srcs = [v[0] for v in prompt[nid]["inputs"].values()
                    if isinstance(v, list) and len(v) == 2 and v[0] in inside]
            depth[nid] = 0 if not srcs else 1 + max(level(s) for s in srcs)
        return depth[nid]

    for nid in members:
        level(nid)
    return depth


@dataclass
class _Block:
    """A group's (or the note's) content: node placements relative to the block's top-left corner."""
    key: str
    title: str | None
    color: str | None
    width: float
    height: float
    nodes: dict[str, Placed]


def _group_block(key: str, title: str, color: str, members: list[str], prompt: dict,
                 sizes: dict[str, tuple[int, int]], columns: int) -> _Block:
    """The group's nodes in reading order (by depth in the group, then id), split into ``columns``
    consecutive columns of the most even height."""
    depth = _depths(prompt, members)
    ordered = sorted(members, key=lambda n: (depth[n], int(n)))
    heights = [sizes[n][1] + TITLE_H for n in ordered]
    best = None
    for cuts in itertools.combinations(range(1, len(ordered)), columns - 1):
        bounds = (0,) + cuts + (len(ordered),)
        tallest = max(sum(heights[a:b]) + GAP_Y * (b - a - 1) for a, b in zip(bounds, bounds[1:]))
        if best is None or tallest < best[0]:
            best = (tallest, bounds)
    bounds = best[1]
    x, top = GROUP_PAD, GROUP_TITLE_H + TITLE_H
    placed: dict[str, Placed] = {}
    bottom = 0.0
    for a, b in zip(bounds, bounds[1:]):
        y = top
        for nid in ordered[a:b]:
            w, h = sizes[nid]
            placed[nid] = Placed((x, y), (w, h))
            bottom = max(bottom, y + h)
            y += h + GAP_Y + TITLE_H
        x += max(sizes[n][0] for n in ordered[a:b]) + GAP_X
    return _Block(key, title, color, x - GAP_X + GROUP_PAD, bottom + GROUP_PAD, placed)


def _arrange(blocks: list[_Block]) -> tuple[list[tuple[float, float]], float, float, tuple]:
    """Top-left corners of the blocks in reading order: each gap between two blocks is a step down (same
    column), a step right (next column) or a new row. Every choice is tried; the largest fit view wins."""
    best = None
    n = len(blocks)
    for cuts in itertools.product(("down", "right", "row"), repeat=max(n - 1, 0)):
        corners, width, height = _place(blocks, cuts)
        key = (-round(fit_scale(width, height), 4), sum(c == "row" for c in cuts), width * height)
        if best is None or key < best[0]:
            best = (key, corners, width, height)
    return best[1], best[2], best[3], best[0]


def _place(blocks: list[_Block], cuts) -> tuple[list[tuple[float, float]], float, float]:
    corners: list[tuple[float, float]] = []
    row_top = 0.0
    row_bottom = col_x = col_right = col_y = 0.0
    width = 0.0
    for i, b in enumerate(blocks):
        cut = cuts[i - 1] if i else "start"
        if cut == "row":
            row_top = row_bottom + GROUP_GAP
            col_x, col_y, col_right = 0.0, row_top, 0.0
        elif cut == "right":
            col_x, col_y = col_right + GROUP_GAP, row_top
        elif cut == "start":
            col_x, col_y, col_right = 0.0, row_top, 0.0
        corners.append((col_x, col_y))
        col_y += b.height + GROUP_GAP
        col_right = max(col_right, col_x + b.width)
        row_bottom = max(row_bottom, col_y - GROUP_GAP)
        width = max(width, col_right)
    return corners, width, row_bottom


def _descent(blocks: list[_Block], options: list[list[_Block]]) -> list[tuple[int, ...]]:
    """Columns per group for graphs with too many groups to try every combination: from one column each,
    change one group at a time while the fit view grows."""
    choice = [0] * len(options)
    best = _arrange(blocks + [o[0] for o in options])[3]
    improved = True
    while improved:
        improved = False
        for g in range(len(options)):
            for c in range(len(options[g])):
                trial = choice[:g] + [c] + choice[g + 1:]
                key = _arrange(blocks + [o[k] for o, k in zip(options, trial)])[3]
                if key < best:
                    best, choice, improved = key, trial, True
    return [tuple(choice)]


def layout_workflow(prompt: dict, object_info: dict, ordered_inputs, note: str | None = None,
                    origin: tuple[float, float] = (0.0, 0.0),
                    sizes: dict[str, tuple[int, int]] | None = None) -> Layout:
    """Placements of every node of ``prompt`` (and of a note), and the stage groups. ``ordered_inputs`` is
    ``workflow_format._ordered_inputs`` (passed in to keep one definition); ``sizes`` (node id -> body size)
    replaces estimated sizes."""
    sizes = {nid: node_size(node["class_type"], object_info[node["class_type"]],
                            ordered_inputs(object_info[node["class_type"]])) for nid, node in prompt.items()
             } | dict(sizes or {})
    stages = stage_of(prompt, object_info)
    order = list(STAGES) + sorted(set(stages.values()) - set(STAGES))
    present = [s for s in order if s in stages.values()]
    note_options: list[_Block | None] = [None]
    if note:
        note_options = [_Block("note", None, None, w, h + TITLE_H, {"note": Placed((0, TITLE_H), (w, h))})
                        for w, h in (note_size(note, width) for width in NOTE_WIDTHS)]
    options: list[list[_Block]] = []  # per group: its blocks with 1 to MAX_COLUMNS columns
    for number, stage in enumerate(present, start=1):
        title, color = STAGES.get(stage, (stage.capitalize(), "#444444"))
        members = [nid for nid in prompt if stages[nid] == stage]
        options.append([_group_block(stage, f"{number}. {title}", color, members, prompt, sizes, k)
                        for k in range(1, min(len(members), MAX_COLUMNS) + 1)])
    best = None
    for note_block in note_options:
        blocks = [note_block] if note_block else []
        choices = list(itertools.product(*(range(len(o)) for o in options)))
        if len(choices) * 3 ** (len(options) + len(blocks) - 1) > SEARCH_LIMIT:  # too many: one group at a time
            choices = _descent(blocks, options)
        for choice in choices:
            result = _arrange(blocks + [o[c] for o, c in zip(options, choice)])
            if best is None or result[3] < best[0][3]:
                best = (result, blocks + [o[c] for o, c in zip(options, choice)])
    blocks = best[1]
    corners, width, height, _ = best[0]
    out = Layout()
    ox, oy = origin
    for (bx, by), block in zip(corners, blocks):
        for nid, p in block.nodes.items():
            out.nodes[nid] = Placed((ox + bx + p.pos[0], oy + by + p.pos[1]), p.size)
        if block.title:
            out.groups.append({"title": block.title, "bounding": [ox + bx, oy + by, block.width, block.height],
                               "color": block.color, "font_size": 24, "flags": {}})
    out.bounds = (ox, oy, width, height)
    return out
