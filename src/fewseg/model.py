"""A fitted few-shot model: ``fit(frame, examples)`` once, ``predict(frame)`` per frame.

The method reads top to bottom (each stage a module)::

    examples -> propose -> embed -> select -> polygons

``WeightFreeSegmenter`` needs no model weights. ``make_segmenter(config)`` returns the
segmenter a config asks for; the SAM methods live in :mod:`fewseg.sam` and have the same
two methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .config import SegmentConfig
from .embed import channel_levels, describe
from .evaluate import rediscovered
from .examples import ExampleProfile, example_masks, learn_profile_and_signal, object_signal
from .objects import Annotation, Frame, Location, ObjectMask
from .polygons import mask_to_polygon, rasterize, remove_overlaps
from .propose import ProposerSettings, fit_proposer, propose_levels
from .select import Selection, choose_outlines, select_by_mixture


@dataclass
class Segmentation:
    """What ``predict`` found in one frame.

    Attributes
    ----------
    polygons : list of ndarray (N_i, 2)
        Outlines, ``(row, col)``, disjoint, simplified.
    masks : list of ObjectMask
        The polygons rasterised (what a label-image output and the evaluation see).
    scores : ndarray, shape (n,)
        Selector score of each kept object.
    n_candidates : int
        Candidates proposed before selection.
    n_rediscovered : int
        Kept objects dropped because they re-discover an example in this frame.
    timings : dict of str -> float
        Seconds per stage.
    selection : Selection
    """

    polygons: list[np.ndarray]
    masks: list[ObjectMask]
    scores: np.ndarray
    n_candidates: int
    n_rediscovered: int
    timings: dict[str, float]
    selection: Selection | None = None
    extra: dict = field(default_factory=dict)

    def annotations(self, *, tags=(), location: Location = Location(), channel: int = 0) -> list[Annotation]:
        """The found objects as annotations (each carries its ``score`` property)."""
        return [
            Annotation(polygon=p, tags=tuple(tags), location=location, channel=channel, properties={"score": float(s)})
            for p, s in zip(self.polygons, self.scores)
        ]


def finish(
    frame: Frame,
    masks: list[ObjectMask],
    scores: np.ndarray,
    *,
    config: SegmentConfig,
    exclude: list[ObjectMask] | None,
) -> tuple[list[np.ndarray], list[ObjectMask], np.ndarray, int]:
    """Shared last stage: drop re-discovered examples, trace polygons, make them disjoint.

    Objects are processed best score first, so where two overlap the better keeps the
    shared pixels. Returns ``(polygons, rasterised masks, scores, n_rediscovered)``.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    masks = [masks[i] for i in order]
    scores = np.asarray(scores)[order]
    n_rediscovered = 0
    if exclude and config.exclude_examples:
        hit = rediscovered(masks, exclude, frame.shape, iou=config.iou)
        masks, scores, n_rediscovered = [m for m, h in zip(masks, hit) if not h], scores[~hit], int(hit.sum())
    polys = [mask_to_polygon(m, smoothing=config.smoothing) for m in masks]
    valid = [i for i, p in enumerate(polys) if p is not None]
    disjoint = remove_overlaps([polys[i] for i in valid])
    out_p, out_m, out_s = [], [], []
    for i, p in zip(valid, disjoint):
        if p is None:
            continue
        m = rasterize(p, frame.shape)
        if m.area < max(config.min_area, 1) or (config.max_area and m.area > config.max_area):
            continue
        out_p.append(p)
        out_m.append(m)
        out_s.append(scores[i])
    return out_p, out_m, np.asarray(out_s, dtype=np.float64), n_rediscovered


class WeightFreeSegmenter:
    """Few-shot segmentation with no model weights.

    ``fit`` learns from the examples which channels show the objects and how
    (:func:`~fewseg.examples.learn_profile`), where their boundary lies and how to split
    touching ones (:func:`~fewseg.propose.fit_proposer`) and what they look like
    (:func:`~fewseg.embed.describe`). ``predict`` proposes candidates at two levels
    (:func:`~fewseg.propose.propose_levels`), describes them, keeps those in the
    examples' cluster (:func:`~fewseg.select.select_by_mixture`) and, per object, the
    outline most like the examples (:func:`~fewseg.select.choose_outlines`).

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

    def fit(self, frame: Frame, examples: list[Annotation] | list[ObjectMask]) -> "WeightFreeSegmenter":
        masks = _as_masks(examples, frame)
        self.profile, signal = learn_profile_and_signal(frame, masks)
        self.settings, self.example_fit = fit_proposer(signal, masks, self.profile.radius)
        self.example_vectors = describe(frame, signal, masks, self.profile)
        return self

    def predict(self, frame: Frame, *, exclude: list[Annotation] | list[ObjectMask] | None = None) -> Segmentation:
        if self.profile is None:
            raise RuntimeError("call fit(frame, examples) before predict(frame)")
        if frame.data.shape[0] != len(self.profile.weights):
            from .errors import InputError

            raise InputError(frame.source, f"has {frame.data.shape[0]} channel(s); the model was fitted on {len(self.profile.weights)}")
        cfg = self.config
        t0 = time.perf_counter()
        signal = object_signal(frame, self.profile)
        levels = propose_levels(signal, self.settings, min_area=cfg.min_area, max_area=cfg.max_area)
        candidates = [c for level in levels for c in level]
        level_of = np.concatenate([np.full(len(level), k) for k, level in enumerate(levels)])
        t1 = time.perf_counter()
        # Each level is described on its own: descriptors assume non-overlapping masks.
        base = channel_levels(frame)
        vectors = np.vstack([describe(frame, signal, level, self.profile, base=base) for level in levels])
        t2 = time.perf_counter()
        selection = select_by_mixture(self.example_vectors, vectors, threshold=cfg.similarity)
        chosen = choose_outlines(candidates, level_of, selection, frame.shape)
        t3 = time.perf_counter()
        exclude_masks = _as_masks(exclude, frame) if exclude else None
        polys, masks, scores, n_re = finish(frame, [candidates[i] for i in chosen], selection.scores[chosen], config=cfg,
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

    def describe_fit(self) -> dict:
        """What ``fit`` learned, as JSON-ready data."""
        return {
            "method": "classic",
            "profile": self.profile.to_dict() if self.profile else None,
            "proposer": self.settings.to_dict() if self.settings else None,
            "example_fit_mean_best_iou": self.example_fit,
        }


def _as_masks(items, frame: Frame) -> list[ObjectMask]:
    return example_masks(list(items), frame.shape, source=frame.source) if items else []


def make_segmenter(config: SegmentConfig, *, render=None):
    """The segmenter for ``config.method`` (SAM methods import torch only when asked for).

    ``render`` (:class:`~fewseg.render.RenderConfig`) is how the SAM methods merge the
    channels into the RGB image the model sees; the weight-free method reads the
    channels directly and ignores it.
    """
    if config.method == "classic":
        return WeightFreeSegmenter(config)
    if config.method == "seed":
        from .sam.seed_method import SeedSegmenter

        return SeedSegmenter(config, render=render)
    if config.method == "fast":
        from .sam.fast_method import FastSegmenter

        return FastSegmenter(config, render=render)
    raise ValueError(config.method)
