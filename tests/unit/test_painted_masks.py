"""Painted-mask layouts (views side by side) and their agreement with a part."""
import numpy as np
import pytest

from atop_models.errors import InputError
from atop_models.geometry.cameras import imagedream_rig
from atop_models.render.painted_masks import agreement, certain_pixels, disagreement, masks_per_view, side_by_side


def test_side_by_side_sheet_is_cut_back_into_views():
    rig = imagedream_rig(resolution=16)
    masks = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    sheet = side_by_side(masks)
    assert sheet.shape == (1, 16, 64) and np.array_equal(sheet[0, :, 16:32], masks[1])
    assert np.array_equal(masks_per_view(sheet, rig), masks)
    assert np.array_equal(masks_per_view(sheet[0], rig), masks)  # [H, V*W] works too
    assert np.array_equal(masks_per_view(masks, rig), masks)
    images = np.zeros((4, 16, 16, 3))
    assert side_by_side(images).shape == (1, 16, 64, 3)


def test_masks_of_the_wrong_shape_name_both_shapes():
    rig = imagedream_rig(resolution=16)
    with pytest.raises(InputError, match=r"\[3, 16, 16\].*\[4, 16, 16\].*\[1, 16, 64\]"):
        masks_per_view(np.zeros((3, 16, 16)), rig)
    with pytest.raises(InputError, match=r"shape \[4, 16, 16, 1\]"):
        masks_per_view(np.zeros((4, 16, 16, 1)), rig)


def test_certain_pixels_leave_out_the_brush_band_but_keep_a_dab():
    m = np.zeros((20, 20), bool)
    m[2:12, 2:12] = True  # a 10 px square
    m[16, 16] = True  # a one-pixel dab
    sure_paint, sure_clear = certain_pixels(m, 3.0)
    assert sure_paint[6:8, 6:8].all() and not sure_paint[2, 2] and sure_paint[16, 16]
    assert sure_paint.sum() == 4 * 4 + 1  # the square's pixels more than 3 px inside, and the dab
    assert not sure_clear[12:15, 5].any() and sure_clear[19, 0] and not (sure_clear & m).any()


def test_unpainted_load_image_mask_says_what_to_do():
    with pytest.raises(InputError, match="nothing has been painted yet.*Open in MaskEditor"):
        masks_per_view(np.zeros((1, 64, 64)), imagedream_rig(resolution=32))


def test_agreement_is_the_intersection_over_union_per_view():
    a = np.zeros((3, 4, 4))
    b = np.zeros((3, 4, 4))
    a[0, :2], b[0, :1] = 1, 1  # 4 of 8 pixels
    a[1], b[1] = 1, 1
    iou = agreement(a, b, band=0)
    assert iou[0] == pytest.approx(0.5) and iou[1] == 1.0 and np.isnan(iou[2])
    message = disagreement(np.repeat(np.repeat(a, 8, 1), 8, 2), np.repeat(np.repeat(b, 8, 1), 8, 2), "door")
    assert "part 'door'" in message and "view 0 (62%)" in message and "view 1" not in message  # band: 10 of 16
    assert disagreement(b, b, "door") == ""
    # a careless brush: 2 pixels over the edge of a thin strip still agrees (the brush band is not judged)
    strip, careless = np.zeros((1, 32, 32)), np.zeros((1, 32, 32))
    strip[0, 10:12], careless[0, 8:14] = 1, 1
    assert agreement(careless, strip)[0] == 1.0 and agreement(careless, strip, band=0)[0] == pytest.approx(1 / 3)
    # only view 1 painted (it agrees): the part showing unpainted in view 0 is no disagreement
    assert disagreement(a * (np.arange(3)[:, None, None] == 1), b, "door") == ""


def test_a_mask_without_an_edge_is_sure_everywhere():
    blank = np.zeros((8, 8), bool)
    sure_paint, sure_clear = certain_pixels(blank, 3.0)
    assert not sure_paint.any() and sure_clear.all()
    sure_paint, sure_clear = certain_pixels(~blank, 3.0)
    assert sure_paint.all() and not sure_clear.any()
