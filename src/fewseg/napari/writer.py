"""napari's File > Save Selected Layers for fewseg's formats, through fewseg's writers.

Shapes go to NimbusImage JSON (``.json``) or GeoJSON (``.geojson``) with their tags,
locations and numeric features (``score``...) as :func:`fewseg.io.annotations.write_annotations`
writes them; Points (clicks) go to the same two (NimbusImage ``"point"`` records, GeoJSON
``Point`` features) or to a ``.csv`` of ``x,y`` (one plane's clicks), each a file that
``fewseg segment --examples`` and the plugin's reader take back; Labels go to a label TIFF (one frame: fewseg's label writer, ids 1..n in
label order; a stack: the ids as painted, axes in the TIFF's shaped metadata; both marked
as labels, so fewseg's reader re-opens them as Labels). Every file is written atomically:
complete or absent.

Which leading axis is time and which is Z comes from the layer's ``axis_labels`` when they
name them (``time`` / ``t``, ``z``: fewseg's reader names its stacks' axes so, and a layer
made in napari from the active one inherits them), else from fewseg's metadata, else the
last of (time, z) (:func:`~fewseg.napari.layers.lead_axes`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ..io.annotations import write_annotations
from ..io.frames import LABELS_MARK
from ..errors import InputError
from .layers import labels_annotations, lead_axes, points_annotations, shapes_annotations


def write_shapes(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: a Shapes layer to ``.json`` (NimbusImage) or ``.geojson``."""
    target = os.fspath(path)
    if Path(target).suffix.lower() not in (".json", ".geojson"):
        raise InputError(target, "a Shapes layer is saved as .json (NimbusImage) or .geojson")
    source = attributes.get("name") or "shapes"
    data = list(data)
    n_lead = (np.asarray(data[0]).shape[1] - 2) if data else 0
    axes = layer_axes(n_lead, attributes, source=source)
    annotations = shapes_annotations(data, attributes.get("shape_type") or ["polygon"] * len(data),
                                     attributes.get("features"), source=source, axes=axes)
    write_annotations(target, annotations, shape=_holding([a.polygon.max(axis=0) for a in annotations]))
    return [target]


def write_points(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: a Points layer of clicks to ``.json`` (NimbusImage), ``.geojson`` or ``.csv``."""
    target = os.fspath(path)
    if Path(target).suffix.lower() not in (".json", ".geojson", ".csv"):
        raise InputError(target, "a Points layer is saved as .json (NimbusImage), .geojson or .csv (x,y)")
    source = attributes.get("name") or "points"
    data = np.asarray(data, dtype=float)
    n_lead = data.shape[1] - 2 if data.ndim == 2 and len(data) else 0
    axes = layer_axes(n_lead, attributes, source=source)
    annotations = points_annotations(data, attributes.get("features"), source=source, axes=axes)
    write_annotations(target, annotations, shape=_holding([a.point for a in annotations]))
    return [target]


_AXIS_NAMES = {"t": "time", "time": "time", "z": "z"}


def layer_axes(n_lead: int, attributes: dict, *, source: str) -> tuple[str, ...]:
    """Names (``time`` / ``z``) of a layer's ``n_lead`` leading axes: its ``axis_labels``
    when they name every one (case ignored), else :func:`~fewseg.napari.layers.lead_axes`.

    Examples
    --------
    >>> layer_axes(1, {"axis_labels": ("time", "y", "x")}, source="s")
    ('time',)
    >>> layer_axes(2, {"axis_labels": ("Z", "T", "y", "x")}, source="s")
    ('z', 'time')
    >>> layer_axes(1, {"axis_labels": ("-3", "-2", "-1")}, source="s")
    ('z',)
    """
    labels = tuple(attributes.get("axis_labels") or ())[:n_lead]
    named = tuple(_AXIS_NAMES.get(str(label).strip().lower()) for label in labels)
    if len(named) == n_lead and n_lead and None not in named and len(set(named)) == n_lead:
        return named
    return lead_axes(n_lead, attributes.get("metadata"), source=source)


def _holding(points: list) -> tuple[int, int]:
    """A frame shape ``(Y, X)`` that holds every ``(row, col)`` in ``points`` (a layer has
    no frame of its own to check them against)."""
    extent = np.max(points, axis=0) if points else np.zeros(2)
    return tuple(int(np.ceil(v)) + 1 for v in extent)


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer: a Labels layer to a label TIFF (``.tif`` / ``.tiff``)."""
    target = os.fspath(path)
    if Path(target).suffix.lower() not in (".tif", ".tiff"):
        raise InputError(target, "a Labels layer is saved as a label image: .tif or .tiff")
    labels = np.asarray(data)
    if labels.ndim == 2:
        write_annotations(target, labels_annotations(labels, source=attributes.get("name") or "labels"),
                          shape=labels.shape)
        return [target]
    import tifffile

    axes = layer_axes(labels.ndim - 2, attributes, source=attributes.get("name") or "labels")
    letters = "".join("T" if a == "time" else "Z" for a in axes) + "YX"
    dtype = np.uint16 if labels.max(initial=0) <= 65535 else np.uint32
    with atomic_path(target) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype), photometric="minisblack", compression="zlib",
                         metadata={"axes": letters, **LABELS_MARK})
    return [target]
