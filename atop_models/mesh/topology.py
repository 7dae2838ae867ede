"""Mesh connectivity from vertex positions (pure functions): welding, face adjacency, connected pieces, and
splitting vertices where face labels change.

Loaders and procedural objects often give each face or UV island its own vertices, so connectivity is taken
from positions: vertices closer than a small tolerance are one point.
"""
from __future__ import annotations

import numpy as np

WELD_TOLERANCE = 1e-6  # vertices closer than this share a position (normalised frame, object size 1)


def weld_positions(vertices: np.ndarray, tolerance: float = WELD_TOLERANCE) -> np.ndarray:  # [V] int64
    """Index of each vertex's welded point: vertices within ``tolerance`` of each other (transitively) share
    one index (0..K-1)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64)
    pairs = cKDTree(v).query_pairs(tolerance, output_type="ndarray")  # [P, 2]
    n = len(v)
    if len(pairs) == 0:
        return np.arange(n, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def face_adjacency(faces: np.ndarray, welded: np.ndarray) -> np.ndarray:  # [E, 2] int64 face pairs
    """Pairs of faces sharing a manifold edge of welded points (an edge of exactly two faces), plus pairs of
    twin faces (the same three points, as double-sided meshes repeat every face). An edge of three or more
    distinct faces is where separate sheets were welded together (a drawer box meeting its front, a panel
    glued to a frame): it does not join them."""
    tri = np.sort(welded[np.asarray(faces, dtype=np.int64)], axis=1)  # [F, 3]
    unique_tri, twin_of = np.unique(tri, axis=0, return_inverse=True)
    twin_of = twin_of.reshape(-1)
    first = np.full(len(unique_tri), len(tri), dtype=np.int64)
    np.minimum.at(first, twin_of, np.arange(len(tri)))  # each twin group's first face stands for it
    twins = np.stack([first[twin_of], np.arange(len(tri))], axis=1)
    edges = np.concatenate([unique_tri[:, [0, 1]], unique_tri[:, [1, 2]], unique_tri[:, [0, 2]]])  # [3U, 2]
    owner = np.tile(first, 3)
    keep = edges[:, 0] != edges[:, 1]  # degenerate edges join nothing
    edges, owner = edges[keep], owner[keep]
    _, group, count = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    two = count[group] == 2
    order = np.argsort(group[two], kind="stable")
    pairs = np.concatenate([owner[two][order].reshape(-1, 2), twins])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(np.sort(pairs, axis=1), axis=0)


def face_graph(faces: np.ndarray, vertices: np.ndarray, welded: np.ndarray):
    """Sparse symmetric graph over faces: edge-adjacent faces joined by the distance of their centroids."""
    from scipy.sparse import coo_matrix

    pairs = face_adjacency(faces, welded)
    centroids = np.asarray(vertices)[np.asarray(faces)].mean(axis=1)
    w = np.linalg.norm(centroids[pairs[:, 0]] - centroids[pairs[:, 1]], axis=1) + 1e-12  # 0 would mean "no edge"
    n = len(faces)
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return coo_matrix((np.concatenate([w, w]), (i, j)), shape=(n, n)).tocsr()


def connected_pieces(faces: np.ndarray, welded: np.ndarray) -> np.ndarray:  # [F] int64 piece index
    """Connected pieces of the surface (faces joined through shared welded edges)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = face_adjacency(faces, welded)
    n = len(faces)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def split_vertices(faces: np.ndarray, face_label: np.ndarray, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Give every label its own copy of the vertices it shares with other labels, so labelled pieces can
    move apart. Returns (new faces [F, 3], source vertex of every vertex of the result [V']): the first
    label using a vertex keeps its index, the others get copies appended after ``num_vertices``."""
    faces = np.asarray(faces, dtype=np.int64)
    keys = np.stack([faces.reshape(-1), np.repeat(np.asarray(face_label, dtype=np.int64), 3)], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)  # sorted by vertex, then label
    source = uniq[:, 0]
    first = np.r_[True, source[1:] != source[:-1]]
    new_index = np.where(first, source, num_vertices + np.cumsum(~first) - 1)
    sources = np.concatenate([np.arange(num_vertices, dtype=np.int64), source[~first]])
    return new_index[inverse.reshape(-1)].reshape(-1, 3), sources
