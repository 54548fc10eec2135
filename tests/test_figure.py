import imageio.v3 as iio
import numpy as np
import pytest

from fewseg import ObjectMask
from fewseg.figure import (
    FALSE_PRED,
    MATCHED_PRED,
    MATCHED_TRUTH,
    MISSED_TRUTH,
    evaluation_figure,
    outline,
    overlay_array,
    overlay_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY = 50


def _square(row, col, size=4) -> ObjectMask:
    return ObjectMask(row, col, np.ones((size, size), dtype=bool))


def _edge(row, col, size=4) -> set:
    """Edge pixels of a square (inner outline)."""
    return {(r, c) for r in range(row, row + size) for c in range(col, col + size)
            if r in (row, row + size - 1) or c in (col, col + size - 1)}


def _ring(row, col, size=4) -> set:
    """Pixels outside a square with a 4-connected neighbour inside (outer outline)."""
    sides = set()
    for i in range(size):
        sides |= {(row - 1, col + i), (row + size, col + i), (row + i, col - 1), (row + i, col + size)}
    return sides


@pytest.fixture
def scene():
    rgb = np.full((20, 24, 3), GREY, dtype=np.uint8)
    rgb[..., 2] = np.arange(24, dtype=np.uint8)  # so "unchanged" is checked pixel by pixel
    matched, missed = _square(3, 3), _square(3, 14)
    exact, false = _square(3, 3), _square(13, 4)
    return rgb, [matched, missed], [false, exact], [True, False], [False, True]


def test_overlay_array_colours_every_pixel_as_documented(scene):
    rgb, truth, preds, matched_truth, matched_pred = scene
    out = overlay_array(rgb, truth, preds, matched_truth, matched_pred)
    expected = rgb.copy()
    for (r, c) in _edge(3, 3):
        expected[r, c] = MATCHED_TRUTH
    for (r, c) in _edge(3, 14):
        expected[r, c] = MISSED_TRUTH
    for (r, c) in _ring(13, 4):
        expected[r, c] = FALSE_PRED
    for (r, c) in _ring(3, 3):
        expected[r, c] = MATCHED_PRED
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    np.testing.assert_array_equal(out, expected)
    assert out is not rgb and (rgb[..., 0] == GREY).all()  # input untouched


def test_overlay_array_predictions_paint_over_truth():
    rgb = np.zeros((12, 12, 3), np.uint8)
    truth = [_square(2, 2)]
    pred = [_square(2, 6)]  # touches the truth: its outer ring covers the truth's right edge
    out = overlay_array(rgb, truth, pred, [False], [False])
    assert out[3, 5].tolist() == list(FALSE_PRED)
    assert out[3, 2].tolist() == list(MISSED_TRUTH)


def test_overlay_array_empty_inputs():
    rgb = np.full((6, 7, 3), 9, np.uint8)
    np.testing.assert_array_equal(overlay_array(rgb, [], [], [], []), rgb)


def test_overlay_array_checks_inputs(scene):
    rgb, truth, preds, matched_truth, matched_pred = scene
    with pytest.raises(ValueError, match="matched_truth has 1 entries for 2 masks"):
        overlay_array(rgb, truth, preds, [True], matched_pred)
    with pytest.raises(ValueError, match="uint8"):
        overlay_array(rgb.astype(np.float32), truth, preds, matched_truth, matched_pred)


def test_outline_modes():
    inner = outline([_square(2, 2)], (9, 9), mode="inner")
    outer = outline([_square(2, 2)], (9, 9))
    assert set(zip(*np.nonzero(inner))) == _edge(2, 2)
    assert set(zip(*np.nonzero(outer))) == _ring(2, 2)
    assert not outline([], (3, 3)).any()


def test_overlay_png(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    path = tmp_path / "found.png"
    overlay_png(path, rgb, [_square(5, 6), _square(20, 30, 3)], color=(255, 0, 255))
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    out = iio.imread(path)
    assert out.shape == (30, 41, 3) and out.dtype == np.uint8
    ring = _ring(5, 6) | _ring(20, 30, 3)
    for r in range(30):
        for c in range(41):
            want = (255, 0, 255) if (r, c) in ring else tuple(rgb[r, c])
            assert tuple(out[r, c]) == want, (r, c)
    assert [p.name for p in tmp_path.iterdir()] == ["found.png"]  # no temporary left behind


def test_overlay_png_failure_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        overlay_png(tmp_path / "bad.png", np.zeros((4, 4)), [])
    assert list(tmp_path.iterdir()) == []


def _png_size(path):
    image = iio.imread(path)
    return image.shape


def test_evaluation_figure_native_resolution(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 120, (400, 500, 3), dtype=np.uint8)
    # many objects: outlines are painted, not one patch per object
    truth = [_square(10 + 20 * (i // 24), 10 + 20 * (i % 24), 6) for i in range(300) if 10 + 20 * (i // 24) < 390]
    preds = truth[::2] + [_square(395, 490, 3)]
    matched_truth = np.zeros(len(truth), bool)
    matched_truth[::2] = True
    matched_pred = np.r_[np.ones(len(truth[::2]), bool), False]
    path = tmp_path / "eval.png"
    evaluation_figure(path, rgb, truth, preds, matched_truth=matched_truth, matched_pred=matched_pred, title="Run 1")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = _png_size(path)
    assert 4 * 500 <= width <= 4 * 500 + 200  # four panels at one pixel per pixel, small margins
    assert 400 <= height <= 400 + 200


def test_evaluation_figure_small_frame_scaled_up_and_no_objects(tmp_path):
    path = tmp_path / "eval.png"
    evaluation_figure(path, np.zeros((30, 40, 3), np.uint8), [], [], matched_truth=[], matched_pred=[])
    height, width, _ = _png_size(path)
    assert width >= 4 * 300 and height >= 0.75 * 300  # panels at least 3 inches at 100 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["eval.png"]


def test_evaluation_figure_checks_flags(tmp_path):
    with pytest.raises(ValueError, match="matched_pred"):
        evaluation_figure(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8), [], [_square(1, 1)],
                          matched_truth=[], matched_pred=[True, False])
    assert not (tmp_path / "x.png").exists()
