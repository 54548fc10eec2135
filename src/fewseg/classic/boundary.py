"""Redraw outlines with a per-pixel model learned from the examples of this frame.

The proposer cuts every object at one fraction of its own peak
(:func:`~fewseg.classic.propose.trim_regions`). Where the examples' outlines lie is learned here
instead, pixel by pixel, from the frame itself: no weights are shipped.

``fit_boundary`` outlines each example as the proposer would (its "current" outline),
takes the pixels in a band of :attr:`BoundaryModel.band` pixels around that outline, and
fits a logistic regression that tells the pixels inside the example's true outline from
those outside. Each pixel is described relative to the object whose outline is nearest
(its owner): its signed distance to that outline (in pixels and in object radii) and the
signal smoothed at three scales, the gradient magnitude and Laplacian of two of them, each
divided by the owner's level (the 75th percentile of its smoothed signal), so dim and
bright objects are described alike. ``BoundaryModel.redraw`` recomputes the same
features around the proposer's outlines of the kept objects and outlines each anew
inside its band: the pixels whose probability, lightly smoothed, is above one half.

On stardist's nuclei the truth's boundary lies where the signal falls fastest: between
the last pixel inside (~0.48 of the nucleus's peak) and the first outside (~0.35), at a
slightly lower fraction of the peak in the brightest nuclei (docs/performance.md, "Learned boundary";
``benchmarks/boundary_study.py``).

Examples
--------
>>> import numpy as np
>>> from fewseg.objects import ObjectMask
>>> yy, xx = np.mgrid[:64, :64]
>>> signal = np.exp(-((yy - 32.0) ** 2 + (xx - 32.0) ** 2) / 120.0).astype(np.float32)
>>> truth = ObjectMask.from_full(np.hypot(yy - 32, xx - 32) <= 9)
>>> current = ObjectMask.from_full(np.hypot(yy - 32, xx - 32) <= 7)
>>> model = fit_boundary(signal, [truth], [current], radius=9.0)
>>> redrawn = model.redraw(signal, [current])[0]
>>> round(redrawn.iou(truth), 2) > round(current.iou(truth), 2)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..objects import ObjectMask, labels_from_masks
from .propose import ProposerSettings, segment_signal, smooth_signal, tidy_labels


@dataclass(frozen=True, eq=False)
class BoundaryModel:
    """A fitted per-pixel inside / outside model (logistic regression).

    Attributes
    ----------
    radius : float
        The examples' median equivalent radius; the feature scales follow it.
    band : float
        Pixels farther than this from an object's current outline keep their side.
    mean, scale : ndarray, shape (F,)
        Standardisation of the features.
    weights : ndarray, shape (F + 1,)
        Logistic weights (the last is the bias).
    """

    radius: float
    band: float
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    def to_dict(self) -> dict:
        """What was learned, as JSON-ready data."""
        return {"radius": self.radius, "band": self.band, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist()}

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Probability that each pixel (a row of :func:`pixel_features`) is inside its owner."""
        z = (features - self.mean) / self.scale @ self.weights[:-1] + self.weights[-1]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def redraw(self, signal: np.ndarray, masks: list[ObjectMask]) -> list[ObjectMask]:
        """New outlines of ``masks`` (non-overlapping after, earlier masks first where
        they overlap) on the ``(Y, X)`` object ``signal``: one mask per input, in order.
        A mask that would lose every pixel keeps its old outline."""
        if not masks:
            return []
        labels, window = _labels_in_window(masks, signal.shape, int(np.ceil(self.band)) + _reach(self.radius))
        local = signal[window]
        signed, owner = outline_geometry(labels)
        around = (np.abs(signed) <= self.band) & (owner > 0)
        inside = np.zeros(labels.shape, dtype=np.float32)
        inside[signed < 0] = 1.0
        inside[around] = self.probability(pixel_features(local, labels, signed, owner, around, radius=self.radius))
        inside = ndi.gaussian_filter(inside, SMOOTH)
        drawn = np.where(signed < -self.band, labels, np.where(around & (inside > 0.5), owner, 0))
        # Each object's largest 4-connected piece, holes filled (all at once).
        present = [value for value, box in enumerate(ndi.find_objects(drawn), start=1) if box is not None]
        out = list(masks)
        for value, m in zip(present, tidy_labels(drawn)):
            out[value - 1] = ObjectMask(m.row + window[0].start, m.col + window[1].start, m.mask)
        return out


#: Gaussian sigma (pixels) of the smoothing of the probability before it is cut at 0.5.
SMOOTH = 1.0


def _scales(radius: float) -> tuple[float, float, float]:
    """Smoothing scales of the signal for objects of ``radius`` (0.7, 1.5 and 3 pixels
    at stardist's radius of ~12)."""
    k = max(radius, 4.0) / 12.0
    return 0.7 * k, 1.5 * k, 3.0 * k


def band_width(radius: float) -> float:
    """Half-width in pixels of the band around an outline where it may move."""
    return max(2.0, radius / 3.0)


def _reach(radius: float) -> int:
    """How far the widest filter of :func:`pixel_features` reaches, in pixels."""
    return int(4 * max(_scales(radius)) + 0.5) + 2


def _labels_in_window(masks: list[ObjectMask], shape: tuple[int, int], margin: int):
    """Label image (first mask wins) of the box holding every mask plus ``margin``."""
    r0 = max(min(m.row for m in masks) - margin, 0)
    c0 = max(min(m.col for m in masks) - margin, 0)
    r1 = min(max(m.row + m.mask.shape[0] for m in masks) + margin, shape[0])
    c1 = min(max(m.col + m.mask.shape[1] for m in masks) + margin, shape[1])
    moved = [ObjectMask(m.row - r0, m.col - c0, m.mask) for m in masks]
    return labels_from_masks(moved, (r1 - r0, c1 - c0)), (slice(r0, r1), slice(c0, c1))


def outline_geometry(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's signed distance to the nearest outline of a ``(Y, X)`` label image
    (negative inside an object, 0 on its outermost pixels) and its owner: the label it
    lies in, or, outside every object, the nearest object's."""
    inside = labels > 0
    edge = np.zeros(labels.shape, dtype=bool)
    rows, cols = np.diff(labels, axis=0) != 0, np.diff(labels, axis=1) != 0
    edge[1:] |= rows
    edge[:-1] |= rows
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    edge &= inside
    # One transform: the pixel of an object nearest to a pixel outside is one of its
    # outermost pixels, so the distance to those is both sides' distance.
    distance, (rr, cc) = ndi.distance_transform_edt(~edge, return_indices=True)
    return np.where(inside, -distance, distance), np.where(inside, labels, labels[rr, cc])


def object_levels(smooth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The 75th percentile of ``smooth`` in each label (index = label; 0 for none), a
    level that one bright spot in an object does not raise."""
    n = int(labels.max())
    level = np.zeros(n + 1)
    flat = labels.ravel()
    on = flat > 0
    lab, val = flat[on], smooth.ravel()[on]
    if lab.size == 0:
        return level
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    start = np.searchsorted(lab, np.arange(1, n + 1))
    count = np.bincount(lab, minlength=n + 1)[1:]
    has = count > 0
    level[1:][has] = val[start[has] + (0.75 * (count[has] - 1)).astype(int)]
    return level


def pixel_features(signal: np.ndarray, labels: np.ndarray, signed: np.ndarray, owner: np.ndarray, where: np.ndarray, *,
                   radius: float) -> np.ndarray:
    """Features of the pixels ``where`` (a boolean ``(Y, X)`` mask): rows in raster order.

    Signed distance to the owner's outline in pixels and in the owner's radii; the
    signal smoothed at three scales (:func:`_scales`); the gradient magnitude and the
    Laplacian of the two coarser ones (finite differences, scale-normalised); each
    signal feature divided by the owner's level (:func:`object_levels` of the finest).
    """
    signal = signal.astype(np.float32, copy=False)
    smoothed = [ndi.gaussian_filter(signal, s) for s in _scales(radius)]
    level = np.maximum(object_levels(smoothed[0], labels), 1e-6)
    area = np.bincount(labels.ravel(), minlength=level.size).astype(float)
    obj_radius = np.sqrt(np.maximum(area, 1.0) / np.pi)
    o = owner[where]
    d = signed[where]
    scale = level[o]
    columns = [d, d / obj_radius[o]] + [g[where] / scale for g in smoothed]
    rows, cols = np.nonzero(where)
    up, down = np.maximum(rows - 1, 0), np.minimum(rows + 1, where.shape[0] - 1)
    left, right = np.maximum(cols - 1, 0), np.minimum(cols + 1, where.shape[1] - 1)
    for s, g in zip(_scales(radius)[1:], smoothed[1:]):
        # Central differences at the pixels asked for (one-sided at the window's edge, as
        # np.gradient; the Laplacian repeats the edge pixel, as ndi.laplace's "reflect").
        centre, n, so, w, e = g[rows, cols], g[up, cols], g[down, cols], g[rows, left], g[rows, right]
        d_row = np.where((rows > 0) & (rows < where.shape[0] - 1), (so - n) / 2, so - n)
        d_col = np.where((cols > 0) & (cols < where.shape[1] - 1), (e - w) / 2, e - w)
        columns.append(s * np.hypot(d_row, d_col) / scale)
        columns.append(s * s * (n + so + w + e - 4 * centre) / scale)
    return np.stack(columns, axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, iterations: int = 30):
    """Logistic regression by Newton's method on standardised features.

    Returns ``(mean, scale, weights)``; ``weights[-1]`` is the bias.
    """
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    ridge = l2 * np.eye(w.size)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        step = np.linalg.solve((z * (p * (1 - p))[:, None]).T @ z + ridge, z.T @ (p - y) + l2 * w)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return mean, scale, w


def fit_boundary(signal: np.ndarray, examples: list[ObjectMask], current: list[ObjectMask | None], *,
                 radius: float) -> BoundaryModel | None:
    """Learn where the examples' outlines lie relative to the signal and to the outline
    the proposer drew for each (``current[k]`` for ``examples[k]``; None: none found).

    Returns None when the band around the current outlines does not hold pixels of both
    sides (nothing to learn).
    """
    pairs = [(e, c) for e, c in zip(examples, current) if c is not None and c.area > 0]
    if not pairs:
        return None
    band = band_width(radius)
    labels, window = _labels_in_window([c for _, c in pairs], signal.shape, int(np.ceil(band)) + _reach(radius))
    truth = labels_from_masks([e for e, _ in pairs], signal.shape)[window]
    signed, owner = outline_geometry(labels)
    around = (np.abs(signed) <= band) & (owner > 0)
    y = (truth[around] == owner[around]).astype(float)
    if y.size == 0 or y.min() == y.max():
        return None
    x = pixel_features(signal[window], labels, signed, owner, around, radius=radius)
    mean, scale, weights = fit_logistic(x, y)
    return BoundaryModel(radius=float(radius), band=band, mean=mean, scale=scale, weights=weights)


def proposed_outlines(signal: np.ndarray, examples: list[ObjectMask], settings: ProposerSettings, *, min_iou: float = 0.3
                      ) -> list[ObjectMask | None]:
    """The proposer's outline of each example (``settings``: fitted
    :class:`~fewseg.classic.propose.ProposerSettings`): in a window around the example, the
    tidied proposal that overlaps it most (IoU), or None below ``min_iou``."""
    margin = int(3 * settings.peak_radius) + 4
    out: list[ObjectMask | None] = []
    for m in examples:
        r0, c0 = max(m.row - margin, 0), max(m.col - margin, 0)
        win = (slice(r0, m.row + m.mask.shape[0] + margin), slice(c0, m.col + m.mask.shape[1] + margin))
        labels = segment_signal(smooth_signal(signal[win], settings), settings)
        local = ObjectMask(m.row - r0, m.col - c0, m.mask)
        found = tidy_labels(labels, outline_sigma=settings.outline_sigma)
        ious = [local.iou(f) for f in found]
        best = int(np.argmax(ious)) if ious else -1
        out.append(None if best < 0 or ious[best] < min_iou else
                   ObjectMask(found[best].row + r0, found[best].col + c0, found[best].mask))
    return out
