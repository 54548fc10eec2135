"""Examples on several frames, one fit: the training frame made of the crops around them.

The weight-free engine learns from one frame (:meth:`fewseg.classic.model.WeightFreeSegmenter.fit`):
a profile and an object signal, the proposer fitted around the examples, each example
described in its cluster. Examples (and negatives) on several frames (positions, planes,
time points) are all learned from by fitting on one *training frame*: the crop around
each frame's examples (their bounding box plus :func:`fit_margin`, clipped to the
frame) laid side by side, top-aligned, a shorter crop continued downwards by its mirror
image (so the noise and the background statistics stay those of real pixels), the
examples and negatives shifted with their crop. Clicks are outlined on their own frame
first. A frame whose examples spread over it is taken whole, so examples on two planes
give what the two planes side by side, fitted as one frame, give.

Why this way and not a pooled fit (each frame's signal on its own, the statistics
pooled): the fit's stages (profile, proposer search, clusters, boundary) all read one
frame and stay unchanged; the cost is that of fitting on the crops' area.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..objects import Frame, ObjectMask

__all__ = ["training_frame", "fit_margin"]


def fit_margin(masks: Sequence[ObjectMask]) -> int:
    """Pixels kept around a frame's examples: eight example diameters (the background
    filter's window is about that wide), at least 128."""
    areas = [m.area for m in masks if m.area > 0] or [1]
    diameter = 2 * math.sqrt(max(areas) / math.pi)
    return max(128, int(math.ceil(8 * diameter)))


def _crop_box(masks: Sequence[ObjectMask], shape: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
    boxes = np.array([m.bbox for m in masks])
    return (max(int(boxes[:, 0].min()) - margin, 0), max(int(boxes[:, 1].min()) - margin, 0),
            min(int(boxes[:, 2].max()) + margin, shape[0]), min(int(boxes[:, 3].max()) + margin, shape[1]))


def training_frame(items: Sequence[tuple[Frame, list[ObjectMask], list[ObjectMask]]], *,
                   margin: int | None = None) -> tuple[Frame, list[ObjectMask], list[ObjectMask]]:
    """One frame to fit on from ``(frame, example masks, negative masks)`` of several frames.

    Parameters
    ----------
    items : sequence of (Frame, list of ObjectMask, list of ObjectMask)
        Each frame (``(C, Y, X)``, the same channels in all) with its examples and
        negatives as masks on it; a frame with neither is left out.
    margin : int, optional
        Pixels kept around each frame's examples and negatives (default
        :func:`fit_margin` of all the examples).

    Returns
    -------
    frame : Frame
        The crops side by side (``source`` names the first frame's file).
    examples, negatives : list of ObjectMask
        Shifted into it, in the order given (frame by frame).

    Examples
    --------
    >>> from fewseg.demo import make_demo
    >>> a, truth_a = make_demo(seed=1, shape=(100, 120), n_blobs=12)
    >>> b, truth_b = make_demo(seed=2, shape=(100, 120), n_blobs=12)
    >>> ma, mb = [t.to_mask(a.shape) for t in truth_a[:3]], [t.to_mask(b.shape) for t in truth_b[:2]]
    >>> frame, examples, negatives = training_frame([(a, ma, []), (b, mb, [])])
    >>> frame.shape, len(examples), examples[3].col - mb[0].col  # whole frames (128-pixel margin), side by side
    ((100, 240), 5, 120)
    """
    items = [(f, list(ex), list(neg)) for f, ex, neg in items if len(ex) or len(neg)]
    if not items:
        raise ValueError("no examples or negatives on any frame")
    channels = {f.data.shape[0] for f, _, _ in items}
    if len(channels) > 1:
        from ..errors import InputError

        raise InputError(items[0][0].source, f"frames with {sorted(channels)} channels; the examples' frames must "
                                             "have the same channels")
    if margin is None:
        margin = fit_margin([m for _, ex, _ in items for m in ex])
    crops, shifts = [], []
    for frame, ex, neg in items:
        r0, c0, r1, c1 = _crop_box(ex + neg, frame.shape, margin)
        crops.append(frame.data[:, r0:r1, c0:c1])
        shifts.append((r0, c0))
    height = max(c.shape[1] for c in crops)
    tiles, examples, negatives, col = [], [], [], 0
    for crop, (r0, c0), (_, ex, neg) in zip(crops, shifts, items):
        if crop.shape[1] < height:  # continued downwards by its mirror image (again if need be)
            crop = np.pad(crop, ((0, 0), (0, height - crop.shape[1]), (0, 0)), mode="symmetric")
        tiles.append(crop)
        examples += [ObjectMask(m.row - r0, m.col - c0 + col, m.mask) for m in ex]
        negatives += [ObjectMask(m.row - r0, m.col - c0 + col, m.mask) for m in neg]
        col += crop.shape[2]
    first = items[0][0]
    data = np.concatenate(tiles, axis=2).astype(np.float32, copy=False)
    return Frame(data, channel_names=first.channel_names, source=first.source, location=first.location), \
        examples, negatives
