"""Matching predicted objects to reference objects by IoU (the seed's greedy rule).

Used by the evaluation (predictions against truth) and by every method's last stage
(predictions against the examples: an object that re-discovers an example is dropped).
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


def drop_rediscovered(pred: list[ObjectMask], examples: list[ObjectMask], shape, *, iou: float = 0.3):
    """Split ``pred`` into (kept, number dropped) by removing those matched to an example."""
    hit = rediscovered(pred, examples, shape, iou=iou)
    return [p for p, h in zip(pred, hit) if not h], int(hit.sum())
