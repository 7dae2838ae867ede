"""ImageDream camera rig: closed form, published test vector, orientation, projection consistency."""
import numpy as np

from atop_models.geometry.cameras import (imagedream_c2w, imagedream_camera_vector, imagedream_rig, pixel_rays,
                                          pixel_span, world_to_pixels)


def closed_form(e_deg, a_deg):
    e, a = np.deg2rad(e_deg), np.deg2rad(a_deg)
    return np.array([[np.cos(a), -np.sin(e) * np.sin(a), np.cos(e) * np.sin(a), np.cos(e) * np.sin(a)],
                     [np.sin(a), np.sin(e) * np.cos(a), -np.cos(e) * np.cos(a), -np.cos(e) * np.cos(a)],
                     [0, np.cos(e), np.sin(e), np.sin(e)], [0, 0, 0, 1]])


def test_closed_form_many_angles():
    for e in (-30.0, 0.0, 5.0, 15.0, 60.0):
        for a in (0.0, 37.0, 90.0, 180.0, 270.0, 321.0):
            np.testing.assert_allclose(imagedream_c2w(e, a, 1.0), closed_form(e, a), atol=1e-12)


def test_published_vector_e5_a0():
    expected = np.array([[1, 0, 0, 0], [0, .0872, -.9962, -.9962], [0, .9962, .0872, .0872], [0, 0, 0, 1]])
    np.testing.assert_allclose(imagedream_c2w(5.0, 0.0), expected, atol=1e-4)
    vec = imagedream_camera_vector(imagedream_c2w(5.0, 0.0, 2.0)[None])
    np.testing.assert_allclose(vec[0], expected.reshape(-1), atol=1e-4)  # unit-norm translation


def test_azimuth_positions():
    rig = imagedream_rig(elevation_deg=0.0, distance=2.0)
    np.testing.assert_allclose(rig.c2w[0, :3, 3], [0, -2, 0], atol=1e-12)  # azimuth 0 at -Y
    np.testing.assert_allclose(rig.c2w[1, :3, 3], [2, 0, 0], atol=1e-12)  # azimuth 90 at +X
    np.testing.assert_allclose(rig.c2w[2, :3, 3], [0, 2, 0], atol=1e-12)
    np.testing.assert_allclose(rig.c2w[3, :3, 3], [-2, 0, 0], atol=1e-12)
    for v in range(4):  # every camera looks at the origin, image up = world +Z
        fwd = -rig.c2w[v, :3, 2]
        np.testing.assert_allclose(fwd, -rig.c2w[v, :3, 3] / 2, atol=1e-12)
        np.testing.assert_allclose(rig.c2w[v, :3, 1], [0, 0, 1], atol=1e-12)


def test_pixel_rays_hit_projected_points():
    rig = imagedream_rig(resolution=32)
    origins, dirs = pixel_rays(rig)
    pts = origins[:, 100] + 1.7 * dirs[:, 100]  # [V, 3] a point on each view's ray 100
    for v in range(4):
        px, depth = world_to_pixels(rig, pts[v][None])
        np.testing.assert_allclose(px[v, 0], [100 % 32 + 0.5, 100 // 32 + 0.5], atol=1e-9)
        assert depth[v, 0] > 0


def test_pixel_span_of_an_upright_segment():
    """A segment along +Z through the origin spans f * length / distance pixels in every level view; one
    along +X spans that in the views facing it and nothing in the views along it."""
    rig = imagedream_rig(elevation_deg=0.0, fov_deg=40.0, distance=3.0, resolution=64)
    f = 0.5 * 64 / np.tan(np.deg2rad(20.0))
    upright = np.array([[0.0, 0.0, -0.25], [0.0, 0.0, 0.25]])
    assert abs(pixel_span(rig, upright) - f * 0.5 / 3.0) < 1e-9
    across = np.array([[-0.25, 0.0, 0.0], [0.25, 0.0, 0.0]])
    assert abs(pixel_span(rig, across) - f * 0.5 / 3.0) < 1e-9
    assert pixel_span(imagedream_rig(elevation_deg=0.0, num_views=1, azimuth_start_deg=90.0, distance=3.0,
                                     resolution=64), across) < 1e-9
    assert abs(pixel_span(imagedream_rig(elevation_deg=0.0, fov_deg=40.0, distance=3.0, resolution=128), upright)
               - 2 * f * 0.5 / 3.0) < 1e-9
