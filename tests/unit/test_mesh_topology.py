"""Mesh connectivity, midpoint subdivision, merged meshes and outer shells."""
import numpy as np
import pytest
import trimesh

from atop_models.mesh.merge import merge_parts, outer_faces, outer_shell
from atop_models.mesh.procedural import make_object
from atop_models.mesh.sampling import face_areas
from atop_models.mesh.subdivide import subdivide
from atop_models.mesh.topology import connected_pieces, face_adjacency, split_vertices, weld_positions
from atop_models.types import PartMesh


def test_welding_joins_vertices_within_the_tolerance_only():
    v = np.array([[0, 0, 0], [1e-8, 0, 0], [1, 0, 0], [1, 2e-7, 0], [0, 1, 0], [0, 1.001, 0]], float)
    w = weld_positions(v)
    assert w[0] == w[1] and w[2] == w[3] and w[4] != w[5] and len(set(w)) == 4


def test_adjacency_joins_manifold_edges_and_twins_but_not_welded_sheets():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0.5, 0.5, 1], [0.5, 0.5, -1]], float)
    # faces 0, 1 share edge (1, 2); face 2 repeats face 0 reversed (a double-sided mesh)
    faces = np.array([[0, 1, 2], [1, 3, 2], [2, 1, 0]])
    pairs = {tuple(p) for p in face_adjacency(faces, np.arange(6))}
    assert (0, 2) in pairs and ((0, 1) in pairs or (1, 2) in pairs)
    # two more sheets welded onto edge (1, 2): four distinct faces there, none joined through it
    faces = np.array([[0, 1, 2], [1, 3, 2], [1, 2, 4], [2, 1, 5]])
    assert len(face_adjacency(faces, np.arange(6))) == 0
    assert len(set(connected_pieces(faces, np.arange(6)))) == 4


def test_pieces_follow_welded_positions():
    a, b = trimesh.creation.box(), trimesh.creation.box()
    b.vertices += [3, 0, 0]
    soup_v = np.concatenate([a.vertices[a.faces].reshape(-1, 3), b.vertices[b.faces].reshape(-1, 3)])
    soup_f = np.arange(len(soup_v)).reshape(-1, 3)  # every face with its own vertices
    pieces = connected_pieces(soup_f, weld_positions(soup_v))
    assert len(set(pieces[:12])) == 1 and len(set(pieces[12:])) == 1 and pieces[0] != pieces[12]


def test_split_vertices_gives_each_label_its_own_copies():
    faces = np.array([[0, 1, 2], [1, 3, 2], [3, 4, 2]])
    new, source = split_vertices(faces, np.array([0, 1, 1]), 5)
    assert new[0].tolist() == [0, 1, 2]  # the first label keeps the indices
    assert set(new[1]) & set(new[0]) == set()  # no vertex shared across the labels
    assert (source[new] == faces).all()  # every vertex is a copy of the original one
    assert new[2][0] == new[1][1] and new[2][2] == new[1][2]  # faces of one label stay connected


def test_subdivision_keeps_the_surface_and_interpolates_attributes():
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 0]], float)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    uv = v[:, :2] / 2
    nv, nf, parent, attrs = subdivide(v, faces, np.array([True, True]), {"uv": uv, "vertex_colors": None})
    assert len(nf) == 8 and sorted(parent.tolist()) == [0] * 4 + [1] * 4
    assert len(nv) == 4 + 5  # 5 distinct edge midpoints, the shared diagonal's only once
    assert face_areas(nv, nf).sum() == pytest.approx(4.0)
    assert np.allclose(attrs["uv"], nv[:, :2] / 2) and attrs["vertex_colors"] is None
    n_old = np.cross(v[1] - v[0], v[2] - v[0])
    n_new = np.cross(nv[nf[:, 1]] - nv[nf[:, 0]], nv[nf[:, 2]] - nv[nf[:, 0]])
    assert (n_new @ n_old > 0).all()  # orientation kept
    _, nf1, parent1, _ = subdivide(v, faces, np.array([False, True]), {})
    assert parent1.tolist() == [0, 1, 1, 1, 1] and (nf1[0] == faces[0]).all()


def test_merged_mesh_has_one_part_and_keeps_the_faces():
    mesh = make_object("cabinet", 0)
    merged = merge_parts(mesh)
    assert merged.part_names == ["object"] and merged.joints == [] and len(merged.faces) == len(mesh.faces)
    assert np.allclose(merged.vertices[merged.faces], mesh.vertices[mesh.faces])
    assert np.allclose(merged.uv[merged.faces], mesh.uv[mesh.faces])
    assert len(merged.vertices) <= len(mesh.vertices)


def test_outer_shell_drops_what_cannot_be_seen_from_outside():
    outer, inner = trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(0.4, 0.4, 0.4))
    mesh = PartMesh(vertices=np.concatenate([outer.vertices, inner.vertices]),
                    faces=np.concatenate([outer.faces, inner.faces + len(outer.vertices)]),
                    face_part=np.zeros(24, np.int64), part_names=["a"])
    assert outer_faces(mesh).tolist() == list(range(12))
    shell, source = outer_shell(mesh)
    assert len(shell.faces) == 12 and source.tolist() == list(range(12))
