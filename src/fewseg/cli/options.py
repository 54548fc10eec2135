"""What the commands share: their frame and method options, the run's config, reading the
frame with its annotations, output checks and JSON output.

Argument parsing imports nothing heavy; each command imports what it needs when run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import METHODS
from ..errors import InputError

OUTPUT_SUFFIXES = (".geojson", ".json", ".tif", ".tiff", ".png")


def frame_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frame")
    g.add_argument("--z", type=int, default=None, help="Z plane to read (needed when the file has several)")
    g.add_argument("--t", type=int, default=None, help="time point to read (needed when the file has several)")
    g.add_argument("--xy", type=int, default=None, help="XY position of this frame in its dataset (filters annotations)")
    g.add_argument("--channels", default=None, help="channels to use, by index or name: '0,1' or 'YFP,Brightfield'")
    g.add_argument("--axes", default=None,
                   help="what a TIFF's stored axes are, one letter each of T (time), Z, C (channels), Y, X: 'TYX', "
                        "'CYX', 'TCYX' (default: the file's own; a plain N x Y x X stack is read as channels up to "
                        "N = 4, as Z planes from 5, and a note says so)")
    g.add_argument("--level", type=int, default=0, help="resolution level of an OME-Zarr / pyramidal file (0 = full)")
    g.add_argument("--tag", default=None, help="use only annotations carrying this tag (a label image or a .csv of "
                                                "clicks has no tags: all of its objects are used)")
    g.add_argument("--api-url", default=None,
                   help="IMAGE = nimbus:DATASET_ID reads the frame and its tagged polygons from this NimbusImage "
                        "server (default $NI_API_URL; credentials from $NI_TOKEN or $NI_API_KEY only)")
    g.add_argument("--coordinates", default="pixel-corner", choices=("pixel-corner", "pixel-centre"),
                   help="x / y in JSON annotations: pixel-corner = NimbusImage's and QuPath's origin at the top-left "
                        "corner of pixel (0, 0) (default); pixel-centre = pixel centres at integers (the seed report's files)")


def image_and_truth(p: argparse.ArgumentParser) -> None:
    """``IMAGE`` and ``--truth``: what ``evaluate`` and ``sweep`` score against."""
    p.add_argument("image")
    p.add_argument("--truth", default=None,
                   help="all annotations of the frame: NimbusImage JSON, GeoJSON or label image "
                        "(for IMAGE = nimbus:DATASET_ID: default the dataset's polygons tagged --tag)")


def negative_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("not these (negatives)")
    g.add_argument("--negatives", default=None,
                   help="objects or regions that are NOT the kind wanted, on the frame learned from: NimbusImage JSON "
                        "or GeoJSON (polygons or points), a CSV of clicks or a label image; each rejects the object at "
                        "or under it there, and things like it are scored down everywhere")
    g.add_argument("--negative-tag", default=None, help="use only the annotations of --negatives carrying this tag "
                                                         "(default: every annotation in it; a label image or a .csv "
                                                         "of clicks has no tags: all of it)")


def read_negatives(args, frame) -> list:
    """The negatives of ``--negatives`` on ``frame`` (``--negative-tag`` applied; inside
    the frame; at its location when the user placed it): ``[]`` without the option."""
    from ..io.annotations import read_annotations

    if getattr(args, "negatives", None) is None:
        if getattr(args, "negative_tag", None) is not None:
            raise InputError("--negative-tag", "needs --negatives (the file to take the tagged negatives from)")
        return []
    where = frame.location if any(getattr(args, a, None) is not None for a in ("xy", "z", "t")) else None
    negatives = read_annotations(args.negatives, shape=frame.shape, tag=args.negative_tag, location=where,
                                 coordinates=args.coordinates)
    warn_repairs(negatives, args.coordinates)
    if not negatives:
        raise InputError(args.negatives, "holds no annotations to use as negatives")
    return negatives


def check_learns_negatives(segmenter, negatives: list, method: str) -> None:
    """One line when ``negatives`` are given to a method that does not learn from them."""
    from ..methods import learns_negatives

    if negatives and not learns_negatives(segmenter):
        raise InputError("--negatives", f"method {method} does not learn from negatives yet; use --method classic")


def method_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method")
    g.add_argument("--method", default="classic", choices=METHODS,
                   help="classic: weight-free (default); seed: the seed report's SAM pipeline; fast: SAM, encode once")
    g.add_argument("--min-area", type=int, default=30, help="smallest object area in pixels (default 30)")
    g.add_argument("--max-area", type=int, default=0, help="largest object area in pixels, 0 = none (default 0)")
    g.add_argument("--smoothing", type=float, default=0.3, help="polygon simplification tolerance in pixels (default 0.3)")
    g.add_argument("--similarity", type=float, default=None,
                   help="keep threshold on the selector's score (default: derived from the data; seed method 0.5)")
    g.add_argument("--iou", type=float, default=0.3, help="IoU for a match (default 0.3)")
    g.add_argument("--boundary", default="level", choices=("level", "learned"),
                   help="classic method: outlines at the level fitted to the examples (default), or redrawn by a "
                        "per-pixel model learned from the examples (more CPU time; docs/performance.md, 'Learned boundary')")
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


def make_config(args):
    """The run's :class:`~fewseg.config.SegmentConfig`: options are named like its fields."""
    from dataclasses import fields

    from ..config import SegmentConfig

    values = {f.name: getattr(args, f.name) for f in fields(SegmentConfig) if hasattr(args, f.name)}
    if values.get("boundary") == "learned" and values.get("method", "classic") != "classic":
        raise InputError("--boundary", f"'learned' redraws the classic method's outlines; --method {values['method']} "
                                       "outlines with SAM (leave out --boundary)")
    return SegmentConfig(**values, exclude_examples=not args.keep_examples)


def read_input(args, annotation_path: str, frames=None, *, limit: int | None = None):
    """Read the frame and the annotations for it (tag and location filters applied).

    ``frames`` (:class:`~fewseg.io.dataset.FileFrames`): a list of files, read at ``--xy``;
    ``limit``: the most annotations accepted (:func:`~fewseg.io.annotations.read_annotations`)."""
    from ..io.annotations import read_annotations
    from ..io.frames import read_frame
    from ..objects import Location

    location = Location(xy=args.xy or 0, z=args.z or 0, time=args.t or 0)
    if getattr(args, "api_url", None) is not None or str(args.image).startswith("nimbus:"):
        from ..nimbus.source import read_dataset

        if args.axes is not None:
            raise InputError("--axes", "is for image files; a NimbusImage dataset names its own axes")

        frame, annotations = read_dataset(args.image, api_url=args.api_url, location=location, tag=args.tag)
        if annotation_path is None:
            return frame, annotations
    elif annotation_path is None:
        raise InputError("--truth", "required (a NimbusImage JSON, GeoJSON or label image), unless IMAGE is "
                                    "nimbus:DATASET_ID (then the dataset's polygons tagged --tag are the truth)")
    elif frames is not None and len(frames.paths) > 1:
        frame = frames.read(location)
    else:
        if frames is None:  # segment said it when it opened the files
            announce_axes([args.image], args.axes)
        frame = read_frame(args.image, z=args.z, t=args.t, channels=args.channels, level=args.level, location=location,
                           axes=args.axes)
    # Annotations are filtered by location only when the user placed the frame.
    where = frame.location if any(v is not None for v in (args.xy, args.z, args.t)) else None
    annotations = read_annotations(annotation_path, shape=frame.shape, tag=args.tag, location=where,
                                   coordinates=args.coordinates, limit=limit)
    warn_repairs(annotations, args.coordinates)
    if not annotations:
        raise InputError(annotation_path, "holds no annotations" + (f" tagged {args.tag!r}" if args.tag else ""))
    return frame, annotations


def warn_repairs(annotations, coordinates: str) -> None:
    """One warning line on stderr per outline repaired as it was read (a hand-drawn one
    reaching past the frame's edge, or crossing itself a little): file, index, centre, what
    (:func:`fewseg.io.annotations.repairs`)."""
    import sys

    from ..io.annotations import repairs

    for line in repairs(annotations, coordinates=coordinates):
        print(f"fewseg: warning: {line}", file=sys.stderr)


def announce_axes(paths, axes: str | None) -> dict:
    """Say on stderr, in one line, how a plain stack's axes were read (the first file's
    :meth:`~fewseg.io.frames.FrameAxes.note`, and how many more were read so); return
    what the run record keeps: ``{"axes": "ZYX", "axes_read": "guess", "axes_note": ...}``
    (the first file's axes; empty for formats that name their own)."""
    import sys

    from ..io.formats import is_source_path
    from ..io.frames import frame_axes

    read = [frame_axes(p, axes=axes) for p in paths if axes is not None or not is_source_path(p)]
    if not read:
        return {}
    noted = [r.note() for r in read if r.note()]
    if noted:
        more = f" (and {len(noted) - 1} more files read so)" if len(noted) > 1 else ""
        print(f"fewseg: note: {noted[0]}{more}", file=sys.stderr)
    return {"axes": read[0].axes, "axes_read": read[0].how, **({"axes_note": noted[0]} if noted else {})}


def check_batch_axes(args, frames, counts: dict) -> None:
    """One line when ``--batch-xy/-z/-t`` ranges over an axis the file does not have
    (``--batch-t all`` on a file read as ZYX), never a silent single frame. ``counts``:
    the frame's ``{"XY", "Z", "T"}`` sizes (:meth:`~fewseg.io.dataset.FileFrames.counts`)."""
    from ..io.formats import is_source_path
    from ..io.frames import frame_axes

    for option, key, what, other in (("--batch-t", "T", "time points", "Z"), ("--batch-z", "Z", "Z planes", "T"),
                                     ("--batch-xy", "XY", "XY positions", None)):
        text = getattr(args, option[2:].replace("-", "_"), None)
        if text is None or text.strip() in ("", "0") or counts[key] > 1:
            continue
        image = frames.paths[0]
        if key == "XY":
            raise InputError(image, f"{option} {text}: one file of one XY position was given; give several files "
                                    "(or a quoted glob) or a file of several scenes", field="XY")
        read = frame_axes(image, axes=args.axes) if args.axes or not is_source_path(image) else None
        shown = f"read as {read.describe()}" if read else "its own axes"
        hint = ""
        if counts[other] > 1:
            hint = (f"; its {counts[other]} planes are {'Z planes' if other == 'Z' else 'time points'}: use "
                    f"--batch-{other.lower()}")
            if read is not None and read.how != "file":
                hint += f", or --axes {read.axes.replace(other, key)} if they are {what}"
        raise InputError(image, f"{option} {text}: the file has no {what} ({shown}){hint}", field="axes")


def render_config(args):
    if not args.render and args.blend == "lighten":
        return None
    from ..render import RenderConfig, parse_channel_styles

    return RenderConfig(styles=parse_channel_styles(args.render) if args.render else None, blend=args.blend)


def check_outputs(outputs: dict, *, inputs: tuple) -> None:
    """Check every output the command will write (``{option: path or None}``) before any work.

    Each must be writable, differ from every input and from the other outputs
    (:func:`fewseg._atomic.check_output_path`).
    """
    from .._atomic import check_output_path

    named = {option: path for option, path in outputs.items() if path is not None}
    for option, path in named.items():
        others = [other for o, other in named.items() if o != option]
        check_output_path(path, inputs=inputs, others=others, option=option)


def check_suffix(path: Path, option: str, suffixes=OUTPUT_SUFFIXES) -> None:
    if path.suffix.lower() not in suffixes:
        raise InputError(str(path), f"unsupported output type; expected one of {', '.join(suffixes)}", field=option)


def finite_json(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return finite_json(value.item())
    return value


def write_json(path: Path, data: dict) -> None:
    from .._atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(finite_json(data), f, indent=2, default=float, allow_nan=False)
        f.write("\n")


def parse_seeds(text) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise InputError("--seed", f"expected integers separated by commas, such as '42' or '0,1,2', got {text!r}")
    return seeds
