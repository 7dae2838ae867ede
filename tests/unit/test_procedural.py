"""Procedural objects: structure, determinism, exact joints (hinge edges fixed, drawers slide to -Y, lids
rise), plausible motion bounds, and renders that show the interior once a door opens."""
import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig
from atop_models.geometry.transforms import apply_transform, joint_matrix
from atop_models.mesh.articulate import posed_vertices
from atop_models.mesh.procedural import CATEGORIES, default_prompt, describe, make_object
from atop_models.render.masks import part_masks
from atop_models.render.raycast import render_views
from atop_models.types import NORMALISED_EXTENT

EXPECTED_PARTS = {
    "cabinet": {"door"}, "microwave": {"door"}, "oven": {"door"}, "dishwasher": {"door"},
    "washing_machine": {"door"}, "box": {"lid"}, "trash_can": {"lid"}, "laptop": {"screen"},
}


def part_vertices(mesh, name):  # [N, 3]
    return mesh.vertices[np.unique(mesh.faces[mesh.face_part == mesh.part_index(name)])]


def moved(mesh, joint, value):
    return apply_transform(joint_matrix(joint, value), part_vertices(mesh, joint.child))


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_builds_valid_objects(category):
    for seed in range(4):
        m = make_object(category, seed)
        lo, hi = m.vertices.min(0), m.vertices.max(0)
        assert np.allclose((lo + hi) / 2, 0, atol=1e-9) and np.isclose((hi - lo).max(), NORMALISED_EXTENT)
        assert m.part_names[0] == ("base" if category == "laptop" else "body")
        assert set(np.unique(m.face_part)) == set(range(len(m.part_names)))  # every part has faces
        assert m.uv.shape == (len(m.vertices), 2) and np.all((m.uv >= 0) & (m.uv <= 1))
        assert len(m.materials) == len(m.part_names) and np.array_equal(m.face_material, m.face_part)
        for mat in m.materials:
            assert mat.texture.dtype == np.uint8 and mat.texture.shape[0] == 64 and mat.texture.shape[1] <= 320
            assert mat.texture.std() > 1.0  # a real texture, not a flat fill
        assert m.joints and m.category == category and m.source_format == "procedural"
        for j in m.joints:
            assert j.child in m.part_names and j.parent == m.part_names[0]
            assert np.isclose(np.linalg.norm(j.axis), 1.0) and j.limits[0] == 0.0 and j.limits[1] > 0.0
            if j.type == "revolute":
                assert 1.4 <= j.limits[1] <= 2.0
        S = m.normalized_from_source  # a similarity without rotation: metres -> normalised
        assert np.allclose(S[:3, :3], S[0, 0] * np.eye(3)) and S[0, 0] > 0
        expected = EXPECTED_PARTS.get(category)
        if expected is not None:
            assert {j.child for j in m.joints} == expected


@pytest.mark.parametrize("category", CATEGORIES)
def test_deterministic_and_seed_dependent(category):
    a, b, c = make_object(category, 7), make_object(category, 7), make_object(category, 8)
    for key in ("vertices", "faces", "face_part", "uv"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    assert all(np.array_equal(x.texture, y.texture) for x, y in zip(a.materials, b.materials))
    assert [j.to_dict() for j in a.joints] == [j.to_dict() for j in b.joints]
    assert a.vertices.shape != c.vertices.shape or not np.allclose(a.vertices, c.vertices)


def test_unknown_category_and_bad_seed():
    with pytest.raises(InputError, match="cabinet"):
        make_object("spaceship", 0)
    with pytest.raises(InputError, match="non-negative"):
        make_object("cabinet", -1)


def test_side_doors_hinge_edge_fixed_and_swing_outward():
    sides = set()
    for category, seeds in (("cabinet", range(12)), ("fridge", range(6)), ("microwave", range(3)),
                            ("washing_machine", range(3))):
        for seed in seeds:
            m = make_object(category, seed)
            body = part_vertices(m, "body")
            for j in m.joints:
                assert j.type == "revolute" and abs(abs(j.axis[2]) - 1) < 1e-12  # vertical hinge
                rest = part_vertices(m, j.child)
                # the hinge lies on the door's back plane, at its side edge
                assert np.isclose(j.origin[1], rest[:, 1].max()) and np.isclose(j.origin[0], rest[:, 0].min()) \
                    or np.isclose(j.origin[0], rest[:, 0].max())
                left = np.isclose(j.origin[0], rest[:, 0].min())
                sides.add((category, left))
                on_axis = np.linalg.norm(np.cross(rest - j.origin, j.axis), axis=1) < 1e-9
                assert on_axis.sum() >= 2
                prev_y = rest[:, 1].min()
                for value in [*np.linspace(0.3, np.pi / 2, 4), j.limits[1]]:
                    posed = moved(m, j, value)
                    assert np.allclose(posed[on_axis], rest[on_axis], atol=1e-12)  # the hinge edge stays
                    if value <= np.pi / 2:  # up to a right angle the free edge swings further toward -Y
                        assert posed[:, 1].min() < prev_y - 1e-3
                        prev_y = posed[:, 1].min()
                    # the door stays in front of the body or, past a right angle, beside it (never inside)
                    behind_front = posed[:, 1] > body[:, 1].min() + 2e-3
                    assert np.all((posed[behind_front, 0] <= body[:, 0].min() + 1e-9)
                                  | (posed[behind_front, 0] >= body[:, 0].max() - 1e-9))
                    assert np.allclose(posed[:, 2].min(), rest[:, 2].min()) and np.allclose(posed[:, 2].max(), rest[:, 2].max())
    assert ("cabinet", True) in sides and ("cabinet", False) in sides  # the seed picks the hinge side
    assert ("fridge", True) in sides and ("fridge", False) in sides


def test_fridge_two_doors_named_left_and_right():
    found = False
    for seed in range(10):
        m = make_object("fridge", seed)
        if "left_door" in m.part_names:
            found = True
            left, right = m.joint_for_part("left_door"), m.joint_for_part("right_door")
            assert left.origin[0] < 0 < right.origin[0]
            assert part_vertices(m, "left_door")[:, 0].max() < part_vertices(m, "right_door")[:, 0].min()
            assert default_prompt(m, "left_door") == "the left door of the fridge is being opened"
        else:
            assert "door" in m.part_names
    assert found


def test_drawers_slide_toward_minus_y_and_stay_in_their_slots():
    for seed in range(5):
        m = make_object("chest_of_drawers", seed)
        drawers = [p for p in m.part_names if p.startswith("drawer_")]
        assert 2 <= len(drawers) <= 4 and drawers == [f"drawer_{i + 1}" for i in range(len(drawers))]
        tops = [part_vertices(m, d)[:, 2].mean() for d in drawers]
        assert tops == sorted(tops, reverse=True)  # drawer_1 is the top one
        body = part_vertices(m, "body")
        depth = body[:, 1].max() - body[:, 1].min()
        for d in drawers:
            j = m.joint_for_part(d)
            assert j.type == "prismatic" and np.allclose(j.axis, [0, -1, 0])
            assert 0.5 * depth < j.limits[1] < depth
            rest = part_vertices(m, d)
            for value in (0.1, j.limits[1]):
                posed = moved(m, j, value)
                assert np.allclose(posed - rest, [0, -value, 0])
            assert rest[:, 1].max() < body[:, 1].max()  # the drawer box fits inside the carcass
        assert default_prompt(m, drawers[0]) == "the top drawer of the chest of drawers is being pulled out"
        assert default_prompt(m, drawers[-1]).startswith("the bottom drawer")


@pytest.mark.parametrize("category", ["box", "trash_can", "laptop"])
def test_lids_rise_about_the_back_top_edge(category):
    for seed in range(3):
        m = make_object(category, seed)
        j = m.joints[0]
        rest = part_vertices(m, j.child)
        assert abs(abs(j.axis[0]) - 1) < 1e-12  # horizontal hinge along X
        assert np.isclose(j.origin[1], rest[:, 1].max(), atol=1e-3)  # at the back
        front = rest[:, 1] < rest[:, 1].min() + 1e-6
        prev = rest[front, 2].mean()
        for value in [*np.linspace(0.2, np.pi / 2, 4), j.limits[1]]:
            posed = moved(m, j, value)
            if value <= np.pi / 2:
                assert posed[front, 2].mean() > prev  # the front edge keeps rising up to upright
                prev = posed[front, 2].mean()
                assert posed[:, 1].max() <= rest[:, 1].max() + 0.05  # turns about the hinge, not beyond it
            assert posed[front, 2].mean() > j.origin[2] + 0.5 * (rest[:, 1].max() - rest[:, 1].min()) * np.sin(0.2)
        assert moved(m, j, np.pi / 2)[front, 2].mean() > m.vertices[:, 2].max()  # upright: above the object


@pytest.mark.parametrize("category", ["oven", "dishwasher"])
def test_drop_down_doors_hinge_on_the_bottom_edge(category):
    m = make_object(category, 1)
    j = m.joint_for_part("door")
    rest = part_vertices(m, "door")
    assert np.allclose(j.axis, [1, 0, 0]) and np.isclose(j.origin[2], rest[:, 2].min())
    top = rest[:, 2] > rest[:, 2].max() - 1e-6
    open_ = moved(m, j, j.limits[1])
    assert open_[top, 1].mean() < rest[:, 1].min() - 0.5 * (rest[:, 2].max() - rest[:, 2].min())
    assert abs(open_[top, 2].mean() - j.origin[2]) < 0.15 * (rest[:, 2].max() - rest[:, 2].min())  # ~horizontal
    assert open_[:, 1].max() <= rest[:, 1].max() + 1e-9  # never swings back into the body


def test_opened_door_reveals_the_interior():
    m = make_object("cabinet", 3)
    rig = imagedream_rig(elevation_deg=15.0, resolution=64)
    rest = render_views(m, rig)
    j = m.joint_for_part("door")
    opened = render_views(m, rig, vertices=posed_vertices(m, {"door": j.limits[1] * 0.8}))
    body_rest = part_masks(m, rest, "body")[0].sum()
    body_open = part_masks(m, opened, "body")[0].sum()
    assert part_masks(m, rest, "door")[0].sum() > 0.6 * rest.alpha[0].sum()  # the door covers the front
    assert body_open > body_rest + 0.3 * rest.alpha[0].sum()  # the carcass interior shows once it opens
    textured = rest.rgb[0][rest.alpha[0] > 0]
    assert textured.std(axis=0).max() > 0.01  # shading and texture, not a flat fill


def test_describe_and_prompts():
    m = make_object("chest_of_drawers", 1)
    text = describe(m)
    assert "chest of drawers" in text and "prismatic" in text and all(p in text for p in m.part_names)
    w = make_object("washing_machine", 0)
    assert "revolute" in describe(w) and "vertical" in describe(w)
    assert default_prompt(w, "door") == "the door of the washing machine is being opened"
    assert default_prompt(make_object("laptop", 0), "screen") == "the screen of the laptop is being opened"
    with pytest.raises(InputError, match="parts are"):
        default_prompt(w, "handle")
