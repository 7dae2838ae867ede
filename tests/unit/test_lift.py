"""Gaussian lift: recovering known motion from videos, score distillation maths, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("atop_models.mesh.sampling", reason="surface sampling module not available")

from atop_models.errors import DivergenceError, InputError  # noqa: E402
from atop_models.geometry.cameras import imagedream_rig  # noqa: E402
from atop_models.geometry.transforms import apply_transform, joint_matrix  # noqa: E402
from atop_models.lift.gaussians import FrameGaussians, init_gaussians  # noqa: E402
from atop_models.lift.guidance import SDSGuidance, VideoGuidance, annealed_range  # noqa: E402
from atop_models.lift.lift import lift_gaussians  # noqa: E402
from atop_models.render.gaussians import rasterize_gaussians  # noqa: E402
from atop_models.types import Joint, Material, MultiViewVideo, PartMesh  # noqa: E402


def _box(lo, hi):
    import trimesh

    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((hi + lo) / 2)
    return b


def cabinet(door_thickness=0.03, joint_type="revolute") -> PartMesh:
    """A box body with a door on its -Y face, hinged on the door's left edge (opens outwards)."""
    body = _box([-0.3, -0.25, -0.4], [0.3, 0.25, 0.4])
    door = _box([-0.28, -0.26 - door_thickness, -0.38], [0.28, -0.26, 0.38])
    v = np.concatenate([body.vertices, door.vertices])
    f = np.concatenate([body.faces, door.faces + len(body.vertices)])
    fp = np.concatenate([np.zeros(len(body.faces), int), np.ones(len(door.faces), int)])
    mats = [Material("body", np.array([0.8, 0.5, 0.2, 1.0])), Material("door", np.array([0.1, 0.3, 0.9, 1.0]))]
    if joint_type == "revolute":
        j = Joint("revolute", [0, 0, -1], [-0.28, -0.275, 0], limits=(0, 1.5), child="door", parent="body")
    else:
        j = Joint("prismatic", [0, -1, 0], [0, 0, 0], limits=(0, 0.3), child="door", parent="body")
    return PartMesh(v, f, fp, ["body", "door"], materials=mats, face_material=fp.copy(), joints=[j])


def gaussian_video(mesh, values, rig, res, features=None, seed=7):
    """Ground-truth multi-view video: dense Gaussians on the mesh, the part posed by the joint."""
    joint = mesh.joints[0]
    gt = init_gaussians(mesh, joint.child, 3000, 3000, seed=seed)
    means = []
    for a in values:
        m = gt.means.copy()
        m[gt.moving] = apply_transform(joint_matrix(joint, a), m[gt.moving])
        means.append(m)
    means = torch.tensor(np.stack(means), dtype=torch.float32)
    n = len(gt.means)
    feats = torch.tensor(gt.colors, dtype=torch.float32) if features is None else features(gt)
    with torch.no_grad():
        r = rasterize_gaussians(means, torch.tensor([1.0, 0, 0, 0]).repeat(len(values), n, 1),
                                torch.log(torch.tensor(gt.scales, dtype=torch.float32))[:, None].repeat(1, 3),
                                torch.full((n,), 3.0), feats, rig, res, res,
                                background=torch.ones(feats.shape[1]), backend="torch")
    return r.features  # [F, V, H, W, C]


def kabsch_angle(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = a.mean(0), b.mean(0)
    U, _, Vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ np.diag([1, 1, d]) @ U.T
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def test_rigid_video_lift_recovers_the_door_rotation():
    mesh = cabinet()
    rig = imagedream_rig(resolution=32)
    values = np.radians([0.0, 15.0, 30.0, 45.0])
    frames = gaussian_video(mesh, values, rig, 32)
    video = MultiViewVideo(frames=frames.transpose(0, 1).numpy(), rig=rig)
    steps = []
    out = lift_gaussians(mesh, "door", rig, VideoGuidance(video, rig, resolution=32), iterations=80,
                         num_gaussians=800, motion="rigid", learning_rate=0.02, seed=0,
                         on_step=lambda s, t, p: steps.append((s, t, p is not None)))
    seq = out.sequence
    assert seq.points.shape == (4, 800, 3) and seq.moving.shape == (4, 800)
    assert np.array_equal(seq.track_ids[2], np.arange(800))
    assert out.backend == "torch" and "torch" in out.info
    mv = seq.moving[0]
    assert np.allclose(seq.points[:, ~mv], seq.points[0, ~mv])  # static Gaussians never move
    assert np.allclose(seq.points[0], out.gaussians.means)  # frame 0 is the rest state
    for f, value in enumerate(values):
        assert kabsch_angle(seq.points[0][mv], seq.points[f][mv]) == pytest.approx(np.degrees(value), abs=3.0)
    assert out.losses[-1] < 0.3 * out.losses[0]
    assert [s for s, _, _ in steps] == list(range(1, 81)) and steps[-1][2]
    assert out.previews.shape == (4, 64, 128, 3)  # render above target, 4 views side by side
    assert not out.uncertain and "spans only" not in out.info  # the door spans 19 px of the 32


def test_a_part_too_small_in_the_views_is_flagged_uncertain():
    """Seen from far, the door spans a few pixels: the lift still runs, but says the motion cannot show and
    at what resolution it would."""
    from atop_models.geometry.cameras import pixel_span

    mesh = cabinet()
    rig = imagedream_rig(resolution=32, distance=12.0)
    values = np.radians([0.0, 20.0])
    video = MultiViewVideo(frames=gaussian_video(mesh, values, rig, 32).transpose(0, 1).numpy(), rig=rig)
    out = lift_gaussians(mesh, "door", rig, VideoGuidance(video, rig, resolution=32), iterations=3,
                         num_gaussians=200, motion="rigid", seed=0)
    span = pixel_span(rig, out.gaussians.means[out.gaussians.moving])
    assert 1.0 < span < 8.0
    assert out.uncertain and f"spans only {span:.1f} px of the 32 px views" in out.info
    assert f"lift at {int(np.ceil(32 * 8 / span))} px or more" in out.info


def test_free_motion_lift_follows_a_sliding_drawer():
    mesh = cabinet(door_thickness=0.1, joint_type="prismatic")
    rig = imagedream_rig(resolution=24)
    values = [0.0, 0.12]
    video = MultiViewVideo(frames=gaussian_video(mesh, values, rig, 24).transpose(0, 1).numpy(), rig=rig)
    out = lift_gaussians(mesh, "door", rig, VideoGuidance(video, rig, resolution=24), iterations=100,
                         num_gaussians=500, motion="free", learning_rate=0.03, seed=1)
    mv = out.sequence.moving[0]
    shift = (out.sequence.points[1][mv] - out.sequence.points[0][mv]).mean(0)
    # free per-Gaussian offsets only move where the image has gradients (edges): the drawer moves outwards
    # but undershoots (the rigid option is the accurate one); sideways drift stays small
    assert -0.15 < shift[1] < -0.02
    assert abs(shift[0]) < 0.02 and abs(shift[2]) < 0.02


class DeltaDenoiser:
    """The optimal denoiser of data concentrated at ``target`` [F, V, 4, h, w] (conditional) and at zero
    (unconditional): eps = (x_t - sqrt(ab) * x0) / sqrt(1 - ab)."""

    def __init__(self, target: torch.Tensor):
        from atop_models.diffusion.schedule import alphas_cumprod

        self.target = target
        self.alphas_cumprod = alphas_cumprod()
        self.num_frames, self.num_views, self.latent_size = target.shape[0], target.shape[1], target.shape[-1]
        self.calls = []

    def __call__(self, noisy, t):
        self.calls.append(t)
        ab = self.alphas_cumprod[t]
        cond = (noisy - ab.sqrt() * self.target) / (1 - ab).sqrt()
        uncond = noisy / (1 - ab).sqrt()
        return uncond, cond


def test_sds_gradient_is_the_weighted_cfg_residual():
    torch.manual_seed(0)
    target = torch.randn(2, 4, 4, 8, 8)
    den = DeltaDenoiser(target)
    sds = SDSGuidance(den, guidance_scale=5.0, t_min=0.2, t_max=0.2, t_start=0.2, seed=3)
    z = torch.randn(2, 4, 8, 8, 4, requires_grad=True)  # render layout [F, V, H, W, C]
    loss = sds.loss(z, 0, 10)
    loss.backward()
    t = den.calls[-1]
    assert t == 200
    ab = den.alphas_cumprod[t]
    zl = z.detach().permute(0, 1, 4, 2, 3)
    # eps_cfg - noise = sqrt(ab) / sqrt(1 - ab) * (z - s * target); weight 1 - ab; per frame
    expected = (1 - ab) * ab.sqrt() / (1 - ab).sqrt() * (zl - 5.0 * target) / 2
    assert torch.allclose(z.grad.permute(0, 1, 4, 2, 3), expected, atol=1e-4)


def test_annealed_timestep_range():
    assert annealed_range(0, 100, 0.98, 0.02, 0.5) == pytest.approx((0.98, 0.98))
    assert annealed_range(99, 100, 0.98, 0.02, 0.5) == pytest.approx((0.02, 0.5))
    lo, hi = annealed_range(49, 99, 0.98, 0.02, 0.5)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.74)
    den = DeltaDenoiser(torch.zeros(1, 1, 4, 4, 4))
    sds = SDSGuidance(den, t_min=0.02, t_max=0.5, t_start=0.98, seed=0)
    late = [sds.sample_timestep(99, 100) for _ in range(200)]
    assert 20 <= min(late) and max(late) <= 500
    assert all(sds.sample_timestep(0, 100) >= 970 for _ in range(20))


def test_sds_lift_with_a_known_optimum_recovers_the_motion():
    """Score distillation with the optimal denoiser of a latent video (features rendered from moved
    Gaussians) pulls the rigid motion to the true one."""
    mesh = cabinet(door_thickness=0.1, joint_type="prismatic")
    rig = imagedream_rig(resolution=16)
    gt_feats = lambda gt: torch.tensor(np.where(gt.moving[:, None], [1.0, -1.0, 0.5, 0.0], [-0.5, 0.5, 0.0, 1.0]),  # noqa: E731
                                       dtype=torch.float32)
    target = gaussian_video(mesh, [0.0, 0.1], rig, 16, features=gt_feats)  # [F, V, H, W, 4]
    den = DeltaDenoiser(target.permute(0, 1, 4, 2, 3))
    class Pred:  # unconditional branch equal to the conditional one: plain score matching
        alphas_cumprod, num_frames, num_views, latent_size = den.alphas_cumprod, 2, 4, 16

        def __call__(self, x, t):
            cond = den(x, t)[1]
            return cond, cond

    sds = SDSGuidance(Pred(), guidance_scale=1.0, t_min=0.02, t_max=0.3, t_start=0.5, seed=0,
                      background=torch.ones(4))
    out = lift_gaussians(mesh, "door", rig, sds, iterations=150, num_gaussians=400, motion="rigid",
                         learning_rate=0.01, seed=0)
    mv = out.sequence.moving[0]
    shift = (out.sequence.points[1][mv] - out.sequence.points[0][mv]).mean(0)
    assert shift[1] == pytest.approx(-0.1, abs=0.03), shift


def test_non_finite_guidance_raises_divergence():
    mesh = cabinet()
    rig = imagedream_rig(resolution=8)

    class Broken:
        alphas_cumprod = DeltaDenoiser(torch.zeros(1, 1, 4, 4, 4)).alphas_cumprod
        num_frames, num_views, latent_size = 2, 4, 8

        def __call__(self, x, t):
            return torch.full_like(x, float("nan")), torch.full_like(x, float("nan"))

    with pytest.raises(DivergenceError, match="NaN"):
        lift_gaussians(mesh, "door", rig, SDSGuidance(Broken()), iterations=30, num_gaussians=100)


def test_bad_inputs():
    mesh = cabinet()
    rig = imagedream_rig(resolution=16)
    video = MultiViewVideo(frames=np.ones((4, 2, 16, 16, 3), np.float32), rig=imagedream_rig(elevation_deg=30))
    with pytest.raises(InputError, match="cameras do not match"):
        VideoGuidance(video, rig)
    other_fov = MultiViewVideo(frames=video.frames, rig=imagedream_rig(fov_deg=50))
    with pytest.raises(InputError, match="field of view"):
        VideoGuidance(other_fov, rig)
    tiny = cabinet()
    sel = tiny.face_part == 1
    verts = tiny.vertices.copy()
    door_v = np.unique(tiny.faces[sel])
    verts[door_v] = verts[door_v].mean(0) + 1e-4 * (verts[door_v] - verts[door_v].mean(0))
    tiny.vertices = verts
    with pytest.raises(InputError, match="too small to sample"):
        init_gaussians(tiny, "door", 100, 100)
    with pytest.raises(InputError, match="not found"):
        init_gaussians(mesh, "lid", 100, 100)
    with pytest.raises(InputError, match="at least 2 frames"):
        init = init_gaussians(mesh, "door", 50, 50)
        FrameGaussians(init, 1, torch.zeros(100, 3), motion="rigid")
    with pytest.raises(InputError, match="unknown motion model 'hinge'"):
        FrameGaussians(init_gaussians(mesh, "door", 50, 50), 2, torch.zeros(100, 3), motion="hinge")
    sds = SDSGuidance(DeltaDenoiser(torch.zeros(2, 4, 4, 8, 8)))
    with pytest.raises(InputError, match="joint motion .* needs video guidance"):
        lift_gaussians(mesh, "door", imagedream_rig(resolution=8), sds, iterations=5, num_gaussians=100,
                       motion="joint")


def test_joint_motion_moves_the_part_like_the_joint():
    mesh = cabinet()
    init = init_gaussians(mesh, "door", 100, 100)
    model = FrameGaussians(init, 3, torch.zeros(200, 3), motion="joint")
    for joint in (mesh.joints[0], cabinet(joint_type="prismatic").joints[0]):
        values = [0.4, 0.9] if joint.type == "revolute" else [0.05, 0.1]
        model.set_joint(joint.type, 2.0 * joint.axis, joint.origin, values)  # any axis length
        means = model.means().detach().double().numpy()
        mv = init.moving
        for f, value in enumerate(values, start=1):
            expected = apply_transform(joint_matrix(joint, value), init.means[mv])
            np.testing.assert_allclose(means[f][mv], expected, atol=1e-5)
        np.testing.assert_allclose(means[:, ~mv], np.broadcast_to(init.means[~mv], means[:, ~mv].shape), atol=1e-6)
        jtype, axis, origin, amounts = model.joint_state()
        assert jtype == joint.type and np.allclose(axis, joint.axis) and np.allclose(amounts, values)


def test_joint_jumps_penalise_only_steps_beyond_the_bound():
    mesh = cabinet()
    init = init_gaussians(mesh, "door", 50, 50, 0)
    model = FrameGaussians(init, 4, torch.zeros(100, 3), motion="joint")
    model.set_joint("revolute", [0, 0, 1.0], [0, 0, 0.0], [0.2, 0.4, 0.6])
    assert model.joint_jumps(0.25).item() == 0.0
    model.set_joint("revolute", [0, 0, 1.0], [0, 0, 0.0], [0.2, 0.9, 0.6])  # steps 0.2, 0.7, -0.3; bound 0.25
    assert model.joint_jumps(0.25).item() == pytest.approx(((0.45 / 0.25) ** 2 + (0.05 / 0.25) ** 2) / 3, rel=1e-5)


def test_continuous_path_starts_at_rest_and_moves_in_bounded_steps():
    from atop_models.lift.joint_hypotheses import continuous_path

    values = np.radians(np.arange(-180.0, 181.0, 10.0))
    truth = np.radians([10.0, 30.0, 50.0, 70.0])
    err = torch.tensor((values[:, None] - truth[None]) ** 2)
    # a half turn looks like the rest pose (a flat symmetric part): cheaper in every frame but unreachable
    err[np.argmin(np.abs(values - np.pi))] = -1.0
    err[np.argmin(np.abs(values + np.pi))] = -1.0
    np.testing.assert_allclose(continuous_path(err, values, np.radians(25.0)), truth, atol=1e-9)
    # without the bound the flip wins
    assert np.allclose(np.abs(continuous_path(err, values, 10.0)), np.pi)


def test_hypothesis_pools_keep_both_types_and_a_hinge_must_win_clearly():
    from atop_models.lift.joint_hypotheses import JointHypothesis, prefer_slide, with_every_type

    def h(jtype, score):
        return JointHypothesis(jtype, np.array([1.0, 0, 0]), np.zeros(3), np.zeros(3), score)

    hyps = [h("revolute", s) for s in (0.5, 0.1, 0.3, 0.2)] + [h("prismatic", 0.9), h("prismatic", 0.4)]
    picked = with_every_type(hyps, 3)
    assert [(p.type, p.score) for p in picked] == [("revolute", 0.1), ("revolute", 0.2), ("prismatic", 0.4)]
    assert [p.score for p in with_every_type(hyps, 5)] == [0.1, 0.2, 0.3, 0.4, 0.5]  # already there
    assert [p.score for p in with_every_type(hyps[:4], 2)] == [0.1, 0.2]  # only one type exists
    # a hinge 5% better than the slide is within what its freedom buys; 20% better is a hinge
    assert prefer_slide([h("revolute", 0.95), h("prismatic", 1.0), h("prismatic", 1.2)], 0.1).score == 1.0
    assert prefer_slide([h("revolute", 0.8), h("prismatic", 1.0)], 0.1).type == "revolute"
    assert prefer_slide([h("revolute", 0.8)], 0.1).type == "revolute"


def test_distinct_drops_hypotheses_that_repeat_a_better_one():
    from atop_models.lift.joint_hypotheses import JointHypothesis, distinct

    def h(jtype, axis, origin, score):
        return JointHypothesis(jtype, np.asarray(axis, float) / np.linalg.norm(axis), np.asarray(origin, float),
                               np.zeros(3), score)

    hyps = [
        h("revolute", [1, 0, 0], [0, 0, 0], 0.1),  # a thin door's centre line
        h("revolute", [1, 0, 0], [0, 0.05, 0], 0.2),  # its broad face: the same line (0.05 < 0.2 x 1.0)
        h("revolute", [1, 0, 0.05], [3, 0, 0.01], 0.25),  # the same line, 3 deg off, origin elsewhere on it
        h("revolute", [1, 0, 0], [0, 0, -0.5], 0.3),  # its bottom edge: another line
        h("revolute", [0, 0, 1], [0, 0, 0], 0.35),  # another axis
        h("prismatic", [1, 0, 0], [0, 0, 0], 0.4),  # another type
        h("prismatic", [1, 0.1, 0], [9, 9, 9], 0.5),  # a slide along the same axis (6 deg), anywhere
    ]
    kept = distinct(list(reversed(hyps)), part_length=1.0)
    assert [k.score for k in kept] == [0.1, 0.3, 0.35, 0.4]
    assert [k.score for k in distinct(hyps, part_length=0.1)] == [0.1, 0.2, 0.3, 0.35, 0.4]  # 0.05 apart now
    assert [k.score for k in distinct(hyps, part_length=1.0, angle_deg=2.0)] == [0.1, 0.25, 0.3, 0.35, 0.4, 0.5]


def test_splat_composites_points_by_depth_over_a_layer():
    from atop_models.render.splat import Layer, camera_depth, splat_points

    rig = imagedream_rig(resolution=16, distance=2.0)
    V = rig.num_views
    layer = Layer(features=torch.zeros(V, 16, 16, 1), depth=torch.full((V, 16, 16), 2.0), cover=torch.zeros(V, 16, 16))
    # the origin lies at depth 2 in every view: a point just in front shows, one just behind is hidden
    pts = torch.tensor([[[0.0, 0.0, 0.0]]])
    in_front, cover = splat_points(pts, torch.ones(1, 1), rig, 16, 16,
                                   under=Layer(layer.features, layer.depth + 0.1, layer.cover))
    assert in_front.shape == (1, V, 16, 16, 1) and float(in_front.sum()) == 4 * V and float(cover.sum()) == 4 * V
    assert float(in_front[0, :, 7:9, 7:9].sum()) == 4 * V  # the 2x2 pixels around the image centre
    behind, cover = splat_points(pts, torch.ones(1, 1), rig, 16, 16,
                                 under=Layer(layer.features, layer.depth - 0.1, layer.cover))
    assert float(behind.sum()) == 0 and float(cover.sum()) == 0
    np.testing.assert_allclose(camera_depth(torch.zeros(V, 1, 3), rig).numpy(), 2.0, atol=1e-5)


def test_supersampled_splats_cover_what_the_points_cover():
    """Splatted at twice the size and averaged back, a point covers one pixel's worth instead of four, and a
    thin line seen across covers one pixel row's worth instead of two: a thin part edge-on stays thin."""
    from atop_models.render.splat import Layer, splat_points

    rig = imagedream_rig(resolution=16, distance=2.0)
    V = rig.num_views

    def empty(size):
        return Layer(torch.zeros(V, size, size, 1), torch.full((V, size, size), float("inf")), torch.zeros(V, size, size))

    point = torch.tensor([[[0.013, 0.021, -0.017]]])
    image, cover = splat_points(point, torch.ones(1, 1), rig, 16, 16, under=empty(16))
    np.testing.assert_allclose(cover.sum((2, 3)).numpy(), 4.0)
    image, cover = splat_points(point, torch.ones(1, 1), rig, 16, 16, under=empty(32), supersample=2)
    assert image.shape == (1, V, 16, 16, 1) and cover.shape == (1, V, 16, 16)
    np.testing.assert_allclose(cover.sum((2, 3)).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(image.sum((2, 3, 4)).numpy(), 1.0, atol=1e-6)
    # a dense line across the first view's image: its columns hold two pixels of cover, then one
    line = torch.zeros(1, 400, 3)
    line[0, :, 0] = torch.linspace(-0.3, 0.3, 400)
    for supersample, per_column in ((1, 2.0), (2, 1.0)):
        _, cover = splat_points(line, torch.ones(400, 1), rig, 16, 16, under=empty(16 * supersample),
                                supersample=supersample)
        columns = cover[0, 0].sum(0)
        inside = columns[columns > 0]
        assert len(inside) >= 4, "the line should cross the first view"
        np.testing.assert_allclose(inside[1:-1].numpy(), per_column, atol=1e-6)
    with pytest.raises(ValueError, match="supersampling"):
        splat_points(point, torch.ones(1, 1), rig, 16, 16, under=empty(16), supersample=2)


def test_splat_features_are_what_the_render_shows():
    from atop_models.lift.joint_hypotheses import blur, render_layer, seen_at_rest, seen_features
    from atop_models.render.splat import Layer

    rig = imagedream_rig(resolution=16, distance=2.0)
    V = rig.num_views
    # every pixel shows a horizontal red ramp and grey green/blue, at depth 2 (the origin's depth in every view)
    features = torch.full((V, 16, 16, 3), 0.5)
    features[..., 0] = torch.linspace(0, 1, 16)[None, None, :]
    layer = Layer(features=features, depth=torch.full((V, 16, 16), 2.0), cover=torch.ones(V, 16, 16))
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.01]])
    seen = seen_at_rest(pts, layer, rig, tolerance=0.05)
    assert seen.shape == (V, 2) and bool(seen.all())
    in_front = Layer(layer.features, torch.full((V, 16, 16), 1.5), layer.cover)  # a surface hides them
    assert not bool(seen_at_rest(pts, in_front, rig, tolerance=0.05).any())
    # a Gaussian's own (speckled) feature gives way to what the render shows; an unseen point takes its
    # nearest seen neighbour's
    speckles = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    seen[:, 1] = False
    out = seen_features(pts, speckles, layer, rig, seen)
    np.testing.assert_allclose(out[:, 1:].numpy(), 0.5, atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), out[0].numpy())
    assert 0.4 < float(out[0, 0]) < 0.6  # the ramp's middle
    # no point seen at all: the Gaussians keep their own features (and the user is warned)
    assert torch.equal(seen_features(pts, speckles, layer, rig, torch.zeros_like(seen)), speckles)
    # the known share of the pixels: 1 where a known Gaussian shows, 0 where only an unknown one does
    args = (torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.full((1, 3), -2.0), torch.full((1,), 4.0),
            torch.ones(1, 3), rig, 16, 16, torch.zeros(3))
    known, unknown = render_layer(*args, known=torch.ones(1)), render_layer(*args, known=torch.zeros(1))
    assert float(known.known[:, 7:9, 7:9].min()) > 0.99 and float(unknown.known[:, 7:9, 7:9].max()) < 0.01
    assert float(unknown.known[:, 0, 0].min()) == 1.0  # empty background is known
    assert render_layer(*args).known is None
    # blur keeps constants and mass, and spreads a point
    img = torch.zeros(2, 9, 9)
    img[:, 4, 4] = 1.0
    b = blur(img, 0.7)
    assert abs(float(b.sum()) - 2.0) < 1e-5 and float(b[0, 4, 4]) < 0.5 and float(b[0, 4, 5]) > 0.05
    np.testing.assert_allclose(blur(torch.full((3, 5, 5), 0.25), 0.7).numpy(), 0.25, atol=1e-6)


def test_unknown_pixels_do_not_count_in_the_ranking():
    """What the static layer shows where its surface was never seen (the inside a door uncovers) is a guess:
    changing the guess leaves every hypothesis's values and score unchanged; on known pixels it does not."""
    from atop_models.lift.joint_hypotheses import rank_hypotheses
    from atop_models.render.splat import Layer

    rig = imagedream_rig(resolution=16, distance=2.0)
    V = rig.num_views
    g = torch.Generator().manual_seed(0)
    u, w = torch.meshgrid(torch.linspace(-0.3, 0.3, 12), torch.linspace(-0.2, 0.2, 8), indexing="ij")
    # a plate in the x-z plane, its points at distinct depths (ties would splat in any order)
    plate = torch.stack([u, 0.01 * torch.rand(u.shape, generator=g), w], -1).reshape(-1, 3)
    colours = torch.rand(len(plate), 3, generator=g)
    targets = torch.rand(3, V, 16, 16, 3, generator=g)
    known = torch.ones(V, 16, 16)
    known[:, 4:12, 4:12] = 0.0

    def ranking(guess, share):
        features = torch.full((V, 16, 16, 3), 0.3)
        features[:, 4:12, 4:12] = guess
        layer = Layer(features, torch.full((V, 16, 16), 3.0), torch.ones(V, 16, 16), known=share)
        return [(h.type, np.round(h.axis, 6).tolist(), np.round(h.origin, 6).tolist(), h.amounts.tolist(), h.score)
                for h in rank_hypotheses(plate, colours, layer, rig, targets, None, 0.0)]

    assert ranking(0.0, known) == ranking(1.0, known)
    assert ranking(0.0, torch.ones(V, 16, 16)) != ranking(1.0, torch.ones(V, 16, 16))


@pytest.mark.parametrize("joint_type", ["revolute", "prismatic"])
def test_joint_video_lift_recovers_the_joint(joint_type):
    """Joint motion: the bounding-box hypotheses ranked against the video, refined, and the right one kept."""
    from atop_models.geometry.joint_search import estimate_joint
    from atop_models.geometry.metrics import joint_errors

    mesh = cabinet(door_thickness=0.1 if joint_type == "prismatic" else 0.03, joint_type=joint_type)
    joint = mesh.joints[0]
    rig = imagedream_rig(resolution=48)
    values = np.linspace(0.0, 1.2 if joint_type == "revolute" else 0.25, 5)
    video = MultiViewVideo(frames=gaussian_video(mesh, values, rig, 48).transpose(0, 1).numpy(), rig=rig)
    reports = []
    out = lift_gaussians(mesh, "door", rig, VideoGuidance(video, rig, resolution=48), iterations=120,
                         num_gaussians=800, motion="joint", seed=0, on_step=lambda s, t, p: reports.append((s, t)))
    assert out.motion == "joint" and out.joint is not None and out.joint.type == joint_type
    # progress counts the steps and each ranked candidate, one by one, to the end
    from atop_models.lift.joint_hypotheses import box_candidates

    total = 120 + len(box_candidates(out.gaussians.means[out.gaussians.moving]))
    assert reports == [(k, total) for k in range(1, total + 1)]
    assert "joint motion" in out.info and len(out.hypotheses) == 3
    assert out.hypotheses[0].score <= out.hypotheses[-1].score
    assert np.degrees(np.arccos(min(1.0, abs(float(out.joint.axis @ joint.axis))))) < 2.0
    # the cabinet's joint follows its own axes, and the video fits the snapped axis as well
    assert "axis snapped to the object's frame" in out.info
    assert abs(float(out.joint.axis @ joint.axis)) == pytest.approx(1.0, abs=1e-9)
    sign = np.sign(out.joint.axis @ joint.axis)
    # (a short plan: about 17 refinement steps per hypothesis; the door's last angle comes out 1.251 for 1.2)
    np.testing.assert_allclose(sign * out.joint.amounts, values[1:], atol=0.06 if joint_type == "revolute" else 0.03)
    pred = estimate_joint(out.sequence)  # the lifted sequence is the fitted joint's motion exactly
    err = joint_errors(pred, joint, mesh.bbox_diagonal)
    assert err["type_ok"] and err["axis_err_deg"] < 2.0
    if joint_type == "revolute":
        assert err["pos_err_norm"] < 0.03
