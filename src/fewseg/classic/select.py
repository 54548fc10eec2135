"""Keep the candidates that resemble the examples.

Only positives are known (unannotated area is not background), and ten examples show
little of how varied the objects are. The weight-free method therefore learns from the
candidates too: a two-component mixture over examples and candidates, with the
examples pinned to one component (:func:`select_by_mixture`); where an object was
outlined at more than one level, the most example-like outline is kept
(:func:`choose_outlines`). A first version scored
candidates by a standardised distance to the examples with a leave-one-out threshold;
on stardist's nuclei it rejected many real nuclei smaller or brighter than the ten
examples (mean F1 0.85 against 0.93 for the mixture, seeds 0-4), so it was dropped.

The seed's selector (cosine similarity to the mean of L2-normalised vectors, kept at
>= 0.5) is :class:`PrototypeSelector`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: The share of candidates at each end of a descriptor's range beyond which an example's
#: value is not learned from (:func:`bounded_examples`). Chosen on the demo's clicks, split
#: seeds 1 and 3 (the collapses it ends): the least of those tried (0.001 to 0.02), all of
#: which ended them.
EXAMPLE_TRIM = 0.001

#: How far beyond that range, as a share of its width, a value must lie to be left out
#: (:func:`bounded_examples`): clearly beyond, not at its edge (free-standing examples sit
#: at the smallest cluster size there is). 0.05 and 0.1 ended the same collapses; 0.05
#: left the first round of the demo's clicks, seed 0, as it was.
EXAMPLE_MARGIN = 0.05


@dataclass(frozen=True)
class Selection:
    """Which candidates were kept, with a score per candidate.

    Attributes
    ----------
    scores : ndarray, shape (N,)
        Similarity to the examples in [0, 1] (mixture: posterior probability of the
        examples' component; prototype: cosine similarity).
    keep : ndarray of bool, shape (N,)
    threshold : float
    threshold_source : str
    typicality : ndarray, shape (N,), optional
        Mixture only: log density under the examples' component (:func:`mixture_fit`).
    """

    scores: np.ndarray
    keep: np.ndarray
    threshold: float
    threshold_source: str
    typicality: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "n_candidates": int(len(self.scores)),
            "n_kept": int(self.keep.sum()),
        }


def _log_gauss(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Diagonal Gaussian log density (constant dropped); NaN entries are marginalised
    out (left out of the sum)."""
    terms = ((x - mean) ** 2) / var + np.log(var)
    return -0.5 * np.where(np.isnan(terms), 0.0, terms).sum(axis=1)


def _typicality(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Diagonal Gaussian log density (constant dropped) in which an unknown (NaN) entry
    counts as a typical member's would (its expected term), so candidates with and
    without unknown descriptors (an outline cut by the frame's edge or not) compare
    fairly."""
    terms = ((x - mean) ** 2) / var + np.log(var)
    return -0.5 * np.where(np.isnan(terms), 1.0 + np.log(var), terms).sum(axis=1)


def _robust_sd(values: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation (0 for no known value): a
    few atypical examples (the misses a user clicks after a first result, in clusters
    the others are not in) do not widen it, as they widened the plain one."""
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values)))) if values.size else 0.0


def bounded_examples(examples: np.ndarray, candidates: np.ndarray, *, trim: float = EXAMPLE_TRIM,
                     margin: float = EXAMPLE_MARGIN) -> np.ndarray:
    """The examples with each descriptor that lies beyond the range the candidates span
    in that column (less the ``trim`` most extreme at each end: quantiles ``trim`` and
    ``1 - trim`` of the known values), by more than ``margin`` of its width, made
    unknown (NaN): the mixture leaves it out of
    that column's fit, as it leaves out the shape of an object cut by the frame's edge,
    and the example teaches through its other descriptors. A column no candidate knows
    is as it is.

    A clicked miss can be a real object beyond everything the proposer found in one
    descriptor: on the demo, objects darker than the glow around them (contrast -1.0
    where the others' is 0.9 +- 0.1, 30 pooled standard deviations below them). Weighted
    to hold a share of the examples' component (:func:`mixture_fit`), one such example
    moved that column's mean and widened its spread until the component settled on a
    dim subset of the objects (clicks, split seed 1, round 3: 954 candidates kept, then
    397, F1 0.97 -> 0.57; seed 3: 0.96 -> 0.50). No candidate lies where it lies, so
    nothing is lost by not learning that column from it. Examples inside the
    candidates' range, as nearly all are, are left as they are: the first round's mean
    F1 moved by 0.003 at most on split seeds 0-4 (one split of the demo's clicks, seed
    8, by 0.06: docs/performance.md, "Clicked misses beyond every candidate").

    Tried first: holding such a value at the edge of the range (it ended those two
    collapses, but six examples held at the lowest contrast still pulled the
    component onto the dim objects: outlines, split seed 11, round 3, F1 0.98 -> 0.44),
    and holding each column within 8 robust standard deviations of the examples' own
    median (it ended the collapses only where it also held every clustered example at
    the others' cluster size, which changed the first round: clicks, seed 0, F1 0.92 ->
    0.89).

    Examples
    --------
    >>> e = np.array([[0.9, 1.0], [-1.0, 9.0], [0.49, -0.2]])
    >>> x = np.column_stack([np.linspace(0.5, 1.0, 1001), np.linspace(0.0, 10.0, 1001)])
    >>> bounded_examples(e, x).tolist()
    [[0.9, 1.0], [nan, 9.0], [0.49, -0.2]]
    """
    e = np.array(examples, dtype=np.float64)
    x = np.asarray(candidates, dtype=np.float64)
    if e.ndim != 2 or x.ndim != 2 or not len(x) or not len(e):
        return e
    with warnings.catch_warnings():  # a column no candidate knows: its bounds stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(x, trim, axis=0), np.nanquantile(x, 1 - trim, axis=0)
    room = margin * (high - low)
    beyond = (e < np.where(np.isfinite(low), low - room, -np.inf)) | (e > np.where(np.isfinite(high), high + room, np.inf))
    return np.where(beyond, np.nan, e)


def _floored(zx: np.ndarray, mean: np.ndarray, upper: tuple[int, ...]) -> np.ndarray:
    """``zx`` as component 0 judges it: in each ``upper`` column a value below the
    component's ``mean`` counts as the mean (:func:`mixture_fit`'s ``upper``)."""
    if not upper:
        return zx
    out = zx.copy()
    cols = list(upper)
    out[:, cols] = np.where(out[:, cols] < mean[cols], mean[cols], out[:, cols])  # NaN stays NaN
    return out


def _start_distance(zx: np.ndarray, zk: np.ndarray) -> np.ndarray:
    """Each candidate's mean squared standardised distance to the mean of the pinned
    rows ``zk`` (:func:`mixture_fit`'s start)."""
    return np.nanmean((zx - np.nanmean(zk, axis=0)) ** 2 / (np.nanvar(zk, axis=0) + 0.25), axis=1)


def mixture_posterior(examples: np.ndarray, candidates: np.ndarray, **kwargs) -> np.ndarray:
    """Posterior that each candidate belongs with the examples: the first half of
    :func:`mixture_fit` (same keyword arguments)."""
    return mixture_fit(examples, candidates, **kwargs)[0]


def mixture_fit(examples: np.ndarray, candidates: np.ndarray, *, iterations: int = 100, reg: float = 1e-2,
                example_share: float = 0.25, spread: dict[int, float] | None = None,
                negatives: np.ndarray | None = None, upper: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Posterior that each candidate belongs with the examples (semi-supervised mixture),
    and how typical of the examples' component each candidate is.

    A two-component diagonal Gaussian mixture is fitted by EM to the examples and the
    candidates together: component 0 holds every example with certainty (they are the
    only labels there are), component 1 is whatever else the proposer found (halos,
    debris, other kinds of object). Candidates are what is learned from: the examples
    only say which cluster is wanted, so ten examples of a varied population are
    enough. Descriptors are standardised by the pooled median and standard deviation.
    NaN marks a descriptor as unknown (e.g. the shape of an object cut by the frame's
    edge): it is marginalised out, so that object is judged on the other descriptors
    and does not inform that column's fit. A column with one value for every example
    and candidate (no object touching another: every cluster size 0) is left out the
    same way: it says nothing, and standardised by its zero spread it would not.

    Ten examples among hundreds of candidates would hold ~2 % of component 0's mass,
    and the component could drift to whichever cluster of candidates is largest (on
    the demo frame: pieces of aggregates and fibres). The examples are therefore
    weighted to hold ``example_share`` of it (never less than one each); 0 is the plain
    semi-supervised mixture. 0.25 raised the demo's precision and left stardist's
    results as they were (docs/performance.md).

    ``spread`` (``{column: sd}``, in the descriptor's own units) fixes component 0's
    standard deviation in those columns at the larger of ``sd`` and the examples' own,
    instead of learning it from the candidates too. For the cluster size
    (:func:`fewseg.classic.describe.describe`) this keeps the pieces of a large structure (a fibre,
    an aggregate) from widening the examples' component until it takes them in, and
    keeps it wide enough for touching objects where the examples sit among them.

    ``upper`` (columns) makes component 0 one-sided there: a candidate's value below the
    component's mean counts as the mean, so only a value above it makes a candidate
    less like the examples. For the cluster size: a piece of a larger structure sits in
    a cluster larger than the examples' kind does, but an object standing alone is no
    less an object of the kind where most of the kind touch a neighbour. Nuclei are
    found both alone and in clusters (stardist's img3d planes: the examples' log
    cluster size 0 for a few, 2.5-3.3 for most), and the two-sided component, its
    spread fixed, lost the free-standing half whenever clicked misses in clusters moved
    its mean up or made the examples' robust spread narrower: clicks, split seeds 1 and
    2, round 1, F1 0.90 -> 0.72 and 0.93 -> 0.74. The mean is learned as before, but
    never below the examples' median in that column: the free-standing members count
    as at the mean wherever it is, so, learned from them too, it could sink until the
    clustered members fell out (a synthetic mix in tests/test_clusters.py). The median,
    not the mean: clicked misses in clusters, a few among examples that stand free,
    raised the examples' mean and with it the pieces of aggregates kept (busy demo,
    clicks, split seed 1: F1 after round 3 0.957 -> 0.926).

    ``negatives`` (``(M, D)``: descriptors of objects the user marked "not these") add a
    third component once the two above are fitted (:func:`_negatives_posterior`): one
    kernel per negative, each as varied as the examples' component (a few negatives
    cannot say how varied their kind is), its share learned from the candidates.
    Candidates nearer the negatives than the examples' kind gather there instead of in
    component 0, so things like them are scored down on every frame. The two fitted
    components do not move: the examples' kind is what it is without negatives. (Tried:
    the negatives pinned to component 1 with weight, which let precision fall round after
    round on the busy demo; a third component learned from the candidates too, which once
    took in a third of the real objects; one Gaussian on the negatives' mean fitted by EM
    together with the other two, which now and then dragged component 0 onto a small
    bright subset: stardist img2d, split seed 13, round 2, 35 of 311 candidates kept, F1
    0.95 -> 0.18; seed 12 with clicks, F1 0.98 -> 0.07. The same Gaussian joined once
    the two are fitted ended those, but sat between negatives of different kinds:
    busy demo, 10 clicks then 3 rounds, F1 after round 3 0.945 against 0.967 with a
    kernel per negative, seeds 0-4.) None or empty: the two-component mixture above,
    unchanged.

    EM starts from the candidates nearer the examples than the median candidate. On the
    demo with clicks it settled now and then on a subset (the dim objects the clicked
    misses were; split seed 3, round 3, F1 0.96 -> 0.50), until the examples' descriptors
    beyond the candidates' range were left out (:func:`bounded_examples`, which ended that
    collapse and those below). Tried and not kept: EM from
    three starts (the 50th, 65th and 80th percentile of that distance), keeping the fit
    that explains the candidates, the examples and the negatives best. It ended that
    collapse and those of seeds 8 and 10, but on the busy demo the broader fits it chose
    took in pieces of aggregates (clicks, seed 8, round 0: F1 0.88 -> 0.79; seed 12,
    round 2: 0.96 -> 0.77), and without the negatives' term it took in the negatives on
    stardist img3d (clicks, seed 1, round 1: 0.72 -> 0.55). The mixture's likelihood does
    not tell the right fit from the wrong one there.

    The examples' spread in a ``spread`` column is robust (from the median absolute
    deviation): the objects a user clicks after a first result are the ones it missed,
    atypical by choice (sitting in clusters the others do not), and with the plain
    standard deviation five such clicks widened the component until it took in pieces of
    aggregates (busy demo precision 0.96 -> 0.64 in one round). For the same reason an
    example's descriptor beyond the range of the candidates is not learned from
    (:func:`bounded_examples`).

    Returns
    -------
    posterior : ndarray, shape (N,)
        Probability of component 0 for each candidate.
    typicality : ndarray, shape (N,)
        Log density of each candidate under component 0 (standardised units, constant
        dropped; an unknown descriptor counts as a typical member's would): higher is
        more like the examples' cluster. It ranks alternative outlines of one object
        (:func:`choose_outlines`), where the posterior is ~1 for all of them.
    """
    x = np.asarray(candidates, dtype=np.float64)
    e = bounded_examples(examples, x)
    if len(x) == 0:
        return np.zeros(0), np.zeros(0)
    if not 0 <= example_share < 1:
        raise ValueError(f"example_share must be in [0, 1), got {example_share}")
    pooled = np.vstack([e, x])
    with warnings.catch_warnings():  # all-NaN columns or rows: their statistics stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        centre, pooled_sd = np.nanmedian(pooled, axis=0), np.nanstd(pooled, axis=0)
        # A column with one value for every example and candidate says nothing (say, no
        # object touches another: every cluster size 0). Standardised by its ~0 spread, a
        # spread fixed there would be ~1e18 wide and score every candidate down; it is
        # left out, as an unknown descriptor is.
        constant = ~(pooled_sd > 1e-9 * np.maximum(1.0, np.abs(centre)))  # all-NaN columns too
        scale = np.where(constant, 1.0, pooled_sd + 1e-9)
        z = (pooled - centre) / scale
        z[:, constant] = np.nan
        fixed = {col: (max(sd, _robust_sd(e[:, col])) / scale[col]) ** 2 + reg for col, sd in (spread or {}).items()}
        ze, zx = z[: len(e)], z[len(e) :]
        floor = {col: np.nanmedian(ze[:, col]) if np.isfinite(ze[:, col]).any() else -np.inf for col in upper}
        # Start: candidates nearer the examples than the median candidate are "like them".
        d = _start_distance(zx, ze)
    known = np.isfinite(z)
    z0 = np.where(known, z, 0.0)
    d = np.where(np.isfinite(d), d, np.inf)
    resp = (d <= np.median(d)).astype(np.float64)
    for _ in range(iterations):
        # Per-example weight so the examples hold example_share of component 0.
        weight = max(1.0, example_share / (1 - example_share) * resp.sum() / len(e))
        params = []
        for w in (np.r_[np.full(len(e), weight), resp], np.r_[np.zeros(len(e)), 1 - resp]):
            wk = w[:, None] * known  # an unknown descriptor does not inform its column
            total = wk.sum(axis=0) + 1e-9
            mean = (wk * z0).sum(axis=0) / total
            var = (wk * (z0 - mean) ** 2).sum(axis=0) / total + reg
            params.append((mean, var))
        for col, var in fixed.items():
            params[0][1][col] = var
        for col in upper:  # never below the examples' median
            params[0][0][col] = max(params[0][0][col], floor[col])
        prior = float(np.clip(resp.mean(), 0.05, 0.95))
        log_like = _log_gauss(_floored(zx, params[0][0], upper), *params[0]) + np.log(prior)
        log_other = _log_gauss(zx, *params[1]) + np.log(1 - prior)
        new = 1.0 / (1.0 + np.exp(np.clip(log_other - log_like, -50, 50)))
        converged = np.max(np.abs(new - resp)) < 1e-5
        resp = new
        if converged:
            break
    seen = _floored(zx, params[0][0], upper)  # the candidates as the fitted component 0 judges them
    if negatives is not None and len(negatives):
        n = np.asarray(negatives, dtype=np.float64).reshape(-1, e.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            zn = (n - centre) / scale
            zn[:, constant] = np.nan
        resp = _negatives_posterior(zx, params, zn, resp, iterations=iterations, seen=seen)
    return resp, _typicality(seen, *params[0])


def _negatives_posterior(zx: np.ndarray, params: list, zn: np.ndarray, resp: np.ndarray, *,
                         iterations: int, seen: np.ndarray | None = None) -> np.ndarray:
    """Component 0's posterior once the negatives' kind joins the fitted two-component
    mixture (:func:`mixture_fit`). The negatives' kind is a mixture of one kernel per
    negative (``zn``, standardised), in equal shares: each centred on its negative, as
    varied as the examples' kind, and in a column that negative does not know (NaN: the
    shape of one cut by the frame's edge) like whatever else was found, so it says
    nothing there. Negatives of several kinds (a fibre's piece, a speck of debris) each
    score down what resembles them; one Gaussian on their mean would sit between them,
    resembling neither. The two fitted components stay as they are; only the three
    shares are learned, starting from the candidates not like the examples that are
    nearer the negatives than the examples' kind. ``seen``: ``zx`` as component 0 judges
    it (its one-sided columns floored, :func:`mixture_fit`'s ``upper``); None: ``zx``."""
    kernels = np.column_stack([
        _log_gauss(zx, np.where(np.isfinite(row), row, params[1][0]), np.where(np.isfinite(row), params[0][1], params[1][1]))
        for row in zn])
    top = kernels.max(axis=1)
    log_neg = top + np.log(np.exp(kernels - top[:, None]).mean(axis=1))
    logs = np.column_stack([_log_gauss(zx if seen is None else seen, *params[0]), _log_gauss(zx, *params[1]), log_neg])
    like = float(resp.mean())
    start = float(np.mean((log_neg > logs[:, 0]) & (resp < 0.5)))
    shares = np.array([like, max(0.0, 1 - like - start), start])
    post = np.column_stack([resp, 1 - resp, np.zeros_like(resp)])
    for _ in range(iterations):
        q = np.clip(shares, 0.05, 0.95)
        log_p = logs + np.log(q / q.sum())
        post = np.exp(log_p - log_p.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        new = post.mean(axis=0)
        if np.max(np.abs(new - shares)) < 1e-6:
            break
        shares = new
    return post[:, 0]


def select_by_mixture(examples: np.ndarray, candidates: np.ndarray, *, threshold: float | None = None,
                      spread: dict[int, float] | None = None, negatives: np.ndarray | None = None,
                      upper: tuple[int, ...] = ()) -> Selection:
    """Keep candidates whose mixture posterior (:func:`mixture_posterior`) is >= threshold.

    The default threshold 0.5 is the Bayes decision between the two components, so
    it needs no tuning; ``threshold`` overrides it (``--similarity``). ``spread``: see
    :func:`mixture_fit`; ``negatives``: descriptors of objects that are not wanted; ``upper``:
    columns where only values above the examples' component count against a candidate
    (both :func:`mixture_fit`).
    """
    return mixture_selection(*mixture_fit(examples, candidates, spread=spread, negatives=negatives, upper=upper),
                             threshold=threshold)


def mixture_selection(scores: np.ndarray, typicality: np.ndarray | None, *, threshold: float | None = None) -> Selection:
    """Keep the candidates whose mixture posterior ``scores`` are >= ``threshold`` (None:
    0.5, the Bayes decision). The scores do not depend on the threshold, so a selection
    is re-thresholded by calling this on its own ``scores`` and ``typicality``.

    Examples
    --------
    >>> selection = mixture_selection(np.array([0.2, 0.6, 0.95]), None)
    >>> selection.keep.tolist(), selection.threshold_source
    ([False, True, True], 'mixture posterior (Bayes decision)')
    >>> mixture_selection(selection.scores, None, threshold=0.9).keep.tolist()
    [False, False, True]
    """
    scores = np.asarray(scores)
    thr = 0.5 if threshold is None else float(threshold)
    source = "mixture posterior (Bayes decision)" if threshold is None else "user"
    return Selection(scores, scores >= thr, thr, source, typicality)


def choose_outlines(masks: list, level: np.ndarray, selection: Selection, shape: tuple[int, int], *,
                    margin: float = 1.0, max_overlap: float = 0.2) -> np.ndarray:
    """One outline per object among alternative outlines (cut at different levels).

    The proposer may outline an object more than once (:func:`fewseg.classic.propose.propose_levels`):
    at the level fitted to the examples (``level`` 0) and at another one. Among the kept
    candidates, the most typical of the examples' cluster (``selection.typicality``)
    are taken first, an outline at the fitted level counting ``margin`` more (a
    likelihood ratio of e ~ 2.7), so another level wins only where it is clearly more
    like the examples: e.g. the whole of a dim nucleus beside a bright one where the
    fitted level kept only its brightest part. A candidate is skipped when more than
    ``max_overlap`` of its area is already taken.

    Returns the indices of the chosen candidates, in the order they were taken.
    """
    keep = np.asarray(selection.keep, dtype=bool)
    if selection.typicality is None:
        raise ValueError("choose_outlines needs a selection with typicality (select_by_mixture)")
    key = _outline_key(selection, level, margin)
    order = np.lexsort((-key, ~keep))
    taken = np.zeros(shape, dtype=bool)
    chosen = []
    for i in order:
        if not keep[i]:
            break
        m = masks[i]
        if np.count_nonzero(taken[m.slices][m.mask]) > max_overlap * m.area:
            continue
        chosen.append(int(i))
        m.paste(taken)
    return np.asarray(chosen, dtype=np.int64)


def _outline_key(selection: Selection, level: np.ndarray, margin: float) -> np.ndarray:
    """How much each candidate is the outline to show of its object: its typicality, an
    outline at the fitted level (``level`` 0) counting ``margin`` more."""
    return np.asarray(selection.typicality, dtype=np.float64) + margin * (np.asarray(level) == 0)


def shown_outline(selection: Selection, level: np.ndarray, *, margin: float = 1.0):
    """Which of a few alternative outlines of one spot (candidate indices) a result shows:
    the one :func:`choose_outlines` takes first, a kept one before any other (most typical
    of the examples' cluster, an outline at the fitted level counting ``margin`` more).
    Returns a function of an index array giving one index.

    Examples
    --------
    >>> sel = Selection(np.array([0.9, 0.2, 0.8]), np.array([True, False, True]), 0.5, "", np.array([-3.0, 5.0, -1.0]))
    >>> shown_outline(sel, np.array([0, 1, 1]))(np.array([0, 1, 2]))
    2
    """
    key = _outline_key(selection, level, margin)
    keep = np.asarray(selection.keep, dtype=bool)

    def shown(indices: np.ndarray) -> int:
        indices = np.asarray(indices)
        return int(indices[np.lexsort((-key[indices], ~keep[indices]))[0]])

    return shown


def rejected(masks: list, marks: list, shape: tuple[int, int], *, per_mark: bool = False,
             share: float = 0.5):
    """Which of ``masks`` (candidates, :class:`~fewseg.objects.ObjectMask`) the negatives
    ``marks`` (:class:`~fewseg.classic.negatives.NegativeMark`) reject: the object at or
    under each one. A click (a mark with a ``point``) rejects every candidate holding
    the clicked pixel; an outline rejects every candidate it covers ``share`` or more of,
    and every candidate covering ``share`` or more of it.

    Returns a boolean array over ``masks`` (True: rejected), or with ``per_mark`` the
    indices each mark rejects, one array per mark.

    Examples
    --------
    >>> from fewseg.objects import ObjectMask
    >>> from fewseg.classic.negatives import NegativeMark
    >>> a, b = ObjectMask(0, 0, np.ones((4, 4), bool)), ObjectMask(10, 10, np.ones((4, 4), bool))
    >>> click = NegativeMark(ObjectMask(1, 1, np.ones((2, 2), bool)), point=(2, 2))
    >>> region = NegativeMark(ObjectMask(9, 9, np.ones((8, 8), bool)))
    >>> rejected([a, b], [click], (20, 20)).tolist(), rejected([a, b], [region], (20, 20)).tolist()
    ([True, False], [False, True])
    """
    n = len(masks)
    boxes = np.array([(m.row, m.col, m.row + m.mask.shape[0], m.col + m.mask.shape[1]) for m in masks],
                     dtype=np.int64).reshape(n, 4)
    hits = []
    for mark in marks:
        if mark.point is not None:
            r, c = (int(v) for v in mark.point)
            near = np.flatnonzero((boxes[:, 0] <= r) & (r < boxes[:, 2]) & (boxes[:, 1] <= c) & (c < boxes[:, 3]))
            hits.append(np.array([i for i in near if masks[i].holds(r, c)], dtype=np.int64))
            continue
        m = mark.mask
        r0, c0, r1, c1 = m.row, m.col, m.row + m.mask.shape[0], m.col + m.mask.shape[1]
        near = np.flatnonzero((boxes[:, 0] < r1) & (r0 < boxes[:, 2]) & (boxes[:, 1] < c1) & (c0 < boxes[:, 3]))
        full = np.zeros(shape, dtype=bool)
        m.paste(full)
        out = []
        for i in near:
            inter = np.count_nonzero(full[masks[i].slices][masks[i].mask])
            if inter >= share * masks[i].area or inter >= share * m.area:
                out.append(i)
        hits.append(np.array(out, dtype=np.int64))
    if per_mark:
        return hits
    keep = np.zeros(n, dtype=bool)
    for h in hits:
        keep[h] = True
    return keep


@dataclass(frozen=True)
class PrototypeSelector:
    """The seed's selector: cosine similarity to the L2-normalised mean example vector."""

    prototype: np.ndarray
    threshold: float = 0.5

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float64)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return (v / np.maximum(norms, 1e-12)) @ self.prototype

    def select(self, vectors: np.ndarray) -> Selection:
        return self.decide(self.similarity(vectors))

    def decide(self, scores: np.ndarray) -> Selection:
        """Keep the ``scores`` (cosine similarities) >= this selector's threshold."""
        scores = np.asarray(scores)
        return Selection(scores, scores >= self.threshold, self.threshold, "seed: cosine to prototype")


def fit_prototype_selector(vectors: np.ndarray, *, threshold: float = 0.5) -> PrototypeSelector:
    """Prototype = L2-normalised mean of the example vectors (the seed's rule)."""
    v = np.asarray(vectors, dtype=np.float64)
    mean = v.mean(axis=0)
    return PrototypeSelector(mean / max(np.linalg.norm(mean), 1e-12), float(threshold))
