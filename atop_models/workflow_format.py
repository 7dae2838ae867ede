"""Conversions between ComfyUI's two workflow formats, driven by the server's ``/object_info``.

- API format: ``{node_id: {"class_type", "inputs": {name: value | [src_id, src_slot]}}}`` (what POST /prompt takes).
- UI format: LiteGraph JSON (``nodes`` with positional ``widgets_values``, ``links``), what the ComfyUI page loads.

Widget inputs are the ones whose type is a value type (INT, FLOAT, STRING, BOOLEAN, COMBO or an option
list); every other input is a socket. ``widgets_values`` lists widget values in input order, with one extra
entry after each seed-like input (the frontend's "fixed/randomize" control, see ``has_seed_control``).
"""
from __future__ import annotations

from typing import Any

from .workflow_layout import NOTE_TYPES, layout_workflow

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
NOTE_TYPES = ("Note", "MarkdownNote")  # frontend-only nodes


def _ordered_inputs(info: dict) -> list[tuple[str, Any, dict]]:
    """[(name, type, options)] in the node's input order, required first, hidden inputs left out."""
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
    out = []
    for section in ("required", "optional"):
        specs = info["input"].get(section, {})
        for name in order.get(section, []):
            spec = specs[name]
            out.append((name, spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}))
    return out


def is_widget(io_type: Any) -> bool:
    return isinstance(io_type, list) or io_type in WIDGET_TYPES


def has_seed_control(name: str, io_type: Any, options: dict) -> bool:
    """Whether the page adds a "control after generate" value after this widget: when the definition asks
    for it, and (as the ComfyUI frontend does) for INT inputs named seed/noise_seed that do not say."""
    if "control_after_generate" in options:
        return bool(options["control_after_generate"])
    return io_type == "INT" and name in ("seed", "noise_seed")


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """The API prompt a UI workflow means (what the page's "queue" would send), for active nodes; notes
    (frontend-only nodes) are left out as the page leaves them out."""
    links = {link[0]: link for link in ui.get("links", [])}
    prompt = {}
    for node in ui["nodes"]:
        if node.get("mode", 0) != 0 or node["type"] in NOTE_TYPES:  # the page leaves notes out too
            continue
        class_type = node["type"]
        if class_type not in object_info:
            raise KeyError(f"node type {class_type!r} (node {node['id']}) is not known to this ComfyUI")
        values = list(node.get("widgets_values") or [])
        inputs: dict[str, Any] = {}
        for name, io_type, options in _ordered_inputs(object_info[class_type]):
            if is_widget(io_type):
                if values:
                    inputs[name] = values.pop(0)
                if has_seed_control(name, io_type, options) and values:
                    values.pop(0)
        for slot in node.get("inputs", []):
            link_id = slot.get("link")
            if link_id is None:
                continue
            link = links[link_id]
            inputs[slot["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": class_type, "inputs": inputs}
    return prompt


def api_to_ui(prompt: dict, object_info: dict, *, title: str | None = None, note: str | None = None,
              node_titles: dict[str, str] | None = None,
              node_sizes: dict[str, tuple[int, int]] | None = None) -> dict:
    """A UI workflow for an API prompt: nodes in titled groups per stage (``workflow_layout``), a Markdown
    note first when ``note`` is given, ``node_titles`` (node id -> title) replacing default titles and
    ``node_sizes`` (node id -> size) estimated ones.
    No saved view: the page then fits the graph to the screen on load."""
    ids = sorted(prompt, key=int)
    placed = layout_workflow(prompt, object_info, _ordered_inputs, note=note, sizes=node_sizes)
    depth: dict[str, int] = {}

    def level(nid: str) -> int:
        if nid not in depth:
            srcs = [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]
            depth[nid] = 0 if not srcs else 1 + max(level(s) for s in srcs)
        return depth[nid]

    for nid in ids:
        level(nid)
    nodes, links = [], []
    out_links: dict[tuple[str, int], list[int]] = {}
    for nid in ids:
        for name, value in prompt[nid]["inputs"].items():
            if isinstance(value, list) and len(value) == 2:
                link_id = len(links) + 1
                src, slot = str(value[0]), int(value[1])
                src_info = object_info[prompt[src]["class_type"]]
                links.append([link_id, int(src), slot, int(nid), name, src_info["output"][slot]])
                out_links.setdefault((src, slot), []).append(link_id)
    for order, nid in enumerate(sorted(ids, key=lambda n: (depth[n], int(n)))):
        node = prompt[nid]
        info = object_info[node["class_type"]]
        inputs, widgets = [], []
        for name, io_type, options in _ordered_inputs(info):
            value = node["inputs"].get(name)
            linked = isinstance(value, list) and len(value) == 2
            if is_widget(io_type):
                choices = io_type if isinstance(io_type, list) else options.get("options") or [None]
                first = choices[0] if choices else None  # a file list may be empty (Load Image's input folder)
                default = options.get("default", first if io_type == "COMBO" or isinstance(io_type, list) else None)
                widgets.append(None if linked else value if name in node["inputs"] else default)
                if has_seed_control(name, io_type, options):
                    widgets.append("fixed")
                if not linked:
                    continue
            link_id = next((l[0] for l in links if l[3] == int(nid) and l[4] == name), None)
            slot = {"name": name, "type": "COMBO" if isinstance(io_type, list) else io_type, "link": link_id}
            if is_widget(io_type):
                slot["widget"] = {"name": name}
            if name not in node["inputs"] and link_id is None and not is_widget(io_type):
                slot["shape"] = 7  # optional socket
            inputs.append(slot)
        outputs = [
            {"name": out_name, "type": out_type, "links": out_links.get((nid, i), [])}
            for i, (out_type, out_name) in enumerate(zip(info["output"], info.get("output_name", info["output"])))
        ]
        p = placed.nodes[nid]
        entry = {
            "id": int(nid), "type": node["class_type"], "pos": list(p.pos), "size": list(p.size), "flags": {},
            "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
            "properties": {"Node name for S&R": node["class_type"]}, "widgets_values": widgets,
        }
        if node_titles and nid in node_titles:
            entry["title"] = node_titles[nid]
        nodes.append(entry)
    for link in links:  # LiteGraph links name the target slot by index, not by name
        target = next(n for n in nodes if n["id"] == link[3])
        link[4] = next(i for i, s in enumerate(target["inputs"]) if s["name"] == link[4])
    last_id = max(int(i) for i in ids)
    if note:
        last_id += 1
        p = placed.nodes["note"]
        nodes.insert(0, {"id": last_id, "type": "MarkdownNote", "pos": list(p.pos), "size": list(p.size),
                         "flags": {}, "order": len(nodes), "mode": 0, "inputs": [], "outputs": [],
                         "properties": {}, "widgets_values": [note], "title": "Read me",
                         "color": "#432", "bgcolor": "#653"})
    ui = {
        "last_node_id": last_id, "last_link_id": len(links), "nodes": nodes, "links": links,
        "groups": placed.groups, "config": {}, "extra": {}, "version": 0.4,
    }
    if title:
        ui["extra"]["title"] = title
    return ui


def fill_widget_defaults(prompt: dict, object_info: dict) -> dict:
    """Fills every widget (required or optional) the prompt leaves out with its default (combos: the first
    option), as the ComfyUI page does when it turns a graph into a prompt."""
    out = {}
    for node_id, node in prompt.items():
        info = object_info[node["class_type"]]
        inputs = dict(node["inputs"])
        for name, io_type, options in _ordered_inputs(info):
            if name in inputs or not is_widget(io_type):
                continue
            if "default" in options:
                inputs[name] = options["default"]
            else:
                choices = io_type if isinstance(io_type, list) else options.get("options") or []
                if not choices:
                    raise ValueError(f"{node['class_type']}.{name} has no default and no options")
                inputs[name] = choices[0]
        out[node_id] = {"class_type": node["class_type"], "inputs": inputs}
    return out
