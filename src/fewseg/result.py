"""What a method returns for one frame, and the last stage every method shares.

``finish`` drops objects that re-discover an example, traces polygons and makes them
disjoint; :class:`Segmentation` holds the outcome. The weight-free model and the SAM
methods all end here, and the batch loop, the evaluation and the ways in read it.
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

