"""Masks painted by the user on the rendered views: their layouts, and how well they agree with a part.

A painting tool sees one image, so the views are shown side by side (``side_by_side``); a mask painted on
that sheet is cut back into one mask per view (``masks_per_view``). Painted masks then go wherever the
pipeline takes part masks; ``agreement`` measures them against the part's own visible pixels so the user
hears when the two disagree.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..types import CameraRig

PAINTED = 0.5  # a pixel counts as painted from this mask value up
AGREEMENT_IOU = 0.8  # below this intersection-over-union in a view, masks and part are said to disagree
# ComfyUI's Load Image gives this mask for a picture with no transparency (nothing painted yet)
BLANK_LOAD_IMAGE_SIZE = 64


def side_by_side(images: np.ndarray) -> np.ndarray:  # [V, H, W, ...] -> [1, H, V*W, ...]
    """The views in one row, view 0 on the left: the sheet a user paints on."""
    images = np.asarray(images)
    return np.concatenate(list(images), axis=1)[None]


def masks_per_view(masks: np.ndarray, rig: CameraRig) -> np.ndarray:  # [V, H, W] float32
    """Per-view masks from what a MASK input holds: one mask per camera [V, H, W], or one mask over the views
    side by side [1, H, V*W] (or [H, V*W]). Anything else is an error naming both shapes."""
    m = np.asarray(masks, dtype=np.float32)
    V, H, W = rig.num_views, rig.height, rig.width
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise InputError(f"the masks have shape {list(np.shape(masks))}; expected [{V}, {H}, {W}] (one per "
                         f"camera) or [1, {H}, {V * W}] (the {V} views side by side)")
    if m.shape == (V, H, W):
        return np.clip(m, 0.0, 1.0)
    if m.shape == (1, H, V * W):
        return np.clip(np.stack(np.split(m[0], V, axis=1)), 0.0, 1.0)
    if m.shape == (1, BLANK_LOAD_IMAGE_SIZE, BLANK_LOAD_IMAGE_SIZE) and not m.any():
        raise InputError(f"the mask is a blank {BLANK_LOAD_IMAGE_SIZE}x{BLANK_LOAD_IMAGE_SIZE} image, which is what "
                         "Load Image gives for a picture without transparency: nothing has been painted yet; "
                         "right-click the Load Image node, choose 'Open in MaskEditor', paint the part and save")
    raise InputError(f"the masks have shape {list(m.shape)} but the {V} cameras see {W}x{H} px: expected "
                     f"[{V}, {H}, {W}] (one mask per camera) or [1, {H}, {V * W}] (the views side by side); "
                     "paint on the views rendered with these cameras")


def agreement(painted: np.ndarray, part: np.ndarray) -> np.ndarray:  # [V] IoU, NaN where neither has pixels
    """Per-view intersection over union of painted masks [V, H, W] and a part's visible pixels [V, H, W]."""
    a, b = np.asarray(painted) >= PAINTED, np.asarray(part) >= PAINTED
    inter = (a & b).sum(axis=(1, 2)).astype(np.float64)
    union = (a | b).sum(axis=(1, 2)).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def disagreement(painted: np.ndarray, part: np.ndarray, part_name: str) -> str:
    """A sentence for the user when painted masks and the part's visible pixels disagree in a painted view
    (empty when they agree). Unpainted views are not compared: they carry no paint to disagree with."""
    painted = np.asarray(painted)
    iou = agreement(painted, part)
    checked = (painted >= PAINTED).any(axis=(1, 2))
    bad = [v for v in np.nonzero(checked)[0] if not iou[v] >= AGREEMENT_IOU]
    if not bad:
        return ""
    views = ", ".join(f"view {v} ({iou[v]:.0%})" for v in bad)
    return (f"the masks and part '{part_name}' disagree: they overlap by less than {AGREEMENT_IOU:.0%} "
            f"(intersection over union) in {views}; check that the masks show this part, on views rendered "
            "with these cameras")
