"""``python -m atop_models inspect PATH_OR_CONFIG [--json]``: the detected format of a model folder or file,
its parameter and tensor counts and dtypes, and every missing, unexpected or mis-shaped key against the
expected architecture. ``--config real|tiny`` counts a configuration on the meta device (no memory used)."""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="check ImageDream weights (folder or file) or count a configuration")
    p.add_argument("path", nargs="?", help="model folder, checkpoint file or motion-module file")
    p.add_argument("--config", choices=("real", "tiny"), help="count the UNet of a configuration instead")
    p.add_argument("--motion", action="store_true", help="with --config: include the motion modules")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..diffusion.inspection import count_config, inspect_path
    from ..errors import InputError

    if args.config:
        report = count_config(args.config, motion=args.motion)
    elif args.path:
        report = inspect_path(args.path)
    else:
        raise InputError("give a model folder or file, or --config real|tiny")
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(_text(report))
    return 0 if report.get("ok", True) else 1


def _text(report: dict, indent: str = "") -> str:
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_text(value, indent + "  ").rstrip("\n"))
        elif isinstance(value, list):
            shown = value[:10]
            more = f" (+{len(value) - 10} more)" if len(value) > 10 else ""
            lines.append(f"{indent}{key}: {len(value)}{': ' if value else ''}{', '.join(map(str, shown))}{more}")
        else:
            lines.append(f"{indent}{key}: {f'{value:,}' if isinstance(value, int) and not isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"
