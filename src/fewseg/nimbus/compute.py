"""The ``compute`` and ``preview`` requests: learn from the tagged polygons or points (and
from those marked "not these"), outline every other object.

1. Read the tool's fields (:func:`.interface.choices`) and the batch (1-based Batch XY /
   Z / Time; empty = the tile the user is on).
2. Fetch every polygon and point carrying a training tag (all pages): outlines, or
   clicks near an object's centre that fewseg outlines when it learns; skip degenerate
   ones with a warning. Fetch those carrying a "Not these tags" tag the same way: the
   negatives (a wrong result re-tagged, or a point clicked on one).
3. **Plan the fit** (:func:`fewseg.plan.plan_fit`, as the CLI and the napari plugin):
   every example and negative is learned from where it lies, and only the frames holding
   them are read (:func:`fewseg.batch.fit_plan`); the SAM methods learn from one frame
   (:meth:`~fewseg.plan.FitPlan.one_frame`, a warning says what is left out). No object
   re-discovering an example, a negative, or an object already on the server with the
   job's tags (the worker's earlier results) is uploaded at its location: a rerun adds,
   it never duplicates, changes or deletes. A result fewseg uploaded with the job's tags
   that the user has since deleted (:mod:`.deleted`: the record in the dataset's
   metadata) is a negative click where it was, unless an example now holds it.
4. ``compute``: predict every batch location through :func:`fewseg.batch.segment_frames`
   (each frame read from the server when its turn comes) and upload each frame's outlines
   once that frame is done, in chunks, with the job's tags and channel, and record one
   interior pixel of each in the dataset's metadata. ``preview``
   (:mod:`.preview`): predict the current tile only and post an RGBA overlay of the
   outlines to ``worker_preview``; nothing is uploaded.
5. Return the run's record (:func:`fewseg.batch.run_record`), which the worker's last
   line reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from ..batch import fit_plan, parse_range, run_record, segment_frames
from ..errors import FewsegError, InputError
from ..objects import Location
from ..plan import group_by_location, plan_fit
from .interface import BATCH_TIME, BATCH_XY, BATCH_Z, MODEL, NOT_TAGS, TRAINING_TAGS, choices
from .deleted import KEY, ResultsRecord, interior_pixel
from .server import DatasetSource

Report = Callable[..., None]


def _index(value, field: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(field, f"expected a 0-based index, got {value!r:.80}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(field, f"expected a 0-based index, got {value!r:.80}") from None
    if not (number >= 0 and number.is_integer() and number < 2**31):  # NaN, infinities, fractions, negatives
        raise InputError(field, f"expected a 0-based index (a whole number >= 0), got {value!r:.80}")
    return int(number)


def _location(params: dict, key: str) -> Location:
    value = params.get(key) or {}
    if not isinstance(value, dict):
        raise InputError(key, f"expected {{'XY': i, 'Z': j, 'Time': k}}, got {value!r:.80}")
    return Location(**{attr: _index(value.get(axis), f"{key}.{axis}")
                       for attr, axis in (("xy", "XY"), ("z", "Z"), ("time", "Time"))})


def _tags(value, field: str) -> list[str]:
    if isinstance(value, dict):  # the platform's {"tags": [...], "exclusive": ...}
        value = value.get("tags")
    value = value or []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InputError(field, f"expected a list of tags, got {value!r:.80}")
    return list(value)


def output_settings(params: dict) -> tuple[list[str], int, dict | None]:
    """The job's tags, channel and connectTo for what is uploaded; :class:`InputError` names a bad one."""
    out_tags = _tags(params.get("tags"), "tags")
    channel = _index(params.get("channel"), "channel")
    connect = params.get("connectTo") or None
    if connect is not None:
        if not isinstance(connect, dict):
            raise InputError("connectTo", f"expected a JSON object, got {connect!r:.80}")
        if not _tags(connect.get("tags"), "connectTo.tags"):
            connect = None
        else:
            _index(connect.get("channel"), "connectTo.channel")
    return out_tags, channel, connect


def batch_locations(chosen, sizes: dict[str, int], tile: Location) -> list[Location]:
    """Every location of the batch, time-major (0-based)."""
    xys = parse_range(chosen.batch_xy, size=sizes["XY"], option=BATCH_XY, current=tile.xy, first=1)
    zs = parse_range(chosen.batch_z, size=sizes["Z"], option=BATCH_Z, current=tile.z, first=1)
    ts = parse_range(chosen.batch_time, size=sizes["Time"], option=BATCH_TIME, current=tile.time, first=1)
    return [Location(xy=xy, z=z, time=t) for t in ts for z in zs for xy in xys]


def _on_dataset(found: list, skipped: list, sizes: dict[str, int]) -> tuple[list, list]:
    """``found`` less the annotations at locations the dataset does not have (each one said in ``skipped``)."""
    inside = [a for a in found if a.location.xy < sizes["XY"] and a.location.z < sizes["Z"]
              and a.location.time < sizes["Time"]]
    return inside, skipped + [f"{a.origin}: at XY {a.location.xy + 1}, Z {a.location.z + 1}, Time "
                              f"{a.location.time + 1}, which this dataset does not have" for a in found if a not in inside]


def _said(skipped: list[str], what: str, warning: Report) -> None:
    if skipped:
        warning(f"{len(skipped)} {what}(s) skipped: {skipped[0]}" + (" ..." if len(skipped) > 1 else ""),
                f"{what.capitalize()}s skipped")


def read_examples(source: DatasetSource, chosen, sizes: dict[str, int], *, warning: Report) -> list:
    """Every polygon and point carrying a training tag; :class:`InputError` when there is none to learn from."""
    examples, skipped = _on_dataset(*source.examples(chosen.training_tags), sizes)
    tags_text = ", ".join(repr(t) for t in chosen.training_tags)
    _said(skipped, "example", warning)
    if not examples:
        if skipped:
            raise InputError(TRAINING_TAGS, f"every polygon or point tagged {tags_text} is degenerate or outside the "
                                            "frame; redraw a few examples as closed outlines around whole objects, "
                                            "or click points near their centres")
        raise InputError(TRAINING_TAGS, f"no polygon or point in this dataset carries {tags_text}; draw about 10 "
                                        "polygons around example objects (or click a point near the centre of each) "
                                        "and give them that tag (or pick the tag they have)")
    return examples


def read_negatives(source: DatasetSource, chosen, sizes: dict[str, int], examples: list, *, warning: Report) -> list:
    """Every polygon and point carrying a "Not these tags" tag: the objects the user does not want.

    None chosen: none. A tag chosen that nothing carries yet is a warning (the field is
    usually filled in before the first correction), not an error. An annotation that
    carries a training tag too is refused in one line: it cannot be both.
    """
    if not chosen.negative_tags:
        return []
    negatives, skipped = _on_dataset(*source.examples(chosen.negative_tags), sizes)
    _said(skipped, "negative", warning)
    tags_text = ", ".join(repr(t) for t in chosen.negative_tags)
    if not negatives:
        warning(f"no polygon or point carries {tags_text} yet: nothing is marked as not wanted; tag a wrong result "
                "(or click a point on it) with it and run again", "No negatives")
        return []
    example_origins = {a.origin for a in examples}
    for a in negatives:
        if a.origin in example_origins:
            both = [t for t in a.tags if t in chosen.training_tags] + [t for t in a.tags if t in chosen.negative_tags]
            raise InputError(NOT_TAGS, f"{a.origin} carries the training tag {both[0]!r} and the not tag {both[-1]!r}; "
                                       "an object is either an example or not wanted: remove one of the tags")
    return negatives


def carrying_output_tags(source: DatasetSource, out_tags: list[str], sizes: dict[str, int]) -> list:
    """The objects on the server carrying the job's tags (this worker's earlier results, and
    whatever the user gave those tags); none when the job has no tags."""
    return _on_dataset(*source.examples(out_tags), sizes)[0] if out_tags else []


def read_record(source: DatasetSource, folder: dict, out_tags: list[str], *, warning: Report) -> ResultsRecord:
    """The record of what fewseg uploaded (:mod:`.deleted`) in the dataset ``folder``
    (:meth:`.server.DatasetSource.folder`); an unusable one (warned) when the job has no
    tags or the stored record is not fewseg's."""
    if not out_tags:
        return ResultsRecord(usable=False)
    try:
        return ResultsRecord.from_meta(source.folder_meta(folder))
    except (ValueError, KeyError, TypeError) as exc:
        warning(f"the dataset's metadata '{KEY}' is not fewseg's record of its uploads ({exc}); deleted results "
                "are not learned from, and nothing is recorded in it", "Record unreadable")
        return ResultsRecord(usable=False)


def record_uploads(source: DatasetSource, job: "Prepared", location: Location, uploaded: list, *,
                   warning: Report) -> None:
    """Add one interior pixel per ``uploaded`` annotation to the job's record and store it."""
    import girder_client

    record = job.record
    shape = source.shape
    pixels = [interior_pixel(a.to_mask(shape)) for a in uploaded]
    if not (record.usable and pixels and record.add(job.out_tags, location, pixels, warning=warning)):
        return
    try:
        source.set_folder_meta({KEY: record.to_meta()})
    except girder_client.HttpError as exc:
        if exc.status not in (401, 403):
            raise
        record.usable = False
        warning(f"the server refused to store fewseg's record of its uploads in the dataset's metadata "
                f"({exc.status}): deleting a result will not teach fewseg anything; tag it with a \"Not these "
                "tags\" tag instead", "Record not stored")


def earlier_results(found: list, known: list) -> dict:
    """``found`` (:func:`carrying_output_tags`) less the examples and negatives among them, by
    location: a run does not upload an object that re-discovers one of them (no duplicates
    on a rerun; nothing on the server is changed or deleted)."""
    seen = {a.origin for a in known}
    return group_by_location(a for a in found if a.origin not in seen)


def earlier_note(n_earlier: int, *, where: str = "") -> str:
    """What a run or a preview says of the objects earlier runs with its tags found
    (:func:`earlier_results`): kept as they are, counted; ``where`` says where they lie.

    Examples
    --------
    >>> earlier_note(565, where=" there"), earlier_note(0)
    ('; 565 found there by earlier runs with these tags are left as they are', '')
    """
    return f"; {n_earlier} found{where} by earlier runs with these tags are left as they are" if n_earlier else ""


@dataclass
class Prepared:
    """What a request learns from and where it writes: the checked parameters, the fit plan
    (:func:`fewseg.plan.plan_fit`) and what is not outlined again at each location."""

    chosen: object
    config: object
    tile: Location
    locations: list
    out_tags: list
    channel: int
    connect: dict | None
    plan: object
    exclude: dict
    n_examples: int
    n_negatives: int
    record: ResultsRecord
    n_deleted: int
    access: int | None
    earlier: dict

    def n_earlier(self, locations) -> int:
        """How many objects found before with the job's tags lie at ``locations``: a run
        leaves them as they are and does not outline them again."""
        return sum(len(self.earlier.get(loc, ())) for loc in locations)


def prepare(source: DatasetSource, params: dict, *, progress: Report, warning: Report) -> Prepared:
    """Check every parameter (before the server is asked), read the examples, the negatives
    and the earlier results, and plan the fit. User-caused problems raise :class:`InputError`."""
    chosen = choices(params.get("workerInterface") or {})
    if not chosen.training_tags:
        raise InputError(TRAINING_TAGS, "no training tag chosen: pick the tag(s) of your example polygons in "
                                        "the tool's 'Training tags' field")
    tile = _location(params, "tile")
    out_tags, channel, connect = output_settings(params)  # every parameter checked before the server is asked
    sizes = source.sizes
    for attr, axis in (("xy", "XY"), ("z", "Z"), ("time", "Time")):
        if getattr(tile, attr) >= sizes[axis]:
            raise InputError(f"tile.{axis}", f"{getattr(tile, attr)} is outside the dataset's {sizes[axis]} {axis} "
                                             f"position(s) (0-based: 0..{sizes[axis] - 1})")
    if channel >= sizes["C"]:
        raise InputError("channel", f"{channel} is outside the dataset's {sizes['C']} channels (0-based)")
    locations = batch_locations(chosen, sizes, tile)
    config = chosen.config
    if config.method != "classic":
        from .models import available, checkpoint_for

        if not (params.get("workerInterface") or {}).get(MODEL) and available():
            config = replace(config, model=available()[0])  # a saved select can be null: the image's first
        config = replace(config, checkpoint=checkpoint_for(config.model))

    progress(0.0, "Reading the examples", ", ".join(chosen.training_tags))
    examples = read_examples(source, chosen, sizes, warning=warning)
    negatives = read_negatives(source, chosen, sizes, examples, warning=warning)
    found = carrying_output_tags(source, out_tags, sizes)
    folder = source.folder()  # one request: the record of uploads and the user's access
    record = read_record(source, folder, out_tags, warning=warning)
    deleted = record.deleted(out_tags, [*found, *examples, *negatives], source.shape) if record.usable else []
    if deleted:
        progress(0.0, "Deleted results", f"{len(deleted)} result(s) deleted since fewseg uploaded them with "
                                         f"{', '.join(repr(t) for t in out_tags)}: learned from as not wanted")
    plan = plan_fit(examples, current=tile, negatives=[*negatives, *deleted])
    if config.method != "classic" and len(plan.fit_locations) > 1:
        plan = plan.one_frame()  # the SAM methods learn from one frame
        if plan.warning:
            warning(plan.warning, "Examples on several frames")
    if plan.n_learned < 3:
        warning(f"only {plan.n_learned} example(s) to learn from; about 10 give better results", "Few examples")
    earlier = earlier_results(found, [*examples, *negatives])
    exclude = {loc: [*plan.exclude.get(loc, ()), *earlier.get(loc, ())] for loc in {**plan.exclude, **earlier}}
    return Prepared(chosen, config, tile, locations, out_tags, channel, connect, plan, exclude,
                    len(examples), len(negatives), record, len(deleted), source.access_level(folder), earlier)


def fit(source: DatasetSource, job: Prepared, *, progress: Report) -> tuple[object, dict, float]:
    """Fit the job's method on its plan (:func:`fewseg.batch.fit_plan`, reading only the
    frames holding examples or negatives); returns the segmenter, the frames read, the seconds."""
    from ..methods import make_segmenter

    plan, config = job.plan, job.config
    places = "; ".join(f"XY {w.xy + 1}, Z {w.z + 1}, Time {w.time + 1}" for w in plan.fit_locations[:3])
    progress(0.05, "Reading the frame" if len(plan.fit_locations) == 1 else "Reading the frames",
             places + (" ..." if len(plan.fit_locations) > 3 else ""))
    frames = {loc: source.read(loc) for loc in plan.fit_locations}
    render = source.render_config(frames[plan.fit_location]) if config.method != "classic" else None
    rejected = f" and {len(plan.negatives)} not wanted" if plan.negatives else ""
    progress(0.1, "Learning from the examples", f"{plan.n_learned} examples{rejected}, method {config.method}")
    t0 = time.perf_counter()
    segmenter, frames = fit_plan(make_segmenter(config, render=render), plan, source.read, frames=frames)
    return segmenter, frames, time.perf_counter() - t0


#: Girder's access level for writing (0 READ, 1 WRITE, 2 ADMIN): what uploading annotations needs.
WRITE = 1


def run(source: DatasetSource, params: dict, *, progress: Report, warning: Report) -> dict:
    """Do the compute request; returns the run's record (:func:`fewseg.batch.run_record`, plus
    ``n_examples_given``, ``n_negatives`` and ``n_deleted_learned``: the results deleted by
    the user learned from). User-caused problems raise :class:`InputError`."""
    job = prepare(source, params, progress=progress, warning=warning)
    if job.access is not None and job.access < WRITE:
        # Uploading needs WRITE: say so before the fit and the frames cost anything.
        raise FewsegError("the job's user may only read this dataset, and a run uploads its outlines, which "
                          "needs WRITE access: ask the dataset's owner to share it with you with write access, then "
                          "run again (nothing was computed or uploaded)")
    segmenter, fitted, fit_seconds = fit(source, job, progress=progress)
    locations = job.locations
    total = 0
    frames = segment_frames(segmenter, source.read, locations, examples=job.exclude, frames=fitted)
    done, summaries = 0, []
    try:
        for k, result in enumerate(frames, start=1):
            uploaded = result.annotations()
            n = source.upload(uploaded, tags=job.out_tags, channel=job.channel, connect_to=job.connect)
            record_uploads(source, job, result.location, uploaded, warning=warning)
            total, done = total + n, k
            summaries.append(result.summary())
            loc = result.location
            progress(0.1 + 0.9 * k / len(locations), "Outlining objects",
                     f"frame {k}/{len(locations)} (XY {loc.xy + 1}, Z {loc.z + 1}, Time {loc.time + 1}): {n} objects")
    except Exception:
        if done:  # each frame is uploaded whole once done: say which are on the server before the error line
            warning(f"the outlines of the first {done} of {len(locations)} frame(s) ({total} objects) were uploaded "
                    "before the error; the other frames have none from this run", "Partly done")
        raise
    return {**run_record(job.plan, segmenter, summaries, config=job.config, fit_seconds=fit_seconds),
            "n_examples_given": job.n_examples, "n_negatives": job.n_negatives, "n_deleted_learned": job.n_deleted,
            "n_earlier_kept": job.n_earlier(locations)}
