"""Negatives for the SAM methods: "not these", learned and masked out.

A negative marks one object or region that is not the kind wanted (a result the user
rejected, a distractor, a piece of background): a polygon, a mask or a click (outlined
as example clicks are, :func:`fewseg.classic.clicks.as_masks`). The SAM methods use it
twice:

1. **Learned** (every frame): each candidate's pooled SAM vector ``v`` is compared with
   the positives' prototype ``p`` (the seed's L2-normalised mean example vector) and
   with every negative's vector ``n_j``. :class:`ContrastSelector` scores it

   * ``"nearest"`` (the default): ``cos(v, p)`` where ``v`` is at least as near an
     example (``max_i cos(v, e_i)``) as every negative (``max_j cos(v, n_j)``), else
     ``cos(v, p) - 1``: a candidate nearer a negative than every example (1-nearest
     neighbour) is scored down by 1. An example is always on its own side.
   * ``"penalty"``: ``cos(v, p) - weight * max_j cos(v, n_j)``, the rule of
     NimbusImage's in-browser "Segment similar objects" tool (weight ~0.5).

   ``docs/sam.md`` ("Negatives") has the figures that chose between them.
2. **Masked out** (the frame they were marked on): a candidate at or under a negative
   (:func:`under_negatives`) scores ``-inf``, so it is kept at no threshold (and
   ``rethreshold``, which reuses the scores, keeps it out too).

Without negatives every score is the plain cosine similarity (the methods' results do
not change).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..objects import ObjectMask

__all__ = ["ContrastSelector", "FittedNegatives", "RULES", "negative_points", "rgb_digest", "under_negatives",
           "unit_rows"]

#: The ways negatives score candidates down (see the module docstring).
RULES = ("nearest", "penalty")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` ``(N, C)`` with each row scaled to length 1 (zero rows stay zero).

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class ContrastSelector:
    """Cosine similarity to the positives' prototype, scored down near negatives.

    The same interface as :class:`fewseg.classic.select.PrototypeSelector`
    (``similarity``, ``select``, ``decide``, ``threshold``), so the seed method keeps,
    and re-thresholds, with either.

    Attributes
    ----------
    prototype : ndarray, shape (C,)
        L2-normalised mean of the example vectors.
    negatives : ndarray, shape (M, C)
        The negatives' vectors, L2-normalised.
    examples : ndarray, shape (N, C)
        The examples' vectors, L2-normalised (``"nearest"``).
    threshold : float
    rule : str
        ``"nearest"`` or ``"penalty"`` (:data:`RULES`).
    weight : float
        The penalty's weight (``"penalty"`` only).

    Examples
    --------
    >>> sel = ContrastSelector(np.array([1.0, 0.0]), unit_rows(np.array([[0.0, 1.0]])), np.array([[1.0, 0.0]]))
    >>> sel.similarity(np.array([[1.0, 0.2], [0.4, 1.0]])).round(3).tolist()
    [0.981, -0.629]
    >>> sel.select(np.array([[1.0, 0.2], [0.4, 1.0]])).keep.tolist()
    [True, False]
    """

    prototype: np.ndarray
    negatives: np.ndarray
    examples: np.ndarray
    threshold: float = 0.5
    rule: str = "nearest"
    weight: float = 0.5

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")

    def positive(self, vectors: np.ndarray) -> np.ndarray:
        """``cos(v, p)`` for each row of ``vectors``."""
        return unit_rows(vectors) @ self.prototype if len(vectors) else np.zeros(0)

    def negative(self, vectors: np.ndarray) -> np.ndarray:
        """``max_j cos(v, n_j)`` for each row (``-inf`` without negatives)."""
        if not len(vectors) or not len(self.negatives):
            return np.full(len(vectors), -np.inf)
        return (unit_rows(vectors) @ self.negatives.T).max(axis=1)

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Each candidate's score under :attr:`rule`."""
        pos = self.positive(vectors)
        if not len(self.negatives):
            return pos
        neg = self.negative(vectors)
        if self.rule == "penalty":
            return pos - self.weight * neg
        nearest_example = (unit_rows(vectors) @ self.examples.T).max(axis=1)
        return np.where(nearest_example >= neg, pos, pos - 1.0)

    def select(self, vectors: np.ndarray):
        return self.decide(self.similarity(vectors))

    def decide(self, scores: np.ndarray):
        """Keep the ``scores`` >= this selector's threshold."""
        from ..classic.select import Selection

        scores = np.asarray(scores)
        return Selection(scores, scores >= self.threshold, self.threshold, f"seed: cosine, negatives ({self.rule})")


def negative_points(negatives) -> list[tuple[int, int]]:
    """The clicked pixels ``(row, col)`` of the negatives that are clicks."""
    from ..classic.examples import is_click

    return [tuple(int(v) for v in np.rint(n.point)) for n in negatives or () if is_click(n)]


def under_negatives(masks: list[ObjectMask], negatives: list[ObjectMask], *, points=(),
                    share: float = 0.5) -> np.ndarray:
    """Which ``masks`` lie at or under a negative: a clicked pixel (``points``,
    ``(row, col)``) inside the mask, or an overlap with a negative's mask of at least
    ``share`` of the smaller of the two (the rejected object itself, a piece of it, or
    an object inside a region marked as background).

    Examples
    --------
    >>> a = ObjectMask(0, 0, np.ones((4, 4), bool))
    >>> b = ObjectMask(10, 10, np.ones((4, 4), bool))
    >>> region = ObjectMask(8, 8, np.ones((20, 20), bool))
    >>> under_negatives([a, b], [region]).tolist(), under_negatives([a, b], [], points=[(1, 2)]).tolist()
    ([False, True], [True, False])
    """
    out = np.zeros(len(masks), dtype=bool)
    for k, m in enumerate(masks):
        for r, c in points:
            if m.holds(r, c):
                out[k] = True
                break
        if out[k]:
            continue
        for n in negatives:
            overlap = _overlap(m, n)
            if overlap and overlap >= share * min(m.area, n.area):
                out[k] = True
                break
    return out


def _overlap(a: ObjectMask, b: ObjectMask) -> int:
    """Pixels ``a`` and ``b`` share."""
    ar0, ac0, ar1, ac1 = a.bbox
    br0, bc0, br1, bc1 = b.bbox
    r0, c0, r1, c1 = max(ar0, br0), max(ac0, bc0), min(ar1, br1), min(ac1, bc1)
    if r0 >= r1 or c0 >= c1:
        return 0
    sa = a.mask[r0 - a.row : r1 - a.row, c0 - a.col : c1 - a.col]
    sb = b.mask[r0 - b.row : r1 - b.row, c0 - b.col : c1 - b.col]
    return int(np.count_nonzero(sa & sb))


@dataclass(frozen=True, eq=False)
class FittedNegatives:
    """The negatives a SAM method was fitted with: where (the rendered frame's sha256),
    their masks and their clicked pixels."""

    digest: str
    masks: list[ObjectMask]
    points: list[tuple[int, int]]

    def under(self, candidates: list[ObjectMask]) -> np.ndarray:
        """Which ``candidates`` lie at or under one of these negatives."""
        return under_negatives(candidates, self.masks, points=self.points)

    def mask_out(self, digest: str, candidates: list[ObjectMask], scores: np.ndarray) -> tuple[np.ndarray, int]:
        """``scores`` with those of the candidates at or under a negative set to ``-inf``
        when ``digest`` is the frame the negatives were marked on; and how many."""
        if digest != self.digest:
            return scores, 0
        rejected = self.under(candidates)
        return np.where(rejected, -np.inf, scores), int(rejected.sum())

    def describe(self, rule: str, weight: float) -> dict:
        return {"n_negatives": len(self.masks), "negative_rule": rule,
                **({"negative_weight": weight} if rule == "penalty" else {})}


def rgb_digest(rgb: np.ndarray) -> str:
    """sha256 of a rendered frame: which frame the negatives were marked on."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()
