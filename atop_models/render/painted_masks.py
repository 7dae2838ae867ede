"""Masks painted by the user on the rendered views: their layouts, and how well they agree with a part.

A painting tool sees one image, so the views are shown side by side (``side_by_side``); a mask painted on
that sheet is cut back into one mask per view (``masks_per_view``). Painted masks then go wherever the
pipeline takes part masks; ``agreement`` measures them against the part's own visible pixels so the user
hears when the two disagree.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError
from ..types import CameraRig, PartMesh

PAINTED = 0.5  # a pixel counts as painted from this mask value up
AGREEMENT_IOU = 0.8  # below this intersection-over-union in a view, masks and part are said to disagree
BRUSH_BAND = 3.0  # pixels this close to a painted edge are not sure: a brush edge is imprecise
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


def certain_pixels(painted: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of one painted mask [H, W] (bool) whose side is certain: (painted, unpainted) [H, W] bool.

    A brush edge is imprecise, so pixels within ``band`` pixels of the painted edge are left out, except
    the innermost pixels of a painted blob too small to have any pixel farther in (a knob painted with a
    dab keeps its middle)."""
    from scipy.ndimage import distance_transform_edt, label, maximum

    if painted.all() or not painted.any():  # no edge: every pixel is sure
        return painted.copy(), ~painted
    inside = distance_transform_edt(painted)  # paint: distance to the nearest unpainted pixel
    outside = distance_transform_edt(~painted)
    blobs, count = label(painted)
    core = np.zeros_like(painted)
    if count:
        deepest = np.concatenate([[0.0], np.atleast_1d(maximum(inside, blobs, np.arange(1, count + 1)))])
        core = painted & (inside >= deepest[blobs])
    return painted & ((inside > band) | core), ~painted & (outside > band)


def agreement(painted: np.ndarray, part: np.ndarray, band: float = BRUSH_BAND) -> np.ndarray:  # [V]
    """Per-view intersection over union of painted masks [V, H, W] and a part's visible pixels [V, H, W],
    over the pixels whose painted side is certain (``certain_pixels``); NaN where neither has pixels."""
    out = np.full(len(painted), np.nan)
    for v, (m, p) in enumerate(zip(np.asarray(painted) >= PAINTED, np.asarray(part) >= PAINTED)):
        sure_paint, sure_clear = certain_pixels(m, band)
        inter, union = (sure_paint & p).sum(), (sure_paint | (p & sure_clear)).sum()
        if union:
            out[v] = inter / union
    return out


def disagreement(painted: np.ndarray, part: np.ndarray, part_name: str) -> str:
    """A sentence for the user when painted masks and the part's visible pixels disagree in a painted view
    (``agreement`` below ``AGREEMENT_IOU``; empty when they agree). Unpainted views are not compared: they
    carry no paint to disagree with."""
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


def part_disagreement(mesh: PartMesh, part_names: list[str], rig: CameraRig, masks: np.ndarray) -> str:
    """``disagreement`` of masks [V, H, W] (painted or taken from elsewhere, e.g. a motion video's) with the
    visible pixels of ``part_names`` rendered from ``rig`` at the masks' size ("" when they agree)."""
    from .raycast import render_views

    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != rig.num_views:
        return (f"the {masks.shape[0] if masks.ndim == 3 else 'given'} masks do not match the {rig.num_views} "
                "cameras, so they cannot show the part")
    face_id = render_views(mesh, replace(rig, width=masks.shape[2], height=masks.shape[1])).face_id
    wanted = np.isin(mesh.face_part, [mesh.part_index(p) for p in part_names])
    visible = (face_id >= 0) & wanted[np.maximum(face_id, 0)]
    return disagreement(masks, visible, ", ".join(part_names))
