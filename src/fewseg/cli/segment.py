"""``fewseg segment``: outline every object like the examples, in one frame, a batch of
frames (``--batch-xy/-z/-t``, ``--workers``) or one large frame block by block (``--block``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .options import (
    announce_axes,
    check_batch_axes,
    check_learns_negatives,
    check_outputs,
    check_suffix,
    frame_options,
    make_config,
    method_options,
    negative_options,
    read_input,
    read_negatives,
    render_config,
    warn_repairs,
    write_json,
)


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
    p.add_argument("--output-channel", type=int, default=None,
                   help="the channel the results carry in NimbusImage JSON / GeoJSON (default: the channel most "
                        "examples carry, 0 when they carry none); NimbusImage draws an object on its channel's layer")
    p.add_argument("--batch-z", default=None,
                   help="also segment these Z planes with the same examples: '1-3, 5-8', 'all' (default: --z only)")
    p.add_argument("--batch-t", default=None, help="also segment these time points: '0-9', 'all' (default: --t only)")
    p.add_argument("--batch-xy", default=None,
                   help="also segment these XY positions (scenes, or files of a list): '0-3', 'all' (default: --xy only)")
    negative_options(p)
    frame_options(p)
    method_options(p)
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
    from ..io.outputs import zarr_labels_target

    target = zarr_labels_target(out)
    return target[0].with_name(f"{target[0].name}.{target[1]}") if target else out


def _side_file(out: Path) -> Path:
    """The run's record: ``OUT.fewseg.json`` (beside the image for OME-Zarr labels)."""
    base = _output_base(out)
    return base.with_name(base.name + ".fewseg.json")


def _output_tags(args) -> tuple[str, ...]:
    """Tags of the results: ``--output-tag``, else ``--tag``, else ``fewseg``."""
    return tuple(args.output_tag or ([args.tag] if args.tag else ["fewseg"]))


def _output_channel(args, examples) -> int:
    """The results' channel: ``--output-channel``, else the channel most ``examples`` carry
    (ties: the lowest), else 0.

    Examples
    --------
    >>> from argparse import Namespace
    >>> from fewseg.objects import Annotation
    >>> _output_channel(Namespace(output_channel=None), [Annotation(channel=1), Annotation(channel=1), Annotation()])
    1
    >>> _output_channel(Namespace(output_channel=2), [Annotation(channel=1)]), _output_channel(Namespace(output_channel=None), [])
    (2, 0)
    """
    from collections import Counter

    if args.output_channel is not None:
        if args.output_channel < 0:
            raise InputError("--output-channel", f"expected a channel index (0 or more), got {args.output_channel}")
        return args.output_channel
    counts = Counter(int(getattr(a, "channel", 0)) for a in examples)
    return min(counts, key=lambda c: (-counts[c], c)) if counts else 0


def run_segment(args) -> int:
    """Fit on the examples' frame, then predict on it and on every frame of the batch."""
    import time

    from .._atomic import committed_together
    from ..batch import parse_range, run_record, segment_batch
    from ..methods import make_segmenter
    from ..io.dataset import FileFrames
    from ..io.outputs import write_batch_output, zarr_labels_target
    from ..objects import Location
    from ..scale.cluster import scheduler_address

    if any(str(i).startswith("nimbus:") for i in args.image) or args.api_url:
        raise InputError("segment", "reads frames from files; to outline objects in a NimbusImage dataset use the "
                                    "fewseg worker there ('fewseg evaluate' and 'fewseg sweep' read datasets)")
    frames = FileFrames.open(args.image, channels=args.channels, level=args.level, axes=args.axes)
    read_as = announce_axes(frames.paths, args.axes)
    args.image = frames.path_of(Location(xy=args.xy or 0))
    image = Path(args.image)
    out = Path(args.output) if args.output is not None else image.with_name(image.name.split(".")[0] + ".fewseg.geojson")
    if not zarr_labels_target(out):  # IMAGE.ome.zarr/labels/NAME has no suffix of its own
        check_suffix(out, "--output")
    if args.overlay:
        check_suffix(Path(args.overlay), "--overlay", (".png",))
    side = _side_file(out)
    # OME-Zarr labels go into a group inside the image (fewseg.io.outputs checks that group).
    check_outputs({"--output": None if zarr_labels_target(out) else out, "--output side file": side,
                    "--overlay": args.overlay}, inputs=(*frames.paths, args.examples,
                                                        *([args.negatives] if args.negatives else [])))
    config = make_config(args)
    _output_channel(args, ())  # a bad --output-channel is said before the run
    if args.block is not None:
        return _segment_mosaic(args, config, frames, out)
    check_batch_axes(args, frames, frames.counts(Location(xy=args.xy or 0)))  # before reading anything
    t0 = time.perf_counter()
    fitted, plan = _examples_frame(args, frames)
    frame = fitted[plan.fit_location]
    negatives = read_negatives(args, frame)  # marked on the frame learned from: learned and rejected there
    plan = plan.with_negatives(negatives, at=frame.location)
    counts = frames.counts(frame.location)
    xys = parse_range(args.batch_xy, size=counts["XY"], option="--batch-xy", current=frame.location.xy)
    zs = parse_range(args.batch_z, size=counts["Z"], option="--batch-z", current=frame.location.z)
    ts = parse_range(args.batch_t, size=counts["T"], option="--batch-t", current=frame.location.time)
    locations = [Location(xy=xy, z=z, time=t) for xy in xys for t in ts for z in zs]
    address = scheduler_address(args.scheduler)
    extra = {}
    if args.workers or address:
        batch, extra = _segment_distributed(args, config, frames, fitted, plan, locations, out, address)
    else:
        segmenter = make_segmenter(config, render=render_config(args))
        check_learns_negatives(segmenter, negatives, config.method)
        batch = segment_batch(config, frame, plan.examples, frames.read, locations, segmenter=segmenter,
                              plan=plan, frames=fitted)
    tags = _output_tags(args)
    channel = _output_channel(args, [a for items in plan.examples_at.values() for a in items])
    found = batch.annotations(tags=tags)
    here = batch.at(frame.location)
    record = {
        "image": str(image),
        **({"images": list(frames.paths)} if len(frames.paths) > 1 else {}),
        **read_as,
        "examples": args.examples,
        **({"negatives": args.negatives, "n_negatives": len(negatives)} if negatives else {}),
        "output_channel": channel,
        **run_record(plan, batch.segmenter, [r.summary() for r in batch.frames], config=config,
                     fit_seconds=batch.fit_seconds, total_seconds=time.perf_counter() - t0),
        **extra,
    }
    with committed_together():  # the result, its side file and the overlay appear together or not at all
        write_batch_output(out, batch.frames, shape=frame.shape, tags=tags, level=args.level,
                           properties={"examples": args.examples}, coordinates=args.coordinates, channel=channel)
        write_json(side, record)
        if here is not None and args.overlay:
            from ..figure import overlay_png
            from ..render import to_rgb

            overlay_png(args.overlay, to_rgb(frame, render_config(args)), here.segmentation.masks)
    where = f" in {len(locations)} frames" if len(locations) > 1 else ""
    learned = f" on {len(plan.fit_locations)} frames" if len(plan.fit_locations) > 1 else ""
    rejected = f" and {len(negatives)} negatives" if negatives else ""
    print(f"{len(found)} objects{where} from {plan.n_learned} examples{learned}{rejected} ({record['n_candidates']} "
          f"candidates) -> {out}")
    return 0


def _segment_mosaic(args, config, frames, out) -> int:
    """One large frame, block by block: check the options, fit on the region around the
    examples and predict every block (:mod:`fewseg.classic.blockwise`; the blocks as dask
    tasks with ``--workers`` / ``--scheduler``), write."""
    import time

    from .._atomic import committed_together
    from ..batch import FrameResult, run_record
    from ..classic.blockwise import fit_region, predict_blockwise
    from ..io.annotations import MAX_EXAMPLES, read_annotations
    from ..io.dataset import FilePlane
    from ..io.outputs import write_batch_output
    from ..objects import Location
    from ..plan import plan_fit
    from ..progress import progress
    from ..scale.cluster import connect, scheduler_address
    from ..scale.mosaic import dask_map_blocks

    if config.method != "classic":
        raise InputError("--block", f"blockwise prediction is for --method classic, not {config.method}")
    if config.boundary != "level":
        raise InputError("--block", "the learned boundary is not drawn block by block yet; leave out --block "
                                    "or --boundary learned")
    if args.negatives:
        raise InputError("--negatives", "are not learned from block by block yet; leave out --block or --negatives")
    if args.axes is not None:
        raise InputError("--axes", "is not read block by block yet; leave out --block or --axes")
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
    examples = read_annotations(args.examples, shape=shape, tag=args.tag, location=where, coordinates=args.coordinates,
                                limit=MAX_EXAMPLES)
    warn_repairs(examples, args.coordinates)
    if not examples:
        raise InputError(args.examples, "holds no annotations" + (f" tagged {args.tag!r}" if args.tag else ""))
    model, region = fit_region(config, plane, shape, examples)
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
    record = {"image": args.image, "examples": args.examples, "fit_region": list(region),
              **run_record(plan_fit(examples, at=location), model, [result.summary()], config=config,
                           fit_seconds=fit_s, total_seconds=time.perf_counter() - t0),
              "blocks": segmentation.extra["blocks"]}
    with committed_together():  # the result and its side file appear together or not at all
        write_batch_output(out, [result], shape=shape, tags=_output_tags(args), level=args.level,
                           properties={"examples": args.examples}, coordinates=args.coordinates,
                           channel=_output_channel(args, examples))
        write_json(_side_file(out), record)
    print(f"{len(segmentation.polygons)} objects from {len(examples)} examples ({segmentation.n_candidates} candidates, "
          f"{segmentation.extra['blocks']['count']} blocks) -> {out}")
    return 0


def _examples_frame(args, frames):
    """Plan the fit (:func:`fewseg.plan.plan_fit`) and read the frames it learns on.

    When the user placed the frame (``--xy/--z/--t``), or the file holds one frame, or
    the annotation file places no example anywhere but the first frame, this is
    :func:`read_input` (a stack then needs ``--z``/``--t``, as before), and every
    example is learned from on that frame. Otherwise the examples' own locations count:
    every location holding examples is read and learned from (only those), and an
    example is never outlined again at its own location.

    Returns
    -------
    fitted : dict Location -> Frame
        The frames the fit reads (:attr:`~fewseg.plan.FitPlan.fit_locations`).
    plan : FitPlan
    """
    from ..io.annotations import MAX_EXAMPLES, fit_inside, read_annotations
    from ..objects import Location
    from ..plan import plan_fit

    counts = frames.counts()
    placed = any(v is not None for v in (args.xy, args.z, args.t))
    if not placed and counts["XY"] * counts["Z"] * counts["T"] > 1:
        found = read_annotations(args.examples, tag=args.tag, coordinates=args.coordinates, limit=MAX_EXAMPLES)
        if any(a.location != Location() for a in found):
            plan = plan_fit(found, current=Location())
            check_locations(args.examples, plan.examples_at, frames, image=args.image)
            fitted = {loc: frames.read(loc) for loc in plan.fit_locations}
            for loc, items in plan.examples_at.items():  # as read_annotations(..., shape=) checks and repairs them
                warn_repairs([fit_inside(args.examples, a, fitted[loc].shape, coordinates=args.coordinates)
                              for a in items], args.coordinates)
            return fitted, plan
    frame, examples = read_input(args, args.examples, frames, limit=MAX_EXAMPLES)
    return {frame.location: frame}, plan_fit(examples, at=frame.location)


def check_locations(source: str, annotations_at, frames, *, image: str, what: str = "example") -> None:
    """One line naming ``source``, the location and the file's sizes when an annotation
    (an example, a negative) lies at a location ``frames`` (a
    :class:`~fewseg.io.dataset.FileFrames`) does not hold. ``annotations_at``:
    annotations by location (:attr:`~fewseg.plan.FitPlan.examples_at`,
    :attr:`~fewseg.plan.FitPlan.negatives_at`)."""
    counts = frames.counts()
    for loc in sorted(annotations_at, key=lambda loc: (loc.time, loc.z, loc.xy)):
        n = frames.counts(loc) if 0 <= loc.xy < counts["XY"] else None
        if n is None or not (0 <= loc.z < n["Z"] and 0 <= loc.time < n["T"]):
            sizes = f"XY {counts['XY']}" + (f", Z {n['Z']}, Time {n['T']}" if n else "")
            n_here = len(annotations_at[loc])
            these = f"a{'n' * (what[0] in 'aeiou')} {what} lies" if n_here == 1 else f"{n_here} {what}s lie"
            raise InputError(source, f"{these} at XY {loc.xy}, Z {loc.z}, Time {loc.time} (0-based), outside {image} "
                                     f"({sizes})", field="location")


def _segment_distributed(args, config, frames, fitted, plan, locations, out, address):
    """Fit here, predict every frame as a task on dask (:mod:`fewseg.scale.frames`)."""
    import time

    from .. import __version__
    from ..batch import BatchResult, fit_plan
    from ..classic.clicks import as_masks
    from ..methods import make_segmenter
    from ..scale.cluster import connect
    from ..scale.frames import segment_distributed
    from ..scale.store import masks_digest, run_signature

    t0 = time.perf_counter()
    segmenter = make_segmenter(config, render=render_config(args))
    check_learns_negatives(segmenter, list(plan.negatives), config.method)
    segmenter, fitted = fit_plan(segmenter, plan, frames.read, frames=fitted)
    fit_s = time.perf_counter() - t0
    digests = [masks_digest(as_masks(plan.learn.get(loc, []), fitted[loc])) for loc in plan.fit_locations]
    if len(digests) > 1:  # where each frame's examples lie is part of what was learned
        digests = [masks_digest([]) + "".join(f"{loc.as_nimbus()}{d}" for loc, d in zip(plan.fit_locations, digests))]
    rejected = [masks_digest(as_masks(plan.negatives_at[loc], fitted[loc])) for loc in plan.fit_locations
                if plan.negatives_at.get(loc)]
    if rejected:  # which objects were rejected is part of what was learned too (resume must not reuse results)
        digests = [digests[0] + "-negatives-" + "".join(rejected)]
    signature = run_signature(config=config.to_dict(), learned=segmenter.describe_fit(), examples_digest=digests[0],
                              version=__version__)
    base = _output_base(out)
    results_dir = base.with_name(base.name + ".fewseg-frames")
    with connect(workers=args.workers if not address else None, scheduler=address,
                     verbose=getattr(args, "verbose", False)) as client:
        run = segment_distributed(client, segmenter, frames, locations, results_dir=results_dir, signature=signature,
                                  examples=plan.exclude, resume=not args.no_resume)
        n_workers = len(client.scheduler_info().get("workers", {}))
    batch = BatchResult(segmenter, run.frames, fit_seconds=fit_s)
    extra = {"distributed": {"scheduler": address or f"local, {args.workers} processes", "workers": n_workers,
                             "results_dir": str(results_dir), "signature": signature, "frames_predicted": run.n_done,
                             "frames_kept": run.n_kept, "frames_sent_again": run.n_retried,
                             "seconds": round(run.seconds, 4)}}
    print(f"dask: {run.n_done} frame(s) predicted, {run.n_kept} kept from an earlier run ({results_dir})")
    return batch, extra




def add_parser(sub) -> None:
    add_segment(sub)
