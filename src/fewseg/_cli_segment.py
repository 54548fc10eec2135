"""``fewseg segment``, ``fewseg evaluate`` and ``fewseg demo``.

Argument parsing imports nothing heavy; each command imports what it needs when run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import InputError

OUTPUT_SUFFIXES = (".geojson", ".json", ".tif", ".tiff", ".png")


def _frame_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frame")
    g.add_argument("--z", type=int, default=None, help="Z plane to read (needed when the file has several)")
    g.add_argument("--t", type=int, default=None, help="time point to read (needed when the file has several)")
    g.add_argument("--xy", type=int, default=None, help="XY position of this frame in its dataset (filters annotations)")
    g.add_argument("--channels", default=None, help="channels to use, by index or name: '0,1' or 'YFP,Brightfield'")
    g.add_argument("--level", type=int, default=0, help="resolution level of an OME-Zarr / pyramidal file (0 = full)")
    g.add_argument("--tag", default=None, help="use only annotations carrying this tag")
    g.add_argument("--api-url", default=None,
                   help="IMAGE = nimbus:DATASET_ID reads the frame and its tagged polygons from this NimbusImage "
                        "server (default $NI_API_URL; credentials from $NI_TOKEN or $NI_API_KEY only)")
    g.add_argument("--coordinates", default="pixel-corner", choices=("pixel-corner", "pixel-centre"),
                   help="x / y in JSON annotations: pixel-corner = NimbusImage's and QuPath's origin at the top-left "
                        "corner of pixel (0, 0) (default); pixel-centre = pixel centres at integers (the seed report's files)")


def _method_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method")
    g.add_argument("--method", default="classic", choices=("classic", "seed", "fast"),
                   help="classic: weight-free (default); seed: the seed report's SAM pipeline; fast: SAM, encode once")
    g.add_argument("--min-area", type=int, default=30, help="smallest object area in pixels (default 30)")
    g.add_argument("--max-area", type=int, default=0, help="largest object area in pixels, 0 = none (default 0)")
    g.add_argument("--smoothing", type=float, default=0.3, help="polygon simplification tolerance in pixels (default 0.3)")
    g.add_argument("--similarity", type=float, default=None,
                   help="keep threshold on the selector's score (default: derived from the data; seed method 0.5)")
    g.add_argument("--iou", type=float, default=0.3, help="IoU for a match (default 0.3)")
    g.add_argument("--boundary", default="level", choices=("level", "learned"),
                   help="classic method: outlines at the level fitted to the examples (default), or redrawn by a "
                        "per-pixel model learned from the examples (more CPU time; README, 'Learned boundary')")
    g.add_argument("--keep-examples", action="store_true",
                   help="also output (and, in evaluate, count) objects that re-discover the examples")
    s = p.add_argument_group("SAM (methods seed and fast)")
    s.add_argument("--model", default="sam1_vit_h", help="checkpoint name (see 'fewseg models list')")
    s.add_argument("--checkpoint", default=None, help="local checkpoint file to use instead of the cache")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    s.add_argument("--points-per-side", type=int, default=128, help="generator grid (default 128)")
    s.add_argument("--pred-iou-thresh", type=float, default=0.88)
    s.add_argument("--stability-score-thresh", type=float, default=0.95)
    s.add_argument("--target-occupancy", type=float, default=0.20)
    s.add_argument("--feature-model", default=None,
                   help="fast method: features from this model, masks from --model (e.g. sam2.1_base_plus)")
    s.add_argument("--feature-checkpoint", default=None, help="local checkpoint file for --feature-model")
    s.add_argument("--max-tiles", type=int, default=4,
                   help="fast method: at most this many encoder passes per frame (default 4)")
    s.add_argument("--decode-window", type=int, default=None,
                   help="fast method: decode each prompt on this many embedding cells around it "
                        "(default: 4 object diameters, at least 16; 0 = the whole embedding)")
    r = p.add_argument_group("pictures")
    r.add_argument("--render", default=None,
                   help="channel colours and contrast, e.g. 'gray:p0.5-p99.5,yellow:p1-p99.8' (see fewseg.render)")
    r.add_argument("--blend", default="lighten", choices=("lighten", "add", "screen"),
                   help="how tinted channels combine into RGB (default lighten = per-pixel max)")


def _config(args):
    """The run's :class:`~fewseg.config.SegmentConfig`: options are named like its fields."""
    from dataclasses import fields

    from .config import SegmentConfig

    values = {f.name: getattr(args, f.name) for f in fields(SegmentConfig) if hasattr(args, f.name)}
    if values.get("boundary") == "learned" and values.get("method", "classic") != "classic":
        raise InputError("--boundary", f"'learned' redraws the classic method's outlines; --method {values['method']} "
                                       "outlines with SAM (leave out --boundary)")
    return SegmentConfig(**values, exclude_examples=not args.keep_examples)


def _read(args, annotation_path: str, frames=None):
    """Read the frame and the annotations for it (tag and location filters applied).

    ``frames`` (:class:`~fewseg.dataset.FileFrames`): a list of files, read at ``--xy``."""
    from .annotations import read_annotations
    from .load import read_frame
    from .objects import Location

    location = Location(xy=args.xy or 0, z=args.z or 0, time=args.t or 0)
    if getattr(args, "api_url", None) is not None or str(args.image).startswith("nimbus:"):
        from .nimbus.source import read_dataset

        frame, annotations = read_dataset(args.image, api_url=args.api_url, location=location, tag=args.tag)
        if annotation_path is None:
            return frame, annotations
    elif annotation_path is None:
        raise InputError("--truth", "required (a NimbusImage JSON, GeoJSON or label image), unless IMAGE is "
                                    "nimbus:DATASET_ID (then the dataset's polygons tagged --tag are the truth)")
    elif frames is not None and len(frames.paths) > 1:
        frame = frames.read(location)
    else:
        frame = read_frame(args.image, z=args.z, t=args.t, channels=args.channels, level=args.level, location=location)
    # Annotations are filtered by location only when the user placed the frame.
    where = frame.location if any(v is not None for v in (args.xy, args.z, args.t)) else None
    annotations = read_annotations(annotation_path, shape=frame.shape, tag=args.tag, location=where,
                                   coordinates=args.coordinates)
    if not annotations:
        raise InputError(annotation_path, "holds no annotations" + (f" tagged {args.tag!r}" if args.tag else ""))
    return frame, annotations


def _render_config(args):
    if not args.render and args.blend == "lighten":
        return None
    from .render import RenderConfig, parse_channel_styles

    return RenderConfig(styles=parse_channel_styles(args.render) if args.render else None, blend=args.blend)


def _check_outputs(outputs: dict, *, inputs: tuple) -> None:
    """Check every output the command will write (``{option: path or None}``) before any work.

    Each must be writable, differ from every input and from the other outputs
    (:func:`fewseg._atomic.check_output_path`).
    """
    from ._atomic import check_output_path

    named = {option: path for option, path in outputs.items() if path is not None}
    for option, path in named.items():
        others = [other for o, other in named.items() if o != option]
        check_output_path(path, inputs=inputs, others=others, option=option)


def _check_suffix(path: Path, option: str, suffixes=OUTPUT_SUFFIXES) -> None:
    if path.suffix.lower() not in suffixes:
        raise InputError(str(path), f"unsupported output type; expected one of {', '.join(suffixes)}", field=option)


def _finite_json(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return _finite_json(value.item())
    return value


def _write_json(path: Path, data: dict) -> None:
    from ._atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(_finite_json(data), f, indent=2, default=float, allow_nan=False)
        f.write("\n")


# --- segment ---------------------------------------------------------------------------


def add_segment(sub) -> None:
    p = sub.add_parser("segment", help="outline every object like the examples",
                       description="Learn from example outlines on IMAGE and outline every other object like them.")
    p.add_argument("image", nargs="+",
                   help="TIFF / OME-TIFF / PNG / JPEG frame, OME-Zarr image, ND2 / CZI / LIF (fewseg[formats]); "
                        "several files or a quoted glob ('plate/*.nd2') are XY positions 0, 1, ...")
    p.add_argument("--examples", required=True,
                   help="examples: NimbusImage JSON, GeoJSON or a label image (outlines), or clicks: NimbusImage "
                        "points, GeoJSON Point/MultiPoint, a CSV of x,y or row,col; outlines and clicks may be mixed")
    p.add_argument("-o", "--output", default=None,
                   help="result file: .geojson, .json (NimbusImage), .tif/.png (label image; .tif: a stack for "
                        "several frames), IMAGE.ome.zarr/labels/NAME (OME-Zarr labels); "
                        "default IMAGE_STEM.fewseg.geojson beside the image")
    p.add_argument("--overlay", default=None, help="also write a PNG of the frame with the found outlines")
    p.add_argument("--output-tag", action="append", default=None,
                   help="tag(s) for the results (default: --tag, else 'fewseg')")
    p.add_argument("--batch-z", default=None,
                   help="also segment these Z planes with the same examples: '1-3, 5-8', 'all' (default: --z only)")
    p.add_argument("--batch-t", default=None, help="also segment these time points: '0-9', 'all' (default: --t only)")
    p.add_argument("--batch-xy", default=None,
                   help="also segment these XY positions (scenes, or files of a list): '0-3', 'all' (default: --xy only)")
    _frame_options(p)
    _method_options(p)
    d = p.add_argument_group("whole datasets (dask.distributed; pip install 'fewseg[scale]')")
    d.add_argument("--workers", type=int, default=None,
                   help="predict the frames as tasks on a local dask cluster of this many processes")
    d.add_argument("--scheduler", default=None,
                   help="address of an existing dask scheduler (default: $DASK_SCHEDULER_ADDRESS when set)")
    d.add_argument("--block", type=int, default=None,
                   help="one frame larger than memory: predict it in blocks of this many pixels a side (plus a halo), "
                        "fitting on the region around the examples (method classic)")
    d.add_argument("--no-resume", action="store_true",
                   help="redo every frame (default: keep each frame whose stored result matches input, examples and "
                        "settings, in OUTPUT.fewseg-frames/)")
    p.set_defaults(func=run_segment)


def _output_base(out: Path) -> Path:
    """Where the run's record and per-frame results go: beside the output (beside the
    OME-Zarr image for labels written into it)."""
    from .outputs import zarr_labels_target

    target = zarr_labels_target(out)
    return target[0].with_name(f"{target[0].name}.{target[1]}") if target else out


def _side_file(out: Path) -> Path:
    """The run's record: ``OUT.fewseg.json`` (beside the image for OME-Zarr labels)."""
    base = _output_base(out)
    return base.with_name(base.name + ".fewseg.json")


def _output_tags(args) -> tuple[str, ...]:
    """Tags of the results: ``--output-tag``, else ``--tag``, else ``fewseg``."""
    return tuple(args.output_tag or ([args.tag] if args.tag else ["fewseg"]))


def run_segment(args) -> int:
    """Fit on the examples' frame, then predict on it and on every frame of the batch."""
    import time

    from ._atomic import committed_together
    from .batch import parse_range, segment_batch
    from .dataset import FileFrames
    from .objects import Location
    from .outputs import write_batch_output, zarr_labels_target
    from .scale.cluster import scheduler_address

    if any(str(i).startswith("nimbus:") for i in args.image) or args.api_url:
        raise InputError("segment", "reads frames from files; to outline objects in a NimbusImage dataset use the "
                                    "fewseg worker there ('fewseg evaluate' and 'fewseg sweep' read datasets)")
    frames = FileFrames.open(args.image, channels=args.channels, level=args.level)
    args.image = frames.path_of(Location(xy=args.xy or 0))
    image = Path(args.image)
    out = Path(args.output) if args.output is not None else image.with_name(image.name.split(".")[0] + ".fewseg.geojson")
    if not zarr_labels_target(out):  # IMAGE.ome.zarr/labels/NAME has no suffix of its own
        _check_suffix(out, "--output")
    if args.overlay:
        _check_suffix(Path(args.overlay), "--overlay", (".png",))
    side = _side_file(out)
    # OME-Zarr labels go into a group inside the image (fewseg.outputs checks that group).
    _check_outputs({"--output": None if zarr_labels_target(out) else out, "--output side file": side,
                    "--overlay": args.overlay}, inputs=(*frames.paths, args.examples))
    config = _config(args)
    if args.block is not None:
        return _segment_mosaic(args, config, frames, out)
    t0 = time.perf_counter()
    frame, examples, by_location = _examples_frame(args, frames)
    counts = frames.counts(frame.location)
    xys = parse_range(args.batch_xy, size=counts["XY"], option="--batch-xy", current=frame.location.xy)
    zs = parse_range(args.batch_z, size=counts["Z"], option="--batch-z", current=frame.location.z)
    ts = parse_range(args.batch_t, size=counts["T"], option="--batch-t", current=frame.location.time)
    locations = [Location(xy=xy, z=z, time=t) for xy in xys for t in ts for z in zs]
    address = scheduler_address(args.scheduler)
    extra = {}
    if args.workers or address:
        batch, extra = _segment_distributed(args, config, frames, frame, examples, locations, out, address,
                                            by_location=by_location)
    else:
        batch = segment_batch(config, frame, examples, frames.read, locations, render=_render_config(args),
                              exclude=by_location)
    tags = _output_tags(args)
    found = batch.annotations(tags=tags)
    here = batch.at(frame.location)
    summary = batch.summary()
    record = {
        "image": str(image),
        **({"images": list(frames.paths)} if len(frames.paths) > 1 else {}),
        "examples": args.examples,
        "n_examples": len(examples),
        **({"fit_location": frame.location.as_nimbus(),
            "n_examples_not_learned_from": sum(map(len, by_location.values())) - len(examples)}
           if len(by_location) > 1 else {}),
        **{k: summary[k] for k in ("n_candidates", "n_objects", "n_pred_on_examples", "fit_s", "frames")},
        "total_s": round(time.perf_counter() - t0, 4),
        **extra,
        "config": config.to_dict(),
        "learned": summary["learned"],
    }
    with committed_together():  # the result, its side file and the overlay appear together or not at all
        write_batch_output(out, batch.frames, shape=frame.shape, tags=tags, level=args.level,
                           properties={"examples": args.examples}, coordinates=args.coordinates)
        _write_json(side, record)
        if here is not None and args.overlay:
            from .figure import overlay_png
            from .render import to_rgb

            overlay_png(args.overlay, to_rgb(frame, _render_config(args)), here.segmentation.masks)
    where = f" in {len(locations)} frames" if len(locations) > 1 else ""
    print(f"{len(found)} objects{where} from {len(examples)} examples ({summary['n_candidates']} candidates) -> {out}")
    return 0


def _segment_mosaic(args, config, frames, out) -> int:
    """One large frame, block by block (:func:`fewseg.scale.mosaic.predict_blockwise`):
    fit on the region around the examples, predict every block (as dask tasks with
    ``--workers`` / ``--scheduler``), select frame-wide, write."""
    import time
    from dataclasses import replace

    import numpy as np

    from ._atomic import committed_together
    from .annotations import read_annotations
    from .batch import FrameResult
    from .dataset import FilePlane
    from .methods import make_segmenter
    from .objects import Location, ObjectMask
    from .outputs import write_batch_output
    from .progress import progress
    from .scale.cluster import connect, scheduler_address
    from .scale.mosaic import dask_map_blocks, predict_blockwise

    if config.method != "classic":
        raise InputError("--block", f"blockwise prediction is for --method classic, not {config.method}")
    if config.boundary != "level":
        raise InputError("--block", "the learned boundary is not drawn block by block yet; leave out --block "
                                    "or --boundary learned")
    if args.block < 64:
        raise InputError("--block", f"expected at least 64 pixels, got {args.block}")
    if any(getattr(args, f"batch_{a}") for a in ("xy", "z", "t")) or len(frames.paths) > 1:
        raise InputError("--block", "segments one frame; leave out --batch-xy/-z/-t and give one file")
    if args.overlay:
        raise InputError("--overlay", "is not drawn for a frame segmented in blocks")
    t0 = time.perf_counter()
    location = Location(xy=args.xy or 0, z=args.z or 0, time=args.t or 0)
    plane = FilePlane(args.image, z=args.z, t=args.t, xy=args.xy or 0, channels=args.channels, level=args.level)
    shape = plane.shape
    where = location if any(v is not None for v in (args.xy, args.z, args.t)) else None
    examples = read_annotations(args.examples, shape=shape, tag=args.tag, location=where, coordinates=args.coordinates)
    if not examples:
        raise InputError(args.examples, "holds no annotations" + (f" tagged {args.tag!r}" if args.tag else ""))
    # Fit on the examples' region plus a margin (the model never sees the whole frame).
    boxes = np.array([a.to_mask(shape).bbox for a in examples])
    margin = 512
    r0, c0 = max(int(boxes[:, 0].min()) - margin, 0), max(int(boxes[:, 1].min()) - margin, 0)
    r1, c1 = min(int(boxes[:, 2].max()) + margin, shape[0]), min(int(boxes[:, 3].max()) + margin, shape[1])
    crop = plane(slice(r0, r1), slice(c0, c1))

    def shifted(a):
        if a.polygon is not None:
            return replace(a, polygon=np.asarray(a.polygon, float) - (r0, c0))
        return replace(a, mask=ObjectMask(a.mask.row - r0, a.mask.col - c0, a.mask.mask))

    model = make_segmenter(config).fit(crop, [shifted(a) for a in examples])
    fit_s = time.perf_counter() - t0
    address = scheduler_address(args.scheduler)
    kwargs = dict(block=args.block, exclude=examples, source=args.image,
                  progress=lambda items, total, desc: progress(items, total=total, desc=desc))
    t1 = time.perf_counter()
    if args.workers or address:
        with connect(workers=args.workers if not address else None, scheduler=address,
                     verbose=getattr(args, "verbose", False)) as client:
            segmentation = predict_blockwise(model, plane, shape, map_blocks=dask_map_blocks(client), **kwargs)
    else:
        segmentation = predict_blockwise(model, plane, shape, **kwargs)
    result = FrameResult(location, segmentation, time.perf_counter() - t1)
    tags = _output_tags(args)
    record = {"image": args.image, "examples": args.examples, "n_examples": len(examples),
              "fit_region": [r0, c0, r1, c1], "fit_s": round(fit_s, 4), **result.summary(),
              "blocks": segmentation.extra["blocks"], "total_s": round(time.perf_counter() - t0, 4),
              "config": config.to_dict(), "learned": model.describe_fit()}
    with committed_together():  # the result and its side file appear together or not at all
        write_batch_output(out, [result], shape=shape, tags=tags, level=args.level,
                           properties={"examples": args.examples}, coordinates=args.coordinates)
        _write_json(_side_file(out), record)
    print(f"{len(segmentation.polygons)} objects from {len(examples)} examples ({segmentation.n_candidates} candidates, "
          f"{segmentation.extra['blocks']['count']} blocks) -> {out}")
    return 0


def _examples_frame(args, frames):
    """Read the frame to learn on, its examples, and every example by its location.

    When the user placed the frame (``--xy/--z/--t``), or the file holds one frame, or
    the annotation file places no example anywhere but the first frame, this is
    :func:`_read` (a stack then needs ``--z``/``--t``, as before). Otherwise the
    examples' own locations count: fewseg learns on the location holding the most
    (:func:`fewseg.batch.fit_location`, as the NimbusImage worker and the napari plugin
    do), warns which examples it does not learn from, and never outlines an example
    again at its own location.
    """
    import sys

    from .annotations import check_inside, read_annotations
    from .batch import fit_location, group_by_location, not_learned_from
    from .objects import Location

    counts = frames.counts()
    placed = any(v is not None for v in (args.xy, args.z, args.t))
    if not placed and counts["XY"] * counts["Z"] * counts["T"] > 1:
        found = read_annotations(args.examples, tag=args.tag, coordinates=args.coordinates)
        if any(a.location != Location() for a in found):
            by_location = group_by_location(found)
            for loc in sorted(by_location, key=lambda loc: (loc.time, loc.z, loc.xy)):
                n = frames.counts(loc) if loc.xy < counts["XY"] else None
                if n is None or loc.z >= n["Z"] or loc.time >= n["T"]:
                    sizes = f"XY {counts['XY']}" + (f", Z {n['Z']}, Time {n['T']}" if n else "")
                    raise InputError(args.examples, f"an example lies at XY {loc.xy}, Z {loc.z}, Time {loc.time} "
                                                    f"(0-based), outside {args.image} ({sizes})", field="location")
            where = fit_location(by_location, current=Location())
            frame = frames.read(where)
            for a in found:  # as read_annotations(..., shape=) checks them
                check_inside(args.examples, a, frame.shape, coordinates=args.coordinates)
            left_out = not_learned_from(by_location, where)
            if left_out:
                print(f"fewseg: warning: {left_out}", file=sys.stderr)
            return frame, by_location[where], by_location
    frame, examples = _read(args, args.examples, frames)
    return frame, examples, {frame.location: examples}


def _segment_distributed(args, config, frames, frame, examples, locations, out, address, *, by_location=None):
    """Fit here, predict every frame as a task on dask (:mod:`fewseg.scale.frames`)."""
    import time

    from . import __version__
    from .batch import BatchResult
    from .methods import make_segmenter
    from .result import as_masks
    from .scale.cluster import connect
    from .scale.frames import segment_distributed
    from .scale.store import masks_digest, run_signature

    t0 = time.perf_counter()
    segmenter = make_segmenter(config, render=_render_config(args)).fit(frame, examples)
    fit_s = time.perf_counter() - t0
    signature = run_signature(config=config.to_dict(), learned=segmenter.describe_fit(),
                              examples_digest=masks_digest(as_masks(examples, frame)), version=__version__)
    base = _output_base(out)
    results_dir = base.with_name(base.name + ".fewseg-frames")
    with connect(workers=args.workers if not address else None, scheduler=address,
                     verbose=getattr(args, "verbose", False)) as client:
        run = segment_distributed(client, segmenter, frames, locations, results_dir=results_dir, signature=signature,
                                  examples=by_location or {frame.location: examples}, resume=not args.no_resume)
        n_workers = len(client.scheduler_info().get("workers", {}))
    batch = BatchResult(segmenter, run.frames, fit_seconds=fit_s)
    extra = {"distributed": {"scheduler": address or f"local, {args.workers} processes", "workers": n_workers,
                             "results_dir": str(results_dir), "signature": signature, "frames_predicted": run.n_done,
                             "frames_kept": run.n_kept, "frames_sent_again": run.n_retried,
                             "seconds": round(run.seconds, 4)}}
    print(f"dask: {run.n_done} frame(s) predicted, {run.n_kept} kept from an earlier run ({results_dir})")
    return batch, extra


# --- evaluate --------------------------------------------------------------------------


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="measure precision / recall / F1 the seed report's way",
                       description="Shuffle the truth annotations with --seed, learn from the first --num-train, "
                                   "predict, and match predictions to the rest greedily by IoU.")
    p.add_argument("image")
    p.add_argument("--truth", default=None,
                   help="all annotations of the frame: NimbusImage JSON, GeoJSON or label image "
                        "(for IMAGE = nimbus:DATASET_ID: default the dataset's polygons tagged --tag)")
    p.add_argument("--num-train", type=int, default=10)
    p.add_argument("--seed", default="42", help="split seed; several: '0,1,2,3,4' (mean reported)")
    p.add_argument("--clicks", action="store_true",
                   help="give the examples as clicks (centroid + a seeded offset up to a quarter radius), "
                        "outlined from the frame")
    p.add_argument("--json", default=None, help="write the metrics (and config) here")
    p.add_argument("--overlay", default=None, help="write the four-panel figure here (PNG; first seed)")
    _frame_options(p)
    _method_options(p)
    p.set_defaults(func=run_evaluate)


def _seeds(text) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise InputError("--seed", f"expected integers separated by commas, such as '42' or '0,1,2', got {text!r}")
    return seeds


def evaluate_and_report(frame, annotations, *, config, num_train, seeds, source, json_path=None, figure_path=None,
                        render=None, clicks: bool = False) -> list[dict]:
    from .evaluate import metrics_table, run_evaluation
    from .methods import make_segmenter

    rows, first = [], None
    for seed in seeds:
        ev = run_evaluation(frame, annotations, config=config, num_train=num_train, seed=seed, source=source,
                            segmenter=make_segmenter(config, render=render), clicks=clicks)
        rows.append(ev.metrics)
        first = first or ev
    from ._atomic import committed_together

    print(metrics_table(rows))
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("precision", "recall", "f1", "mean_iou")}
    if len(rows) > 1:
        print("mean over seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    with committed_together():  # the metrics and the figure appear together or not at all
        if json_path:
            _write_json(Path(json_path), rows[0] if len(rows) == 1 else {"runs": rows, "mean": mean})
        if figure_path:
            from .figure import evaluation_figure
            from .render import to_rgb

            evaluation_figure(figure_path, to_rgb(frame, render), first.truth, first.predictions,
                              matched_truth=first.scores.matched_truth, matched_pred=first.scores.matched_pred,
                              title=f"{Path(frame.source).name}: {config.method}, seed {first.metrics['seed']}")
    return rows


def run_evaluate(args) -> int:
    if args.overlay:
        _check_suffix(Path(args.overlay), "--overlay", (".png",))
    _check_outputs({"--json": args.json, "--overlay": args.overlay}, inputs=(args.image, args.truth))
    seeds = _seeds(args.seed)
    config = _config(args)
    frame, annotations = _read(args, args.truth)
    evaluate_and_report(frame, annotations, config=config, num_train=args.num_train, seeds=seeds,
                        source=args.truth or args.image, json_path=args.json, figure_path=args.overlay,
                        render=_render_config(args), clicks=args.clicks)
    return 0


# --- demo ------------------------------------------------------------------------------


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="make a synthetic frame like the seed's and evaluate on it",
                       description="Write a synthetic Brightfield + YFP frame with hundreds of blobs and bright "
                                   "non-blob distractors, then run 'fewseg evaluate' on it.")
    p.add_argument("--out", default="fewseg-demo", help="directory for the frame, truth, results and figure")
    p.add_argument("--demo-seed", type=int, default=0, help="seed of the synthetic frame")
    p.add_argument("--num-train", type=int, default=10)
    p.add_argument("--seed", default="42", help="split seed(s), as in evaluate")
    p.add_argument("--small", action="store_true", help="a 256 x 256 frame with 40 blobs (quick check)")
    p.add_argument("--busy", action="store_true",
                   help="the busy scene: 540 blobs, many fibres and aggregates, diffuse patches, strong cell outlines")
    _method_options(p)
    p.set_defaults(func=run_demo, tag="YFP blob", z=None, t=None, xy=None, channels=None, level=0,
                   coordinates="pixel-corner")


def run_demo(args) -> int:
    from .annotations import read_annotations
    from .demo import write_demo
    from .load import read_frame

    from ._atomic import check_output_path

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "is a file; expected a folder for the demo's files", field="--out")
    for name in ("demo_frame.ome.tif", "demo_annotations.json", "metrics.json", "evaluation.png"):
        check_output_path(out / name, option="--out")
    seeds = _seeds(args.seed)
    size = dict(shape=(256, 256), n_blobs=40) if args.small else {}
    paths = write_demo(out, seed=args.demo_seed, busy=args.busy, **size)
    frame = read_frame(paths["frame"])
    truth = read_annotations(paths["annotations"], shape=frame.shape, tag="YFP blob")
    print(f"demo frame: {paths['frame']} ({frame.shape[1]} x {frame.shape[0]}, channels {', '.join(frame.channel_names)}); "
          f"{len(truth)} blobs in {paths['annotations']}")
    evaluate_and_report(frame, truth, config=_config(args), num_train=args.num_train, seeds=seeds,
                        source=str(paths["annotations"]), json_path=out / "metrics.json",
                        figure_path=out / "evaluation.png", render=_render_config(args))
    print(f"wrote {out / 'metrics.json'} and {out / 'evaluation.png'}")
    return 0


def add_parser(sub) -> None:
    add_segment(sub)
    add_evaluate(sub)
    add_demo(sub)
