"""Midpoint subdivision of chosen triangles (pure function): each splits into 4, per-vertex attributes
(UVs, colours) are interpolated linearly, so the surface and its look stay exactly the same.

Two split triangles sharing an edge share its midpoint. An unsplit neighbour keeps its edge whole (a
T-junction): the surface stays closed because the midpoint lies exactly on that edge.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def subdivide(vertices: np.ndarray, faces: np.ndarray, which: np.ndarray,
              attributes: dict[str, Optional[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Split the faces where ``which`` [F] is true into four.

    Returns (vertices [V', 3], faces [F', 3], parent [F'] index into ``faces``, attributes with the new
    vertices' values appended). The unsplit faces come first, in order, then four children per split face
    (the corner children of vertices 0, 1, 2, then the middle one), all with the parent's orientation."""
    faces = np.asarray(faces, dtype=np.int64)
    which = np.asarray(which, dtype=bool)
    split = faces[which]  # [S, 3]
    if len(split) == 0:
        return vertices, faces, np.arange(len(faces)), dict(attributes)
    edges = np.stack([split[:, [0, 1]], split[:, [1, 2]], split[:, [2, 0]]], axis=1)  # [S, 3, 2]
    keys = np.sort(edges.reshape(-1, 2), axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    mid = len(vertices) + inverse.reshape(-1, 3)  # [S, 3] midpoint of edges 01, 12, 20

    def extend(values: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if values is None:
            return None
        return np.concatenate([values, 0.5 * (values[uniq[:, 0]] + values[uniq[:, 1]])])

    a, b, c = split[:, 0], split[:, 1], split[:, 2]
    m01, m12, m20 = mid[:, 0], mid[:, 1], mid[:, 2]
    children = np.stack([np.stack([a, m01, m20], 1), np.stack([m01, b, m12], 1),
                         np.stack([m20, m12, c], 1), np.stack([m01, m12, m20], 1)], axis=1).reshape(-1, 3)
    kept = np.nonzero(~which)[0]
    parent = np.concatenate([kept, np.repeat(np.nonzero(which)[0], 4)])
    new_faces = np.concatenate([faces[kept], children])
    return extend(vertices), new_faces, parent, {k: extend(v) for k, v in attributes.items()}
