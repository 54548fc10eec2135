"""Describe each candidate by a vector, so candidates can be compared with the examples.

The weight-free descriptor: size, shape and per-channel appearance, all computed for
every object at once from label images (``bincount``), so describing a thousand
candidates costs about as much as a few filters over the frame. The SAM methods pool
encoder features instead (``fewseg.sam``); both return ``(N, D)`` float arrays.
"""

from __future__ import annotations

import numpy as np

from .contacts import structures
from .examples import ExampleProfile, ring_masks
from ..objects import Frame, ObjectMask, label_shapes, labels_from_masks

DESCRIPTOR_NAMES = (
    "log_area",
    "elongation",
    "ellipse_fill",
    "log_signal",
    "signal_contrast",
    "signal_texture",
    "log_cluster",
)


# Size and shape: unknown (NaN) for an object cut by the frame's edge.
SHAPE_DESCRIPTORS = ("log_area", "elongation", "ellipse_fill")


def descriptor_names(n_channels: int) -> tuple[str, ...]:
    return DESCRIPTOR_NAMES + tuple(f"channel{c}_level" for c in range(n_channels))


def _sums(values: np.ndarray, labels: np.ndarray, n: int, where: np.ndarray) -> np.ndarray:
    """Sum of ``values`` per label 1..n over the labelled pixels ``where`` (flat indices,
    ascending): the same sums, added in the same raster order, as a ``bincount`` over
    the whole frame, at the cost of the objects' pixels (the examples are a few)."""
    return np.bincount(labels.ravel()[where], weights=values.ravel()[where], minlength=n + 1)[1:]


def channel_levels(frame: Frame) -> tuple[float, ...]:
    """Each channel's median: the zero of :func:`describe`'s channel levels."""
    return tuple(float(np.median(channel)) for channel in frame.data)


def describe(frame: Frame, signal: np.ndarray, masks: list[ObjectMask], profile: ExampleProfile, *,
             base: tuple[float, ...] | None = None, clusters: list[ObjectMask] | None = None) -> np.ndarray:
    """Descriptors of ``masks`` on ``frame``: an ``(N, D)`` float64 array.

    Columns are :func:`descriptor_names`: log area; elongation (ratio of the ellipse
    axes from second moments); ellipse fill (area over the area of the moment ellipse:
    ~1 for ellipses, lower for crescents and branched shapes); log mean object signal;
    contrast (inside minus the ring just outside, over inside); texture (coefficient of
    variation inside); and each channel's mean level in noise units above the frame
    median (``base``, :func:`channel_levels`, when already computed), as
    ``sign * log(1 + |level|)``. Masks must not overlap (first claim wins where they do).

    For an object that touches the frame's edge (so is likely cut by it) the size and
    shape columns (:data:`SHAPE_DESCRIPTORS`) are NaN: unknown, not zero. The selector
    (:func:`fewseg.classic.select.mixture_posterior`) leaves unknown columns out.

    The cluster size (``log_cluster``: log of the area of the structure an object is a
    piece of over its own: the objects joined to it through flat contacts,
    :func:`fewseg.classic.contacts.structures`) comes from ``masks`` themselves, or,
    given ``clusters`` (one mask per object: the examples' clusters in their frame,
    :func:`fewseg.classic.propose.example_clusters`), from those.
    """
    n = len(masks)
    names = descriptor_names(frame.data.shape[0])
    if n == 0:
        return np.zeros((0, len(names)))
    labels = labels_from_masks(masks, frame.shape)
    shapes = label_shapes(labels, n)
    count = shapes["area"]

    on = np.flatnonzero(labels)
    s_sum = _sums(signal, labels, n, on)
    s_mean = s_sum / count
    s_sq = _sums(signal.astype(np.float64) ** 2, labels, n, on) / count
    texture = np.sqrt(np.maximum(s_sq - s_mean**2, 0)) / np.maximum(np.abs(s_mean), 1e-3)
    ring = ring_masks(labels, width=max(2, int(round(profile.radius / 2))))
    around = np.flatnonzero(ring)
    ring_count = np.bincount(ring.ravel()[around], minlength=n + 1)[1:].astype(np.float64)
    ring_mean = np.where(ring_count > 0, _sums(signal, ring, n, around) / np.maximum(ring_count, 1), 0.0)
    contrast = (s_mean - ring_mean) / np.maximum(np.abs(s_mean), 1e-3)

    levels = []
    for channel, sigma, zero in zip(frame.data, profile.noise, base or channel_levels(frame)):
        levels.append((_sums(channel, labels, n, on) / count - zero) / sigma)
    if clusters is not None:
        log_cluster = np.log(np.maximum(np.array([c.area for c in clusters], dtype=np.float64), count) / count)
    else:
        # Objects that touch form clusters; a piece of a large structure (an aggregate cut
        # into object-sized parts) sits in a cluster much larger than itself. Objects of a
        # kind that touch meet in a valley and each stands alone (:mod:`.contacts`).
        # (An object hidden under earlier ones has no pixel of its own: a cluster of itself.)
        joined = structures(labels, signal, n)
        cluster_area = np.bincount(joined, weights=np.r_[0.0, count])
        log_cluster = np.log(np.maximum(cluster_area[joined[1:]], count) / count)

    # Brightness varies multiplicatively between objects: compare it on a log scale.
    log_signal = np.log(np.maximum(s_mean, 0.05))
    log_levels = [np.sign(v) * np.log1p(np.abs(v)) for v in levels]
    out = np.column_stack([np.log(count), shapes["elongation"], shapes["ellipse_fill"], log_signal, contrast, texture,
                           log_cluster, *log_levels])
    # An object cut by the frame's edge shows only part of its size and shape: those
    # descriptors are unknown (NaN), and the selector judges it on the rest.
    cut = np.array([m.row <= 0 or m.col <= 0 or m.row + m.mask.shape[0] >= frame.shape[0]
                    or m.col + m.mask.shape[1] >= frame.shape[1] for m in masks])
    out[np.ix_(cut, [names.index(n) for n in SHAPE_DESCRIPTORS])] = np.nan
    return out
