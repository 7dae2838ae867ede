"""The pure-torch Gaussian rasteriser against analytic cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig, world_to_pixels
from atop_models.render.gaussians import camera_matrices, quat_to_rotmat, rasterize_gaussians, select_backend

IDENTITY_Q = [1.0, 0.0, 0.0, 0.0]


def _scene(means, scale, opacity, colors, dtype=torch.float64):
    n = len(means)
    m = torch.tensor(means, dtype=dtype)
    q = torch.tensor([IDENTITY_Q] * n, dtype=dtype)
    ls = torch.full((n, 3), math.log(scale), dtype=dtype)
    logit = torch.logit(torch.tensor(opacity, dtype=dtype)).reshape(n)
    f = torch.tensor(colors, dtype=dtype).reshape(n, -1)
    return m, q, ls, logit, f


def _on_axis_point(rig, view, depth):
    """World point on the optical axis of ``view`` at ``depth`` in front of the camera."""
    c2w = rig.c2w[view]
    return (c2w[:3, 3] - depth * c2w[:3, 2]).tolist()  # OpenGL cameras look along -z


def test_camera_matrices_match_projection_helper():
    rig = imagedream_rig(resolution=64)
    viewmats, Ks = camera_matrices(rig, 48, 48, dtype=torch.float64)
    pts = np.array([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0], [-0.3, 0.2, -0.1]])
    ref_rig = imagedream_rig(resolution=48)
    pix, depth = world_to_pixels(ref_rig, pts)
    cam = torch.einsum("vij,nj->vni", viewmats[:, :3, :3], torch.tensor(pts)) + viewmats[:, None, :3, 3]
    assert torch.allclose(cam[..., 2], torch.tensor(depth), atol=1e-9)  # OpenCV: +z forward
    uv = cam[..., :2] / cam[..., 2:] * Ks[:, None, [0, 1], [0, 1]] + Ks[:, None, :2, 2]
    assert np.allclose(uv.numpy(), pix, atol=1e-9)


def test_single_gaussian_footprint_matches_analytic_ewa():
    rig = imagedream_rig(resolution=32)
    W = H = 32
    depth, scale, opacity = 1.5, 0.02, 0.8
    mean = _on_axis_point(rig, 0, depth)
    r = rasterize_gaussians(*_scene([mean], scale, [opacity], [[1.0, 0.5, 0.25]]), rig, W, H, backend="torch")
    f = 0.5 * H / math.tan(math.radians(rig.fov_deg) / 2)
    var = (f * scale / depth) ** 2 + 0.3  # isotropic on the optical axis, plus the screen-space blur
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    expected = opacity * np.exp(-0.5 * ((xs - W / 2) ** 2 + (ys - H / 2) ** 2) / var)
    expected[expected < 1 / 255] = 0.0
    got = r.alpha[0, 0].numpy()
    assert np.abs(got - expected).max() < 1e-9
    # the feature image is the alpha-weighted colour (black background)
    assert np.allclose(r.features[0, 0, ..., 1].numpy(), 0.5 * expected, atol=1e-9)
    # its second moment recovers the analytic sigma
    w = got / got.sum()
    sigma_x = math.sqrt((w * (xs - W / 2) ** 2).sum())
    assert sigma_x == pytest.approx(math.sqrt(var), rel=0.05)


def test_off_axis_peak_at_projected_mean_in_every_view():
    rig = imagedream_rig(resolution=64)
    point = [0.13, -0.07, 0.21]
    r = rasterize_gaussians(*_scene([point], 0.01, [0.9], [[1.0, 1.0, 1.0]]), rig, 64, 64, backend="torch")
    pix, _ = world_to_pixels(rig, np.array([point]))
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    for v in range(4):
        a = r.alpha[0, v].numpy()
        centroid = np.array([(a * xs).sum(), (a * ys).sum()]) / a.sum()
        assert np.abs(centroid - pix[v, 0]).max() < 0.05, (v, centroid, pix[v, 0])


def test_anisotropic_gaussian_is_elongated_along_its_long_axis():
    rig = imagedream_rig(resolution=64)
    mean = _on_axis_point(rig, 0, 2.0)
    m, q, ls, logit, f = _scene([mean], 0.01, [0.9], [[1.0]])
    ls[0, 0] = math.log(0.08)  # long along world x, which is image x for view 0 (azimuth 0)
    r = rasterize_gaussians(m, q, ls, logit, f, rig, 64, 64, backend="torch")
    a = r.alpha[0, 0].numpy()
    assert (a[32] > 0.05).sum() > 3 * (a[:, 32] > 0.05).sum()


def test_nearer_gaussian_wins_and_compositing_is_exact():
    rig = imagedream_rig(resolution=16)
    near, far = _on_axis_point(rig, 0, 1.5), _on_axis_point(rig, 0, 2.5)
    a1, a2 = 0.7, 0.6
    bg = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    # listed far first: the order must come from depth, not from the index
    r = rasterize_gaussians(*_scene([far, near], 0.05, [a2, a1], [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), rig, 16, 16,
                            background=bg, backend="torch")
    # at the image centre both Gaussians sit at their peaks only approximately (pixel centres are offset by
    # half a pixel), so compute the exact per-Gaussian alphas there from the footprint formula
    f = 0.5 * 16 / math.tan(math.radians(rig.fov_deg) / 2)

    def alpha_at_centre(depth, op):
        var = (f * 0.05 / depth) ** 2 + 0.3
        return op * math.exp(-0.5 * 0.5 / var)  # pixel (7.5, 7.5) vs mean (8, 8): d^2 = 0.5

    e1, e2 = alpha_at_centre(1.5, a1), alpha_at_centre(2.5, a2)
    expected = e1 * np.array([1, 0, 0]) + (1 - e1) * e2 * np.array([0, 1, 0]) + (1 - e1) * (1 - e2) * bg.numpy()
    got = r.features[0, 0, 7, 7].numpy()
    assert np.allclose(got, expected, atol=1e-9)
    assert r.alpha[0, 0, 7, 7].item() == pytest.approx(1 - (1 - e1) * (1 - e2), abs=1e-9)
    assert got[0] > got[1]  # red (near) dominates green (far)
    # swap the positions: now green is in front, whatever the index order
    swapped = rasterize_gaussians(*_scene([near, far], 0.05, [a2, a1], [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), rig,
                                  16, 16, background=bg, backend="torch")
    e1s, e2s = alpha_at_centre(1.5, a2), alpha_at_centre(2.5, a1)
    c = swapped.features[0, 0, 7, 7].numpy()
    assert c[1] == pytest.approx(e1s, abs=1e-9) and c[0] == pytest.approx((1 - e1s) * e2s, abs=1e-9)


def test_compositing_stops_at_low_transmittance():
    rig = imagedream_rig(resolution=8)
    layers = [_on_axis_point(rig, 0, 1.5 + 0.05 * i) for i in range(6)]
    colors = [[1.0, 0.0]] + [[0.0, 1.0]] * 5  # an opaque front layer, then five hidden ones
    r = rasterize_gaussians(*_scene(layers, 10.0, [0.99999] * 6, colors), rig, 8, 8, backend="torch")
    # alpha saturates at 0.999 near the centre; a second layer would take transmittance to 1e-6 < 1e-4, so
    # compositing stops after the first one and nothing of the hidden layers shows
    centre = r.features[0, 0, 3:5, 3:5]
    assert torch.all(centre[..., 0] == 0.999) and torch.all(centre[..., 1] == 0.0)
    assert torch.all(r.alpha[0, 0, 3:5, 3:5] == 0.999)
    # with a thinner front layer (alpha 0.8 < saturation) the next layers do contribute
    thin = rasterize_gaussians(*_scene(layers, 10.0, [0.8] + [0.99999] * 5, colors), rig, 8, 8, backend="torch")
    assert thin.features[0, 0, 3, 3, 1].item() == pytest.approx((1 - 0.8) * 0.999, rel=1e-3)


def test_background_fills_uncovered_pixels_and_batches_are_independent():
    rig = imagedream_rig(resolution=16)
    m, q, ls, logit, f = _scene([[0.0, 0.0, 0.0]], 0.05, [0.9], [[1.0, 0.0, 0.0, 0.5]])
    moved = m + torch.tensor([0.3, 0.0, 0.0], dtype=m.dtype)
    bg = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=m.dtype)
    r = rasterize_gaussians(torch.stack([m, moved]), q[None].expand(2, -1, -1), ls, logit, f, rig, 16, 16,
                            background=bg, backend="torch")
    assert r.features.shape == (2, 4, 16, 16, 4)
    assert torch.allclose(r.features[0, 0, 0, 0], bg)
    single = rasterize_gaussians(moved, q, ls, logit, f, rig, 16, 16, background=bg, backend="torch")
    assert torch.allclose(r.features[1], single.features[0])
    assert not torch.allclose(r.features[0], r.features[1])


def test_gradients_match_finite_differences():
    rig = imagedream_rig(resolution=12)
    torch.manual_seed(0)
    n = 5
    m = (torch.rand(n, 3, dtype=torch.float64) - 0.5) * 0.4
    q = torch.randn(n, 4, dtype=torch.float64)
    ls = torch.log(torch.full((n, 3), 0.06, dtype=torch.float64)) + 0.2 * torch.randn(n, 3, dtype=torch.float64)
    logit = torch.randn(n, dtype=torch.float64)
    f = torch.rand(n, 2, dtype=torch.float64)
    target = torch.rand(1, 4, 12, 12, 2, dtype=torch.float64)

    def loss(m_, ls_, logit_, f_):
        r = rasterize_gaussians(m_, q, ls_, logit_, f_, rig, 12, 12, backend="torch")
        return ((r.features - target) ** 2).sum()

    args = [t.clone().requires_grad_() for t in (m, ls, logit, f)]
    loss(*args).backward()
    eps = 1e-6
    for k, t in enumerate(args):
        for i in range(min(t.numel(), 6)):
            plus = [a.detach().clone() for a in args]
            minus = [a.detach().clone() for a in args]
            plus[k].view(-1)[i] += eps
            minus[k].view(-1)[i] -= eps
            fd = (loss(*plus) - loss(*minus)).item() / (2 * eps)
            assert t.grad.view(-1)[i].item() == pytest.approx(fd, rel=1e-4, abs=1e-6), (k, i)


def test_quaternion_rotation_is_orthonormal_and_matches_axis_angle():
    from atop_models.geometry.transforms import rotation_about_axis

    axis, angle = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]), 0.7
    q = torch.tensor([math.cos(angle / 2), *(math.sin(angle / 2) * axis)], dtype=torch.float64)
    assert np.allclose(quat_to_rotmat(3.0 * q).numpy(), rotation_about_axis(axis, angle), atol=1e-12)


def test_backend_selection_reports_its_choice():
    name, info = select_backend("auto", torch.device("cpu"))
    assert name == "torch" and "CUDA" in info
    assert select_backend("torch", "cpu") == ("torch", "torch rasteriser (requested)")
    with pytest.raises(InputError, match="gsplat"):
        select_backend("gsplat", "cpu")
    with pytest.raises(InputError, match="unknown rasteriser backend"):
        select_backend("opengl", "cpu")
    rig = imagedream_rig(resolution=8)
    r = rasterize_gaussians(*_scene([[0.0, 0.0, 0.0]], 0.05, [0.5], [[1.0]], dtype=torch.float32), rig, 8, 8)
    assert r.backend == "torch" and r.info == info
