"""Small procedural textures for procedural objects (uint8 sRGB ``[S, S, 3]``, tileable, seeded).

Every generator takes a numpy ``Generator`` and an sRGB colour (0..1); the colour is baked into the pixels,
so materials using these textures keep a white base colour. Stripes of the anisotropic textures (wood grain,
brushed metal) run along the image's vertical axis (texture v), so geometry maps a board's long side to v.
"""
from __future__ import annotations

import numpy as np

TILE_PX = 64  # side of one texture tile; an atlas of a few tiles stays a few kB as PNG


def value_noise(rng: np.random.Generator, size: int, cells_x: int, cells_y: int | None = None) -> np.ndarray:  # [S, S]
    """Tileable smooth value noise in 0..1 on a ``cells_x`` x ``cells_y`` lattice."""
    cells_y = cells_x if cells_y is None else cells_y
    grid = rng.random((cells_y, cells_x))

    def coords(cells: int):
        t = np.arange(size) * cells / size
        i0 = np.floor(t).astype(np.int64)
        f = t - i0
        return i0 % cells, (i0 + 1) % cells, f * f * (3 - 2 * f)  # smoothstep weights

    x0, x1, fx = coords(cells_x)
    y0, y1, fy = coords(cells_y)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def fractal_noise(rng: np.random.Generator, size: int, base_cells: int = 4, octaves: int = 4) -> np.ndarray:  # [S, S]
    out, amp, total = np.zeros((size, size)), 1.0, 0.0
    for o in range(octaves):
        cells = min(base_cells * 2 ** o, size)
        out += amp * value_noise(rng, size, cells)
        total += amp
        amp *= 0.5
    return out / total


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _tint(color, shade: np.ndarray) -> np.ndarray:  # shade [S, S] -> [S, S, 3]
    return np.asarray(color, dtype=np.float64)[:3][None, None, :] * shade[..., None]


def plain(color, size: int = TILE_PX) -> np.ndarray:
    return _to_uint8(_tint(color, np.ones((size, size))))


def wood_grain(rng: np.random.Generator, color, size: int = TILE_PX) -> np.ndarray:
    """Vertical grain lines, warped by low-frequency noise, plus fine fibre noise."""
    x = np.arange(size)[None, :] / size
    warp = value_noise(rng, size, 3, 2) - 0.5
    freq = int(rng.integers(5, 9))
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (freq * x + 1.6 * warp))
    rings = rings ** 3  # narrow dark late-wood lines
    fibres = value_noise(rng, size, min(32, size), 2)
    shade = 0.78 + 0.14 * (1 - rings) + 0.08 * fibres
    return _to_uint8(_tint(color, shade))


def brushed_metal(rng: np.random.Generator, color, size: int = TILE_PX) -> np.ndarray:
    """Fine vertical brush streaks and a soft sheen."""
    streaks = value_noise(rng, size, min(size, 48), 2)
    sheen = value_noise(rng, size, 2, 2)
    shade = 0.84 + 0.10 * streaks + 0.06 * sheen
    return _to_uint8(_tint(color, shade))


def speckle(rng: np.random.Generator, color, size: int = TILE_PX, strength: float = 0.08) -> np.ndarray:
    """Painted / plastic surface: colour with gentle multi-scale noise."""
    shade = 1.0 - strength + strength * fractal_noise(rng, size)
    return _to_uint8(_tint(color, shade))


def glass(rng: np.random.Generator, color, size: int = TILE_PX) -> np.ndarray:
    """Dark glass with a diagonal reflection band."""
    yy, xx = np.mgrid[:size, :size] / size
    band = np.exp(-((xx + yy - 0.7) ** 2) / 0.02)
    shade = 0.85 + 0.55 * band + 0.05 * fractal_noise(rng, size, 2, 2)
    return _to_uint8(_tint(color, shade))


def keypad(rng: np.random.Generator, color, key_color, size: int = TILE_PX, keys: tuple[int, int] = (8, 8)) -> np.ndarray:
    """A grid of square keys/buttons on a background (keyboards, control panels)."""
    nx, ny = keys
    yy, xx = np.mgrid[:size, :size] + 0.5
    fx, fy = (xx * nx / size) % 1.0, (yy * ny / size) % 1.0
    key = (fx > 0.15) & (fx < 0.85) & (fy > 0.15) & (fy < 0.85)
    base = _tint(color, np.ones((size, size)))
    keyc = _tint(key_color, np.ones((size, size)))
    noise = 0.96 + 0.04 * value_noise(rng, size, 8)
    return _to_uint8(np.where(key[..., None], keyc, base) * noise[..., None])


def atlas(tiles: list[np.ndarray]) -> np.ndarray:  # [S, K*S, 3]
    """Tiles side by side (all the same size); tile k covers u in [k/K, (k+1)/K]."""
    size = tiles[0].shape[0]
    if any(t.shape[:2] != (size, size) for t in tiles):
        raise ValueError("atlas tiles must all be square and of one size")
    return np.concatenate([t[..., :3] for t in tiles], axis=1)


def atlas_uv(uv01: np.ndarray, tile: int, num_tiles: int, size: int = TILE_PX) -> np.ndarray:  # [N, 2]
    """Map per-face 0..1 UVs into tile ``tile`` of an atlas, one texel in from its border so bilinear
    lookups never reach the neighbouring tile. v = 0 is the image's bottom row (OpenGL convention)."""
    uv01 = np.clip(np.asarray(uv01, dtype=np.float64), 0.0, 1.0)
    inner = (size - 2.0) / size
    u = (tile + (1.0 / size) + uv01[:, 0] * inner) / num_tiles
    v = (1.0 / size) + uv01[:, 1] * inner
    return np.stack([u, v], axis=1)
