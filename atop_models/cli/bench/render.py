"""``python -m atop_models bench render``: time the ray-cast renderer on a procedural ~100k-face textured mesh."""
from __future__ import annotations

import json
import logging
import time

import numpy as np

from ...geometry.cameras import imagedream_rig
from ...types import Material, PartMesh

log = logging.getLogger("atop")


def textured_grid_sphere(rows: int = 224, cols: int = 224, texture_size: int = 512) -> PartMesh:
    """A UV sphere (2 * rows * cols faces) with a chequer texture, split into two parts (upper/lower)."""
    th = np.linspace(0, np.pi, rows + 1)
    ph = np.linspace(0, 2 * np.pi, cols + 1)
    T, P = np.meshgrid(th, ph, indexing="ij")  # [rows+1, cols+1]
    verts = 0.5 * np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    uv = np.stack([P / (2 * np.pi), 1 - T / np.pi], -1).reshape(-1, 2)
    idx = np.arange((rows + 1) * (cols + 1)).reshape(rows + 1, cols + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    face_part = (verts[faces].mean(1)[:, 2] < 0).astype(np.int64)
    yy, xx = np.mgrid[:texture_size, :texture_size] // 32
    tex = np.where(((yy + xx) % 2)[..., None] == 0, [220, 60, 40], [40, 90, 220]).astype(np.uint8)
    return PartMesh(vertices=verts, faces=faces, face_part=face_part, part_names=["top", "bottom"],
                    materials=[Material("chequer", np.ones(4), tex)], uv=uv, name="bench_sphere")


def run(args) -> int:
    from ...render.raycast import render_views

    mesh = textured_grid_sphere(args.rows, args.rows)
    rig = imagedream_rig(num_views=args.views, resolution=args.resolution)
    render_views(mesh, rig)  # warm-up (imports, first allocation)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        out = render_views(mesh, rig)
        times.append(time.perf_counter() - t)
    result = {"faces": int(len(mesh.faces)), "views": args.views, "resolution": args.resolution,
              "repeats": args.repeats, "median_s": float(np.median(times)), "min_s": float(np.min(times)),
              "max_s": float(np.max(times)), "coverage": float(out.alpha.mean())}
    print(f"{'faces':>8} {'views':>5} {'res':>5} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{result['faces']:>8} {args.views:>5} {args.resolution:>5} {result['median_s']:>9.3f} "
          f"{result['min_s']:>7.3f} {result['max_s']:>7.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("render", help="time the ray-cast renderer (BVH build included)")
    p.add_argument("--rows", type=int, default=224, help="sphere rows/columns (faces = 2 * rows^2)")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default="", help="write the figures to this JSON file")
    p.set_defaults(func=run)
