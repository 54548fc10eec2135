"""Matching predicted objects to reference objects by IoU (the seed's greedy rule).

Used by the evaluation (predictions against truth) and by every method's last stage
(predictions against the examples: an object that re-discovers an example is dropped,
:func:`drop_rediscovered`).
"""

from __future__ import annotations

import numpy as np

from .objects import ObjectMask, labels_from_masks


def iou_pairs(pred: list[ObjectMask], truth: list[ObjectMask], shape: tuple[int, int]) -> np.ndarray:
    """All overlapping (pred, truth) pairs with their IoU, as rows ``(i_pred, i_truth, iou)``.

    Overlaps are counted with one pass over a truth label image, so the cost is
    linear in the predicted area, not quadratic in the number of objects. Truth objects
    are assumed not to overlap each other (a pixel claimed twice counts for the first).
    """
    if not pred or not truth:
        return np.zeros((0, 3))
    truth_labels = labels_from_masks(truth, shape)
    truth_area = np.array([t.area for t in truth], dtype=np.float64)
    # Effective truth areas after the first-claim rule (equal when truth does not overlap).
    counted = np.bincount(truth_labels.ravel(), minlength=len(truth) + 1)[1:].astype(np.float64)
    truth_area = np.where(counted > 0, counted, truth_area)
    rows = []
    for i, p in enumerate(pred):
        hit = truth_labels[p.slices][p.mask]
        hit = hit[hit > 0]
        if hit.size == 0:
            continue
        ids, inter = np.unique(hit, return_counts=True)
        union = p.area + truth_area[ids - 1] - inter
        for j, n, u in zip(ids - 1, inter, union):
            rows.append((i, j, n / u))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def greedy_match(pairs: np.ndarray, *, iou: float = 0.3) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching: highest IoU first, accepted while IoU >= ``iou``.

    Ties are broken by (pred index, truth index) so results are deterministic.
    """
    if len(pairs) == 0:
        return []
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -pairs[:, 2]))
    used_p, used_t, out = set(), set(), []
    for k in order:
        i, j, v = int(pairs[k, 0]), int(pairs[k, 1]), float(pairs[k, 2])
        if v < iou:
            break
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        out.append((i, j, v))
    return out


def rediscovered(pred: list[ObjectMask], examples: list[ObjectMask], shape, *, iou: float = 0.3) -> np.ndarray:
    """Boolean ``(len(pred),)``: which predictions match an example (same greedy rule)."""
    hit = np.zeros(len(pred), dtype=bool)
    for i, _, _ in greedy_match(iou_pairs(pred, examples, shape), iou=iou):
        hit[i] = True
    return hit


def drop_rediscovered(pred: list[ObjectMask], examples: list[ObjectMask], shape=None, *, iou: float = 0.3,
                      scores=None):
    """Drop the objects in ``pred`` that re-discover an example (the one implementation:
    every method's last stage, the napari plugin's Evaluate and the blockwise mosaic).

    An object re-discovers an example when the greedy one-to-one matching
    (:func:`rediscovered`) pairs them at IoU >= ``iou``. The matching runs on the window
    holding the examples and the objects whose boxes meet theirs, not on a frame-sized
    label image, so the cost does not grow with the frame; objects away from every
    example cannot match one and are kept. ``shape`` (the frame's) is not needed for
    that and is accepted for the callers that have it.

    Parameters
    ----------
    pred : list of ObjectMask
    examples : list of ObjectMask
    shape : (int, int), optional
    iou : float
    scores : array_like, shape (len(pred),), optional
        Each object's score: the objects are then matched best score first (stable
        order, as :func:`fewseg.result.finish` processes them) and their scores are
        returned with them.

    Returns
    -------
    (kept, n_dropped), or (kept, kept_scores, n_dropped) with ``scores``
        ``kept`` in ``pred``'s order (best score first with ``scores``).

    Examples
    --------
    >>> import numpy as np
    >>> square = lambda r, c: ObjectMask(r, c, np.ones((4, 4), bool))
    >>> kept, n = drop_rediscovered([square(0, 0), square(10, 10)], [square(0, 1)], (20, 20))
    >>> [m.bbox for m in kept], n
    ([(10, 10, 14, 14)], 1)
    >>> kept, kept_scores, n = drop_rediscovered([square(0, 0), square(10, 10)], [square(0, 1)],
    ...                                          scores=[0.2, 0.9])
    >>> [m.bbox for m in kept], kept_scores.tolist(), n
    ([(10, 10, 14, 14)], [0.9], 1)
    """
    if scores is not None:
        order = np.argsort(-np.asarray(scores), kind="stable")
        pred, scores = [pred[i] for i in order], np.asarray(scores)[order]
    hit = np.zeros(len(pred), dtype=bool)
    if pred and examples:
        boxes = np.array([e.bbox for e in examples]).reshape(-1, 4)
        pred_boxes = np.array([p.bbox for p in pred]).reshape(-1, 4)
        # Half-open boxes meet when they overlap on both axes.
        meets = ((pred_boxes[:, None, 0] < boxes[None, :, 2]) & (boxes[None, :, 0] < pred_boxes[:, None, 2])
                 & (pred_boxes[:, None, 1] < boxes[None, :, 3]) & (boxes[None, :, 1] < pred_boxes[:, None, 3]))
        near = np.flatnonzero(meets.any(axis=1))
        if near.size:
            window = np.concatenate([boxes, pred_boxes[near]])
            r0, c0 = window[:, :2].min(axis=0)
            r1, c1 = window[:, 2:].max(axis=0)

            def shifted(m: ObjectMask) -> ObjectMask:
                return ObjectMask(m.row - r0, m.col - c0, m.mask)

            hit[near] = rediscovered([shifted(pred[i]) for i in near], [shifted(e) for e in examples],
                                     (int(r1 - r0), int(c1 - c0)), iou=iou)
    kept = [p for p, h in zip(pred, hit) if not h]
    if scores is None:
        return kept, int(hit.sum())
    return kept, scores[~hit], int(hit.sum())
