"""A PNG contact sheet: labelled rows of equally sized images (views, masks, motion frames, overlays)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..files import atomic_path


def _to_uint8(img: np.ndarray) -> np.ndarray:  # [H, W, 3] or [H, W]
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return arr[..., :3]


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], *, tile: int = 160, label_width: int = 150) -> Image.Image:
    """``rows``: (label, images) pairs; images float 0..1 or uint8, RGB or single-channel, any size."""
    if not rows:
        raise ValueError("contact sheet needs at least one row")
    columns = max(len(images) for _, images in rows)
    sheet = Image.new("RGB", (label_width + columns * tile, len(rows) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        draw.text((8, r * tile + tile // 2 - 6), label, fill=(20, 20, 20))
        for c, img in enumerate(images):
            pil = Image.fromarray(_to_uint8(img)).resize((tile, tile), Image.BILINEAR)
            sheet.paste(pil, (label_width + c * tile, r * tile))
    return sheet


def save_png_atomic(image: Image.Image, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)
