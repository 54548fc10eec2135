"""The seed report's evaluation: shuffle, split into examples and truth, greedy IoU matching.

The protocol (``../shared/seed/ALGORITHM.md``): shuffle the annotations with a seed; the
first ``num_train`` are the examples, the rest are ground truth. Predictions are matched
to truth greedily: take the highest remaining IoU pair, accept it if IoU >= ``iou``,
remove both, repeat. TP = matches; precision = TP / predictions; recall = TP / truth;
F1; mean IoU over the matches.

Beside them, the figures published methods report (:func:`score`): AP at IoU 0.5
(``TP / (TP + FP + FN)``, stardist's "accuracy", cellpose's and CellSeg1's AP), F1 at
IoU 0.5, and mSA, the mean of that AP over IoU 0.5, 0.55, ..., 0.95 (micro-sam's
``mean_segmentation_accuracy``, after the DSB 2018 challenge). stardist and micro-sam
match one-to-one at each threshold with an optimal assignment; fewseg uses its one
greedy matching (:func:`fewseg.match.greedy_match`) at each threshold. At IoU >= 0.5 the
two count the same matches: predictions are disjoint and truth objects are disjoint, so
an object has at most one partner above 0.5 and only a pair at exactly 0.5 could differ.

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
from .methods import learns_negatives  # noqa: F401 (public here too: the correction curve asks it)
from .objects import ObjectMask, labels_from_masks


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


#: The IoU thresholds mSA averages over: 0.5, 0.55, ..., 0.95 (micro-sam's, the DSB 2018 challenge's).
MSA_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))

#: The figures besides precision / recall / F1 / mean IoU at ``--iou`` (:func:`score`), in
#: the order tables show them.
PUBLISHED_METRICS = ("ap50", "f1_50", "msa")


@dataclass(frozen=True)
class Scores:
    """Detection quality of one frame.

    ``precision``, ``recall``, ``f1``, ``mean_iou``, ``n_matched``, ``matched_*``: at
    the ``iou`` threshold :func:`score` was given. ``ap50``: ``TP / (TP + FP + FN)`` at
    IoU 0.5; ``f1_50``: F1 at IoU 0.5; ``ap``: that AP at each of
    :data:`MSA_THRESHOLDS`; ``msa``: their mean.
    """

    precision: float
    recall: float
    f1: float
    mean_iou: float
    n_pred: int
    n_truth: int
    n_matched: int
    matched_pred: np.ndarray
    matched_truth: np.ndarray
    ap50: float = 0.0
    f1_50: float = 0.0
    msa: float = 0.0
    ap: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mean_iou": self.mean_iou,
            "n_pred": self.n_pred,
            "n_truth": self.n_truth,
            "n_matched": self.n_matched,
            "ap50": self.ap50,
            "f1_50": self.f1_50,
            "msa": self.msa,
        }


def accuracy(n_matched: int, n_pred: int, n_truth: int) -> float:
    """``TP / (TP + FP + FN)``: the "AP" of stardist, cellpose and CellSeg1, the
    "segmentation accuracy" of micro-sam (0 with no match).

    Examples
    --------
    >>> accuracy(8, 10, 9)  # TP 8, FP 2, FN 1
    0.7272727272727273
    """
    return n_matched / (n_pred + n_truth - n_matched) if n_matched > 0 else 0.0


def score(pred: list[ObjectMask], truth: list[ObjectMask], shape: tuple[int, int], *, iou: float = 0.3) -> Scores:
    """Match ``pred`` to ``truth`` and compute precision, recall, F1 and mean IoU.

    Empty cases follow the usual conventions: no predictions -> precision 0; F1 0
    when precision + recall is 0; mean IoU 0 with no matches. Also AP50, F1 at IoU 0.5
    and mSA (:class:`Scores`), each threshold matched on its own, one-to-one (the same
    greedy rule).

    Examples
    --------
    >>> a = ObjectMask(0, 0, np.ones((4, 4), bool))
    >>> b = ObjectMask(1, 0, np.ones((4, 4), bool))
    >>> s = score([b], [a], (10, 10))
    >>> round(s.f1, 2), round(s.mean_iou, 2)
    (1.0, 0.6)
    >>> s.ap50, s.f1_50, s.msa  # IoU 0.6 (12 / 20) counts at 0.5, 0.55 and 0.6: mSA 3 / 10
    (1.0, 1.0, 0.3)
    """
    pairs = iou_pairs(pred, truth, shape)
    matches = greedy_match(pairs, iou=iou)
    tps = [len(greedy_match(pairs, iou=t)) for t in MSA_THRESHOLDS]
    ap = tuple(accuracy(tp, len(pred), len(truth)) for tp in tps)
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
        ap50=ap[0],
        f1_50=2 * tps[0] / (len(pred) + len(truth)) if tps[0] else 0.0,
        msa=float(np.mean(ap)),
        ap=ap,
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
    mean_iou, ap50, f1_50, msa, n_train, n_truth, n_pred, n_candidates, seed, timings_s
    (fit, propose, embed, select, polygons, total) and the full config. ``segmenter``
    (unfitted) replaces the one ``config`` would make, e.g. to reuse a loaded model across runs.
    """
    import time

    from .classic.examples import example_masks

    train, truth_ann = split_examples(annotations, num_train=num_train, seed=seed, source=source)
    t0 = time.perf_counter()
    train_masks = example_masks(train, frame.shape, source=source)
    if clicks:
        from .classic.clicks import outline_clicks

        train_masks = outline_clicks(frame, as_clicks(train_masks, seed=seed))
    truth = example_masks(truth_ann, frame.shape, source=source)
    return _fit_and_score(segmenter, frame, train_masks, truth, config=config, started=t0, negatives=negatives,
                          about={"examples_as": "clicks" if clicks else "outlines", "seed": seed,
                                 "image": frame.source, "truth": source})


def _fit_and_score(segmenter, frame, examples: list, truth: list[ObjectMask], *, config, started: float, about: dict,
                   negatives: list | None = None) -> Evaluation:
    """Fit ``segmenter`` (or the one ``config`` makes) on ``examples`` (and ``negatives``
    when there are some), predict ``frame`` with the examples and negatives excluded, score against
    ``truth``; the timings count from ``started``. ``about`` says what the run was
    (examples_as, seed, image, truth) and comes into the record in the seed report's key order."""
    import time

    from .methods import make_segmenter
    from .plan import plan_fit

    segmenter = (segmenter or make_segmenter(config)).fit(frame, examples,
                                                          **({"negatives": negatives} if negatives else {}))
    t1 = time.perf_counter()
    # Excluded as every way in excludes (the fit plan: examples and negatives where they lie),
    # so napari's and the worker's replay of a correction curve scores what it scores.
    exclude = plan_fit(examples, negatives=negatives or (), at=frame.location).exclude[frame.location]
    result = segmenter.predict(frame, exclude=exclude)
    t2 = time.perf_counter()
    scores = score(result.masks, truth, frame.shape, iou=config.iou)
    timings = {"fit": t1 - started, **result.timings, "total": t2 - started}
    metrics = {
        **scores.as_dict(),
        "n_train": len(examples),
        "examples_as": about["examples_as"],
        "n_candidates": result.n_candidates,
        "n_pred_on_examples": result.n_rediscovered,
        **({"n_negatives": len(negatives)} if negatives else {}),
        "seed": about["seed"],
        "iou_threshold": config.iou,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "config": config.to_dict(),
        "learned": segmenter.describe_fit(),
        "image": about["image"],
        "truth": about["truth"],
    }
    return Evaluation(metrics, scores, truth, result.masks, list(examples))


def clicks_inside(masks: list[ObjectMask], *, seed: int) -> np.ndarray:
    """A click inside each object: :func:`as_clicks`' point (centroid plus a seeded offset),
    moved to the object's pixel nearest it when it falls outside (a curved or ragged
    object). Returns ``(N, 2)`` ``(row, col)``.

    Examples
    --------
    >>> ring = np.ones((9, 9), bool)
    >>> ring[2:7, 2:7] = False  # the centroid is a hole
    >>> r, c = clicks_inside([ObjectMask(10, 20, ring)], seed=0)[0]
    >>> bool(ring[int(r) - 10, int(c) - 20])
    True
    """
    out = as_clicks(masks, seed=seed)
    for k, m in enumerate(masks):
        inside = np.argwhere(m.mask)
        if not m.holds(*np.rint(out[k]).astype(int)):
            nearest = inside[np.argmin(((inside - (out[k] - (m.row, m.col))) ** 2).sum(axis=1))]
            out[k] = nearest + (m.row, m.col)
    return out


def correction_curve(frame, annotations: list, *, config, num_train: int = 10, seed: int = 42, rounds: int = 3,
                     corrections: int = 5, clicks: bool = False, source: str = "truth",
                     segmenter=None, negatives: list | None = None) -> list[Evaluation]:
    """The seed's protocol, then ``rounds`` rounds of a simulated user's corrections.

    Round 0 is :func:`run_evaluation` (``num_train`` examples split off with ``seed``,
    outlines, or clicks with ``clicks``). In each later round the user looks at the
    previous round's result and

    * rejects ``corrections`` false objects (predictions matching no truth object at
      ``config.iou``) chosen at random among those where a click inside
      (:func:`clicks_inside`) lies on no annotated object (a wrong outline or a piece of
      a real object is not "not this") and that holds none of the user's example clicks,
      this round's included, nor lies at one (within
      :data:`~fewseg.classic.negatives.SAME_CLICK` pixels): each click is a negative, given to ``fit(..., negatives=...)`` when the method takes negatives
      (:func:`fewseg.methods.learns_negatives`; else they are recorded and not used);
    * clicks ``corrections`` missed truth objects chosen at random, near their centre
      (:func:`clicks_inside`: :func:`as_clicks`' offset rule, moved inside the object):
      the clicks are added to the examples, and the clicked objects leave the truth (they are examples now, excluded as every example is);

    then the same method is fitted again on all the examples and negatives so far,
    predicts the frame, and is scored on the truth that is left. ``negatives`` (objects on
    ``frame`` the user marked before round 0, as in :func:`run_evaluation`) are learned
    from in every round, before the rejected ones. Fewer than
    ``corrections`` false or missed objects: all of them. Every random choice and click
    offset comes from ``seed``.

    Returns one :class:`Evaluation` per round (round 0 first); each ``metrics`` holds
    run_evaluation's keys plus ``round``, ``n_negatives``, ``negatives_learned`` and
    the round's corrections, ``rejected`` and ``clicked`` (``(row, col)`` clicks), so
    another way in (napari, NimbusImage) can replay the same session. ``examples`` holds
    what ``fit`` was given (masks, and clicks as :class:`~fewseg.objects.Annotation`).

    Examples
    --------
    >>> from fewseg.config import SegmentConfig
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    >>> curve = correction_curve(frame, truth, config=SegmentConfig(), rounds=1, corrections=2, seed=0)
    >>> [ev.metrics["round"] for ev in curve], curve[1].metrics["n_train"] - curve[0].metrics["n_train"] <= 2
    ([0, 1], True)
    """
    import time

    from .classic.examples import example_masks
    from .classic.negatives import SAME_CLICK
    from .methods import make_segmenter
    from .objects import Annotation

    if rounds < 0 or corrections < 0:
        raise InputError("--rounds" if rounds < 0 else "--corrections",
                         f"expected 0 or more, got {rounds if rounds < 0 else corrections}")
    train, truth_ann = split_examples(annotations, num_train=num_train, seed=seed, source=source)
    segmenter = segmenter or make_segmenter(config)
    negatives_used = learns_negatives(segmenter)
    about = {"examples_as": "clicks" if clicks else "outlines", "seed": seed, "image": frame.source, "truth": source}
    rng = np.random.default_rng(seed)
    curve: list[Evaluation] = []
    examples: list = []
    negatives = list(negatives or [])
    truth: list[ObjectMask] = []
    for k in range(rounds + 1):
        t0 = time.perf_counter()
        rejected = clicked = np.zeros((0, 2))
        if k == 0:
            train_masks = example_masks(train, frame.shape, source=source)
            # Clicks stay clicks: the examples file a user adds clicks to holds clicks.
            examples = ([Annotation(point=p, origin=f"{source}: round 0 click {i}")
                         for i, p in enumerate(as_clicks(train_masks, seed=seed))] if clicks else train_masks)
            truth = example_masks(truth_ann, frame.shape, source=source)
            objects = labels_from_masks([*train_masks, *truth], frame.shape)  # every object of the kind
        else:
            last = curve[-1]
            false = np.flatnonzero(~last.scores.matched_pred)
            missed = np.flatnonzero(~last.scores.matched_truth)
            # A click inside each false object; the user says "not this" only where the
            # click is on no object of the kind (a wrong outline of a real object, or a
            # piece of one, is not rejected: it would mark a real object as unwanted).
            # Nor does the user reject a false object holding one of their own example clicks
            # (a merge of a clicked object with background or a neighbour), or at the spot of
            # one (:data:`~fewseg.classic.negatives.SAME_CLICK`): that object is theirs.
            # This round's clicks count too (each one inside its missed object).
            inside = clicks_inside([last.predictions[i] for i in false], seed=int(rng.integers(2**31)))
            pixel = np.clip(np.rint(inside).astype(int), 0, np.array(frame.shape) - 1).reshape(-1, 2)
            on_background = objects[pixel[:, 0], pixel[:, 1]] == 0
            order = rng.permutation(int(on_background.sum()))
            missed = np.sort(rng.permutation(missed)[:corrections])
            clicked = clicks_inside([truth[j] for j in missed], seed=int(rng.integers(2**31)))
            points = [np.rint(e.point).astype(int) for e in examples if getattr(e, "point", None) is not None]
            points += list(np.rint(clicked).astype(int))
            mine = np.array([any(last.predictions[i].holds(*p) for p in points) for i in false], dtype=bool)
            near = np.array([any(np.abs(q - p).max() <= SAME_CLICK for p in points) for q in pixel], dtype=bool)
            fair = np.flatnonzero(on_background)[order]
            fair = fair[~(mine | near)[fair]][:corrections]
            rejected = inside[fair].reshape(-1, 2)
            negatives = negatives + [Annotation(point=p, origin=f"round {k}: rejected {i}") for i, p in enumerate(rejected)]
            examples = examples + [Annotation(point=p, origin=f"round {k}: click {i}") for i, p in enumerate(clicked)]
            gone = set(missed.tolist())
            truth = [t for j, t in enumerate(truth) if j not in gone]
        ev = _fit_and_score(segmenter, frame, examples, truth, config=config, started=t0, about=about,
                            negatives=negatives if negatives_used else None)
        ev.metrics.update({"round": k, "n_negatives": len(negatives), "negatives_learned": negatives_used,
                           "rejected": rejected.tolist(), "clicked": clicked.tolist()})
        curve.append(ev)
    return curve


def metrics_table(rows: list[dict]) -> str:
    """A Markdown table of evaluation records (one row each): precision, recall, F1 and
    mean IoU at the records' IoU threshold, then AP50, F1@0.5 and mSA."""
    head = ("| method | seed | examples | truth | candidates | predictions | precision | recall | F1 | mean IoU "
            "| AP50 | F1@0.5 | mSA | total s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in rows:
        lines.append(
            f"| {m['config']['method']} | {m['seed']} | {m['n_train']} | {m['n_truth']} | {m['n_candidates']} | "
            f"{m['n_pred']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mean_iou']:.3f} | "
            f"{m['ap50']:.3f} | {m['f1_50']:.3f} | {m['msa']:.3f} | {m['timings_s']['total']:.2f} |"
        )
    return "\n".join(lines)



#: What the per-round table and the mean over seeds show of each round.
CURVE_METRICS = ("precision", "recall", "f1", "mean_iou", *PUBLISHED_METRICS)


def curve_table(rows: list[dict]) -> str:
    """A Markdown table of correction-curve records (:func:`correction_curve`'s
    ``metrics``, one row per seed and round).

    Examples
    --------
    >>> row = {"seed": 0, "round": 1, "n_train": 15, "n_negatives": 5, "negatives_learned": False, "n_truth": 40,
    ...        "n_pred": 42, **dict.fromkeys(CURVE_METRICS, 0.9), "timings_s": {"total": 1.2}}
    >>> print(curve_table([row]).splitlines()[2])
    | 0 | 1 | 15 | 5 (not learned) | 40 | 42 | 0.900 | 0.900 | 0.900 | 0.900 | 0.900 | 0.900 | 0.900 | 1.20 |
    """
    head = ("| seed | round | examples | negatives | truth left | predictions | precision | recall | F1 | mean IoU "
            "| AP50 | F1@0.5 | mSA | total s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in rows:
        negatives = f"{m['n_negatives']}" + ("" if m["negatives_learned"] or not m["n_negatives"] else " (not learned)")
        lines.append(f"| {m['seed']} | {m['round']} | {m['n_train']} | {negatives} | {m['n_truth']} | {m['n_pred']} | "
                     + " | ".join(f"{m[k]:.3f}" for k in CURVE_METRICS) + f" | {m['timings_s']['total']:.2f} |")
    return "\n".join(lines)
