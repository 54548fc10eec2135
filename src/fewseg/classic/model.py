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
from ..config import SegmentConfig
from .describe import DESCRIPTOR_NAMES, channel_levels, describe
from .examples import ExampleProfile, learn_profile_and_signal, object_signal
from ..objects import Annotation, Frame, ObjectMask
from .propose import ProposerSettings, example_clusters, fit_proposer, propose_levels
from ..result import Segmentation, finish
from .clicks import as_masks
from .select import Selection, choose_outlines, select_by_mixture


#: The examples' component's standard deviation of the cluster size (log of the area of
#: the touching objects over the object's own), at least: ``select.mixture_fit``'s
#: ``spread``. 0.5 was chosen on split seeds 0-4 (README, "Where the errors lie").
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

    def fit(self, frame: Frame, examples: list[Annotation] | list[ObjectMask]) -> "WeightFreeSegmenter":
        masks = as_masks(examples, frame)
        # predict(frame, exclude=the same examples) reuses their masks (clicks are
        # outlined once).
        self._example_masks = (tuple(examples), masks)
        self.profile, signal = learn_profile_and_signal(frame, masks)
        # predict on the frame fitted on (the usual first call) reuses its signal.
        base = channel_levels(frame)
        self._fitted_signal = (frame.data, _fingerprint(frame.data), signal, base)
        self.settings, self.example_fit = fit_proposer(signal, masks, self.profile.radius)
        # Each example judged in its own cluster in the frame, as candidates are in theirs.
        self.example_vectors = describe(frame, signal, masks, self.profile, base=base,
                                        clusters=example_clusters(signal, masks, self.settings))
        self.boundary = None
        if self.config.boundary == "learned":
            self.boundary = fit_boundary(signal, masks, proposed_outlines(signal, masks, self.settings),
                                         radius=self.profile.radius)
        # The last frame's candidates: shared (not copied) by with_similarity's copies, so
        # predicting a frame again with another threshold skips proposing and describing.
        self._last_candidates = {}
        return self

    def predict(self, frame: Frame, *, exclude: list[Annotation] | list[ObjectMask] | None = None) -> Segmentation:
        if self.profile is None:
            raise RuntimeError("call fit(frame, examples) before predict(frame)")
        if frame.data.shape[0] != len(self.profile.weights):
            from ..errors import InputError

            raise InputError(frame.source, f"has {frame.data.shape[0]} channel(s); the model was fitted on {len(self.profile.weights)}")
        cfg = self.config
        t0 = time.perf_counter()
        digest = _fingerprint(frame.data)
        key = (frame.data.shape, frame.data.dtype.str, digest, cfg.min_area, cfg.max_area)
        last = getattr(self, "_last_candidates", {})
        if last.get("key") == key:
            signal, candidates, level_of, vectors = last["value"]
            t1 = t2 = time.perf_counter()
        else:
            signal, base = self._signal(frame, digest)
            levels = propose_levels(signal, self.settings, min_area=cfg.min_area, max_area=cfg.max_area)
            candidates = [c for level in levels for c in level]
            level_of = np.concatenate([np.full(len(level), k) for k, level in enumerate(levels)])
            t1 = time.perf_counter()
            # Each level is described on its own: descriptors assume non-overlapping masks.
            vectors = np.vstack([describe(frame, signal, level, self.profile, base=base) for level in levels])
            t2 = time.perf_counter()
            last.clear()
            last.update(key=key, value=(signal, candidates, level_of, vectors))
        selection = self.select(vectors)
        chosen = choose_outlines(candidates, level_of, selection, frame.shape)
        kept = [candidates[i] for i in chosen]
        if getattr(self, "boundary", None) is not None:
            # Best score first: where redrawn outlines would overlap, the better object keeps the pixels.
            order = np.argsort(-selection.scores[chosen], kind="stable")
            redrawn = self.boundary.redraw(signal, [kept[i] for i in order])
            for k, i in enumerate(order):
                kept[i] = redrawn[k]
        t3 = time.perf_counter()
        exclude_masks = self._exclude_masks(exclude, frame) if exclude else None
        polys, masks, scores, n_re = finish(frame, kept, selection.scores[chosen], config=cfg,
                                            exclude=exclude_masks)
        t4 = time.perf_counter()
        return Segmentation(
            polygons=polys,
            masks=masks,
            scores=scores,
            n_candidates=len(candidates),
            n_rediscovered=n_re,
            timings={"propose": t1 - t0, "embed": t2 - t1, "select": t3 - t2, "polygons": t4 - t3},
            selection=selection,
        )

    def select(self, vectors: np.ndarray) -> Selection:
        """Which of the candidates described by ``vectors`` are like the examples
        (:func:`~fewseg.classic.select.select_by_mixture`, the cluster size's spread fixed:
        :data:`CLUSTER_SPREAD`); ``predict`` and the block-by-block path share it."""
        return select_by_mixture(self.example_vectors, vectors, threshold=self.config.similarity,
                                 spread={DESCRIPTOR_NAMES.index("log_cluster"): CLUSTER_SPREAD})

    def __copy__(self) -> "WeightFreeSegmenter":
        # A copy in this process (methods.with_similarity) shares the caches too.
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        return out

    def __getstate__(self) -> dict:
        # The cached signal, masks and candidates stay with this process (a pickled model is for other frames).
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_fitted_signal", "_example_masks", "_last_candidates")}

    def _exclude_masks(self, exclude, frame: Frame) -> list[ObjectMask]:
        """Masks of ``exclude``: those ``fit`` made when they are its examples (the same
        objects), else :func:`~fewseg.classic.clicks.as_masks`."""
        fitted, masks = getattr(self, "_example_masks", ((), []))
        if len(exclude) == len(fitted) and all(a is b for a, b in zip(exclude, fitted)):
            return masks
        return as_masks(exclude, frame)

    def _signal(self, frame: Frame, digest: bytes) -> tuple[np.ndarray, tuple[float, ...]]:
        """The frame's object signal and channel levels (:func:`~fewseg.classic.describe.channel_levels`);
        those ``fit`` computed when this is its frame, unchanged (same array, same bytes:
        ``digest`` is the frame's :func:`_fingerprint`)."""
        data, print_, signal, base = getattr(self, "_fitted_signal", (None, None, None, None))
        if frame.data is data and digest == print_:
            return signal, base
        return object_signal(frame, self.profile), channel_levels(frame)

    def describe_fit(self) -> dict:
        """What ``fit`` learned, as JSON-ready data."""
        return {
            "method": "classic",
            "profile": self.profile.to_dict() if self.profile else None,
            "proposer": self.settings.to_dict() if self.settings else None,
            "example_fit_mean_best_iou": self.example_fit,
            "boundary": self.boundary.to_dict() if getattr(self, "boundary", None) is not None else None,
        }


def _fingerprint(data: np.ndarray) -> bytes:
    """A digest of an array's bytes (milliseconds for a frame)."""
    import hashlib

    return hashlib.blake2b(np.ascontiguousarray(data).data, digest_size=16).digest()
