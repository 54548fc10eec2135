"""fewseg's SAM mask generator: prompts in, candidate masks out, memory bounded.

The official automatic mask generators upsample every prompt's three masks to full
resolution before filtering (a 128 x 128 grid on a 1024 x 1024 frame is ~49k full-size
masks in flight, batch by batch) and, in PyPI's ``segment-anything`` 1.0, call
torchvision's ``batched_nms`` in a way that fails on CUDA with many boxes. This module
does the same steps in a different order:

1. decode the prompts in batches (:func:`~fewseg.sam.runtime.predict_points`);
2. filter by predicted IoU (strictly greater, as the official code) and by stability
   score computed on the *low-resolution* logits;
3. optionally keep one mask per prompt (the fast path: the mask whose predicted IoU and
   size fit the examples best);
4. upsample only the survivors, each only inside its own bounding box
   (:func:`~fewseg.sam.runtime.logits_to_image` with ``crop=``);
5. non-maximum suppression on the full-resolution boxes, by predicted IoU, in numpy.

With a grid of points (:func:`grid_points`) this is the official generator's method
(``crop_n_layers=0``); the tests compare the two mask for mask on CPU.
"""

from __future__ import annotations

import numpy as np

from ..objects import ObjectMask


def grid_points(n_per_side: int, shape: tuple[int, int]) -> np.ndarray:
    """The official point grid, ``(n*n, 2)`` ``(row, col)``: cell centres ``(i + 0.5) / n``.

    Examples
    --------
    >>> grid_points(2, (100, 200)).tolist()
    [[25.0, 50.0], [25.0, 150.0], [75.0, 50.0], [75.0, 150.0]]
    """
    offsets = (np.arange(n_per_side) + 0.5) / n_per_side
    rows = np.repeat(offsets * shape[0], n_per_side)
    cols = np.tile(offsets * shape[1], n_per_side)
    return np.stack([rows, cols], axis=1)


def stability_scores(logits: np.ndarray, *, threshold: float = 0.0, offset: float = 1.0) -> np.ndarray:
    """IoU of the mask at ``logit > threshold + offset`` and at ``> threshold - offset``.

    ``logits``: ``(..., H, W)``; returns ``(...)``. An empty loose mask scores 0.
    """
    high = (logits > threshold + offset).sum(axis=(-1, -2), dtype=np.int64)
    low = (logits > threshold - offset).sum(axis=(-1, -2), dtype=np.int64)
    return np.where(low > 0, high / np.maximum(low, 1), 0.0)


def box_iou_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS, highest score first (boxes ``(N, 4)`` r0, c0, r1, c1,
    inclusive pixel boxes as the official ``batched_mask_to_box`` gives)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    b = boxes.astype(np.float64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        r0 = np.maximum(b[i, 0], b[rest, 0])
        c0 = np.maximum(b[i, 1], b[rest, 1])
        r1 = np.minimum(b[i, 2], b[rest, 2])
        c1 = np.minimum(b[i, 3], b[rest, 3])
        inter = np.clip(r1 - r0, 0, None) * np.clip(c1 - c0, 0, None)
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def _low_res_window(emb, low_mask: np.ndarray, margin: int = 2) -> tuple[int, int, int, int] | None:
    """Image window covering a low-res mask's bounding box (plus ``margin`` low-res cells)."""
    rows = np.flatnonzero(low_mask.any(axis=1))
    cols = np.flatnonzero(low_mask.any(axis=0))
    if rows.size == 0:
        return None
    low = low_mask.shape[0]
    y, x = emb.original_size
    iy, ix = emb.input_size
    if emb.family == "sam1":  # low-res covers the padded square input
        sr, sc = emb.image_size / low * y / iy, emb.image_size / low * x / ix
    else:  # low-res covers the image stretched to a square
        sr, sc = y / low, x / low
    r0 = max(0, int(np.floor((rows[0] - margin) * sr)))
    c0 = max(0, int(np.floor((cols[0] - margin) * sc)))
    r1 = min(y, int(np.ceil((rows[-1] + 1 + margin) * sr)))
    c1 = min(x, int(np.ceil((cols[-1] + 1 + margin) * sc)))
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, c0, r1, c1


def upsample_mask(model, emb, low_res_logits: np.ndarray) -> ObjectMask | None:
    """One mask at full resolution, computed only inside its own bounding box."""
    from .runtime import logits_to_image

    window = _low_res_window(emb, low_res_logits > 0)
    if window is None:
        return None
    r0, c0, r1, c1 = window
    m = ObjectMask.from_full(logits_to_image(model, emb, low_res_logits, crop=window) > 0)
    if m.area == 0:
        return None
    return ObjectMask(r0 + m.row, c0 + m.col, m.mask)


def low_res_pixel_area(emb, low: int) -> float:
    """Frame pixels covered by one low-resolution logit cell."""
    y, x = emb.original_size
    iy, ix = emb.input_size
    if emb.family == "sam1":
        return (emb.image_size / low) ** 2 * (y / iy) * (x / ix)
    return (y / low) * (x / low)


def prompt_masks(
    model,
    emb,
    points: np.ndarray,
    *,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    stability_offset: float = 1.0,
    box_nms_thresh: float = 0.7,
    points_per_batch: int = 64,
    choose=None,
) -> tuple[list[ObjectMask], np.ndarray, int]:
    """Masks for one-point prompts on an encoded image.

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        ``(row, col)`` prompts.
    choose : callable, optional
        ``choose(iou_pred (n, K), low_res_areas (n, K)) -> (n,) index``: keep only that
        mask of each prompt (before the IoU / stability filters). None keeps all K.

    Returns
    -------
    masks : list of ObjectMask
        After filters and NMS, best predicted IoU first.
    iou : ndarray, shape (len(masks),)
        Their predicted IoU.
    n_decoded : int
        Masks the decoder produced (prompts x K), for the benchmark's counts.
    """
    from .runtime import predict_points

    kept_logits, kept_iou, n_decoded = [], [], 0
    for start in range(0, len(points), points_per_batch):
        logits, iou = predict_points(model, emb, points[start : start + points_per_batch], multimask=True,
                                     batch_size=points_per_batch)
        n_decoded += iou.size
        if choose is not None:
            areas = (logits > 0).sum(axis=(-1, -2))
            pick = np.asarray(choose(iou, areas))
            logits = logits[np.arange(len(pick)), pick][:, None]
            iou = iou[np.arange(len(pick)), pick][:, None]
        logits = logits.reshape(-1, *logits.shape[-2:])
        iou = iou.reshape(-1)
        ok = iou > pred_iou_thresh
        if stability_score_thresh > 0:
            ok &= stability_scores(logits, offset=stability_offset) >= stability_score_thresh
        kept_logits.append(logits[ok])
        kept_iou.append(iou[ok])
    if not kept_logits:
        return [], np.zeros(0), 0
    logits = np.concatenate(kept_logits)
    iou = np.concatenate(kept_iou)
    masks, scores, boxes = [], [], []
    for lg, s in zip(logits, iou):
        m = upsample_mask(model, emb, lg)
        if m is None:
            continue
        masks.append(m)
        scores.append(float(s))
        br0, bc0, br1, bc1 = m.bbox
        boxes.append((br0, bc0, br1 - 1, bc1 - 1))
    if not masks:
        return [], np.zeros(0), n_decoded
    keep = box_iou_nms(np.array(boxes), np.array(scores), box_nms_thresh)
    return [masks[i] for i in keep], np.array(scores)[keep], n_decoded


def generate_masks(model, rgb: np.ndarray, *, points_per_side: int = 32, pred_iou_thresh: float = 0.88,
                   stability_score_thresh: float = 0.95, box_nms_thresh: float = 0.7,
                   points_per_batch: int = 64, emb=None) -> list[np.ndarray]:
    """Grid generator (the official method, ``crop_n_layers=0``): full-size boolean masks."""
    from .runtime import encode

    emb = emb if emb is not None else encode(model, rgb)
    points = grid_points(points_per_side, rgb.shape[:2])
    masks, _, _ = prompt_masks(model, emb, points, pred_iou_thresh=pred_iou_thresh,
                               stability_score_thresh=stability_score_thresh, box_nms_thresh=box_nms_thresh,
                               points_per_batch=points_per_batch)
    return [m.to_full(rgb.shape[:2]) for m in masks]
