"""The ``compute`` request: learn from the tagged polygons or points, outline every other object.

1. Read the tool's fields (:func:`.interface.choices`) and the batch (1-based Batch XY /
   Z / Time; empty = the tile the user is on).
2. Fetch every polygon and point carrying a training tag (all pages): outlines, or
   clicks near an object's centre that fewseg outlines when it learns; skip degenerate
   ones with a warning.
3. **Fit on one location** (:func:`fewseg.plan.plan_fit`, as the CLI and the napari
   plugin): the XY / Z / Time holding the most examples (ties: the user's current tile,
   else the first). fewseg's methods learn from one frame; examples drawn elsewhere are
   not learned from (a warning says how many), but no object re-discovering any example
   is uploaded at that example's location.
4. Predict every batch location through :func:`fewseg.batch.segment_frames` (each frame
   read from the server when its turn comes) and upload each frame's outlines once that
   frame is done, in chunks, with the job's tags and channel.
5. Return the run's record (:func:`fewseg.batch.run_record`), which the worker's last
   line reports.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from ..batch import parse_range, run_record, segment_frames
from ..errors import InputError
from ..objects import Location
from ..plan import plan_fit
from .interface import BATCH_TIME, BATCH_XY, BATCH_Z, MODEL, TRAINING_TAGS, choices
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


def run(source: DatasetSource, params: dict, *, progress: Report, warning: Report) -> dict:
    """Do the compute request; returns the run's record (:func:`fewseg.batch.run_record`, plus
    ``n_examples_given``: every example read). User-caused problems raise :class:`InputError`."""
    from ..methods import make_segmenter

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
    examples, skipped = source.examples(chosen.training_tags)
    inside = [a for a in examples if a.location.xy < sizes["XY"] and a.location.z < sizes["Z"]
              and a.location.time < sizes["Time"]]
    skipped += [f"{a.origin}: at XY {a.location.xy + 1}, Z {a.location.z + 1}, Time {a.location.time + 1}, "
                "which this dataset does not have" for a in examples if a not in inside]
    examples = inside
    tags_text = ", ".join(repr(t) for t in chosen.training_tags)
    if skipped:
        warning(f"{len(skipped)} example(s) skipped: {skipped[0]}" + (" ..." if len(skipped) > 1 else ""),
                "Examples skipped")
    if not examples:
        if skipped:
            raise InputError(TRAINING_TAGS, f"every polygon or point tagged {tags_text} is degenerate or outside the "
                                            "frame; redraw a few examples as closed outlines around whole objects, "
                                            "or click points near their centres")
        raise InputError(TRAINING_TAGS, f"no polygon or point in this dataset carries {tags_text}; draw about 10 "
                                        "polygons around example objects (or click a point near the centre of each) "
                                        "and give them that tag (or pick the tag they have)")
    plan = plan_fit(examples, current=tile).one_frame()  # fits on one location until issue 20
    where, fit_examples = plan.fit_location, plan.examples
    if plan.warning:
        warning(plan.warning, "Examples on several frames")
    if len(fit_examples) < 3:
        warning(f"only {len(fit_examples)} example(s) to learn from; about 10 give better results", "Few examples")

    progress(0.05, "Reading the frame", f"XY {where.xy + 1}, Z {where.z + 1}, Time {where.time + 1}")
    frame = source.read(where)
    render = source.render_config(frame) if config.method != "classic" else None
    progress(0.1, "Learning from the examples", f"{len(fit_examples)} examples, method {config.method}")
    t0 = time.perf_counter()
    segmenter = make_segmenter(config, render=render).fit(frame, fit_examples)
    fit_seconds = time.perf_counter() - t0

    total = 0
    frames = segment_frames(segmenter, source.read, locations, examples=plan.exclude, frames={where: frame})
    done, summaries = 0, []
    try:
        for k, result in enumerate(frames, start=1):
            n = source.upload(result.annotations(), tags=out_tags, channel=channel, connect_to=connect)
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
    return {**run_record(plan, segmenter, summaries, config=config, fit_seconds=fit_seconds),
            "n_examples_given": len(examples)}
