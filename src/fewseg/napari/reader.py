"""napari's File > Open for fewseg: frames and stacks, label images, annotation files, the demo sample.

Frames are read with :func:`fewseg.io.frames.read_frame` plane by plane (so a stack is read
exactly as the CLI reads each of its frames) and each channel becomes an Image layer
named after its OME channel, with the stack's axes as the layers' ``axis_labels``
(``time``, ``z``: a Shapes or Points layer made from them keeps them, and the writer saves
each outline's plane by them). A plain stack's planes are guessed as the CLI guesses them
(:func:`fewseg.io.frames.frame_axes`) and a notification says so; napari passes a reader no
options, so the way to say otherwise is the file's name: ``movie.TYX.tif`` (time points),
``movie.ZYX.tif``, ``movie.CYX.tif`` (channels), as ``--axes`` would.

A label image (:func:`fewseg.io.frames.label_image_reason`: marked by fewseg's writer, named
``*_labels`` / ``*mask*`` / ``truth``..., or flat whole numbers on a background of 0, as
napari's own label writer saves them) opens as one Labels layer, never as an Image that
could be taken for an input channel.

Annotation files annotation files (NimbusImage JSON, GeoJSON, a ``.csv`` of clicks) are read with
:func:`fewseg.io.annotations.read_annotations` and become a Shapes layer of the outlines and
a Points layer of the clicks, whose features hold the tags
(:func:`fewseg.napari.layers.annotation_shapes`, :func:`~fewseg.napari.layers.annotation_points`). Bad files raise fewseg's
one-line :class:`~fewseg.errors.InputError`, which napari shows as a notification.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.annotations import CSV_SUFFIXES, JSON_SUFFIXES, read_annotations
from ..classic.examples import is_click
from ..io.frames import (TIFF_SUFFIXES, frame_axes, label_axes, label_image_reason, plane_counts, read_array,
                         read_frame)
from .layers import (FOUND_EDGE, annotation_points, annotation_shapes, evaluation_outcomes, image_layers,
                     is_not_these, is_results, not_these_style, outcome_edges, varying_axes)

IMAGE_SUFFIXES = TIFF_SUFFIXES + (".png", ".jpg", ".jpeg")


def get_reader(path):
    """npe2 reader command: the function that reads ``path``, or None if fewseg cannot.

    Examples
    --------
    >>> get_reader("cells.ome.tif").__name__, get_reader("clicks.csv").__name__, get_reader("notes.txt")
    ('read_image', 'read_annotation_file', None)
    """
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix in JSON_SUFFIXES + CSV_SUFFIXES:
        return read_annotation_file
    if suffix in IMAGE_SUFFIXES:
        return read_image
    return None


def _one(path) -> str:
    return os.fspath(path[0] if isinstance(path, (list, tuple)) else path)


def read_stack(path) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """A file's every frame as ``(C, *lead, Y, X)`` float32, its channel names and lead axes.

    The leading axes are those of ``("time", "z")`` with more than one plane.
    """
    source = _one(path)
    counts = plane_counts(source)
    axes = tuple(a for a, key in (("time", "T"), ("z", "Z")) if counts[key] > 1)
    ts = range(counts["T"]) if "time" in axes else [None]
    zs = range(counts["Z"]) if "z" in axes else [None]
    planes, names = [], ()
    for t in ts:
        for z in zs:
            frame = read_frame(source, z=z, t=t)
            planes.append(frame.data)
            names = frame.channel_names
    stack = np.stack(planes, axis=1)  # (C, T*Z, Y, X)
    lead = tuple(n for a, n in (("time", len(ts)), ("z", len(zs))) if a in axes)
    return stack.reshape(stack.shape[:1] + lead + stack.shape[2:]), names, axes


def read_image(path) -> list[tuple]:
    """One Image layer per channel (fewseg's colours and contrast), frames stacked along T / Z;
    a label image as one Labels layer (see the module docstring)."""
    source = _one(path)
    reason = label_image_reason(source)
    if reason is not None:
        return [read_labels(source, reason=reason)]
    note = frame_axes(source).note(napari=True) if Path(source).suffix.lower() in TIFF_SUFFIXES else None
    stack, names, axes = read_stack(source)
    layers = image_layers(stack, names, source=source, axes=axes)
    for _, kwargs, _ in layers:
        kwargs["axis_labels"] = (*axes, "y", "x")
        if note:
            kwargs["metadata"]["fewseg"]["axes_note"] = note
    if note:
        _notify(note)
    return layers


def read_labels(path, *, reason: str = "") -> tuple:
    """A label image as a Labels layer ``(*lead, Y, X)`` (lead axes of time / z with more than
    one plane, in that order), its ids as saved."""
    source = _one(path)
    data, _ = read_array(source)
    stored = label_axes(source) if Path(source).suffix.lower() in TIFF_SUFFIXES else ""
    letters = stored if len(stored) == data.ndim else "YX"[-data.ndim:]
    if data.ndim != len(letters) or "Y" not in letters or "X" not in letters:
        from ..errors import InputError

        raise InputError(source, f"a label image must be Y x X, or a stack of them; got shape {data.shape}", field="axes")
    index = tuple(slice(None) if a in "TZYX" or n == 1 else 0 for a, n in zip(letters, data.shape))
    kept = "".join(a for a, ix in zip(letters, index) if isinstance(ix, slice))
    data = data[index]
    order = [kept.index(a) for a in "TZYX" if a in kept]
    data = np.transpose(data, order)
    kept = "".join(kept[i] for i in order)
    lead = [(a, n) for a, n in zip(kept[:-2], data.shape[:-2])]
    data = data[tuple(slice(None) if n > 1 else 0 for _, n in lead)]
    axes = tuple({"T": "time", "Z": "z"}[a] for a, n in lead if n > 1)
    if data.dtype.kind == "b":
        data = data.astype(np.uint8)
    name = Path(source).name.split(".")[0]
    metadata = {"fewseg": {"source": source, "axes": list(axes), "opened_as": "labels", "why": reason}}
    return data, {"name": name, "metadata": metadata, "axis_labels": (*axes, "y", "x")}, "labels"


def _notify(message: str) -> None:
    """A napari notification (info); silent where napari is not running."""
    try:
        from napari.utils.notifications import show_info
    except ImportError:  # pragma: no cover - the reader is only called by napari
        return
    show_info(message)


def read_annotation_file(path) -> list[tuple]:
    """A Shapes layer of the file's outlines and a Points layer of its clicks (either or
    both; tags, locations and properties as features). A file of neither gives an empty
    Shapes layer. A file of the correction loop's rejected results (named ``not these``,
    or every mark tagged so, as the loop tags them) is drawn as the loop draws them (red
    crosses) and the widget takes it as its ``not these`` layer again; a file of results
    fewseg wrote (every outline scored) is outlined green, as the widget's results are, and
    a saved evaluation layer (every outline with its outcome) in Evaluate's colours."""
    source = _one(path)
    annotations = read_annotations(source)
    name = Path(source).name.split(".")[0]
    clicks = [a for a in annotations if is_click(a)]
    outlines = [a for a in annotations if not is_click(a)]
    axes = varying_axes(annotations)
    layers = [annotation_shapes(outlines, name=name, source=source, axes=axes)] if outlines or not clicks else []
    if clicks:
        layers.append(annotation_points(clicks, name=f"{name} clicks" if outlines else name, source=source, axes=axes))
    if is_not_these(annotations, name):
        layers = [(data, not_these_style(kwargs, kind), kind) for data, kwargs, kind in layers]
    elif is_results(outlines):  # outlines there: layers[0] is their Shapes layer
        layers[0][1]["edge_color"] = FOUND_EDGE  # results fewseg wrote look as the widget's do, not as examples
    elif outcomes := evaluation_outcomes(outlines):
        layers[0][1]["edge_color"] = outcome_edges(outcomes)  # as Evaluate drew them
    return layers


def demo_sample() -> list[tuple]:
    """napari sample data: the demo frame, 10 example outlines and the remaining truth.

    The examples are the first 10 of the demo's blobs after ``random.Random(42)``'s
    shuffle, the split ``fewseg demo`` evaluates with; the truth layer (hidden) holds
    the rest, for the widget's Evaluate.
    """
    from ..demo import make_demo
    from ..evaluate import split_examples

    frame, blobs = make_demo(seed=0)
    examples, truth = split_examples(blobs, num_train=10, seed=42, source="demo")
    layers = image_layers(frame.data, frame.channel_names, source=frame.source, axes=())
    shapes = annotation_shapes(examples, name="examples", source="fewseg demo", axes=())
    truth_layer = annotation_shapes(truth, name="truth", source="fewseg demo", axes=())
    truth_layer[1].update(visible=False, edge_color="#ff00ff")
    return layers + [truth_layer, shapes]
