"""A new part from masks painted on rendered views: any mesh (one part or several, a generated shell, a
scan) gets the part the user paints, split out with its own vertices so it can move.

Method
------
1. **Seen faces vote with their pixels.** The mesh is ray-cast from the cameras the masks were painted on,
   so every pixel names the face it shows. Only views with paint count ("painted views"): an empty mask
   says nothing, so a part painted in one view only, or not painted where it is hidden, is fine
   (``blank_views="no part"`` makes an empty view say "the part is not here" instead). A brush
   edge is imprecise, so pixels within ``BRUSH_BAND`` of the painted edge do not vote (but the middle of a
   dab too small to have pixels that far in does: a knob), unless a face has no other pixels (a thin strip
   along the edge then goes by what was painted on it). A face's coverage is the share of its voting
   pixels, over all painted views, that are painted; it joins the part when the coverage reaches
   ``coverage`` (a half by default). A view that sees a face edge-on gives it a few pixels, and so has
   little say, and a view that does not see it at all has none. So paint spilling a few pixels over a mesh
   edge onto a larger face snaps back to the edge.
2. **Faces crossing the painted edge are cut by subdivision.** A face with voting pixels on both sides is
   split in four (midpoints; UVs and colours interpolated, so the surface looks the same), and each child
   votes again with 16 sample points of the exact masks (visible where the pixel there shows the child's
   original face); children with mixed votes split again, only along the painted edge, for up to
   ``refine_levels`` levels or until about ``MIN_SPLIT_PIXELS`` across. A large face (a low-poly cabinet
   front painted as two doors) gets a cut that follows the paint to within a pixel; a dense mesh
   (generated, scanned) has faces smaller than the non-voting band, and its cut falls where step 3 meets
   from both sides, midway in the band, on the painted edge. With ``refine_levels`` 0 a face goes whole to
   the side holding most of its voting pixels.
3. **Faces no painted view sees take their surroundings.** The back and the edges of a door slab, the
   inside of a shell's crevices, faces seen only in unpainted views: on each connected sheet of the
   surface a face takes the side of the nearest seen faces, measured along the surface (Dijkstra over
   faces sharing an edge; vertices are welded by position), each side's distance divided by its share of
   the border of the face's unseen region (the unseen faces around it, up to the seen ones). So a door's
   back and edges, bordered by the door, go with it; a cabinet's unseen bottom, bordered by the unpainted
   sides all round and by the door along one edge only, stays static even where the door is nearer.
   Only edges of exactly two faces connect (twin faces of double-sided meshes count once): where three
   or more faces meet, separate pieces were welded together (a drawer box against its front), and the
   surface does not run on there.
4. **Pieces no painted view sees at all go with what they touch** (``hidden="attach"``): a drawer's box
   behind its front, shelves inside a closed cabinet, a hidden hinge. Such a piece takes the label of the
   labelled surface it touches (within ``CONTACT_DISTANCE``, exact point-to-triangle distances), nearest
   piece first, so a chain of hidden pieces follows its first link: a drawer's box touches its front and
   stands clear of the carcass, a shelf touches the carcass and stands clear of the door. A piece touching
   both sides goes with the surface right in front of it: for each of its points, the painted view where
   the visible surface lies closest in front of the point says painted or not, and the majority decides (a
   door's back plate lies just behind the painted door front, far behind the unpainted sides). A piece
   touching neither goes with the nearer side. ``hidden="static"`` keeps such pieces static instead.
5. **The split.** Faces of the new part leave the part they belonged to; a part left without faces is
   removed (with its joints). Vertices shared across the cut are duplicated, so the new part can move
   without tearing its neighbours; everything else (materials, UVs, colours, joints of other parts) is
   kept.

A single connected shell with no interior (generated meshes) is handled by steps 1-3: the cut is made by
step 2, and hidden crevices by step 3. Its limit: painted in a single view where the part hides most of
the rest (a cabinet door filling the front view), nearly everything unseen borders the painted door, and
joins it. Paint a second view, or, when the part does not show in the other views, say so with
``blank_views="no part"``.

Errors: masks of the wrong shape, all empty, paint that selects no face, paint that takes the whole object
(no static part would remain), an empty or existing part name. Nothing is changed in the input mesh.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..geometry.cameras import world_to_pixels
from ..geometry.surface_distance import SurfaceDistance
from ..render.painted_masks import BRUSH_BAND, PAINTED, agreement, certain_pixels, disagreement
from ..render.raycast import render_views
from ..types import CameraRig, PartMesh
from .sampling import face_areas
from .subdivide import subdivide
from .topology import connected_pieces, face_graph, split_vertices, weld_positions

log = logging.getLogger("atop")

HIDDEN_CHOICES = ("attach", "static")
BLANK_VIEW_CHOICES = ("unknown", "no part")
MIN_SPLIT_PIXELS = 1.5  # a face crossing the painted edge is split while its longest edge spans more pixels
MAX_FACES = 2_000_000  # boundary refinement stops before the mesh would grow past this many faces
PIECE_SAMPLES = 256  # surface points per hidden piece (besides corners and centroids) for its tests
CONTACT_DISTANCE = 2e-3  # a hidden piece this close to a surface touches it (normalised frame, object size 1)
PREVIEW_TINT = np.array([1.0, 0.45, 0.05])  # the new part in the preview
PREVIEW_EDGE = np.array([0.1, 0.35, 1.0])  # the painted masks' outline in the preview
# 16 sample points per face: the centres of its 4 x 4 midpoint grid, as barycentric (u, v) of vertices 1, 2
_GRID = 4
_SAMPLES = np.array([((i + 1 / 3) / _GRID, (j + 1 / 3) / _GRID) for i in range(_GRID) for j in range(_GRID - i)]
                    + [((i + 2 / 3) / _GRID, (j + 2 / 3) / _GRID) for i in range(_GRID - 1)
                       for j in range(_GRID - 1 - i)])  # [16, 2]


@dataclass
class PaintedPart:
    mesh: PartMesh  # the input mesh with the new part split out
    part_name: str
    face_origin: np.ndarray  # [F'] index of the input face each output face lies on
    selected: np.ndarray  # [F'] bool: the output faces of the new part
    preview: np.ndarray  # [V, H, W, 3] float32 0..1: the new part tinted, the painted masks outlined
    part_masks: np.ndarray  # [V, H, W] float32: visible pixels of the new part in every view
    info: str
    stats: dict = field(default_factory=dict)


def part_from_masks(mesh: PartMesh, rig: CameraRig, masks: np.ndarray, part_name: str, *, coverage: float = 0.5,
                    refine_levels: int = 6, hidden: str = "attach", blank_views: str = "unknown") -> PaintedPart:
    """Split the part painted in ``masks`` [V, H, W] (0..1, one per camera of ``rig``; empty views carry no
    information, or with ``blank_views="no part"`` say that the part is not there) out of ``mesh`` as a new
    part named ``part_name``. See the module docstring for the method and the meaning of ``coverage``,
    ``refine_levels`` and ``hidden``."""
    name = _check_inputs(mesh, rig, masks, part_name, coverage, refine_levels, hidden, blank_views)
    painted = np.asarray(masks) >= PAINTED  # [V, H, W]
    with_paint = np.nonzero(painted.any(axis=(1, 2)))[0]
    if len(with_paint) == 0:
        raise InputError(f"every mask is empty ({rig.num_views} views, nothing painted); paint the part white on "
                         "at least one view")
    views = np.arange(rig.num_views) if blank_views == "no part" else with_paint  # the views that vote
    rest = render_views(mesh, rig)
    face_id = rest.face_id  # [V, H, W]
    visible, hits, off_object = _votes(face_id, painted, views, len(mesh.faces))

    vertices, faces, origin, attrs, cov, n_split = _refine_boundary(
        mesh, rig, face_id, painted, views, visible, hits, refine_levels)
    seen = np.isfinite(cov)
    label = seen & (cov >= coverage)
    label, n_surface, hidden_pieces, n_attached = _label_unseen(
        vertices, faces, seen, label, hidden, _behind_painted(rig, rest, painted, views))

    if not label.any():
        raise InputError(f"the masks select no face: no face has {coverage:.0%} of its visible pixels painted "
                         f"(painted views: {', '.join(map(str, with_paint))}); paint over the part, or lower coverage")
    if label.all():
        raise InputError("the masks cover the whole object as the painted views show it, so no static part would "
                         "remain; paint only the part that moves, in a view that also shows what stays (or set "
                         "blank_views to 'no part' if the part does not show in the views left blank)")

    new_mesh = _split_mesh(mesh, vertices, faces, origin, attrs, label, name)
    new_index = new_mesh.part_names.index(name)
    render = render_views(new_mesh, rig)
    part_pixels = (render.face_id >= 0) & (new_mesh.face_part[np.maximum(render.face_id, 0)] == new_index)
    preview = _preview(render.rgb, part_pixels, painted)
    iou = agreement(painted, part_pixels)

    area = face_areas(vertices, faces)
    stats = {
        "faces_in": len(mesh.faces), "faces_out": len(new_mesh.faces), "part_faces": int(label.sum()),
        "part_area_share": float(area[label].sum() / area.sum()), "painted_views": [int(v) for v in with_paint],
        "voting_views": [int(v) for v in views],
        "seen_faces": int(seen.sum()), "surface_faces": n_surface, "hidden_pieces": hidden_pieces,
        "attached_faces": n_attached, "split_faces": n_split, "off_object_pixels": off_object,
        "view_iou": [None if not np.isfinite(x) else float(x) for x in iou],
    }
    info = _info(name, stats, hidden, refine_levels, disagreement(painted, part_pixels, name))
    log.debug("PartFromMasks: %s", info.replace("\n", "; "))
    return PaintedPart(new_mesh, name, origin, label, preview, part_pixels.astype(np.float32), info, stats)


# --- steps ------------------------------------------------------------------------------------------------
def _votes(face_id, painted, views, n_faces):
    """Per face, its voting pixels over ``views`` and the painted ones among them (method step 1), and the
    count of painted pixels on the background. A face seen only within the brush band votes with those."""
    visible, hits = np.zeros(n_faces), np.zeros(n_faces)  # pixels outside the brush band, painted ones
    band_visible, band_hits = np.zeros(n_faces), np.zeros(n_faces)  # the same inside the band
    off_object = hit_any = 0
    for v in views:
        ids, paint = face_id[v], painted[v]
        sure_paint, sure_clear = certain_pixels(paint, BRUSH_BAND)
        on = ids >= 0
        sure = sure_paint | sure_clear
        visible += np.bincount(ids[on & sure], minlength=n_faces)
        hits += np.bincount(ids[on & sure_paint], minlength=n_faces)
        band_visible += np.bincount(ids[on & ~sure], minlength=n_faces)
        band_hits += np.bincount(ids[on & ~sure & paint], minlength=n_faces)
        off_object += int((paint & ~on).sum())
        hit_any += int((paint & on).sum())
    if hit_any == 0:
        raise InputError(f"the masks select no face: all {off_object} painted pixels fall on the background; paint "
                         "over the object, on views rendered with these cameras")
    only_band = visible == 0
    visible[only_band], hits[only_band] = band_visible[only_band], band_hits[only_band]
    return visible, hits, off_object


def _check_inputs(mesh, rig, masks, part_name, coverage, refine_levels, hidden, blank_views) -> str:
    name = str(part_name).strip()
    if not name:
        raise InputError("the new part needs a name; enter one (e.g. 'door')")
    if name.lower() in [p.lower() for p in mesh.part_names]:
        raise InputError(f"part '{name}' already exists; parts are: {', '.join(mesh.part_names)}; give the new part "
                         "another name (the painted faces then leave the part they belong to)")
    shape = tuple(np.shape(masks))
    expected = (rig.num_views, rig.height, rig.width)
    if shape != expected:
        raise InputError(f"the masks have shape {list(shape)} but the cameras need {list(expected)} (one "
                         f"{rig.width}x{rig.height} mask per view); paint on the views rendered with these cameras")
    if not 0.0 < coverage <= 1.0:
        raise InputError(f"coverage must be in (0, 1], got {coverage}")
    if refine_levels < 0:
        raise InputError(f"refine_levels must be 0 or more, got {refine_levels}")
    if hidden not in HIDDEN_CHOICES:
        raise InputError(f"hidden must be one of {', '.join(HIDDEN_CHOICES)}, got '{hidden}'")
    if blank_views not in BLANK_VIEW_CHOICES:
        raise InputError(f"blank_views must be one of {', '.join(BLANK_VIEW_CHOICES)}, got '{blank_views}'")
    return name


def _refine_boundary(mesh, rig, face_id, painted, views, visible, hits, levels):
    """Split faces crossing the painted edge until about a pixel across (method step 2). ``visible`` [F]
    counts each face's voting pixels over the painted views, ``hits`` [F] its painted ones. Returns
    vertices, faces, origin (input face of each face), attributes, coverage per face (NaN where no painted
    view sees it) and the number of input faces that were split."""
    vertices, faces = mesh.vertices, mesh.faces
    origin = np.arange(len(faces))
    cov = np.where(visible > 0, hits / np.maximum(visible, 1), np.nan)
    attrs = {"uv": mesh.uv, "vertex_colors": mesh.vertex_colors}
    # a face with voting pixels on both sides is crossed by the painted edge
    split = (hits > 0) & (hits < visible) & (_pixel_size(rig, views, vertices[faces]) > MIN_SPLIT_PIXELS)
    n_split = 0
    for level in range(levels):
        count = int(split.sum())
        if count == 0:
            break
        if len(faces) + 3 * count > MAX_FACES:
            log.warning("PartFromMasks: boundary refinement stopped at level %d (the mesh would pass %d faces)",
                        level, MAX_FACES)
            break
        n_split = n_split or count
        vertices, faces, parent, attrs = subdivide(vertices, faces, split, attrs)
        origin, cov = origin[parent], cov[parent]
        children = np.arange(len(faces)) >= len(faces) - 4 * count
        tri = vertices[faces[children]]
        seen, hit = _sample_coverage(rig, face_id, painted, views, tri, origin[children])
        cov[children] = np.where(seen > 0, hit / np.maximum(seen, 1), cov[children])  # unseen: the parent's
        split = np.zeros(len(faces), dtype=bool)
        split[children] = (hit > 0) & (hit < seen) & (_pixel_size(rig, views, tri) > MIN_SPLIT_PIXELS)
    return vertices, faces, origin, attrs, cov, n_split


def _pixel_size(rig: CameraRig, views, tri: np.ndarray) -> np.ndarray:  # [N] longest edge in pixels
    px, _ = world_to_pixels(rig, tri.reshape(-1, 3))  # [V, 3N, 2]
    px = px[views].reshape(len(views), -1, 3, 2)
    edges = np.nan_to_num(np.linalg.norm(px - np.roll(px, 1, axis=2), axis=-1), nan=0.0, posinf=0.0, neginf=0.0)
    return edges.max(axis=(0, 2))


def _sample_coverage(rig, face_id, painted, views, tri, origin):
    """Visible and painted sample counts [N] of triangles [N, 3, 3] lying on input faces ``origin`` [N]."""
    u, v = _SAMPLES[:, 0], _SAMPLES[:, 1]
    pts = (tri[:, None, 0] + u[None, :, None] * (tri[:, None, 1] - tri[:, None, 0])
           + v[None, :, None] * (tri[:, None, 2] - tri[:, None, 0]))  # [N, S, 3]
    px, depth = world_to_pixels(rig, pts.reshape(-1, 3))
    owner = np.repeat(origin, len(_SAMPLES))
    seen = np.zeros(len(pts) * len(_SAMPLES))
    hit = np.zeros_like(seen)
    H, W = rig.height, rig.width
    for view in views:
        x, y = np.floor(px[view, :, 0]), np.floor(px[view, :, 1])
        inside = (depth[view] > 0) & (x >= 0) & (x < W) & (y >= 0) & (y < H)
        xi, yi = np.where(inside, x, 0).astype(np.int64), np.where(inside, y, 0).astype(np.int64)
        shown = inside & (face_id[view, yi, xi] == owner)
        seen += shown
        hit += shown & painted[view, yi, xi]
    return seen.reshape(len(pts), -1).sum(1), hit.reshape(len(pts), -1).sum(1)


def _label_unseen(vertices, faces, seen, label, hidden, behind_painted):
    """Labels for faces no painted view sees (method steps 3 and 4). Returns labels, the number of faces
    labelled along the surface, the number of hidden pieces and the faces in them that joined the part."""
    from scipy.sparse.csgraph import dijkstra

    label = label.copy()
    if seen.all():
        return label, 0, 0, 0
    welded = weld_positions(vertices)
    graph = face_graph(faces, vertices, welded)
    # distance along the surface to the nearest seen face of each side
    dist = np.full((2, len(faces)), np.inf)
    for side in (0, 1):
        seeds = np.nonzero(seen & (label == bool(side)))[0]
        if len(seeds):
            dist[side] = dijkstra(graph, directed=False, indices=seeds, min_only=True)
    along = ~seen & np.isfinite(dist).any(axis=0)
    # the side nearer along the surface wins, distances divided by the side's share of the region's border:
    # a cabinet's unseen bottom, bordered by the sides all round and by the door along one edge, stays static
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = dist / _border_shares(graph, seen, along, label)  # [2, F]; no border: infinitely far
    label[along] = (weighted[1] < weighted[0])[along]
    unreached = ~seen & ~along
    if not unreached.any():
        return label, int(along.sum()), 0, 0
    pieces = connected_pieces(faces, welded)
    hidden_ids = np.unique(pieces[unreached])
    if hidden == "static":
        label[unreached] = False
        return label, int(along.sum()), len(hidden_ids), 0
    _attach_hidden_pieces(vertices, faces, pieces, hidden_ids, label, unreached, behind_painted)
    return label, int(along.sum()), len(hidden_ids), int((label & unreached).sum())


def _border_shares(graph, seen, along, label) -> np.ndarray:  # [2, F]
    """For every unseen face, the shares of its region's border held by the static [0] and part [1] seen
    faces (a region: unseen faces joined through shared edges; its border: edges to seen faces)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    coo = graph.tocoo()
    inner = along[coo.row] & along[coo.col]
    n = len(along)
    _, region = connected_components(coo_matrix((np.ones(int(inner.sum())), (coo.row[inner], coo.col[inner])),
                                                shape=(n, n)), directed=False)
    border = along[coo.row] & seen[coo.col]
    votes = np.zeros((region.max() + 1, 2))
    np.add.at(votes, (region[coo.row[border]], label[coo.col[border]].astype(np.int64)), 1.0)
    share = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1.0)
    return share[region].T


def _attach_hidden_pieces(vertices, faces, pieces, hidden_ids, label, unreached, behind_painted) -> None:
    """Give each hidden piece the label of the labelled surface it touches, nearest piece first (a Dijkstra
    over pieces: a labelled hidden piece becomes a surface the others can touch). A piece touching both
    sides goes with the paint it lies behind in the painted views; one touching neither goes with the
    nearer side. In place."""
    members = {int(p): np.nonzero(pieces == p)[0] for p in hidden_ids}
    points = {p: _piece_points(vertices, faces[f]) for p, f in members.items()}
    gap = {p: np.full(2, np.inf) for p in members}  # distance to the static [0] and part [1] surfaces
    for side in (0, 1):
        chosen = np.nonzero(~unreached & (label == bool(side)))[0]
        if len(chosen):
            _update_gaps(SurfaceDistance(vertices, faces[chosen]), list(members), points, gap, side)
    heap = [(g.min(), p) for p, g in gap.items()]
    heapq.heapify(heap)
    done: set[int] = set()
    while heap:
        d, p = heapq.heappop(heap)
        if p in done or d > gap[p].min():
            continue
        done.add(p)
        touching = gap[p] <= CONTACT_DISTANCE
        side = int(behind_painted(points[p]) >= 0.5) if touching.all() else int(np.argmin(gap[p]))
        label[members[p]] = bool(side)
        corners = vertices[np.unique(faces[members[p]])]
        lo, hi = corners.min(0), corners.max(0)
        # only pieces whose boxes come nearer than their current gap on this side can get nearer
        near = [q for q in members if q not in done and np.linalg.norm(np.maximum(
            0.0, np.maximum(lo - points[q].max(0), points[q].min(0) - hi))) < gap[q][side]]
        if not near:
            continue
        for q in _update_gaps(SurfaceDistance(vertices, faces[members[p]]), near, points, gap, side):
            heapq.heappush(heap, (gap[q].min(), q))


def _update_gaps(surface: SurfaceDistance, ids: list[int], points: dict, gap: dict, side: int) -> list[int]:
    """Lower ``gap[q][side]`` to the distance of piece q's points to ``surface`` (one query for all the
    pieces); returns the pieces that got nearer."""
    counts = [len(points[q]) for q in ids]
    distance = surface(np.concatenate([points[q] for q in ids]))
    nearer = []
    for q, d in zip(ids, np.split(distance, np.cumsum(counts)[:-1])):
        if d.min() < gap[q][side]:
            gap[q][side] = float(d.min())
            nearer.append(q)
    return nearer


def _behind_painted(rig, render, painted, views):
    """A function: the share of points [N, 3] whose nearest occluder is painted. For each point, of the
    painted views where it lies behind the object's visible surface, the view where that surface is closest
    in front of it decides (a door's back plate lies just behind the painted door front, and far behind the
    unpainted sides). 0.5 when no painted view shows the object in front of the points."""
    def share(points: np.ndarray) -> float:
        px, depth = world_to_pixels(rig, points)
        best_gap = np.full(len(points), np.inf)
        best_painted = np.zeros(len(points), dtype=bool)
        for view in views:
            x, y = np.floor(px[view, :, 0]), np.floor(px[view, :, 1])
            inside = (depth[view] > 0) & (x >= 0) & (x < rig.width) & (y >= 0) & (y < rig.height)
            xi, yi = np.where(inside, x, 0).astype(np.int64), np.where(inside, y, 0).astype(np.int64)
            gap = np.where(inside & (render.face_id[view, yi, xi] >= 0), depth[view] - render.depth[view, yi, xi],
                           np.inf)
            closer = (gap >= 0) & (gap < best_gap)
            best_gap[closer] = gap[closer]
            best_painted[closer] = painted[view, yi, xi][closer]
        decided = np.isfinite(best_gap)
        return float(best_painted[decided].mean()) if decided.any() else 0.5
    return share


def _piece_points(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:  # [N, 3]
    """Corners, centroids and PIECE_SAMPLES area-weighted points (fixed seed) of a piece's faces."""
    area = face_areas(vertices, faces)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(faces), PIECE_SAMPLES, p=area / area.sum()) if area.sum() > 0 else np.zeros(0, np.int64)
    uv = rng.random((len(pick), 2))
    uv = np.where(uv.sum(1, keepdims=True) > 1, 1 - uv, uv)
    tri = vertices[faces[pick]]
    samples = tri[:, 0] + uv[:, :1] * (tri[:, 1] - tri[:, 0]) + uv[:, 1:] * (tri[:, 2] - tri[:, 0])
    return np.concatenate([vertices[np.unique(faces)], vertices[faces].mean(axis=1), samples])


def with_new_part(mesh: PartMesh, selected: np.ndarray, name: str) -> PartMesh:
    """``mesh`` with the faces where ``selected`` [F] is true split out as part ``name`` (as step 5 does)."""
    attrs = {"uv": mesh.uv, "vertex_colors": mesh.vertex_colors}
    return _split_mesh(mesh, mesh.vertices, mesh.faces, np.arange(len(mesh.faces)), attrs,
                       np.asarray(selected, dtype=bool), name)


def _split_mesh(mesh: PartMesh, vertices, faces, origin, attrs, label, name: str) -> PartMesh:
    """The mesh with ``label`` faces as the new part ``name`` (method step 5)."""
    face_part = mesh.face_part[origin].copy()
    face_part[label] = len(mesh.part_names)
    names = list(mesh.part_names) + [name]
    kept = [i for i in range(len(names)) if (face_part == i).any()]
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    face_part = remap[face_part]
    names = [names[i] for i in kept]
    new_faces, source = split_vertices(faces, face_part, len(vertices))
    joints = [j for j in mesh.joints if j.child in names and (j.parent is None or j.parent in names)]
    attached = {c: p for c, p in mesh.attached.items() if c in names and p in names}
    out = mesh.copy()
    out.vertices = vertices[source]
    out.faces, out.face_part, out.part_names = new_faces, face_part, names
    out.face_material = mesh.face_material[origin]
    out.uv = None if attrs["uv"] is None else attrs["uv"][source]
    out.vertex_colors = None if attrs["vertex_colors"] is None else attrs["vertex_colors"][source]
    out.joints, out.attached = joints, attached
    return out


def _preview(rgb: np.ndarray, part: np.ndarray, painted: np.ndarray) -> np.ndarray:  # [V, H, W, 3]
    out = rgb.astype(np.float32).copy()
    out[part] = 0.45 * out[part] + 0.55 * PREVIEW_TINT
    edge = painted & ~(np.roll(painted, 1, 1) & np.roll(painted, -1, 1) & np.roll(painted, 1, 2)
                       & np.roll(painted, -1, 2))
    out[edge] = PREVIEW_EDGE
    return out


def _info(name: str, s: dict, hidden: str, levels: int, warning: str) -> str:
    blank = sorted(set(s["voting_views"]) - set(s["painted_views"]))
    lines = [f"part '{name}': {s['part_faces']} of {s['faces_out']} faces ({s['part_area_share']:.1%} of the "
             f"surface), painted on view(s) {', '.join(map(str, s['painted_views']))}"
             + (f"; blank view(s) {', '.join(map(str, blank))}: no part" if blank else "")]
    if s["surface_faces"] or s["hidden_pieces"]:
        piece = ("attached to the nearest surface" if hidden == "attach" else "kept static")
        lines.append(f"faces without a voting pixel (hidden, smaller than a pixel, or along the painted edge): "
                     f"{s['surface_faces']} took their neighbours' side along the surface; {s['hidden_pieces']} "
                     f"hidden piece(s) {piece} ({s['attached_faces']} faces joined the part)")
    if s["split_faces"]:
        lines.append(f"{s['split_faces']} face(s) crossing the painted edge were subdivided (up to {levels} levels); "
                     f"the mesh went from {s['faces_in']} to {s['faces_out']} faces")
    if s["off_object_pixels"]:
        lines.append(f"{s['off_object_pixels']} painted pixel(s) on the background were ignored")
    ious = [f"view {v}: " + ("-" if s["view_iou"][v] is None else f"{s['view_iou'][v]:.3f}")
            for v in s["painted_views"]]
    lines.append("painted masks vs the new part's visible pixels (IoU): " + ", ".join(ious))
    if warning:
        lines.append("WARNING: " + warning)
    return "\n".join(lines)
