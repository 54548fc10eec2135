"""Many frames, one model: fit once on the examples, predict every frame of a batch.

The loop every way in shares (the CLI, the NimbusImage worker, the napari plugin, the
scale-out code)::

    plan = plan_fit(annotations, current=here)                   # what is learned from where (fewseg.plan)
    segmenter, fitted = fit_plan(make_segmenter(config), plan, read)   # once, on every frame holding examples
    for result in segment_frames(segmenter, read, locations, examples=plan.exclude, frames=fitted):
        ...                                                      # write / upload / show it
    record = run_record(plan, segmenter, summaries, config=config, fit_seconds=...)  # what the run did

:func:`segment_batch` is that loop with the results collected. Which frames: the seed's
Batch XY / Z / Time ranges (:func:`parse_range`): ``"1-3, 5-8"`` (inclusive, 0-based
like the file's planes), ``"all"``, or empty for "just the current position".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

from .errors import InputError
from .objects import Annotation, Frame, Location
from .plan import FitPlan, fit_location, group_by_location, not_learned_from, plan_fit  # noqa: F401 (public here too)
from .result import Segmentation

#: Reads the frame at a location (lazily: called once per frame, when it is its turn).
FrameReader = Callable[[Location], Frame]


def parse_range(text: str | None, *, size: int, option: str, current: int = 0, first: int = 0) -> list[int]:
    """Indices named by ``text`` within ``range(size)``.

    ``first`` is the number the text gives the first plane (0 for the file's planes, 1 for
    NimbusImage's Batch XY / Z / Time fields); the indices returned always count from 0,
    and so does ``current``.

    Examples
    --------
    >>> parse_range("1-3, 5", size=8, option="--batch-z")
    [1, 2, 3, 5]
    >>> parse_range("all", size=3, option="--batch-z")
    [0, 1, 2]
    >>> parse_range("", size=3, option="--batch-z", current=2)
    [2]
    >>> parse_range("1-2", size=3, option="Batch Z", first=1)
    [0, 1]
    """
    if text is None or not text.strip():
        return [current]
    if text.strip().lower() == "all":
        return list(range(size))
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise InputError(option, f"expected ranges like '1-3, 5-8' or 'all', got {text!r}") from None
        if a > b:
            raise InputError(option, f"range {part!r} runs backwards")
        if a < first or b >= size + first:
            raise InputError(option, f"range {part!r} is outside {first}-{size - 1 + first} (there are {size})")
        out.extend(i - first for i in range(a, b + 1) if i - first not in out)
    if not out:
        raise InputError(option, f"expected at least one index, got {text!r}")
    return out


def fit_plan(segmenter, plan: FitPlan, read: FrameReader | None, *,
             frames: Mapping[Location, Frame] | None = None) -> tuple[object, dict[Location, Frame]]:
    """Fit ``segmenter`` on what ``plan`` learns from, reading only the frames that hold it.

    One location: ``segmenter.fit(frame, examples)``; several:
    ``segmenter.fit_frames([(frame, examples, negatives), ...])`` (the weight-free
    method, :meth:`fewseg.classic.model.WeightFreeSegmenter.fit_frames`); a method
    without it is refused in one line (or fit on :meth:`FitPlan.one_frame`). Negatives
    are passed only where there are some.

    Parameters
    ----------
    segmenter
        Unfitted.
    plan : FitPlan
    read : callable
        ``read(location) -> Frame`` for the locations not in ``frames``.
    frames : mapping Location -> Frame, optional
        Frames already in memory.

    Returns
    -------
    segmenter
        Fitted.
    fitted : dict Location -> Frame
        The frames fitted on (:attr:`FitPlan.fit_locations`), for predicting them
        without reading them again.
    """
    frames = frames or {}
    where = plan.fit_locations
    fitted = {loc: frames[loc] if loc in frames else read(loc) for loc in where}
    items = [(fitted[loc], plan.learn.get(loc, []), plan.negatives_at.get(loc, [])) for loc in where]
    if len(items) == 1:
        frame, examples, negatives = items[0]
        return segmenter.fit(frame, examples, **({"negatives": negatives} if len(negatives) else {})), fitted
    if not hasattr(segmenter, "fit_frames"):
        method = getattr(getattr(segmenter, "config", None), "method", type(segmenter).__name__)
        places = "; ".join(f"XY {loc.xy}, Z {loc.z}, Time {loc.time}" for loc in where)
        raise InputError("--method", f"{method} learns from one frame; the examples lie on {len(where)} frames "
                                     f"({places}; 0-based): use --method classic, or give the examples of one frame")
    return segmenter.fit_frames(items), fitted


@dataclass
class FrameResult:
    """What one frame of a batch gave: where it is, what was found, how long it took."""

    location: Location
    segmentation: Segmentation
    seconds: float

    def annotations(self, *, tags: Sequence[str] = (), channel: int = 0) -> list[Annotation]:
        """The found objects as annotations placed at this frame's location."""
        return self.segmentation.annotations(tags=tags, location=self.location, channel=channel)

    def summary(self) -> dict:
        """JSON-ready record of this frame (counts and seconds per stage)."""
        s = self.segmentation
        return {"xy": self.location.xy, "z": self.location.z, "time": self.location.time,
                "n_objects": len(s.polygons), "n_candidates": s.n_candidates, "n_pred_on_examples": s.n_rediscovered,
                "seconds": round(self.seconds, 4), "timings_s": {k: round(v, 4) for k, v in s.timings.items()}}


def predict_frame(segmenter, frame: Frame, *, exclude=None, similarity="config") -> FrameResult:
    """``segmenter.predict(frame)`` as a :class:`FrameResult` (``exclude``: that frame's
    examples; ``similarity``: the keep threshold, ``"config"`` = the segmenter's own
    config, None = the method's own, a number = that threshold)."""
    t0 = time.perf_counter()
    segmentation = segmenter.predict(frame, exclude=exclude or None, similarity=similarity)
    return FrameResult(frame.location, segmentation, time.perf_counter() - t0)


def segment_frames(segmenter, read: FrameReader, locations: Sequence[Location], *,
                   examples: Mapping[Location, list] | None = None, frames: Mapping[Location, Frame] | None = None,
                   cancelled: Callable[[], bool] | None = None, similarity="config") -> Iterator[FrameResult]:
    """Predict every location in order with a fitted ``segmenter``, one frame at a time.

    Parameters
    ----------
    segmenter
        Fitted: anything with ``predict(frame, *, exclude=None)``.
    read : callable
        ``read(location) -> Frame``, called when a frame's turn comes (not for
        locations found in ``frames``).
    locations : sequence of Location
    examples : mapping Location -> examples, optional
        The examples drawn at each location: objects that re-discover them are not
        returned (the user already drew them).
    frames : mapping Location -> Frame, optional
        Frames already in memory (e.g. the examples' frame), used instead of reading.
    cancelled : callable, optional
        Checked before each frame; when it returns True the generator stops.
    similarity : float, None or "config"
        The keep threshold every frame is predicted with (:func:`predict_frame`): a
        fitted segmenter predicts at another threshold without being refitted.

    Yields
    ------
    FrameResult
        One per location, in order.
    """
    examples = examples or {}
    frames = frames or {}
    for location in locations:
        if cancelled is not None and cancelled():
            return
        frame = frames[location] if location in frames else read(location)
        yield predict_frame(segmenter, frame, exclude=examples.get(location), similarity=similarity)


@dataclass
class BatchResult:
    """A fitted segmenter and the results of every frame of its batch."""

    segmenter: object
    frames: list[FrameResult] = field(default_factory=list)
    fit_seconds: float = 0.0

    def annotations(self, *, tags: Sequence[str] = (), channel: int = 0) -> list[Annotation]:
        """Every found object, each at its frame's location."""
        return [a for r in self.frames for a in r.annotations(tags=tags, channel=channel)]

    def at(self, location: Location) -> FrameResult | None:
        """The result of the frame at ``location`` (None if it was not in the batch)."""
        return next((r for r in self.frames if r.location == location), None)

    def summary(self) -> dict:
        """JSON-ready totals, the per-frame records and what the fit learned."""
        frames = [r.summary() for r in self.frames]
        return {**_totals(frames), "fit_s": round(self.fit_seconds, 4), "frames": frames,
                "learned": self.segmenter.describe_fit()}


def _totals(frames: Sequence[dict]) -> dict:
    """The number of frames and the sums of the per-frame counts (:meth:`FrameResult.summary`)."""
    return {"n_frames": len(frames),
            **{key: sum(f[key] for f in frames) for key in ("n_objects", "n_candidates", "n_pred_on_examples")}}


def run_record(plan: FitPlan, segmenter, frames: Sequence[dict], *, config, fit_seconds: float,
               total_seconds: float | None = None) -> dict:
    """The record of one run, with the same keys for every way in.

    The CLI writes it as ``OUTPUT.fewseg.json``, the napari plugin keeps it in its
    result layers' ``metadata["fewseg"]``, the NimbusImage worker's last line is made
    from it; each adds only its own keys (the files, the layers, the uploads).

    Parameters
    ----------
    plan : FitPlan
        What was learned from where (:func:`plan_fit`).
    segmenter
        The fitted segmenter (its ``describe_fit()`` is what it learned).
    frames : sequence of dict
        Each frame's :meth:`FrameResult.summary`, in the order predicted.
    config : SegmentConfig
    fit_seconds : float
    total_seconds : float, optional
        The whole run, when the way in measures it.

    Returns
    -------
    dict
        ``config``, ``learned``, ``fit_location`` (``{"XY", "Z", "Time"}``, 0-based: the
        location holding the most examples), ``fit_locations`` (every location learned
        from), ``n_examples`` (learned from), ``n_examples_not_learned_from``, ``n_frames``,
        ``n_objects``, ``n_candidates``, ``n_pred_on_examples`` (summed over the
        frames), ``fit_s``, ``total_s`` (when given) and ``frames``.

    Examples
    --------
    >>> from fewseg.config import SegmentConfig
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(200, 200), n_blobs=25)
    >>> plan = plan_fit(truth[:10], at=frame.location)
    >>> batch = segment_batch(SegmentConfig(), frame, plan.examples, read=None, locations=[frame.location])
    >>> record = run_record(plan, batch.segmenter, [r.summary() for r in batch.frames], config=SegmentConfig(),
    ...                     fit_seconds=batch.fit_seconds)
    >>> record["n_examples"], record["n_frames"], record["fit_location"] == frame.location.as_nimbus()
    (10, 1, True)
    >>> record["learned"]["method"], record["n_objects"] == len(batch.frames[0].segmentation.polygons)
    ('classic', True)
    """
    return {
        "config": config.to_dict(),
        "learned": segmenter.describe_fit(),
        "fit_location": plan.fit_location.as_nimbus(),
        "fit_locations": [loc.as_nimbus() for loc in plan.fit_locations],
        "n_examples": plan.n_learned,
        "n_examples_not_learned_from": plan.n_not_learned_from,
        **_totals(frames),
        "fit_s": round(fit_seconds, 4),
        **({"total_s": round(total_seconds, 4)} if total_seconds is not None else {}),
        "frames": list(frames),
    }


def segment_batch(config, frame: Frame | None, examples: list | None, read: FrameReader, locations: Sequence[Location], *,
                  render=None, segmenter=None, show_progress: bool | None = None,
                  cancelled: Callable[[], bool] | None = None,
                  exclude: Mapping[Location, list] | None = None, negatives: list | None = None,
                  plan: FitPlan | None = None, frames: Mapping[Location, Frame] | None = None) -> BatchResult:
    """Fit once on ``examples`` drawn on ``frame`` (or on ``plan``), then predict every location.

    The frames fitted on are not read again, and objects re-discovering their examples
    are dropped there. ``segmenter`` (unfitted) replaces the one ``config`` would make
    (e.g. to reuse a loaded SAM model). ``show_progress``: a bar on stderr (default: when
    stderr is a terminal). ``exclude``: what is not outlined again at each location; it
    replaces the plan's at the locations it names. ``negatives``: objects on ``frame``
    that are not wanted, learned from (``fit(frame, examples, negatives=...)``).
    ``plan`` (a :class:`FitPlan`): learn from every location it names (:func:`fit_plan`:
    the frames holding examples or negatives are read, ``frame`` and ``frames`` used where
    given) and exclude its ``exclude``; ``examples`` and ``negatives`` are then not read.

    Examples
    --------
    >>> from fewseg.config import SegmentConfig
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(200, 200), n_blobs=25)
    >>> batch = segment_batch(SegmentConfig(), frame, truth[:10], read=None, locations=[frame.location])
    >>> len(batch.annotations(tags=["blob"])) > 5
    True
    """
    from .methods import make_segmenter
    from .progress import progress

    plan = plan if plan is not None else plan_fit(examples, at=frame.location, negatives=negatives or ())
    known = {**({frame.location: frame} if frame is not None else {}), **(frames or {})}
    t0 = time.perf_counter()
    segmenter, fitted = fit_plan(segmenter or make_segmenter(config, render=render), plan, read, frames=known)
    out = BatchResult(segmenter, fit_seconds=time.perf_counter() - t0)
    results = segment_frames(segmenter, read, locations, examples={**plan.exclude, **(exclude or {})},
                             frames={**known, **fitted}, cancelled=cancelled)
    out.frames.extend(progress(results, total=len(locations), desc="frames", enabled=show_progress))
    return out
