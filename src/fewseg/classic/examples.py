"""What the examples teach: size, and which channels show the objects and how.

The user outlines a few of many objects. Nothing outside the outlines is assumed to be
background, so everything here is learned from the inside of the examples and the thin
ring of pixels just outside each one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from ..objects import Annotation, Frame, ObjectMask, labels_from_masks


def example_masks(annotations: list[Annotation] | list[ObjectMask], shape: tuple[int, int], *,
                  source: str = "examples") -> list[ObjectMask]:
    """Rasterise example annotations into masks (masks pass through), rejecting any that
    leave no pixels. Clicks (annotations with only a ``point``) need their frame:
    :func:`fewseg.classic.clicks.click_or_outline_masks` takes both.

    Raises
    ------
    InputError
        When there are no examples, an example covers no pixel centre of the frame, or
        one is a click.
    """
    if not annotations:
        raise InputError(source, "no example annotations to learn from")
    masks = []
    for k, ann in enumerate(annotations):
        where = getattr(ann, "origin", "") or f"{source}: example {k}"
        if is_click(ann):
            raise InputError(where, "a click (point) example needs the frame to outline it on")
        m = ann if isinstance(ann, ObjectMask) else ann.to_mask(shape)
        if m.area == 0:
            raise InputError(where, f"example covers no pixel of the {shape[1]} x {shape[0]} (X x Y) frame")
        masks.append(m)
    return masks


def is_click(item) -> bool:
    """Whether an example is a click: an annotation with a ``point`` and no outline."""
    return isinstance(item, Annotation) and item.polygon is None and item.mask is None and item.point is not None


def robust_noise(image: np.ndarray) -> float:
    """Noise standard deviation from the median absolute neighbour difference.

    Robust to objects and slow background changes: ``1.4826 * MAD(diff) / sqrt(2)``.
    """
    d = np.diff(image.astype(np.float32, copy=False), axis=-1).ravel()
    mad = np.median(np.abs(d - np.median(d)))
    return float(max(1.4826 * mad / np.sqrt(2.0), 1e-6))


def estimate_background(image: np.ndarray, *, radius: float) -> np.ndarray:
    """Slowly varying background of a ``(Y, X)`` image under objects of ``radius`` pixels.

    A low percentile over windows about eight object diameters wide, computed on a
    grid coarsened by the object radius and interpolated back, so it follows uneven
    illumination without rising into objects, at a cost independent of the radius.
    """
    bg = coarse_background(image[::background_step(radius), ::background_step(radius)], radius=radius)
    zoom = (image.shape[0] / bg.shape[0], image.shape[1] / bg.shape[1])
    full = ndi.zoom(bg, zoom, order=1, mode="nearest", grid_mode=True)
    return full[: image.shape[0], : image.shape[1]].astype(np.float32)


def background_step(radius: float) -> int:
    """The coarse grid :func:`estimate_background` works on: every this many pixels."""
    return max(1, int(round(radius)))


def coarse_background(small: np.ndarray, *, radius: float) -> np.ndarray:
    """:func:`estimate_background` on its coarse grid: ``small`` is the image sampled
    every :func:`background_step` pixels (``image[::step, ::step]``). Split out so a
    frame read block by block (:mod:`fewseg.classic.blockwise`) gets the same background."""
    step = background_step(radius)
    size = max(3, int(round(16 * radius / step)) | 1)
    bg = percentile_filter(small, 30, size=size)
    return ndi.uniform_filter(bg, size=max(3, size // 2 | 1), mode="reflect")


def percentile_filter(image: np.ndarray, percentile: float, *, size: int) -> np.ndarray:
    """``scipy.ndimage.percentile_filter(image, percentile, size=size, mode="reflect")``,
    the same array (each output is one of the window's values), about three times faster.

    The windows are selected with ``np.partition`` a block of rows at a time, in float32
    when the values are float32 numbers (a frame's are), where numpy selects fastest.
    Other cases (not 2-D, an even size, an image not larger than the window's reach) go
    to scipy.
    """
    image = np.asarray(image)
    reach = size // 2
    if (image.ndim != 2 or size % 2 == 0 or min(image.shape) <= reach or image.dtype.kind != "f"
            or not 0 <= percentile < 100):
        return ndi.percentile_filter(image, percentile, size=size, mode="reflect")
    n = size * size
    rank = int(float(n) * percentile / 100.0)  # as scipy ranks a percentile of n values
    values = image
    if image.dtype != np.float32 and np.array_equal(image.astype(np.float32).astype(image.dtype), image):
        values = image.astype(np.float32)
    # scipy's "reflect" (d c b a | a b c d | d c b a) is numpy's "symmetric".
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(values, reach, mode="symmetric"), (size, size))
    out = np.empty(image.shape, dtype=values.dtype)
    rows = max(1, (1 << 19) // (image.shape[1] * n))  # ~2 MB of float32 windows per block
    for r in range(0, image.shape[0], rows):
        block = windows[r:r + rows].reshape(-1, n)
        out[r:r + rows] = np.partition(block, rank, axis=1)[:, rank].reshape(-1, image.shape[1])
    return out.astype(image.dtype, copy=False)


def ring_masks(labels: np.ndarray, width: int) -> np.ndarray:
    """Labels of the ``width``-pixel ring just outside each object (not on other objects).

    A background pixel belongs to the ring of its nearest object when it lies more than
    1 and at most ``width + 1`` pixels from it (as ``skimage.segmentation.expand_labels``
    would grow the labels, from one distance transform).
    """
    if not labels.any():
        return np.zeros_like(labels)
    windows = _ring_windows(labels, reach=width + 1)
    if windows is None:
        return _ring_in(labels, width)
    # A few objects (the examples): the transform in windows around them, not over the
    # whole frame. A ring pixel's window holds every object pixel within its reach, so
    # it gets the same nearest object as on the whole frame, ties included (tested).
    out = np.zeros_like(labels)
    for r0, r1, c0, c1 in windows:
        ring = _ring_in(labels[r0:r1, c0:c1], width)
        np.copyto(out[r0:r1, c0:c1], ring, where=ring != 0)
    return out


def _ring_windows(labels: np.ndarray, *, reach: int, max_objects: int = 64) -> list[list[int]] | None:
    """Disjoint windows ``[r0, r1, c0, c1]`` for :func:`ring_masks`: each object's box
    grown by ``reach``, overlapping ones merged; None (use the whole frame) for more
    than ``max_objects`` objects or windows covering over half the frame."""
    if labels.dtype.kind not in "iu":
        return None
    boxes = [b for b in ndi.find_objects(labels) if b is not None]
    if len(boxes) > max_objects:
        return None
    h, w = labels.shape
    rects = [[max(0, r.start - reach), min(h, r.stop + reach), max(0, c.start - reach), min(w, c.stop + reach)]
             for r, c in boxes]
    merged = True
    while merged:
        merged, out = False, []
        for r in rects:
            for o in out:
                if r[0] < o[1] and o[0] < r[1] and r[2] < o[3] and o[2] < r[3]:
                    o[:] = [min(o[0], r[0]), max(o[1], r[1]), min(o[2], r[2]), max(o[3], r[3])]
                    merged = True
                    break
            else:
                out.append(r)
        rects = out
    if sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in rects) > labels.size // 2:
        return None
    return rects


def _ring_in(labels: np.ndarray, width: int) -> np.ndarray:
    """:func:`ring_masks` from one distance transform of all of ``labels``."""
    rows, cols = ndi.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
    # Squared distances from the nearest-object indices, exactly, in integers (cheaper
    # than asking the transform for float distances too).
    d2 = (rows - np.arange(labels.shape[0], dtype=rows.dtype)[:, None]) ** 2
    d2 += (cols - np.arange(labels.shape[1], dtype=cols.dtype)[None, :]) ** 2
    ring = (d2 > 1) & (d2 <= (width + 1) ** 2)
    return np.where(ring, labels[rows, cols], 0).astype(labels.dtype, copy=False)


@dataclass(frozen=True)
class ExampleProfile:
    """Facts learned from the examples, serialisable to JSON.

    Attributes
    ----------
    areas : tuple of float
        Example areas in pixels.
    radius : float
        Median equivalent radius ``sqrt(area / pi)``.
    noise : tuple of float
        Per-channel noise standard deviation.
    weights : tuple of float
        Signed per-channel weights: the object signal is
        ``sum_c weights[c] * (x_c - background_c) / noise[c]``, divided by ``signal_scale``.
        A positive weight means objects are brighter than their surroundings in that
        channel, a negative one darker; ~0 means the channel does not show them.
    signal_scale : float
        Mean signal inside the examples before scaling, so examples average 1.0.
    contrast : tuple of float
        Per-channel mean (inside - ring) / noise over the examples.
    """

    areas: tuple[float, ...]
    radius: float
    noise: tuple[float, ...]
    weights: tuple[float, ...]
    signal_scale: float
    contrast: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def learn_profile(frame: Frame, masks: list[ObjectMask]) -> ExampleProfile:
    """Learn size and per-channel appearance from example masks on one frame."""
    return learn_profile_and_signal(frame, masks)[0]


def learn_profile_and_signal(frame: Frame, masks: list[ObjectMask]) -> tuple[ExampleProfile, np.ndarray]:
    """:func:`learn_profile` and the frame's :func:`object_signal` under it, computed once
    for the same frame's bytes and the same masks (:func:`~fewseg.classic.reuse.reuse`: a
    correction round that adds clicks or negatives teaches the same profile; the signal
    is read-only)."""
    from .reuse import array_key, masks_key, reuse

    return reuse("profile", (array_key(frame.data), masks_key(masks)), lambda: _learn_profile_and_signal(frame, masks))


def _learn_profile_and_signal(frame: Frame, masks: list[ObjectMask]) -> tuple[ExampleProfile, np.ndarray]:
    shape = frame.shape
    areas = np.array([m.area for m in masks], dtype=np.float64)
    radius = float(np.sqrt(np.median(areas) / np.pi))
    labels = labels_from_masks(masks, shape)
    ring = ring_masks(labels, width=max(2, int(round(radius / 2))))
    n = len(masks)
    idx = np.arange(1, n + 1)
    noise, contrast = [], []
    for channel in frame.data:
        noise.append(robust_noise(channel))
        inside = _label_means(channel, labels, idx)
        outside = _label_means(channel, ring, idx)
        if not np.isfinite(outside).all():  # (the channel's median only when needed: ~10 ms a frame)
            outside = np.where(np.isfinite(outside), outside, np.median(channel))
        # (An example wholly under earlier ones has no pixel of its own: NaN, left out.)
        contrast.append(float(np.nanmean((inside - outside) / noise[-1])))
    contrast = np.array(contrast)
    # Channels whose contrast is small next to the best channel's only add noise.
    strength = np.abs(contrast)
    keep = strength >= 0.1 * strength.max() if strength.max() > 0 else np.ones_like(strength, bool)
    weights = np.where(keep, contrast, 0.0)
    weights = weights / max(np.abs(weights).sum(), 1e-12)
    profile = ExampleProfile(
        areas=tuple(float(a) for a in areas),
        radius=radius,
        noise=tuple(noise),
        weights=tuple(float(w) for w in weights),
        signal_scale=1.0,
        contrast=tuple(float(c) for c in contrast),
    )
    raw = object_signal(frame, profile)
    scale = float(np.nanmean(_label_means(raw, labels, idx)))
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(
            frame.source,
            "the examples are not brighter or darker than their surroundings in any channel; "
            "check that the examples belong to this frame and channel",
        )
    return ExampleProfile(**{**asdict(profile), "signal_scale": scale}), raw / np.float32(scale)


def _label_means(values: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``ndi.mean(values, labels, idx)`` per label; NaN, quietly, for a label with no pixel
    (an example wholly under earlier ones, e.g. two clicks outlined as the same object).

    The same numbers, from each label's box instead of the whole frame: scipy sums a
    label's pixels with ``np.bincount``, in raster order, and a box holds them in the same
    order (tested equal).
    """
    idx = np.asarray(idx)
    if labels.dtype.kind not in "iu" or idx.ndim != 1 or values.shape != labels.shape:
        with np.errstate(invalid="ignore", divide="ignore"):
            return ndi.mean(values, labels, idx)
    boxes = ndi.find_objects(labels)
    sums, counts = np.zeros(len(idx)), np.zeros(len(idx))
    for i, k in enumerate(idx):
        box = boxes[k - 1] if 1 <= k <= len(boxes) else None
        if box is None:
            continue
        here = labels[box].ravel()
        counts[i] = np.count_nonzero(here == k)
        sums[i] = np.bincount(here, weights=values[box].ravel(), minlength=k + 1)[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def object_signal(frame: Frame, profile: ExampleProfile, *, backgrounds=None) -> np.ndarray:
    """A ``(Y, X)`` float32 image in which objects like the examples are bright.

    Background-subtracted, noise-normalised channels combined with the learned signed
    weights and scaled so the examples' mean is 1.0 and the background is ~0.
    ``backgrounds``: per channel, :func:`estimate_background` of ``channel * sign(weight)``
    when computed elsewhere (frame-wide, for a block of a larger frame).
    """
    out = np.zeros(frame.shape, dtype=np.float32)
    for c, (channel, w, sigma) in enumerate(zip(frame.data, profile.weights, profile.noise)):
        if w == 0:
            continue
        bg = backgrounds[c] if backgrounds is not None else estimate_background(channel * np.sign(w), radius=profile.radius)
        flat = channel.astype(np.float32) - bg * np.sign(w)
        out += np.float32(w / sigma) * flat
    return out / np.float32(profile.signal_scale)
