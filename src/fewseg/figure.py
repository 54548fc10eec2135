"""Pictures of what fewseg found: outlines on the frame, and the four-panel evaluation figure.

Outlines are painted into the image array (boundaries of a label image), not drawn as one
matplotlib patch per object: frames have hundreds of objects. Ground-truth outlines lie on
the object's own edge pixels (``find_boundaries(mode="inner")``); prediction outlines on
the pixels just outside the object (``mode="outer"``), so a prediction that matches its
truth exactly shows as two adjacent rings, and the object's pixels stay visible.

Colours (RGB) of the evaluation overlay:

========================  =================
matched prediction        green ``(0, 255, 0)``
truth it matched          blue ``(0, 128, 255)`` (a light blue: pure blue is hard to see
                          on a dark frame)
missed truth              yellow ``(255, 255, 0)``
false prediction          red ``(255, 0, 0)``
========================  =================
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ._atomic import atomic_path
from .objects import ObjectMask, labels_from_masks

__all__ = [
    "FALSE_PRED",
    "MATCHED_PRED",
    "MATCHED_TRUTH",
    "MISSED_TRUTH",
    "evaluation_figure",
    "outline",
    "overlay_array",
    "overlay_png",
]

MATCHED_PRED = (0, 255, 0)
MATCHED_TRUTH = (0, 128, 255)
MISSED_TRUTH = (255, 255, 0)
FALSE_PRED = (255, 0, 0)
TRUTH = MATCHED_TRUTH  # outline colour of the ground-truth panel
PRED = MATCHED_PRED  # outline colour of the predictions panel

_DPI = 100
_PNG_COMPRESSION = 1  # noisy microscopy barely compresses; level 1 is ~5x faster than 6, ~3 % bigger
_MAX_PANEL_PX = 1200  # larger frames are shown scaled down in the evaluation figure
_MIN_PANEL_IN = 3.0  # small frames are scaled up so titles fit


def outline(masks: Sequence[ObjectMask], shape: tuple[int, int], *, mode: str = "outer") -> np.ndarray:
    """Boolean ``(Y, X)`` image of the outlines of ``masks``.

    ``mode`` is passed to :func:`skimage.segmentation.find_boundaries` on
    ``labels_from_masks(masks, shape)``: ``"outer"`` marks the pixels around each object
    (and where two objects touch), ``"inner"`` the object's own edge pixels.

    Examples
    --------
    >>> square = ObjectMask(2, 2, np.ones((3, 3), dtype=bool))
    >>> int(outline([square], (7, 7), mode="inner").sum())  # the 8 edge pixels of a 3 x 3 square
    8
    >>> bool(outline([square], (7, 7))[1, 3]), bool(outline([square], (7, 7))[3, 3])
    (True, False)
    """
    from skimage.segmentation import find_boundaries

    if len(masks) == 0:
        return np.zeros(shape, dtype=bool)
    return find_boundaries(labels_from_masks(masks, shape), mode=mode)


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a (Y, X, 3) uint8 RGB image, got {rgb.dtype} array of shape {rgb.shape}")
    return rgb


def _check_matched(matched, masks, name: str) -> np.ndarray:
    matched = np.asarray(matched, dtype=bool).reshape(-1)
    if matched.shape[0] != len(masks):
        raise ValueError(f"{name} has {matched.shape[0]} entries for {len(masks)} masks")
    return matched


def overlay_array(
    rgb: np.ndarray,
    truth: Sequence[ObjectMask],
    predictions: Sequence[ObjectMask],
    matched_truth,
    matched_pred,
) -> np.ndarray:
    """The evaluation overlay: ``rgb`` with truth and prediction outlines coloured by outcome.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (Y, X, 3)
    truth, predictions : sequence of ObjectMask
    matched_truth, matched_pred : array of bool
        One flag per truth / prediction: did it take part in a match.

    Returns
    -------
    ndarray of uint8, shape (Y, X, 3)
        A copy of ``rgb`` where the inner outline (``outline(..., mode="inner")``) of
        matched truth is :data:`MATCHED_TRUTH` and of missed truth :data:`MISSED_TRUTH`;
        then, painted over those, the outer outline of matched predictions is
        :data:`MATCHED_PRED` and of false predictions :data:`FALSE_PRED`. Matched and
        unmatched objects are outlined separately, so a missed object touching a matched
        one keeps its own colour.

    Examples
    --------
    >>> rgb = np.zeros((8, 8, 3), np.uint8)
    >>> t = ObjectMask(2, 2, np.ones((3, 3), bool))
    >>> out = overlay_array(rgb, [t], [t], [True], [True])
    >>> out[2, 2].tolist(), out[1, 3].tolist(), out[3, 3].tolist()
    ([0, 128, 255], [0, 255, 0], [0, 0, 0])
    """
    rgb = _check_rgb(rgb)
    matched_truth = _check_matched(matched_truth, truth, "matched_truth")
    matched_pred = _check_matched(matched_pred, predictions, "matched_pred")
    shape = rgb.shape[:2]
    out = rgb.copy()
    layers = (
        (truth, ~matched_truth, "inner", MISSED_TRUTH),
        (truth, matched_truth, "inner", MATCHED_TRUTH),
        (predictions, ~matched_pred, "outer", FALSE_PRED),
        (predictions, matched_pred, "outer", MATCHED_PRED),
    )
    for masks, keep, mode, color in layers:
        chosen = [m for m, k in zip(masks, keep) if k]
        if chosen:
            out[outline(chosen, shape, mode=mode)] = color
    return out


def _outlined(rgb: np.ndarray, masks, color, mode: str) -> np.ndarray:
    out = rgb.copy()
    if len(masks):
        out[outline(masks, rgb.shape[:2], mode=mode)] = color
    return out


def overlay_png(path: str | os.PathLike, rgb: np.ndarray, masks: Sequence[ObjectMask], *, color=(0, 255, 0)) -> None:
    """Write ``rgb`` with the outer outlines of ``masks`` in ``color`` as a PNG of the same size.

    Parameters
    ----------
    path : path-like
        Written atomically (complete or absent).
    rgb : ndarray of uint8, shape (Y, X, 3)
        The frame as shown (see :func:`fewseg.render.to_rgb`).
    masks : sequence of ObjectMask
        The objects found.
    color : tuple of 3 ints
        Outline RGB.

    Examples
    --------
    >>> import tempfile, pathlib, imageio.v3 as iio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "found.png"
    >>> overlay_png(path, np.zeros((10, 12, 3), np.uint8), [ObjectMask(3, 3, np.ones((2, 2), bool))])
    >>> iio.imread(path).shape
    (10, 12, 3)
    """
    import imageio.v3 as iio

    rgb = _check_rgb(rgb)
    image = _outlined(rgb, masks, tuple(int(c) for c in color), "outer")
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png", compress_level=_PNG_COMPRESSION)


def evaluation_figure(
    path: str | os.PathLike,
    rgb: np.ndarray,
    truth: Sequence[ObjectMask],
    predictions: Sequence[ObjectMask],
    *,
    matched_truth,
    matched_pred,
    title: str | None = None,
) -> None:
    """Write the four-panel evaluation figure as a PNG.

    Panels, left to right: the image; ground-truth outlines; prediction outlines; the
    overlay of :func:`overlay_array` (matched predictions green and their truth blue,
    missed truth yellow, false predictions red) titled with precision, recall and F1, and
    a legend with the counts. Panels show the frame pixel for pixel (frames wider or
    taller than 1200 pixels are scaled down, small ones scaled up).

    Parameters
    ----------
    path : path-like
        Written atomically.
    rgb : ndarray of uint8, shape (Y, X, 3)
    truth, predictions : sequence of ObjectMask
    matched_truth, matched_pred : array of bool
        One flag per truth / prediction.
    title : str, optional
        Shown above the panels.

    Examples
    --------
    >>> import tempfile, pathlib, imageio.v3 as iio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "eval.png"
    >>> t = [ObjectMask(5, 5, np.ones((6, 6), bool))]
    >>> evaluation_figure(path, np.zeros((40, 50, 3), np.uint8), t, t,
    ...                   matched_truth=[True], matched_pred=[True], title="demo")
    >>> iio.imread(path).shape[2] in (3, 4)
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rgb = _check_rgb(rgb)
    matched_truth = _check_matched(matched_truth, truth, "matched_truth")
    matched_pred = _check_matched(matched_pred, predictions, "matched_pred")
    panels = [
        ("Image", rgb),
        (f"Ground truth ({len(truth)})", _outlined(rgb, truth, TRUTH, "inner")),
        (f"Predictions ({len(predictions)})", _outlined(rgb, predictions, PRED, "outer")),
        (_score_title(matched_truth, matched_pred), overlay_array(rgb, truth, predictions, matched_truth, matched_pred)),
    ]

    height, width = rgb.shape[:2]
    scale = min(1.0, _MAX_PANEL_PX / max(height, width))
    scale = max(scale, _MIN_PANEL_IN * _DPI / max(height, width))
    panel_w, panel_h = width * scale / _DPI, height * scale / _DPI  # inches
    gap, side, top, bottom = 0.15, 0.15, 0.45 + (0.4 if title else 0.0), 0.6
    fig_w = 4 * panel_w + 3 * gap + 2 * side
    fig_h = panel_h + top + bottom
    fig = Figure(figsize=(fig_w, fig_h), dpi=_DPI)
    FigureCanvasAgg(fig)
    interpolation = "nearest" if scale >= 1 else "antialiased"
    for i, (name, image) in enumerate(panels):
        left = side + i * (panel_w + gap)
        ax = fig.add_axes((left / fig_w, bottom / fig_h, panel_w / fig_w, panel_h / fig_h))
        ax.imshow(image, interpolation=interpolation)
        ax.set_title(name, fontsize=11)
        ax.set_axis_off()
    n_matched_truth, n_matched_pred = int(matched_truth.sum()), int(matched_pred.sum())
    entries = [
        (MATCHED_PRED, f"matched prediction ({n_matched_pred})"),
        (MATCHED_TRUTH, f"matched truth ({n_matched_truth})"),
        (MISSED_TRUTH, f"missed truth ({len(truth) - n_matched_truth})"),
        (FALSE_PRED, f"false prediction ({len(predictions) - n_matched_pred})"),
    ]
    handles = [Patch(facecolor=np.array(c) / 255, edgecolor="black", label=label) for c, label in entries]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=13, y=1 - 0.12 / fig_h, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, facecolor="white", pil_kwargs={"compress_level": _PNG_COMPRESSION})


def _score_title(matched_truth: np.ndarray, matched_pred: np.ndarray) -> str:
    n_truth, n_pred = len(matched_truth), len(matched_pred)
    precision = matched_pred.sum() / n_pred if n_pred else 0.0
    recall = matched_truth.sum() / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f"Overlay: precision {precision:.2f}, recall {recall:.2f}, F1 {f1:.2f}"
