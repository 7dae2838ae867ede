"""``python -m atop_models bench load --data DIR``: time loading every object folder (or mesh file) in DIR.
An entry that fails to load is a row with ``failed: true`` and its ``error``; the run goes on."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ...errors import InputError


def run(args) -> int:
    from ...mesh.loaders import SUPPORTED, load_part_mesh
    from .joints import error_text

    if not os.path.isdir(args.data):
        raise InputError(f"data folder '{args.data}' does not exist; give a folder of objects with --data")
    entries = sorted(e for e in os.listdir(args.data)
                     if os.path.isdir(os.path.join(args.data, e)) or e.lower().endswith(SUPPORTED))
    rows = []
    print(f"{'object':<32} {'parts':>5} {'faces':>7} {'joints':>6} {'seconds':>8}")
    for e in entries:
        path = os.path.join(args.data, e)
        try:
            t = time.perf_counter()
            mesh = load_part_mesh(path)
            dt = time.perf_counter() - t
        except Exception as exc:  # one bad object must not end the run
            rows.append({"object": e, "failed": True, "error": error_text(exc)})
            print(f"{e:<32} FAILED: {rows[-1]['error']}")
            continue
        rows.append({"object": e, "parts": len(mesh.part_names), "faces": int(len(mesh.faces)),
                     "joints": len(mesh.joints), "seconds": dt, "notes": mesh.notes, "failed": False})
        print(f"{e:<32} {len(mesh.part_names):>5} {len(mesh.faces):>7} {len(mesh.joints):>6} {dt:>8.3f}")
    loaded = [r for r in rows if not r["failed"]]
    if loaded:
        s = np.array([r["seconds"] for r in loaded])
        print(f"{len(loaded)} objects: median {np.median(s):.3f} s, max {s.max():.3f} s")
    print(f"{len(rows) - len(loaded)} failed")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("load", help="time loading each object folder / mesh file of a data folder")
    p.add_argument("--data", required=True, help="folder of PartNet-Mobility object folders or mesh files")
    p.add_argument("--json", default="", help="write the figures to this JSON file")
    p.set_defaults(func=run)
