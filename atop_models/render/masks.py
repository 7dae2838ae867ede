"""Part masks from ray-cast renders: visible pixels (occlusion aware) and full silhouettes."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..types import CameraRig, PartMesh
from .raycast import RenderResult, render_views


def _require_visible(masks: np.ndarray, part_names: list[str], what: str) -> None:
    if not masks.any():
        names = ", ".join(f"'{p}'" for p in part_names)
        raise InputError(f"part {names} is {what} in none of the {masks.shape[0]} views; "
                         "it is hidden or outside the images; change elevation/azimuth or pose the object "
                         "(e.g. open the part a little)")


def part_masks(mesh: PartMesh, render: RenderResult, part_names: list[str] | str) -> np.ndarray:  # [V, H, W]
    """1 where the nearest surface belongs to one of the parts (occluded pixels are 0)."""
    part_names = [part_names] if isinstance(part_names, str) else list(part_names)
    idx = [mesh.part_index(p) for p in part_names]
    hit = render.face_id >= 0
    fp = np.where(hit, mesh.face_part[np.maximum(render.face_id, 0)], -1)
    masks = np.isin(fp, idx).astype(np.float32)
    _require_visible(masks, part_names, "visible")
    return masks


def part_silhouettes(mesh: PartMesh, rig: CameraRig, part_names: list[str] | str,
                     vertices: np.ndarray | None = None) -> np.ndarray:  # [V, H, W]
    """The parts' full silhouettes, ignoring everything in front of them (the parts rendered alone)."""
    part_names = [part_names] if isinstance(part_names, str) else list(part_names)
    faces = np.nonzero(mesh.part_face_mask(part_names))[0]
    masks = render_views(mesh, rig, vertices=vertices, faces=faces).alpha
    _require_visible(masks, part_names, "inside the image")
    return masks
