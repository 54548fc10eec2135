"""Many frames, one model: fit once on the examples, predict every frame of a batch.

The loop every way in shares (the CLI, the NimbusImage worker, the napari plugin, the
scale-out code)::

    segmenter = make_segmenter(config).fit(frame, examples)      # once
    for result in segment_frames(segmenter, read, locations):    # one frame in memory at a time
        ...                                                      # write / upload / show it

:func:`segment_batch` is that loop with the results collected. Which frames: the seed's
Batch XY / Z / Time ranges (:func:`parse_range`): ``"1-3, 5-8"`` (inclusive, 0-based
like the file's planes), ``"all"``, or empty for "just the current position".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from .errors import InputError
from .objects import Annotation, Frame, Location
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


def group_by_location(annotations: Iterable) -> dict[Location, list]:
    """``annotations`` by their ``location``, each list in the given order: what
    :func:`fit_location`, :func:`not_learned_from` and :func:`segment_frames`'
    ``examples`` take.

    Examples
    --------
    >>> from fewseg.objects import Annotation
    >>> groups = group_by_location([Annotation(location=Location(z=1)), Annotation(), Annotation(location=Location(z=1))])
    >>> {loc.z: len(items) for loc, items in groups.items()}
    {1: 2, 0: 1}
    """
    out: dict[Location, list] = {}
    for a in annotations:
        out.setdefault(a.location, []).append(a)
    return out


def fit_location(examples_by_location: Mapping[Location, Sequence], *, current: Location | None = None) -> Location:
    """Where to fit when examples lie on several frames: the location holding the most.

    fewseg's methods learn from one frame. Every way in that accepts examples on
    several frames (the NimbusImage worker, the napari plugin) fits on this one, warns
    that the others are not learned from, and still excludes every example at its own
    location (:func:`segment_frames`' ``examples``). Ties: ``current`` (the frame the
    user is on) when it is among them, else the first in time, Z, XY order.

    Examples
    --------
    >>> a, b, c = Location(z=0), Location(z=1), Location(z=2)
    >>> fit_location({a: [1, 2, 3], b: [1, 2, 3, 4, 5]})
    Location(xy=0, z=1, time=0)
    >>> fit_location({a: [1, 2], b: [1, 2]}, current=b), fit_location({b: [1, 2], a: [1, 2]}, current=c)
    (Location(xy=0, z=1, time=0), Location(xy=0, z=0, time=0))
    """
    counts = {loc: len(items) for loc, items in examples_by_location.items() if len(items)}
    if not counts:
        raise ValueError("no examples at any location")
    best = max(counts.values())
    tied = sorted((loc for loc, n in counts.items() if n == best), key=lambda loc: (loc.time, loc.z, loc.xy))
    return current if current in tied else tied[0]


def not_learned_from(examples_by_location: Mapping[Location, Sequence], where: Location) -> str | None:
    """One line saying which examples a fit on ``where`` does not learn from (None: all
    are learned from), positions 1-based as NimbusImage shows them.

    Examples
    --------
    >>> not_learned_from({Location(z=1): [1, 2, 3], Location(z=4): [1]}, Location(z=1))
    'learning from the 3 examples at XY 1, Z 2, Time 1; 1 example(s) at other locations (XY 1, Z 5, Time 1) are not learned from (but are not outlined again)'
    """
    others = {loc: items for loc, items in examples_by_location.items() if loc != where and len(items)}
    if not others:
        return None
    n = sum(len(v) for v in others.values())
    places = "; ".join(f"XY {loc.xy + 1}, Z {loc.z + 1}, Time {loc.time + 1}"
                       for loc in sorted(others, key=lambda loc: (loc.time, loc.z, loc.xy)))
    return (f"learning from the {len(examples_by_location[where])} examples at XY {where.xy + 1}, Z {where.z + 1}, "
            f"Time {where.time + 1}; {n} example(s) at other locations ({places}) are not learned from "
            "(but are not outlined again)")


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


def predict_frame(segmenter, frame: Frame, *, exclude=None) -> FrameResult:
    """``segmenter.predict(frame)`` as a :class:`FrameResult` (``exclude``: that frame's examples)."""
    t0 = time.perf_counter()
    segmentation = segmenter.predict(frame, exclude=exclude or None)
    return FrameResult(frame.location, segmentation, time.perf_counter() - t0)


def segment_frames(segmenter, read: FrameReader, locations: Sequence[Location], *,
                   examples: Mapping[Location, list] | None = None, frames: Mapping[Location, Frame] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> Iterator[FrameResult]:
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
        yield predict_frame(segmenter, frame, exclude=examples.get(location))


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
        return {
            "n_frames": len(self.frames),
            "n_objects": sum(len(r.segmentation.polygons) for r in self.frames),
            "n_candidates": sum(r.segmentation.n_candidates for r in self.frames),
            "n_pred_on_examples": sum(r.segmentation.n_rediscovered for r in self.frames),
            "fit_s": round(self.fit_seconds, 4),
            "frames": [r.summary() for r in self.frames],
            "learned": self.segmenter.describe_fit(),
        }


def segment_batch(config, frame: Frame, examples: list, read: FrameReader, locations: Sequence[Location], *,
                  render=None, segmenter=None, show_progress: bool | None = None,
                  cancelled: Callable[[], bool] | None = None,
                  exclude: Mapping[Location, list] | None = None) -> BatchResult:
    """Fit once on ``examples`` drawn on ``frame``, then predict every location.

    The examples' own frame is not read again, and objects re-discovering its examples
    are dropped there. ``segmenter`` (unfitted) replaces the one ``config`` would make
    (e.g. to reuse a loaded SAM model). ``show_progress``: a bar on stderr (default: when
    stderr is a terminal). ``exclude``: examples drawn at other locations (not learned
    from, see :func:`fit_location`), which are not outlined again there either.

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

    t0 = time.perf_counter()
    segmenter = (segmenter or make_segmenter(config, render=render)).fit(frame, examples)
    out = BatchResult(segmenter, fit_seconds=time.perf_counter() - t0)
    results = segment_frames(segmenter, read, locations, examples={**(exclude or {}), frame.location: examples},
                             frames={frame.location: frame}, cancelled=cancelled)
    out.frames.extend(progress(results, total=len(locations), desc="frames", enabled=show_progress))
    return out
