"""Meshes as generators and single-mesh downloads give them: every part merged into one welded mesh with no
part labels, and the outer shell alone (the surface seen from outside, interior faces removed).

Both keep the face order of their source (``face_origin``), so per-face truths such as part labels carry
over; they stand in for meshes without parts in tests and benchmarks.
"""
from __future__ import annotations

import numpy as np

from ..types import PartMesh
from .topology import WELD_TOLERANCE

MERGED_PART = "object"
SHELL_DIRECTIONS = 2  # icosphere subdivisions of the view directions for the shell (2: 162 directions)
SHELL_RESOLUTION = 256  # pixels across each shell view (orthographic)


def merge_parts(mesh: PartMesh, faces: np.ndarray | None = None) -> PartMesh:
    """One part, no joints; vertices welded where position, UV and colour agree (a seam keeps its split).
    ``faces`` (indices into mesh.faces) keeps only those faces, in that order."""
    keep = np.arange(len(mesh.faces)) if faces is None else np.asarray(faces, dtype=np.int64)
    columns = [np.round(mesh.vertices / WELD_TOLERANCE)]
    if mesh.uv is not None:
        columns.append(np.round(mesh.uv / WELD_TOLERANCE))
    if mesh.vertex_colors is not None:
        columns.append(np.round(mesh.vertex_colors * 255.0))
    used = np.unique(mesh.faces[keep])
    _, first, inverse = np.unique(np.concatenate(columns, axis=1)[used], axis=0, return_index=True,
                                  return_inverse=True)
    index = np.full(len(mesh.vertices), -1, dtype=np.int64)
    index[used] = inverse.reshape(-1)
    source = used[first]
    out = mesh.copy()
    out.vertices = mesh.vertices[source]
    out.faces = index[mesh.faces[keep]]
    out.face_part = np.zeros(len(keep), dtype=np.int64)
    out.part_names = [MERGED_PART]
    out.face_material = mesh.face_material[keep]
    out.uv = None if mesh.uv is None else mesh.uv[source]
    out.vertex_colors = None if mesh.vertex_colors is None else mesh.vertex_colors[source]
    out.joints, out.attached = [], {}
    return out


def outer_faces(mesh: PartMesh, subdivisions: int = SHELL_DIRECTIONS,
                resolution: int = SHELL_RESOLUTION) -> np.ndarray:  # [K] face indices
    """Faces seen from outside: hit by orthographic rays from the directions of an icosphere (162 by
    default) at ``resolution`` pixels across the object's bounding sphere."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
    intersector = RayMeshIntersector(tm)
    centre = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    radius = 0.5 * mesh.bbox_diagonal * 1.01
    steps = (np.arange(resolution) + 0.5) / resolution * 2 - 1
    gx, gy = np.meshgrid(steps * radius, steps * radius)
    seen = np.zeros(len(mesh.faces), dtype=bool)
    for d in trimesh.creation.icosphere(subdivisions=subdivisions).vertices:
        d = d / np.linalg.norm(d)
        helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        u = np.cross(helper, d)
        u /= np.linalg.norm(u)
        w = np.cross(d, u)
        origins = centre - 2 * radius * d + gx.reshape(-1, 1) * u + gy.reshape(-1, 1) * w
        tri = intersector.intersects_first(origins, np.broadcast_to(d, origins.shape))
        seen[tri[tri >= 0]] = True
    return np.nonzero(seen)[0]


def outer_shell(mesh: PartMesh) -> tuple[PartMesh, np.ndarray]:
    """The merged outer shell (``merge_parts`` of ``outer_faces``) and its source faces [K]."""
    faces = outer_faces(mesh)
    return merge_parts(mesh, faces), faces


def voxel_surface(mesh: PartMesh, pitch: float, seed: int = 0) -> tuple[PartMesh, np.ndarray]:
    """The object as a generator outputs it: one blocky closed surface, the boundary of its filled voxels of
    side ``pitch`` (gaps up to a cell wide fused, interiors gone, faces unrelated to the source's). Returns
    the surface (one part, no joints, plain colour) and, per face, the source face nearest its centroid."""
    from scipy.ndimage import binary_dilation, binary_erosion, binary_fill_holes
    from scipy.spatial import cKDTree

    from .sampling import face_areas, sample_surface

    area = float(face_areas(mesh.vertices, mesh.faces).sum())
    samples, owner = sample_surface(mesh, mesh.part_names, int(np.ceil(9 * area / pitch ** 2)), seed=seed)
    lo = mesh.vertices.min(axis=0) - 2.5 * pitch  # two empty cells of margin on every side
    cells = np.floor((np.concatenate([samples, mesh.vertices]) - lo) / pitch).astype(np.int64)
    filled = np.zeros(cells.max(axis=0) + 3, dtype=bool)
    filled[tuple(cells.T)] = True
    # close gaps up to a cell wide (grow, fill what the outside cannot reach, shrink back), as a generator's
    # coarse field fuses a door to its frame
    filled = binary_erosion(binary_fill_holes(binary_dilation(filled)))
    cells = np.argwhere(filled)
    quads = []
    for axis in range(3):
        a, b = np.eye(3, dtype=np.int64)[[(axis + 1) % 3, (axis + 2) % 3]]
        for sign in (-1, 1):
            step = np.eye(3, dtype=np.int64)[axis] * sign
            out = cells[~filled[tuple((cells + step).T)]]  # cells whose neighbour that way is empty
            base = out + (step > 0) * np.eye(3, dtype=np.int64)[axis]  # the shared face's lowest corner
            quad = np.stack([base, base + a, base + a + b, base + b], axis=1)  # counter-clockwise seen from +axis
            quads.append(quad if sign > 0 else quad[:, ::-1])
    corners, index = np.unique(np.concatenate(quads).reshape(-1, 3), axis=0, return_inverse=True)
    q = index.reshape(-1, 4)
    faces = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    vertices = lo + corners * pitch
    surface = PartMesh(vertices=vertices, faces=faces, face_part=np.zeros(len(faces), np.int64),
                       part_names=[MERGED_PART], name=mesh.name, category=mesh.category)
    _, nearest = cKDTree(samples).query(vertices[faces].mean(axis=1))
    return surface, owner[nearest]
