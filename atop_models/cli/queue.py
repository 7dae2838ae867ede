"""``python -m atop_models queue WORKFLOW.json --server URL [--set NODE.INPUT=VALUE ...] [--wait]``

Queues a workflow (API format, or UI format converted through the server's /object_info) on a running
ComfyUI, with input overrides; with --wait it streams progress and downloads every output file."""
from __future__ import annotations

import json
import logging
import math
import sys
import uuid
from pathlib import Path

from ..errors import InputError
from ..remote import ComfyClient
from ..workflow_format import ui_to_api

log = logging.getLogger("atop")


def register(subparsers) -> None:
    p = subparsers.add_parser("queue", help="queue a workflow on a running ComfyUI server")
    p.add_argument("workflow", type=Path, help="workflow JSON (API format, or UI format)")
    p.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI address (default %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override an input; NODE is a node id, a class type (if unique) or a node title; "
                        "VALUE is parsed as JSON when it can be (numbers, true/false), else taken as text")
    p.add_argument("--wait", action="store_true", help="wait for the result, stream progress, download outputs")
    p.add_argument("--out", type=Path, default=Path("out/queue"), help="where --wait puts the output files")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits at most")
    p.set_defaults(func=run)


def apply_override(prompt: dict, override: str) -> None:
    if "=" not in override or "." not in override.split("=", 1)[0]:
        raise InputError(f"override {override!r} is not of the form NODE.INPUT=VALUE")
    target, raw = override.split("=", 1)
    node_ref, input_name = target.rsplit(".", 1)
    matches = [nid for nid, node in prompt.items()
               if nid == node_ref or node["class_type"] == node_ref or node.get("_meta", {}).get("title") == node_ref]
    if not matches:
        known = ", ".join(f"{nid} ({n['class_type']})" for nid, n in prompt.items())
        raise InputError(f"no node {node_ref!r} in the workflow; nodes are: {known}")
    if len(matches) > 1:
        raise InputError(f"{node_ref!r} matches nodes {matches}; name the node by its id instead")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    prompt[matches[0]]["inputs"][input_name] = value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"holds a number that is not finite ({text[:40]})")
    return value


def load_prompt(path: Path, client: ComfyClient) -> dict:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"workflow {path} is a folder; give a workflow .json file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=_finite, parse_constant=_finite)
    except FileNotFoundError:
        raise InputError(f"workflow file {path} not found") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError covers JSON, text decoding, non-finite numbers
        raise InputError(f"workflow file {path} is not valid JSON ({type(exc).__name__}: {str(exc)[:160]})") from None
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        log.info("UI-format workflow: converting through the server's node definitions")
        try:
            return ui_to_api(data, client.object_info())
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise InputError(f"UI-format workflow {path} cannot be converted: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from exc
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict):
        data = data["prompt"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        raise InputError(f"{path} is neither an API-format nor a UI-format ComfyUI workflow")
    return data


def run(args) -> int:
    client = ComfyClient(args.server, client_id=uuid.uuid4().hex)
    prompt = load_prompt(args.workflow, client)
    for override in args.overrides:
        apply_override(prompt, override)
    prompt_id = client.queue(prompt)
    log.info("queued prompt %s on %s", prompt_id, args.server)
    if not args.wait:
        sys.stdout.write(prompt_id + "\n")
        return 0
    entry = client.follow(prompt_id, timeout=args.timeout, on_event=_log_event)
    status = entry.get("status", {})
    if status.get("status_str") != "success":
        for kind, data in status.get("messages", []):
            if kind in ("execution_error", "execution_interrupted"):
                log.error("%s in node %s (%s): %s", kind, data.get("node_id"), data.get("node_type"),
                          data.get("exception_message", "").strip())
        return 1
    files = client.download_outputs(entry, args.out)
    for path in files:
        sys.stdout.write(f"{path}\n")
    log.info("done: %d output file(s) in %s", len(files), args.out)
    return 0


def _log_event(kind: str, data: dict) -> None:
    if kind == "progress":
        log.info("node %s: %s/%s", data.get("node"), data.get("value"), data.get("max"))
    elif kind == "executing" and data.get("node"):
        log.info("running node %s", data["node"])
