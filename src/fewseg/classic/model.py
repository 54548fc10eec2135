"""A fitted few-shot model: ``fit(frame, examples)`` once, ``predict(frame)`` per frame.

The method reads top to bottom (each stage a module)::

    examples -> propose -> embed -> select -> polygons

``WeightFreeSegmenter`` needs no model weights. The SAM methods live in :mod:`fewseg.sam`
and have the same two methods; :func:`fewseg.methods.make_segmenter` returns the one a
config asks for. What ``predict`` returns and its shared last stage live in
:mod:`fewseg.result`.
"""

from __future__ import annotations

import time

import numpy as np

from .boundary import BoundaryModel, fit_boundary, proposed_outlines
from ..config import FROM_CONFIG, SegmentConfig, similarity_of
from .describe import DESCRIPTOR_NAMES, channel_levels, describe
from .examples import ExampleProfile, is_click, learn_profile_and_signal, object_signal
from ..objects import Annotation, Frame, ObjectMask
from .propose import ProposerSettings, example_clusters, fit_proposer, propose_levels
from .reuse import array_key, examples_key, masks_key, remember, reuse
from ..result import Candidates, Segmentation, finish
from .clicks import as_masks
from .negatives import check_negatives, negative_marks
from .parallel import map_levels
from .select import Selection, choose_outlines, mixture_selection, rejected, select_by_mixture, shown_outline
from .training import training_frame


#: The examples' component's standard deviation of the cluster size (log of the area of
#: the touching objects over the object's own), at least: ``select.mixture_fit``'s
#: ``spread``. 0.5 was chosen on split seeds 0-4 (docs/performance.md, "Where the errors lay").
CLUSTER_SPREAD = 0.5


class WeightFreeSegmenter:
    """Few-shot segmentation with no model weights.

    ``fit`` learns from the examples which channels show the objects and how
    (:func:`~fewseg.classic.examples.learn_profile`), where their boundary lies and how to split
    touching ones (:func:`~fewseg.classic.propose.fit_proposer`) and what they look like
    (:func:`~fewseg.classic.describe.describe`). ``predict`` proposes candidates at two levels
    (:func:`~fewseg.classic.propose.propose_levels`), describes them, keeps those in the
    examples' cluster (:func:`~fewseg.classic.select.select_by_mixture`) and, per object, the
    outline most like the examples (:func:`~fewseg.classic.select.choose_outlines`).

    Examples
    --------
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    >>> model = WeightFreeSegmenter().fit(frame, truth[:10])
    >>> result = model.predict(frame, exclude=truth[:10])
    >>> len(result.polygons) > 15
    True
    """

    def __init__(self, config: SegmentConfig | None = None):
        self.config = config or SegmentConfig()
        self.profile: ExampleProfile | None = None
        self.settings: ProposerSettings | None = None
        self.example_fit: float | None = None
        self.example_vectors: np.ndarray | None = None
        self.boundary: BoundaryModel | None = None

    def fit(self, frame: Frame, examples: list[Annotation] | list[ObjectMask], *,
            negatives: list[Annotation] | list[ObjectMask] | None = None) -> "WeightFreeSegmenter":
        """Learn from ``examples`` on ``frame`` (outlines, label-image objects or clicks,
        mixed or not) and, given ``negatives`` (the same kinds, on ``frame``: objects
        that are not the kind wanted), what the objects are not.

        Outlines teach the profile, the size and the proposer's settings; clicks are
        outlined by them (and teach them only when there are no outlines: a click's
        outline is the proposer's own, so it would only confirm it, and the objects a
        user clicks after a first result are the ones it missed, atypical by choice).
        Each negative rejects the candidates at or under it on ``frame``
        (:func:`~fewseg.classic.select.rejected`); their descriptors centre the kernels
        of the selector's third component (:func:`~fewseg.classic.select.mixture_fit`), so things like them
        are scored down on every frame, and they are never returned on ``frame``.

        A correction round (the same frame, a few more or fewer examples or negatives)
        costs only what changed: this is the one way to refit, on a new segmenter or
        this one. What depends only on the frame's bytes and on what did not change
        (the profile and proposer the outlines teach, the frame's candidates and their
        descriptors, the examples' descriptors, the learned boundary) is kept between
        calls (:mod:`fewseg.classic.reuse`), with the same results as a first fit.

        Raises
        ------
        InputError
            A negative that overlaps an example (both named), or one outside the frame.
        """
        frame_key = array_key(frame.data)
        # Clicks are outlined once for the same frame and the same examples (the outlines
        # among them are the caller's own masks: left writable).
        masks = (reuse("example masks", (frame_key, examples_key(examples)), lambda: as_masks(examples, frame),
                       freeze=False) if any(is_click(e) for e in examples) else as_masks(examples, frame))
        # predict(frame, exclude=the same examples) reuses their masks (clicks are
        # outlined once).
        self._example_masks = (tuple(examples), masks)
        # Outlines teach the profile, the size and the proposer; clicks (outlined by the
        # proposer itself) do so only when there are no outlines.
        taught = [m for m, e in zip(masks, examples) if not is_click(e)] or masks
        self.profile, signal = learn_profile_and_signal(frame, taught)
        # predict on the frame fitted on (the usual next call) finds its signal.
        remember("signal", (frame_key, self.profile), signal)
        base = reuse("levels", frame_key, lambda: channel_levels(frame))
        self.settings, self.example_fit = fit_proposer(signal, taught, self.profile.radius)
        fitted = (frame_key, self.profile, self.settings, masks_key(masks))
        # Each example judged in its own cluster in the frame, as candidates are in theirs.
        # (The clusters of the examples met before are kept with the frame's signal and settings.)
        known = reuse("clusters", (frame_key, self.profile, self.settings), dict, freeze=False)
        self.example_vectors = reuse("examples", fitted, lambda: describe(
            frame, signal, masks, self.profile, base=base,
            clusters=example_clusters(signal, masks, self.settings, cache=known)))
        self.negative_vectors = None
        self._negatives = None
        if negatives:
            self._fit_negatives(frame, frame_key, list(examples), masks, list(negatives), signal, base)
        self.boundary = None
        if self.config.boundary == "learned":
            self.boundary = reuse("boundary", fitted, lambda: fit_boundary(
                signal, masks, proposed_outlines(signal, masks, self.settings), radius=self.profile.radius))
        return self

    def _fit_negatives(self, frame: Frame, frame_key: tuple, examples: list, masks: list[ObjectMask], negatives: list,
                       signal: np.ndarray, base: tuple[float, ...]) -> None:
        """What ``fit`` learns from ``negatives``: the candidates of ``frame`` each one
        rejects (:func:`~fewseg.classic.select.rejected`) described as predict describes
        them (kept for predict on this frame), else the negative's own outline."""
        marks = negative_marks(negatives, frame, signal=signal, radius=self.profile.radius, settings=self.settings)
        check_negatives(marks, masks, examples, negatives, source=frame.source)
        (levels, vectors), _ = self._candidates(frame, frame_key, signal, base)
        candidates = [c for level in levels for c in level]
        hit = rejected(candidates, marks, frame.shape, per_mark=True)
        # A click rejects every candidate holding its pixel, but what the user pointed at is
        # the one predict showed there: the outline choose_outlines takes among them.
        if any(mark.point is not None for mark in marks):
            shown = shown_outline(self.select(vectors), _level_of(levels))
        rows = []
        for k, mark in enumerate(marks):
            if hit[k].size and mark.point is not None:
                rows.append(vectors[[shown(hit[k])]])
            elif hit[k].size:
                rows.append(vectors[hit[k]])
            else:
                rows.append(describe(frame, signal, [mark.mask], self.profile, base=base,
                                     clusters=example_clusters(signal, [mark.mask], self.settings)))
        self.negative_vectors = np.vstack(rows)
        self._negatives = (frame_key, marks)

    def fit_frames(self, items) -> "WeightFreeSegmenter":
        """Learn from examples (and negatives) on several frames: ``items`` is a sequence of
        ``(frame, examples, negatives)`` (``negatives`` may be None). One frame is
        :meth:`fit`; several are fitted as one training frame, the crops around each
        frame's examples side by side (:func:`~fewseg.classic.training.training_frame`;
        clicks are outlined on their own frame first).

        Examples
        --------
        >>> from fewseg.demo import make_demo
        >>> (a, truth_a), (b, truth_b) = make_demo(seed=1, shape=(160, 160), n_blobs=20), make_demo(seed=2, shape=(160, 160), n_blobs=20)
        >>> model = WeightFreeSegmenter().fit_frames([(a, truth_a[:4], None), (b, truth_b[:4], None)])
        >>> len(model.profile.areas), len(model.predict(b, exclude=truth_b[:4]).polygons) > 8
        (8, True)
        """
        items = [(frame, examples, negatives or []) for frame, examples, negatives in items]
        if len(items) > 1:
            frame, examples, negatives = training_frame([(f, as_masks(ex, f), as_masks(neg, f)) for f, ex, neg in items])
            items = [(frame, examples, negatives)]
        frame, examples, negatives = items[0]
        return self.fit(frame, examples, **({"negatives": negatives} if len(negatives) else {}))

    def predict(self, frame: Frame, *, exclude: list[Annotation] | list[ObjectMask] | None = None,
                reject: list[Annotation] | list[ObjectMask] | None = None,
                similarity: float | None | str = FROM_CONFIG) -> Segmentation:
        """Outline every object like the examples in ``frame`` (``(C, Y, X)``, the channels fitted on).

        ``exclude``: examples on this frame (their re-discoveries are dropped);
        ``reject``: negatives on this frame (annotations or masks): the candidates at or
        under them are never returned (:func:`~fewseg.classic.select.rejected`). On the
        frame ``fit`` was given negatives for (the same bytes), those are rejected
        whatever ``reject`` says, so ``fit(frame, ex, negatives=neg).predict(frame)``
        never returns them: the model keeps them, as it keeps that frame's signal.
        ``similarity``: the keep threshold (``"config"``: ``config.similarity``; None: the
        Bayes decision, 0.5; :func:`~fewseg.config.similarity_of`). The result keeps its
        candidates, so :meth:`rethreshold` can keep more or fewer of them cheaply.
        """
        if self.profile is None:
            raise RuntimeError("call fit(frame, examples) before predict(frame)")
        if frame.data.shape[0] != len(self.profile.weights):
            from ..errors import InputError

            raise InputError(frame.source, f"has {frame.data.shape[0]} channel(s); the model was fitted on {len(self.profile.weights)}")
        t0 = time.perf_counter()
        digest = array_key(frame.data)
        signal, base = self._signal(frame, digest)
        (levels, vectors), seconds = self._candidates(frame, digest, signal, base)
        masks = [c for level in levels for c in level]
        level = _level_of(levels)
        t1 = time.perf_counter()
        selection = self.select(vectors, similarity=similarity)
        marks = list(self._negatives[1]) if getattr(self, "_negatives", None) and self._negatives[0] == digest else []
        if reject:
            marks += negative_marks(list(reject), frame, signal=signal, radius=self.profile.radius,
                                    settings=self.settings)
        if marks:  # the rejected candidates are gone: no threshold brings them back
            keep = ~rejected(masks, marks, frame.shape)
            masks, level = [m for m, k in zip(masks, keep) if k], level[keep]
            selection = mixture_selection(selection.scores[keep], selection.typicality[keep],
                                          threshold=selection.threshold if selection.threshold_source == "user" else None)
        candidates = Candidates(masks, frame.shape,
                                exclude=self._exclude_masks(exclude, frame) if exclude else None, level=level,
                                signal=signal if getattr(self, "boundary", None) is not None else None,
                                source=frame.source)
        out = self.keep(candidates, selection)
        polygons = out.timings["polygons"]
        out.timings = {"propose": t1 - t0 - seconds[1], "embed": seconds[1], "select": time.perf_counter() - t1 - polygons,
                       "polygons": polygons}
        return out

    def _candidates(self, frame: Frame, frame_key: tuple, signal: np.ndarray, base: tuple[float, ...]):
        """The candidates of ``frame`` (``frame_key``: its :func:`~fewseg.classic.reuse.array_key`)
        at each level (:func:`~fewseg.classic.propose.propose_levels`) and their
        descriptors, each level described on its own (descriptors assume non-overlapping
        masks): ``((levels, vectors), (propose seconds, describe seconds))``, the seconds
        0 where they were kept from an earlier call with the same frame, profile and
        settings (:func:`~fewseg.classic.reuse.reuse`)."""
        cfg = self.config
        seconds = [0.0, 0.0]

        def compute():
            t0 = time.perf_counter()
            levels = propose_levels(signal, self.settings, min_area=cfg.min_area, max_area=cfg.max_area)
            t1 = time.perf_counter()
            vectors = np.vstack(map_levels(lambda level: describe(frame, signal, level, self.profile, base=base), levels,
                                            pixels=signal.size))
            seconds[:] = t1 - t0, time.perf_counter() - t1
            return levels, vectors

        found = reuse("candidates", (frame_key, self.profile, self.settings, cfg.min_area, cfg.max_area), compute)
        return found, tuple(seconds)

    def rethreshold(self, segmentation: Segmentation, *, similarity: float | None | str = FROM_CONFIG) -> Segmentation:
        """``segmentation`` (what :meth:`predict` returned) kept at another ``similarity``
        (as in :meth:`predict`): equal to a fresh ``predict`` of that frame at that
        threshold, redoing only the keep decision, the choice of outlines and
        :func:`~fewseg.result.finish` (the candidates' scores do not depend on the threshold).

        Examples
        --------
        >>> from fewseg.demo import make_demo
        >>> frame, truth = make_demo(seed=2, shape=(200, 200), n_blobs=30)
        >>> model = WeightFreeSegmenter().fit(frame, truth[:8])
        >>> found = model.predict(frame)
        >>> strict = model.rethreshold(found, similarity=0.99)
        >>> len(strict.polygons) < len(found.polygons), strict.selection.threshold, strict.candidates is found.candidates
        (True, 0.99, True)
        """
        candidates = segmentation.require_candidates()
        t0 = time.perf_counter()
        prior = segmentation.selection
        selection = mixture_selection(prior.scores, prior.typicality, threshold=similarity_of(self.config, similarity))
        out = self.keep(candidates, selection)
        polygons = out.timings["polygons"]
        out.timings = {"select": time.perf_counter() - t0 - polygons, "polygons": polygons}
        return out

    def keep(self, candidates: Candidates, selection: Selection) -> Segmentation:
        """What :meth:`predict` returns once the candidates are scored: one outline per kept
        object (:meth:`outlines`), then :func:`~fewseg.result.finish` (re-discoveries of
        ``candidates.exclude`` dropped, polygons traced and made disjoint)."""
        t0 = time.perf_counter()
        kept, scores = self.outlines(candidates.masks, candidates.level, selection, candidates.shape,
                                     signal=candidates.signal)
        t1 = time.perf_counter()
        polys, masks, scores, n_re = finish(candidates.frame(), kept, scores, config=self.config,
                                            exclude=candidates.exclude)
        t2 = time.perf_counter()
        return Segmentation(polygons=polys, masks=masks, scores=scores, n_candidates=len(candidates.masks),
                            n_rediscovered=n_re, timings={"select": t1 - t0, "polygons": t2 - t1},
                            selection=selection, candidates=candidates)

    def outlines(self, masks: list[ObjectMask], level: np.ndarray, selection: Selection, shape: tuple[int, int], *,
                 signal: np.ndarray | None = None) -> tuple[list[ObjectMask], np.ndarray]:
        """The kept candidates, one outline per object
        (:func:`~fewseg.classic.select.choose_outlines`), redrawn by the learned boundary
        on ``signal`` when the model has one and ``signal`` is given; and their scores.
        ``predict`` and the block-by-block path share it."""
        chosen = choose_outlines(masks, level, selection, shape)
        kept = [masks[i] for i in chosen]
        if getattr(self, "boundary", None) is not None and signal is not None:
            # Best score first: where redrawn outlines would overlap, the better object keeps the pixels.
            order = np.argsort(-selection.scores[chosen], kind="stable")
            redrawn = self.boundary.redraw(signal, [kept[i] for i in order])
            for k, i in enumerate(order):
                kept[i] = redrawn[k]
        return kept, selection.scores[chosen]

    def select(self, vectors: np.ndarray, *, similarity: float | None | str = FROM_CONFIG) -> Selection:
        """Which of the candidates described by ``vectors`` are like the examples
        (:func:`~fewseg.classic.select.select_by_mixture`, the cluster size's spread fixed:
        :data:`CLUSTER_SPREAD`, and only a cluster larger than the examples' kind's
        counting against a candidate), kept at ``similarity`` (as in :meth:`predict`);
        ``predict`` and the block-by-block path share it."""
        cluster = DESCRIPTOR_NAMES.index("log_cluster")
        return select_by_mixture(self.example_vectors, vectors, threshold=similarity_of(self.config, similarity),
                                 spread={cluster: CLUSTER_SPREAD}, upper=(cluster,),
                                 negatives=getattr(self, "negative_vectors", None))

    def __getstate__(self) -> dict:
        # The examples' masks and the negatives stay with this process (a pickled model is for other frames).
        return {k: v for k, v in self.__dict__.items() if k not in ("_example_masks", "_negatives")}

    def _exclude_masks(self, exclude, frame: Frame) -> list[ObjectMask]:
        """Masks of ``exclude``: those ``fit`` made when they are its examples (the same
        objects), else :func:`~fewseg.classic.clicks.as_masks`."""
        fitted, masks = getattr(self, "_example_masks", ((), []))
        if len(exclude) == len(fitted) and all(a is b for a, b in zip(exclude, fitted)):
            return masks
        return as_masks(exclude, frame)

    def _signal(self, frame: Frame, frame_key: tuple | None = None) -> tuple[np.ndarray, tuple[float, ...]]:
        """The frame's object signal (read-only) and channel levels
        (:func:`~fewseg.classic.describe.channel_levels`), kept for the same bytes
        (``frame_key``: the frame's :func:`~fewseg.classic.reuse.array_key`) and profile:
        ``fit`` keeps its frame's."""
        frame_key = array_key(frame.data) if frame_key is None else frame_key
        return (reuse("signal", (frame_key, self.profile), lambda: object_signal(frame, self.profile)),
                reuse("levels", frame_key, lambda: channel_levels(frame)))

    def describe_fit(self) -> dict:
        """What ``fit`` learned, as JSON-ready data."""
        return {
            "method": "classic",
            "profile": self.profile.to_dict() if self.profile else None,
            "proposer": self.settings.to_dict() if self.settings else None,
            "example_fit_mean_best_iou": self.example_fit,
            "boundary": self.boundary.to_dict() if getattr(self, "boundary", None) is not None else None,
            **({"n_negatives": len(self._negatives[1]), "n_negative_objects": int(len(self.negative_vectors))}
               if getattr(self, "negative_vectors", None) is not None else {}),
        }


def _level_of(levels: list[list]) -> np.ndarray:
    """The level (index into ``levels``) of each candidate, in the order the levels list them."""
    return np.concatenate([np.full(len(lv), k) for k, lv in enumerate(levels)])
