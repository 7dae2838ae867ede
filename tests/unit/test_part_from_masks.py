"""PartFromMasks: parts recovered from painted masks on merged meshes, shells and large faces, and every bad
input refused with nothing changed."""
import numpy as np
import pytest
import trimesh
from scipy.ndimage import binary_dilation

from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig
from atop_models.mesh.merge import merge_parts, outer_shell, voxel_surface
from atop_models.mesh.part_from_masks import part_from_masks
from atop_models.mesh.procedural import make_object
from atop_models.mesh.sampling import face_areas
from atop_models.mesh.topology import connected_pieces, weld_positions
from atop_models.render.masks import part_masks
from atop_models.render.raycast import render_views
from atop_models.types import PartMesh

RIG = imagedream_rig(resolution=128)


def painted(mesh, parts, views=4):
    masks = part_masks(mesh, render_views(mesh, RIG), parts)
    masks[views:] = 0
    return masks


def iou(result, truth):
    """Area-weighted face IoU of the new part against ``truth`` [F] over the input faces."""
    area = face_areas(result.mesh.vertices, result.mesh.faces)
    t = truth[result.face_origin]
    return area[t & result.selected].sum() / area[t | result.selected].sum()


def shares_no_vertex(result):
    part = np.unique(result.mesh.faces[result.selected])
    rest = np.unique(result.mesh.faces[~result.selected])
    return len(np.intersect1d(part, rest)) == 0


@pytest.mark.parametrize("views", [4, 1])
def test_door_of_a_merged_cabinet_from_four_views_or_the_front_one(views):
    mesh = make_object("cabinet", 0)
    merged = merge_parts(mesh)
    before = merged.vertices.copy()
    result = part_from_masks(merged, RIG, painted(mesh, "door", views), "door")
    assert iou(result, mesh.part_face_mask("door")) > 0.999
    assert result.mesh.part_names == ["object", "door"] and result.part_name == "door"
    assert shares_no_vertex(result)  # the door has its own vertices: it can move without tearing
    assert np.array_equal(merged.vertices, before)  # the input is left alone
    assert result.preview.shape == (4, 128, 128, 3) and result.part_masks.shape == (4, 128, 128)
    assert result.stats["painted_views"] == [0, 1, 3][:views]  # the back view does not see the door
    assert all(result.stats["view_iou"][v] == 1.0 for v in result.stats["painted_views"])
    assert result.stats["surface_faces"] > 0  # the door's back and edges were never seen
    assert "WARNING" not in result.info


def test_hidden_drawer_box_goes_with_its_front_unless_told_to_stay():
    mesh = make_object("chest_of_drawers", 0)
    merged, truth = merge_parts(mesh), mesh.part_face_mask("drawer_1")
    attached = part_from_masks(merged, RIG, painted(mesh, "drawer_1", 1), "drawer")
    assert attached.stats["hidden_pieces"] > 0 and attached.stats["attached_faces"] > 0
    assert iou(attached, truth) > 0.999
    static = part_from_masks(merged, RIG, painted(mesh, "drawer_1", 1), "drawer", hidden="static")
    assert static.stats["attached_faces"] == 0 and iou(static, truth) < 0.6


def test_a_single_shell_with_no_interior():
    mesh = make_object("fridge", 1)
    door = next(j.child for j in mesh.joints)
    shell, source = outer_shell(mesh)
    result = part_from_masks(shell, RIG, painted(mesh, door), door)
    assert iou(result, mesh.part_face_mask(door)[source]) > 0.99


def test_a_large_face_is_cut_along_the_paint():
    box = trimesh.creation.box(extents=(0.8, 0.4, 0.6))
    mesh = PartMesh(vertices=box.vertices, faces=box.faces, face_part=np.zeros(12, np.int64), part_names=["box"])
    face_id = render_views(mesh, RIG).face_id
    normals = box.face_normals
    front = np.isin(face_id, np.nonzero(normals[:, 1] < -0.9)[0])
    masks = np.zeros((4, 128, 128), np.float32)
    masks[0] = front[0] & (np.arange(128)[None, :] < 64)  # the left half of the front, whose 2 faces span it
    result = part_from_masks(mesh, RIG, masks, "left")
    pixel = 2.0 * np.tan(np.deg2rad(20)) / 128 * 1.8  # one pixel on the front face (1.8 from the camera)
    on_front = (normals[:, 1] < -0.9)[result.face_origin]
    cut = result.selected & on_front
    part = result.mesh.vertices[np.unique(result.mesh.faces[cut])]
    assert part[:, 0].max() < 1.5 * pixel and part[:, 0].min() == pytest.approx(-0.4)
    area = face_areas(result.mesh.vertices, result.mesh.faces)[cut].sum()
    assert abs(area - 0.4 * 0.6) < 0.6 * pixel  # a strip of one pixel along the cut at most
    assert result.stats["split_faces"] == 2 and shares_no_vertex(result)
    # faces no painted view sees (the sides, back and bottom) took their neighbours' side along the surface
    assert result.stats["surface_faces"] == 8
    # UVs and looks are kept: the subdivided mesh renders as the original did
    assert np.abs(render_views(result.mesh, RIG).rgb - render_views(mesh, RIG).rgb).max() < 1e-5
    whole = part_from_masks(mesh, RIG, masks, "left", refine_levels=0)
    assert len(whole.mesh.faces) == 12 and whole.stats["split_faces"] == 0


def test_careless_paint_on_an_edge_on_view_snaps_to_the_mesh_edges():
    mesh = make_object("cabinet", 0)
    masks = painted(mesh, "door", 2)  # the front, and the side view that sees the door edge-on
    careless = masks.copy()
    careless[1] = binary_dilation(masks[1] > 0, iterations=3)  # 3 px over a strip 2-3 px wide
    result = part_from_masks(merge_parts(mesh), RIG, careless, "door")
    assert iou(result, mesh.part_face_mask("door")) > 0.99
    assert result.stats["off_object_pixels"] > 0 and "painted pixel(s) on the background" in result.info


def test_an_existing_part_keeps_what_was_not_painted():
    mesh = make_object("cabinet", 0)
    result = part_from_masks(mesh, RIG, painted(mesh, "door"), "front")
    assert result.mesh.part_names == ["body", "front"]  # the door gave all its faces: removed with its joint
    assert result.mesh.joints == []
    handle = make_object("cabinet", 0)
    masks = painted(handle, "door")
    masks[:, :, 64:] = 0  # half of the door
    half = part_from_masks(handle, RIG, masks, "half")
    assert half.mesh.part_names == ["body", "door", "half"] and len(half.mesh.joints) == 1


def test_bad_input_is_refused_with_nothing_changed():
    mesh = merge_parts(make_object("cabinet", 0))
    snapshot = (mesh.vertices.copy(), mesh.faces.copy(), list(mesh.part_names))
    empty = np.zeros((4, 128, 128), np.float32)
    cases = [
        (empty, "door", "every mask is empty"),
        (np.ones((4, 128, 128), np.float32), "door", "cover the whole object"),
        (np.zeros((3, 128, 128), np.float32), "door", r"shape \[3, 128, 128\].*\[4, 128, 128\]"),
        (np.pad(np.ones((4, 4, 4), np.float32), ((0, 0), (0, 124), (0, 124))), "door", "select no face"),
        (painted(make_object("cabinet", 0), "door"), "Object", "already exists; parts are: object"),
        (painted(make_object("cabinet", 0), "door"), "  ", "needs a name"),
    ]
    for masks, name, message in cases:
        with pytest.raises(InputError, match=message):
            part_from_masks(mesh, RIG, masks, name)
    low = imagedream_rig(resolution=96)  # the top is no pixel high: the painted door hides all the rest
    front = part_masks(make_object("cabinet", 0), render_views(make_object("cabinet", 0), low), "door")
    front[1:] = 0
    with pytest.raises(InputError, match="cover the whole object as the painted views show it.*also shows what "
                                         "stays"):
        part_from_masks(mesh, low, front, "door")
    with pytest.raises(InputError, match="hidden must be one of"):
        part_from_masks(mesh, RIG, painted(make_object("cabinet", 0), "door"), "door", hidden="drop")
    with pytest.raises(InputError, match="blank_views must be one of"):
        part_from_masks(mesh, RIG, painted(make_object("cabinet", 0), "door"), "door", blank_views="none")
    assert np.array_equal(mesh.vertices, snapshot[0]) and np.array_equal(mesh.faces, snapshot[1])
    assert mesh.part_names == snapshot[2]


def test_a_fused_blocky_surface_like_a_generators():
    """One closed voxel surface (the door fused to the cabinet, faces unrelated to the parts), painted with
    the door's visible pixels on it: four views recover the door; so does the front view alone when the
    other (blank) views say 'no part'."""
    mesh = make_object("cabinet", 0)
    surface, origin = voxel_surface(mesh, 0.02)
    assert surface.part_names == ["object"] and trimesh.Trimesh(surface.vertices, surface.faces).is_watertight
    assert len(set(connected_pieces(surface.faces, weld_positions(surface.vertices)))) == 1  # fused
    truth = mesh.part_face_mask("door")[origin]
    face_id = render_views(surface, RIG).face_id
    masks = ((face_id >= 0) & truth[np.maximum(face_id, 0)]).astype(np.float32)
    assert iou(part_from_masks(surface, RIG, masks, "door"), truth) > 0.88  # 0.905 measured at 128 px
    masks[1:] = 0
    assert iou(part_from_masks(surface, RIG, masks, "door", blank_views="no part"), truth) > 0.8  # 0.842
