"""Area-weighted surface sampling of mesh parts."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..types import PartMesh


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:  # [F]
    tri = np.asarray(vertices)[np.asarray(faces)]  # [F, 3, 3]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=-1)


def sample_surface(mesh: PartMesh, part_names: list[str] | str, n: int, seed: int = 0,
                   vertices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniformly distributed over the area of the named parts.

    Returns points [n, 3] and the index (into mesh.faces) of the face each point lies on [n].
    ``vertices`` [V, 3] overrides the mesh's vertices (a posed state)."""
    verts = mesh.vertices if vertices is None else np.asarray(vertices, dtype=np.float64)
    face_ids = np.nonzero(mesh.part_face_mask(part_names))[0]
    tri = verts[mesh.faces[face_ids]]  # [F', 3, 3]
    area = face_areas(verts, mesh.faces[face_ids])
    total = float(area.sum())
    if n < 1:
        raise InputError(f"the number of points to sample must be at least 1, got {n}")
    if not np.isfinite(total) or total <= 1e-12:
        names = [part_names] if isinstance(part_names, str) else list(part_names)
        raise InputError(f"part(s) {', '.join(names)} have no surface area to sample points from; "
                         "check the mesh (degenerate or empty part)")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(face_ids), size=n, p=area / total)
    # Uniform barycentric coordinates (reflect the unit square into the triangle).
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    t = tri[chosen]
    points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
    return points, face_ids[chosen]
