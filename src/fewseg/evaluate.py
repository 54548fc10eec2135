"""The seed report's evaluation: shuffle, split into examples and truth, greedy IoU matching.

The protocol (``../shared/seed/ALGORITHM.md``): shuffle the annotations with a seed; the
first ``num_train`` are the examples, the rest are ground truth. Predictions are matched
to truth greedily: take the highest remaining IoU pair, accept it if IoU >= ``iou``,
remove both, repeat. TP = matches; precision = TP / predictions; recall = TP / truth;
F1; mean IoU over the matches.

One choice the report leaves open is what happens to predictions on the examples
themselves. fewseg outlines the *other* instances: a prediction that matches an example
(same greedy rule) is a re-discovery of an object the user already drew, so it is
dropped before scoring (``exclude_examples=True``) and counted in
``n_pred_on_examples``. Pass ``exclude_examples=False`` to count such predictions as
false positives instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .match import drop_rediscovered, greedy_match, iou_pairs, rediscovered  # noqa: F401 (public here too)
from .objects import ObjectMask


def split_examples(items: list, *, num_train: int, seed: int, source: str = "annotations") -> tuple[list, list]:
    """Shuffle ``items`` with ``seed``; return ``(first num_train, rest)``.

    Uses Python's ``random.Random(seed).shuffle``, as the seed's script did.

    Examples
    --------
    >>> train, truth = split_examples(list(range(5)), num_train=2, seed=42)
    >>> len(train), len(truth)
    (2, 3)
    """
    import random

    if num_train < 1:
        raise InputError("--num-train", f"expected at least 1 example, got {num_train}")
    if len(items) < num_train + 1:
        raise InputError(
            source,
            f"has {len(items)} annotation(s); evaluation needs at least --num-train + 1 = "
            f"{num_train + 1} (examples plus at least one to check against)",
        )
    order = list(items)
    random.Random(seed).shuffle(order)
    return order[:num_train], order[num_train:]


@dataclass(frozen=True)
class Scores:
    """Detection quality of one frame."""

    precision: float
    recall: float
    f1: float
    mean_iou: float
    n_pred: int
    n_truth: int
    n_matched: int
    matched_pred: np.ndarray
    matched_truth: np.ndarray

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mean_iou": self.mean_iou,
            "n_pred": self.n_pred,
            "n_truth": self.n_truth,
            "n_matched": self.n_matched,
        }


def score(pred: list[ObjectMask], truth: list[ObjectMask], shape: tuple[int, int], *, iou: float = 0.3) -> Scores:
    """Match ``pred`` to ``truth`` and compute precision, recall, F1 and mean IoU.

    Empty cases follow the usual conventions: no predictions -> precision 0; F1 0
    when precision + recall is 0; mean IoU 0 with no matches.

    Examples
    --------
    >>> a = ObjectMask(0, 0, np.ones((4, 4), bool))
    >>> b = ObjectMask(1, 0, np.ones((4, 4), bool))
    >>> s = score([b], [a], (10, 10))
    >>> round(s.f1, 2), round(s.mean_iou, 2)
    (1.0, 0.6)
    """
    matches = greedy_match(iou_pairs(pred, truth, shape), iou=iou)
    tp = len(matches)
    precision = tp / len(pred) if pred else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    mp = np.zeros(len(pred), dtype=bool)
    mt = np.zeros(len(truth), dtype=bool)
    for i, j, _ in matches:
        mp[i] = mt[j] = True
    return Scores(
        precision=precision,
        recall=recall,
        f1=f1,
        mean_iou=float(np.mean([m[2] for m in matches])) if matches else 0.0,
        n_pred=len(pred),
        n_truth=len(truth),
        n_matched=tp,
        matched_pred=mp,
        matched_truth=mt,
    )


@dataclass
class Evaluation:
    """One evaluation run: the metrics record plus what the figure needs."""

    metrics: dict
    scores: Scores
    truth: list[ObjectMask]
    predictions: list[ObjectMask]
    examples: list[ObjectMask]


def as_clicks(masks: list[ObjectMask], *, seed: int) -> np.ndarray:
    """Where a user might click each object: its centroid moved by a random offset of up
    to a quarter of its equivalent radius (uniform in direction and length, seeded).
    Returns ``(N, 2)`` ``(row, col)``.

    Examples
    --------
    >>> square = ObjectMask(10, 20, np.ones((9, 9), bool))
    >>> click = as_clicks([square], seed=0)[0]
    >>> bool(np.hypot(*(click - (14, 24))) <= 0.25 * np.sqrt(81 / np.pi))
    True
    """
    rng = np.random.default_rng(seed)
    out = np.empty((len(masks), 2))
    for k, m in enumerate(masks):
        centroid = np.argwhere(m.mask).mean(axis=0) + (m.row, m.col)
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.25 * np.sqrt(m.area / np.pi))
        out[k] = centroid + length * np.array([np.sin(angle), np.cos(angle)])
    return out


def run_evaluation(frame, annotations: list, *, config, num_train: int = 10, seed: int = 42, source: str = "truth",
                   segmenter=None, clicks: bool = False, negatives: list | None = None) -> Evaluation:
    """The seed's protocol on one frame: split, fit on the examples, predict, score.

    ``clicks``: the examples are given as clicks (:func:`as_clicks` of their masks, the
    offsets seeded by ``seed``) and outlined from the frame
    (:func:`fewseg.classic.clicks.outline_clicks`) before fitting; the rest is unchanged.
    ``negatives``: objects on ``frame`` that are not wanted, learned from (``fit(...,
    negatives=...)``); they are not scored.

    Returns an :class:`Evaluation` whose ``metrics`` hold precision, recall, f1,
    mean_iou, n_train, n_truth, n_pred, n_candidates, seed, timings_s (fit, propose,
    embed, select, polygons, total) and the full config. ``segmenter`` (unfitted) replaces
    the one ``config`` would make, e.g. to reuse a loaded model across runs.
    """
    import time

    from .classic.examples import example_masks
    from .methods import make_segmenter

    train, truth_ann = split_examples(annotations, num_train=num_train, seed=seed, source=source)
    t0 = time.perf_counter()
    train_masks = example_masks(train, frame.shape, source=source)
    if clicks:
        from .classic.clicks import outline_clicks

        train_masks = outline_clicks(frame, as_clicks(train_masks, seed=seed))
    truth = example_masks(truth_ann, frame.shape, source=source)
    segmenter = (segmenter or make_segmenter(config)).fit(frame, train_masks,
                                                          **({"negatives": negatives} if negatives else {}))
    t1 = time.perf_counter()
    result = segmenter.predict(frame, exclude=train_masks)
    t2 = time.perf_counter()
    scores = score(result.masks, truth, frame.shape, iou=config.iou)
    timings = {"fit": t1 - t0, **result.timings, "total": t2 - t0}
    metrics = {
        **scores.as_dict(),
        "n_train": len(train_masks),
        "examples_as": "clicks" if clicks else "outlines",
        "n_candidates": result.n_candidates,
        "n_pred_on_examples": result.n_rediscovered,
        **({"n_negatives": len(negatives)} if negatives else {}),
        "seed": seed,
        "iou_threshold": config.iou,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "config": config.to_dict(),
        "learned": segmenter.describe_fit(),
        "image": frame.source,
        "truth": source,
    }
    return Evaluation(metrics, scores, truth, result.masks, train_masks)


def metrics_table(rows: list[dict]) -> str:
    """A Markdown table of evaluation records (one row each)."""
    head = "| method | seed | examples | truth | candidates | predictions | precision | recall | F1 | mean IoU | total s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in rows:
        lines.append(
            f"| {m['config']['method']} | {m['seed']} | {m['n_train']} | {m['n_truth']} | {m['n_candidates']} | "
            f"{m['n_pred']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mean_iou']:.3f} | "
            f"{m['timings_s']['total']:.2f} |"
        )
    return "\n".join(lines)
