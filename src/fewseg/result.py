"""What a method returns for one frame, and the last stage every method shares.

``finish`` drops objects that re-discover an example, traces polygons and makes them
disjoint; :class:`Segmentation` holds the outcome, and the :class:`Candidates` it was
chosen from, so a method's ``rethreshold`` redoes only the cheap tail (keep, outline,
``finish``) at another similarity. The weight-free model and the SAM methods all end
here, and the batch loop, the evaluation and the ways in read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .config import SegmentConfig
from .match import drop_rediscovered
from .objects import Annotation, Frame, Location, ObjectMask
from .polygons import mask_to_polygon, rasterize, remove_overlaps

if TYPE_CHECKING:  # the classic method's selection record; no method is imported here
    from .classic.select import Selection


@dataclass(frozen=True, eq=False)
class Candidates:
    """What ``predict`` chose from in one frame: enough to keep another share of it
    (``rethreshold``) without proposing, describing or scoring again.

    Attributes
    ----------
    masks : list of ObjectMask
        Every candidate, frame coordinates, in the order of ``Segmentation.selection.scores``.
    shape : tuple of int
        ``(Y, X)`` of the frame.
    exclude : list of ObjectMask or None
        The masks of the examples whose re-discoveries are dropped (``exclude``).
    level : ndarray of int, optional
        Classic method: each candidate's outline level (0: the level fitted to the examples).
    signal : ndarray (Y, X), optional
        Classic method with the learned boundary: the object signal the outlines are redrawn on.
    source : str
        The frame's name, for messages.
    """

    masks: list[ObjectMask]
    shape: tuple[int, int]
    exclude: list[ObjectMask] | None = None
    level: np.ndarray | None = None
    signal: np.ndarray | None = None
    source: str = "<frame>"

    def frame(self) -> Frame:
        """A :class:`~fewseg.objects.Frame` of this shape holding no pixels (a zero-stride
        view), for :func:`finish`, which reads only the frame's shape."""
        return shape_only(self.shape, self.source)


def shape_only(shape: tuple[int, int], source: str = "<frame>") -> Frame:
    """A one-channel :class:`~fewseg.objects.Frame` of ``shape`` with no pixels behind it
    (a zero-stride view: a few bytes whatever the shape), for stages that read only the
    frame's size.

    Examples
    --------
    >>> shape_only((4096, 4096)).shape, shape_only((4096, 4096)).data.strides
    ((4096, 4096), (0, 0, 0))
    """
    return Frame(np.broadcast_to(np.zeros((1, 1, 1), np.float32), (1, *shape)), source=source)


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
    extra : dict
        Method-specific counts (JSON-ready).
    candidates : Candidates, optional
        What was chosen from, for the method's ``rethreshold``; in this process only
        (left out of pickles, e.g. a result sent back by a dask worker, and never written).
    """

    polygons: list[np.ndarray]
    masks: list[ObjectMask]
    scores: np.ndarray
    n_candidates: int
    n_rediscovered: int
    timings: dict[str, float]
    selection: Selection | None = None
    extra: dict = field(default_factory=dict)
    candidates: Candidates | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "candidates": None}

    def require_candidates(self) -> Candidates:
        """:attr:`candidates`, for a method's ``rethreshold``; ValueError when this result
        has none (sent from another process, or predicted block by block)."""
        if self.candidates is None:
            raise ValueError("this segmentation keeps no candidates (it was pickled, e.g. sent back by a dask "
                             "worker, or predicted block by block): predict the frame again with the threshold")
        return self.candidates

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
    # Best score first (stable), dropping what re-discovers an example.
    masks, scores, n_rediscovered = drop_rediscovered(masks, exclude if config.exclude_examples else [], frame.shape,
                                                      iou=config.iou, scores=scores)
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



def keep_selected(candidates: Candidates, selection: Selection, *, config: SegmentConfig) -> Segmentation:
    """The candidates ``selection`` keeps, through :func:`finish` (re-discoveries of
    ``candidates.exclude`` dropped): the tail of ``predict`` and ``rethreshold`` for the
    methods that keep candidates as they are (seed, fast). ``timings`` holds this tail's
    ``select`` and ``polygons`` seconds."""
    import time

    t0 = time.perf_counter()
    keep = np.asarray(selection.keep, dtype=bool)
    kept = [c for c, k in zip(candidates.masks, keep) if k]
    t1 = time.perf_counter()
    polys, masks, scores, n_re = finish(candidates.frame(), kept, np.asarray(selection.scores)[keep], config=config,
                                        exclude=candidates.exclude)
    t2 = time.perf_counter()
    return Segmentation(polys, masks, scores, len(candidates.masks), n_re, {"select": t1 - t0, "polygons": t2 - t1},
                        selection, candidates=candidates)
