"""Reading and writing annotations: examples, ground truth and results.

Three kinds of file, chosen by suffix (and, for JSON, by content):

* **NimbusImage JSON** (``.json``): a list of ``{"shape": "polygon", "tags": [...],
  "channel": c, "location": {"XY": i, "Z": j, "Time": k}, "coordinates": [{"x": col,
  "y": row}, ...]}``, or an object whose ``"annotations"`` key holds that list.
* **GeoJSON** (``.geojson``, or ``.json`` holding a ``FeatureCollection``, a
  ``Feature`` or a list of Features, as QuPath exports): ``Polygon`` and
  ``MultiPolygon`` features, ``x = col``, ``y = row``.
* **Label images** (``.tif``, ``.tiff``, ``.png``): a 2-D integer image, each non-zero
  value one object (even when it is in several pieces).
* **Clicks** (examples only): NimbusImage ``"point"`` annotations, GeoJSON ``Point`` and
  ``MultiPoint`` features, and ``.csv`` files of ``x,y`` (as the JSON formats place x
  and y) or ``row,col`` (napari's ``axis-0,axis-1`` too) per their header. They read as
  annotations with a ``point``; :func:`fewseg.classic.examples.example_masks` outlines them.

Coordinates in both JSON formats follow NimbusImage and QuPath: ``x`` = column, ``y`` =
row, origin at the top-left **corner** of pixel (0, 0), so pixel ``(r, c)`` covers
``c <= x <= c + 1``, ``r <= y <= r + 1`` and its centre is ``x = c + 0.5``, ``y = r + 0.5``
(``coordinates="pixel-corner"``, the default). Inside fewseg pixel centres are at integers,
so reading subtracts half a pixel and writing adds it back (:func:`_from_file`,
:func:`_to_file`: the one place this happens). ``coordinates="pixel-centre"`` reads and
writes fewseg's own convention unchanged (the seed report's files, and the ones fewseg
wrote before it took the platform's convention).

Polygons are ``(N, 2)`` ``(row, col)`` arrays (see :mod:`fewseg.objects`). Every
problem with a file is an :class:`~fewseg.InputError` naming the file and the place in
it, e.g. ``examples.json: annotations[12].coordinates: ...``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._atomic import atomic_open, atomic_path
from .._reading import check_input_file, describe, library_errors
from ..errors import InputError
from ..objects import Annotation, Location, ObjectMask, labels_from_masks, masks_from_labels
from ..polygons import INSIDE_TO_CLIP, check_polygon, mask_to_polygon, repair_polygon

__all__ = ["COORDINATES", "available_tags", "check_inside", "fit_inside", "repairs", "from_nimbus", "read_annotations", "to_nimbus", "write_annotations"]

LABEL_SUFFIXES = (".tif", ".tiff", ".png")
JSON_SUFFIXES = (".json", ".geojson")
CSV_SUFFIXES = (".csv",)

_NIMBUS_KEYS = ("shape", "tags", "channel", "location", "coordinates")
_GEOJSON_KEYS = ("tags", "location", "channel", "classification")
_EDGE = 0.5 + 1e-9  # vertices may lie up to half a pixel beyond the border pixel centres
_MAX_INDEX = 2**31 - 1  # channel, XY, Z, Time
# GeoJSON geometries other than (Multi)Polygon are skipped; any other "type" is an error.
_GEOJSON_OTHER_GEOMETRIES = ("Point", "MultiPoint", "LineString", "MultiLineString", "GeometryCollection")

#: Where a JSON file's ``x`` / ``y`` put pixel ``(r, c)``: ``"pixel-corner"`` (NimbusImage,
#: QuPath: its centre at ``c + 0.5, r + 0.5``) or ``"pixel-centre"`` (at ``c, r``).
COORDINATES = ("pixel-corner", "pixel-centre")


def _file_offset(coordinates: str) -> float:
    """How far a file's coordinates sit from fewseg's (pixel centres at integers)."""
    if coordinates == "pixel-corner":
        return 0.5
    if coordinates == "pixel-centre":
        return 0.0
    raise ValueError(f"coordinates must be one of {', '.join(COORDINATES)}; got {coordinates!r}")


def _from_file(points: np.ndarray, coordinates: str) -> np.ndarray:
    """``(N, 2)`` ``(y, x)`` as a JSON file states them -> fewseg's ``(row, col)``."""
    return np.asarray(points, dtype=float) - _file_offset(coordinates)


def _to_file(points: np.ndarray, coordinates: str) -> np.ndarray:
    """fewseg's ``(N, 2)`` ``(row, col)`` -> ``(y, x)`` as a JSON file states them."""
    return np.asarray(points, dtype=float) + _file_offset(coordinates)


def _from_file_annotation(annotation: Annotation, coordinates: str) -> Annotation:
    """``annotation`` read from a JSON file, its polygon or click moved into fewseg's coordinates."""
    if not _file_offset(coordinates):
        return annotation
    moved = {k: _from_file(v, coordinates) for k, v in (("polygon", annotation.polygon), ("point", annotation.point))
             if v is not None}
    return replace(annotation, **moved)


# --------------------------------------------------------------------------- reading


def read_annotations(
    path: str | os.PathLike,
    *,
    shape: tuple[int, int] | None = None,
    tag: str | None = None,
    location: Location | None = None,
    coordinates: str = "pixel-corner",
    limit: int | None = None,
) -> list[Annotation]:
    """Read the polygon (or label-image) annotations of a file.

    Parameters
    ----------
    path : str or path-like
        ``.json`` (NimbusImage or GeoJSON), ``.geojson``, a label image (``.tif``,
        ``.tiff``, ``.png``) or a ``.csv`` of clicks.
    shape : tuple of int, optional
        ``(Y, X)`` of the frame the annotations belong to. When given, polygons must lie
        inside it (``0 <= x <= X``, ``0 <= y <= Y`` in pixel-corner coordinates: a vertex
        on the frame's bottom or right edge is inside) and a label image must have
        exactly this shape.
    tag : str, optional
        Keep only annotations whose tags include ``tag``. Ignored for label images and
        ``.csv`` clicks, which carry no tags.
    location : Location, optional
        Keep only annotations at this XY / Z / Time (an annotation without a location
        is at XY = Z = Time = 0). A label image or a ``.csv`` of clicks describes one
        frame: its objects all get ``location`` instead.
    coordinates : {"pixel-corner", "pixel-centre"}
        How the JSON file's ``x`` / ``y`` relate to pixels (see the module docstring):
        NimbusImage's and QuPath's pixel-corner origin (default), or the pixel centres
        at integers of fewseg's (and the seed report's) older files.

    Returns
    -------
    list of Annotation
        In file order. Polygon files give ``polygon`` (``(N, 2)`` ``(row, col)``, open);
        label images give ``mask`` and ``properties={"label": value}``; clicks
        (NimbusImage points, GeoJSON Point / MultiPoint, ``.csv`` tables) give ``point``
        (``(row, col)``). Other shapes (NimbusImage lines, GeoJSON lines and null
        geometries) are skipped. Other keys of a NimbusImage annotation (``_id``...)
        and GeoJSON ``properties`` (and the Feature ``id``) land in ``properties``.

    limit : int, optional
        Refuse more than this many annotations (``tag`` applied), in one line, before
        the cost of checking each (examples to learn from: :data:`MAX_EXAMPLES`).

    Raises
    ------
    InputError
        Unreadable file, wrong structure, a degenerate or out-of-frame polygon, a label
        image of the wrong shape or type, a ``tag`` no annotation has (the message
        lists the tags there are), nothing at ``location`` (it lists the locations),
        more than ``limit``.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "examples.json"
    >>> square = [{"x": 1, "y": 1}, {"x": 4, "y": 1}, {"x": 4, "y": 3}, {"x": 1, "y": 3}]
    >>> _ = path.write_text(json.dumps([{"shape": "polygon", "tags": ["cell"],
    ...     "location": {"XY": 0, "Z": 0, "Time": 0}, "coordinates": square}]))
    >>> [a] = read_annotations(path, shape=(10, 10), tag="cell")
    >>> a.polygon[:2].tolist(), a.tags      # (row, col), pixel centres at integers
    ([[0.5, 0.5], [0.5, 3.5]], ('cell',))
    >>> a.to_mask((10, 10)).bbox            # rows 1-2, cols 1-3: the pixels it covers
    (1, 1, 3, 4)
    """
    source = os.fspath(path)
    suffix = Path(source).suffix.lower()
    if suffix in LABEL_SUFFIXES + CSV_SUFFIXES:
        # A label image or a table of clicks holds one frame's objects and no tags.
        label_image = suffix in LABEL_SUFFIXES
        annotations = _read_label_image(source, shape=shape) if label_image else _read_click_table(source, coordinates)
        _check_limit(source, len(annotations), limit, tag=None)
        if location is not None:
            annotations = [replace(a, location=location) for a in annotations]
        if shape is not None and not label_image:  # (a label image was checked against shape as it was read)
            annotations = [fit_inside(source, a, shape, coordinates=coordinates) for a in annotations]
        return annotations
    if suffix not in JSON_SUFFIXES:
        expected = ", ".join(JSON_SUFFIXES + LABEL_SUFFIXES + CSV_SUFFIXES)
        raise InputError(source, f"cannot read annotations from a {suffix or 'suffix-less'} file; expected one of {expected}")
    doc = _load_json(source)
    if limit is not None:  # counted before each polygon is checked (about a millisecond each)
        _check_limit(source, _count_raw(doc, tag), limit, tag=tag)
    annotations = [_from_file_annotation(a, coordinates) for a in _parse_document(source, doc)]
    if limit is not None:
        _check_limit(source, len(annotations) if tag is None else sum(tag in a.tags for a in annotations), limit, tag=tag)
    if tag is not None:
        annotations = _filter_tag(source, annotations, tag)
    if location is not None:
        annotations = _filter_location(source, annotations, location)
    if shape is not None:
        annotations = [fit_inside(source, a, shape, coordinates=coordinates) for a in annotations]
    return annotations


#: The most examples a fit is given (``read_annotations(..., limit=)``): few-shot
#: learning needs a few; 65,536 labels or 210,000 polygons took minutes to read and fit.
MAX_EXAMPLES = 5000


def _check_limit(source: str, n: int, limit: int | None, *, tag: str | None) -> None:
    if limit is not None and n > limit:
        tagged = f" tagged {tag!r}" if tag is not None else ""
        raise InputError(source, f"{n:,} annotations{tagged}: too many examples (at most {limit:,}); fewseg learns "
                                 "from a few (about 10), give those (or their tag, --tag)")


def _count_raw(doc, tag: str | None) -> int:
    """How many annotations (carrying ``tag``) a JSON document holds, from its raw items
    (0 for a structure :func:`_parse_document` will refuse); a GeoJSON Feature's tags
    as :func:`_feature_fields` reads them."""
    items = doc if isinstance(doc, list) else doc.get("features", doc.get("annotations")) if isinstance(doc, dict) else None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        items = [doc]
    if not isinstance(items, list):
        return 0
    if tag is None:
        return len(items)

    def tags(item) -> list:
        if not isinstance(item, dict):
            return []
        props = item.get("properties") if _is_feature(item) else item
        props = props if isinstance(props, dict) else {}
        found = props.get("tags")
        if found is None and isinstance(props.get("classification"), dict):
            c = props["classification"]
            found = [c["name"]] if "name" in c else c.get("names")
        return found if isinstance(found, list) else []

    return sum(tag in tags(item) for item in items)


def available_tags(annotations: Iterable[Annotation]) -> dict[str, int]:
    """How many annotations carry each tag, most frequent first.

    Examples
    --------
    >>> available_tags([Annotation(tags=("a", "b")), Annotation(tags=("b",))])
    {'b': 2, 'a': 1}
    """
    counts = Counter(tag for a in annotations for tag in a.tags)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _load_json(source: str):
    check_input_file(source, expected="JSON annotations")
    with library_errors(source, "JSON", loggers=()):
        with open(source, "rb") as handle:
            raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not a JSON text file (not UTF-8: byte {exc.start} is {raw[exc.start]:#04x})") from None
    if not text.strip():
        raise InputError(source, "the file is empty; expected JSON annotations")
    import gc

    collecting = gc.isenabled()
    gc.disable()  # the cyclic collector, run again and again over millions of new objects, tripled a large file's parse
    try:
        with library_errors(source, "JSON", loggers=()):
            return json.loads(text)
    except InputError as exc:
        cause = exc.__context__
        if isinstance(cause, json.JSONDecodeError):
            where = f"line {cause.lineno}:{cause.colno}"
            raise InputError(source, f"not valid JSON ({cause.msg}); is the file complete?", field=where) from None
        raise
    finally:
        if collecting:
            gc.enable()


def _describe(value) -> str:
    """A short name for a JSON value's type, for messages."""
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:6])
        return f"an object with keys {keys}" if value else "an empty object"
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _parse_document(source: str, doc) -> list[Annotation]:
    if isinstance(doc, list):
        if doc and _is_feature(doc[0]):
            return _geojson_annotations(source, doc)
        return _nimbus_annotations(source, doc, "annotations")
    if isinstance(doc, dict):
        if doc.get("type") == "FeatureCollection":
            features = doc.get("features")
            if not isinstance(features, list):
                raise InputError(source, f"expected the list of GeoJSON features, got {_describe(features)}", field="features")
            return _geojson_annotations(source, features)
        if doc.get("type") == "Feature":
            return _geojson_annotations(source, [doc])
        if "annotations" in doc:
            items = doc["annotations"]
            if not isinstance(items, list):
                raise InputError(source, f"expected a list of annotations, got {_describe(items)}", field="annotations")
            return _nimbus_annotations(source, items, "annotations")
    raise InputError(
        source,
        "expected a list of NimbusImage annotations, an object with an 'annotations' list, "
        f"or a GeoJSON FeatureCollection; got {_describe(doc)}",
    )


def _is_feature(item) -> bool:
    return isinstance(item, dict) and item.get("type") == "Feature"


# ---- field validation shared by both JSON formats


def _number(source: str, value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(source, f"expected a number, got {_describe(value)}", field=field)
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range: refused with the polygon as not finite
        return math.inf


def _shown(value) -> str:
    """A number as a message shows it: whole when short, else its size."""
    text = repr(value)
    return text if len(text) <= 24 else f"a {len(text.lstrip('-'))}-digit number"


def _count(source: str, value, field: str) -> int:
    """A non-negative integer (channel, XY, Z, Time)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INDEX:
        shown = _shown(value) if isinstance(value, (int, float)) else _describe(value)
        limit = " (at most 2^31 - 1)" if isinstance(value, int) and value > _MAX_INDEX else ""
        raise InputError(source, f"expected a non-negative integer{limit}, got {shown}", field=field)
    return value


def _channel(source: str, value, field: str) -> int:
    return 0 if value is None else _count(source, value, field)


def _tags(source: str, value, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InputError(source, f"expected a list of tag strings, got {_describe(value)}", field=field)
    return tuple(value)


def _location(source: str, value, field: str) -> Location:
    if value is None:
        return Location()
    if not isinstance(value, dict):
        example = '{"XY": 0, "Z": 0, "Time": 0}'
        raise InputError(source, f"expected an object like {example}, got {_describe(value)}", field=field)
    return Location(
        xy=_count(source, value.get("XY", 0), f"{field}.XY"),
        z=_count(source, value.get("Z", 0), f"{field}.Z"),
        time=_count(source, value.get("Time", 0), f"{field}.Time"),
    )


# ---- NimbusImage


def _nimbus_annotations(source: str, items: list, field: str) -> list[Annotation]:
    annotations = []
    for i, item in enumerate(items):
        annotation = _nimbus_annotation(source, item, f"{field}[{i}]")
        if annotation is not None:
            annotations.append(annotation)
    return annotations


def _nimbus_annotation(source: str, item, field: str) -> Annotation | None:
    """One NimbusImage annotation, or None for a non-polygon shape."""
    if not isinstance(item, dict):
        raise InputError(source, f"expected an annotation object, got {_describe(item)}", field=field)
    shape = item.get("shape", "polygon")
    if not isinstance(shape, str):
        raise InputError(source, f'expected a shape name such as "polygon" or "point", got {_describe(shape)}',
                         field=f"{field}.shape")
    if shape == "point":
        return _nimbus_click(source, item, field)
    if shape != "polygon":
        return None
    if "coordinates" not in item:
        problem = 'missing: a polygon needs "coordinates": [{"x": col, "y": row}, ...]'
        raise InputError(source, problem, field=f"{field}.coordinates")
    points = _nimbus_points(source, item["coordinates"], f"{field}.coordinates")
    polygon, note = repair_polygon(points, source=source, field=f"{field}.coordinates")
    return Annotation(
        polygon=polygon,
        tags=_tags(source, item.get("tags"), f"{field}.tags"),
        location=_location(source, item.get("location"), f"{field}.location"),
        channel=_channel(source, item.get("channel"), f"{field}.channel"),
        origin=f"{source}: {field}",
        properties={**{k: v for k, v in item.items() if k not in _NIMBUS_KEYS}, **_repaired(note)},
    )


def from_nimbus(item: dict, *, source: str, field: str = "annotation", coordinates: str = "pixel-corner") -> Annotation | None:
    """One NimbusImage annotation record (as the server sends it) as an :class:`Annotation`.

    A polygon, or a click for a ``"point"``; None for other shapes; :class:`InputError`
    naming ``source`` and ``field`` for a malformed or degenerate one. Coordinates as in
    :func:`read_annotations`.
    """
    annotation = _nimbus_annotation(source, item, field)
    return None if annotation is None else _from_file_annotation(annotation, coordinates)


def to_nimbus(annotation: Annotation, *, coordinates: str = "pixel-corner") -> dict:
    """An :class:`Annotation` as a NimbusImage record: a polygon (open ring, x = col,
    y = row), or a ``"point"`` for a click."""
    click = _is_click(annotation)
    points = _to_file(annotation.point[None, :] if click else _polygon_of(annotation), coordinates)
    return {
        "shape": "point" if click else "polygon",
        "tags": list(annotation.tags),
        "channel": int(annotation.channel),
        "location": annotation.location.as_nimbus(),
        "coordinates": [{"x": float(x), "y": float(y)} for y, x in points],
    }


def _is_click(annotation: Annotation) -> bool:
    """A click: a point and no outline (an outline with a point is written as the outline)."""
    return annotation.point is not None and annotation.polygon is None and annotation.mask is None


def _nimbus_points(source: str, coordinates, field: str) -> np.ndarray:
    """``(N, 2)`` ``(row, col)`` from ``[{"x": col, "y": row}, ...]`` (a ``z`` is ignored)."""
    if not isinstance(coordinates, list):
        raise InputError(source, f'expected a list of {{"x": col, "y": row}} points, got {_describe(coordinates)}', field=field)
    points = np.empty((len(coordinates), 2))
    for k, point in enumerate(coordinates):
        if not isinstance(point, dict) or "x" not in point or "y" not in point:
            raise InputError(source, f'expected a point {{"x": col, "y": row}}, got {_describe(point)}', field=f"{field}[{k}]")
        points[k] = _number(source, point["y"], f"{field}[{k}].y"), _number(source, point["x"], f"{field}[{k}].x")
    return points


def _click(source: str, point: np.ndarray, field: str, coordinates: str = "pixel-corner") -> np.ndarray:
    """``point`` once it is finite (NaN and infinities are no place; every click reader checks here)."""
    if not np.isfinite(point).all():
        y, x = _to_file(point, coordinates)
        raise InputError(source, f"expected a click at finite x and y, got x {x:g}, y {y:g}", field=field)
    return point


def _nimbus_click(source: str, item: dict, field: str) -> Annotation:
    """A NimbusImage ``"point"`` annotation: one click, its coordinates converted as a
    polygon's are (:func:`_nimbus_points`)."""
    if "coordinates" not in item:
        raise InputError(source, 'missing: a point needs "coordinates": [{"x": col, "y": row}]', field=f"{field}.coordinates")
    points = _nimbus_points(source, item["coordinates"], f"{field}.coordinates")
    if len(points) != 1:
        raise InputError(source, f"expected one point, got {len(points)}", field=f"{field}.coordinates")
    return Annotation(
        point=_click(source, points[0], f"{field}.coordinates"),
        tags=_tags(source, item.get("tags"), f"{field}.tags"),
        location=_location(source, item.get("location"), f"{field}.location"),
        channel=_channel(source, item.get("channel"), f"{field}.channel"),
        origin=f"{source}: {field}",
        properties={k: v for k, v in item.items() if k not in _NIMBUS_KEYS},
    )


# ---- GeoJSON


def _geojson_annotations(source: str, features: list) -> list[Annotation]:
    annotations = []
    for i, feature in enumerate(features):
        annotations.extend(_feature_annotations(source, feature, f"features[{i}]"))
    return annotations


def _feature_annotations(source: str, feature, field: str) -> list[Annotation]:
    """The polygons of one Feature: none for other geometries, one per MultiPolygon part."""
    if not isinstance(feature, dict):
        raise InputError(source, f"expected a GeoJSON Feature object, got {_describe(feature)}", field=field)
    if "geometry" not in feature:
        raise InputError(source, "missing: a Feature needs a geometry", field=f"{field}.geometry")
    geometry = feature["geometry"]
    if geometry is None:
        return []
    if not isinstance(geometry, dict):
        raise InputError(source, f"expected a GeoJSON geometry object, got {_describe(geometry)}", field=f"{field}.geometry")
    kind = geometry.get("type")
    if kind in ("Point", "MultiPoint"):
        return _feature_clicks(source, feature, geometry, field)
    if kind in _GEOJSON_OTHER_GEOMETRIES:
        return []
    if kind not in ("Polygon", "MultiPolygon"):
        known = ", ".join(("Polygon", "MultiPolygon") + _GEOJSON_OTHER_GEOMETRIES)
        got = repr(kind) if isinstance(kind, str) else "missing" if "type" not in geometry else _describe(kind)
        raise InputError(source, f"expected a GeoJSON geometry type ({known}), got {got}", field=f"{field}.geometry.type")
    if "coordinates" not in geometry:
        raise InputError(source, f"missing: a {kind} needs coordinates", field=f"{field}.geometry.coordinates")
    coordinates = geometry["coordinates"]
    base = f"{field}.geometry.coordinates"
    if kind == "Polygon":
        parts = [(coordinates, base)]
    elif isinstance(coordinates, list):
        parts = [(part, f"{base}[{k}]") for k, part in enumerate(coordinates)]
    else:
        raise InputError(source, f"expected a list of polygons, got {_describe(coordinates)}", field=base)
    common = _feature_fields(source, feature, field)
    out = []
    for rings, part_field in parts:
        polygon, note = _outer_ring(source, rings, part_field)
        out.append(Annotation(polygon=polygon, origin=f"{source}: {part_field}",
                              **{**common, "properties": {**common["properties"], **_repaired(note)}}))
    return out


def _feature_fields(source: str, feature: dict, field: str) -> dict:
    """``tags``, ``location``, ``channel`` and ``properties`` of a Feature."""
    props = feature.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise InputError(source, f"expected an object, got {_describe(props)}", field=f"{field}.properties")
    if "tags" in props:
        tags = _tags(source, props["tags"], f"{field}.properties.tags")
    else:
        tags = _classification_tags(source, props.get("classification"), f"{field}.properties.classification")
    properties = {k: v for k, v in props.items() if k not in _GEOJSON_KEYS}
    if "id" in feature and "id" not in properties:
        properties["id"] = feature["id"]
    return {
        "tags": tags,
        "location": _location(source, props.get("location"), f"{field}.properties.location"),
        "channel": _channel(source, props.get("channel"), f"{field}.properties.channel"),
        "properties": properties,
    }


def _classification_tags(source: str, value, field: str) -> tuple[str, ...]:
    """QuPath's ``{"name": "Tumor"}`` (or ``{"names": [...]}``) as tags."""
    if value is None:
        return ()
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return (value["name"],)
    if isinstance(value, dict) and "names" in value:
        return _tags(source, value["names"], f"{field}.names")
    raise InputError(source, f'expected an object like {{"name": "Tumor"}}, got {_describe(value)}', field=field)


def _outer_ring(source: str, rings, field: str) -> tuple[np.ndarray, str | None]:
    """The checked (small mistakes repaired) ``(N, 2)`` ``(row, col)`` polygon of a GeoJSON
    ring list (holes ignored), and what was repaired (:func:`fewseg.polygons.repair_polygon`)."""
    if not isinstance(rings, list) or not rings:
        raise InputError(source, f"expected a list of linear rings [[x, y], ...], got {_describe(rings)}", field=field)
    ring, ring_field = rings[0], f"{field}[0]"
    if not isinstance(ring, list):
        raise InputError(source, f"expected a linear ring [[x, y], ...], got {_describe(ring)}", field=ring_field)
    return repair_polygon(_geojson_positions(source, ring, ring_field), source=source, field=ring_field)


def _geojson_positions(source: str, positions: list, field: str) -> np.ndarray:
    """``(N, 2)`` ``(row, col)`` from GeoJSON positions ``[[x, y], ...]`` (rings and clicks)."""
    points = np.empty((len(positions), 2))
    for k, position in enumerate(positions):
        if not isinstance(position, list) or len(position) < 2:
            raise InputError(source, f"expected a position [x, y], got {_describe(position)}", field=f"{field}[{k}]")
        points[k] = _number(source, position[1], f"{field}[{k}][1]"), _number(source, position[0], f"{field}[{k}][0]")
    return points


def _feature_clicks(source: str, feature: dict, geometry: dict, field: str) -> list[Annotation]:
    """The clicks of a ``Point`` / ``MultiPoint`` Feature, one annotation each, positions
    converted as a polygon's are (:func:`_geojson_positions`)."""
    kind, base = geometry["type"], f"{field}.geometry.coordinates"
    if "coordinates" not in geometry:
        raise InputError(source, f"missing: a {kind} needs coordinates", field=base)
    coordinates = geometry["coordinates"]
    if kind == "Point":
        points, fields = _geojson_positions(source, [coordinates], base), [base]
    elif isinstance(coordinates, list):
        points, fields = _geojson_positions(source, coordinates, base), [f"{base}[{k}]" for k in range(len(coordinates))]
    else:
        raise InputError(source, f"expected a list of positions [[x, y], ...], got {_describe(coordinates)}", field=base)
    common = _feature_fields(source, feature, field)
    return [Annotation(point=_click(source, p, f), origin=f"{source}: {f}", **common) for p, f in zip(points, fields)]


# ---- clicks in a table


_CLICK_COLUMNS = {("x", "y"): "xy", ("row", "col"): "rc", ("axis-0", "axis-1"): "rc", ("y", "x"): "xy"}


def _read_click_table(source: str, coordinates: str) -> list[Annotation]:
    """Clicks from a CSV with a header naming ``x`` and ``y`` (placed as in the JSON
    formats, ``coordinates``) or ``row`` and ``col`` (napari's ``axis-0`` and
    ``axis-1``: pixel centres at integers); other columns are kept as properties."""
    import csv

    try:
        with open(source, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:  # csv.Error: a NUL byte, a field over 128 kB
        raise InputError(source, f"cannot read the table: {describe(exc)}") from None
    if not rows:
        raise InputError(source, "empty table; expected a header 'x,y' or 'row,col' and one click per line")
    header = [h.strip().lower() for h in rows[0]]
    axes = [h for h in header if h.startswith("axis-")]
    if len(axes) > 2:  # napari's Points of a stack: which axis is Z or T is not in the file
        raise InputError(source, f"has {len(axes)} axis columns ({', '.join(axes)}): clicks saved from a stack; "
                                 "expected 2-D clicks (x,y or row,col, or napari's axis-0,axis-1 of one plane)",
                         field="line 1")
    found = [(names, kind) for names, kind in _CLICK_COLUMNS.items() if all(n in header for n in names)]
    if not found:
        raise InputError(source, f"expected a header naming x and y, or row and col; got {','.join(rows[0])!r}",
                         field="line 1")
    (first, second), kind = found[0]
    i, j = header.index(first), header.index(second)
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        field = f"line {line}"
        try:
            a, b = float(row[i]), float(row[j])
        except (ValueError, IndexError):
            raise InputError(source, f"expected numbers in columns {first!r} and {second!r}, got {','.join(row)!r}",
                             field=field) from None
        if kind == "xy":
            x, y = (a, b) if first == "x" else (b, a)
            point = _from_file(_nimbus_points(source, [{"x": x, "y": y}], field)[0], coordinates)
        else:
            point = np.array([a, b])
        _click(source, point, field, "pixel-centre" if kind == "rc" else coordinates)
        extra = {h: row[k] for k, h in enumerate(rows[0]) if k not in (i, j) and k < len(row) and h.strip()}
        out.append(Annotation(point=point, origin=f"{source}: {field}", properties=extra))
    return out


# ---- label images


def _read_label_image(source: str, *, shape: tuple[int, int] | None) -> list[Annotation]:
    from .frames import read_array

    labels, axes = read_array(source)
    if labels.ndim != 2:
        problem = f"expected a 2-D label image (one integer per pixel); got axes {axes} of shape {labels.shape}"
        raise InputError(source, problem, field="axes")
    if labels.dtype.kind == "b":
        labels = labels.astype(np.uint8)
    if labels.dtype.kind not in "iu":
        raise InputError(source, f"a label image must hold integers; got {labels.dtype} pixels", field="dtype")
    if labels.dtype.kind == "i" and labels.min(initial=0) < 0:
        raise InputError(source, f"a label image must not hold negative values; found {labels.min()}", field="dtype")
    if shape is not None and tuple(labels.shape) != tuple(shape):
        problem = f"label image is {labels.shape[0]} x {labels.shape[1]} (rows x cols) but the frame is {shape[0]} x {shape[1]}"
        raise InputError(source, problem, field="shape")
    values, compact = _compact_labels(labels)
    return [
        Annotation(mask=mask, origin=f"{source}: label {value}", properties={"label": int(value)})
        for value, mask in zip(values, masks_from_labels(compact))
    ]


def _compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero values present, and the image relabelled ``1..n`` in their order.

    Keeps :func:`masks_from_labels` from building a table as long as the largest label.
    """
    values = np.unique(labels)
    values = values[values != 0]
    compact = np.zeros(labels.shape, dtype=np.int64)
    inside = labels != 0
    compact[inside] = np.searchsorted(values, labels[inside]) + 1
    return values, compact


# ---- filters and checks


def _filter_tag(source: str, annotations: list[Annotation], tag: str) -> list[Annotation]:
    kept = [a for a in annotations if tag in a.tags]
    if not kept:
        counts = available_tags(annotations)
        present = ", ".join(f"{t!r} ({n})" for t, n in counts.items())
        raise InputError(source, f"no annotation has the tag {tag!r}; " + (
            f"tags present: {present}" if present else
            "its annotations carry no tags: leave the tag out to take them all"),
            field="tags")
    return kept


def _format_location(location: Location) -> str:
    return f"XY={location.xy}, Z={location.z}, Time={location.time}"


def _filter_location(source: str, annotations: list[Annotation], location: Location) -> list[Annotation]:
    kept = [a for a in annotations if a.location == location]
    if not kept:
        counts = Counter(a.location for a in annotations)
        ordered = sorted(counts.items(), key=lambda item: (item[0].xy, item[0].z, item[0].time))
        present = "; ".join(f"{_format_location(loc)} ({n})" for loc, n in ordered)
        raise InputError(
            source,
            f"no annotation at {_format_location(location)}; "
            + (f"annotations are at: {present}" if present else "the file has no annotations"),
            field="location",
        )
    return kept


def _outside(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which vertices lie beyond half a pixel from the frame's border pixel centres."""
    rows, cols = shape
    low = np.array([-_EDGE, -_EDGE])
    high = np.array([rows - 1 + _EDGE, cols - 1 + _EDGE])
    return ((polygon < low) | (polygon > high)).any(axis=1)


def check_inside(source: str, annotation: Annotation, shape: tuple[int, int], *, coordinates: str = "pixel-centre",
                 how: str | None = None) -> None:
    """Raise unless every vertex is within half a pixel of the frame's pixel centres.

    ``coordinates`` is how the message states positions: as the file does, or
    (``"pixel-centre"``, the default) as fewseg and napari hold them in memory.

    That is the frame's outer edge: ``0 <= x <= X`` in pixel-corner coordinates. The
    message gives the vertex and the bounds as the file states them (``how``: the word
    for a polygon not wholly outside, default ``"partly"``). :func:`fit_inside` clips a
    polygon mostly inside instead.
    """
    rows, cols = shape
    polygon = annotation.polygon
    if polygon is None and annotation.point is not None:
        polygon = annotation.point[None]
    outside = _outside(polygon, shape)
    if not outside.any():
        return
    field = annotation.origin[len(source) + 2 :] if annotation.origin.startswith(f"{source}: ") else None
    low, high = np.array([-_EDGE, -_EDGE]), np.array([rows - 1 + _EDGE, cols - 1 + _EDGE])
    wholly = (polygon.max(axis=0) < low).any() or (polygon.min(axis=0) > high).any()
    y, x = _to_file(polygon[np.argmax(outside)], coordinates)
    (y0, x0), (y1, x1) = _to_file(np.array([[-0.5, -0.5], [rows - 0.5, cols - 0.5]]), coordinates)
    raise InputError(
        source,
        f"{'polygon' if annotation.polygon is not None else 'click'} lies {'wholly' if wholly else how or 'partly'} "
        f"outside the {rows} x {cols} (rows x cols) frame: "
        f"vertex at x {x:g}, y {y:g}; vertices must be within x {x0:g}..{x1:g} and y {y0:g}..{y1:g} "
        f"({coordinates} coordinates)",
        field=field,
    )


def fit_inside(source: str, annotation: Annotation, shape: tuple[int, int], *, coordinates: str = "pixel-centre"
               ) -> Annotation:
    """``annotation``, checked against a frame of ``shape``: a polygon reaching past the
    frame's edge but mostly inside (:data:`fewseg.polygons.INSIDE_TO_CLIP` of its area)
    is clipped to it, and ``properties["repaired"]`` says so (:func:`repairs`); a click
    outside, or a polygon wholly or mostly outside, raises as :func:`check_inside` does.

    Examples
    --------
    >>> a = fit_inside("ex.json", Annotation(polygon=np.array([[2., -0.8], [2, 5], [6, 5], [6, -0.8]]),
    ...                origin="ex.json: annotations[3]"), (10, 10))
    >>> float(a.polygon[:, 1].min()), a.properties["repaired"]
    (-0.5, 'reached 0.3 px outside the 10 x 10 frame: clipped to it')
    """
    polygon = annotation.polygon
    if polygon is None or not _outside(polygon, shape).any():
        check_inside(source, annotation, shape, coordinates=coordinates)
        return annotation
    from shapely.geometry import Polygon, box

    geom = Polygon(polygon[:, ::-1])
    frame = box(-0.5, -0.5, shape[1] - 0.5, shape[0] - 0.5)
    if geom.area <= 0 or geom.intersection(frame).area < INSIDE_TO_CLIP * geom.area:
        check_inside(source, annotation, shape, coordinates=coordinates, how="mostly")
    field = annotation.origin[len(source) + 2 :] if annotation.origin.startswith(f"{source}: ") else None
    clipped, note = repair_polygon(polygon, source=source, field=field or "polygon", shape=shape)
    if note is None:
        return annotation
    notes = "; ".join(n for n in (annotation.properties.get("repaired"), note) if n)
    return replace(annotation, polygon=clipped, properties={**annotation.properties, "repaired": notes})


def _repaired(note: str | None) -> dict:
    return {"repaired": note} if note else {}


def repairs(annotations: Iterable[Annotation], *, coordinates: str = "pixel-centre") -> list[str]:
    """One line per repaired annotation: where it came from (file and index), where it
    is (its centre, in ``coordinates`` as the file states them) and what was repaired.

    Examples
    --------
    >>> a = Annotation(polygon=np.array([[2., 0], [2, 5], [6, 5], [6, 0]]), origin="ex.json: annotations[3]",
    ...                properties={"repaired": "crossed itself: made simple, 96% of its area kept"})
    >>> repairs([a], coordinates="pixel-corner")
    ['ex.json: annotations[3]: repaired (centre x 3, y 4.5): crossed itself: made simple, 96% of its area kept']
    """
    out = []
    for a in annotations:
        note = a.properties.get("repaired")
        if note and a.polygon is not None:
            from shapely.geometry import Polygon

            centre = Polygon(a.polygon).centroid
            y, x = _to_file(np.array([centre.x, centre.y]), coordinates)
            out.append(f"{a.origin}: repaired (centre x {x:.4g}, y {y:.4g}): {note}")
    return out


# --------------------------------------------------------------------------- writing


def write_annotations(
    path: str | os.PathLike,
    annotations: Iterable[Annotation],
    *,
    shape: tuple[int, int],
    tags: Sequence[str] | str | None = None,
    location: Location | None = None,
    coordinates: str = "pixel-corner",
) -> None:
    """Write annotations as NimbusImage JSON, GeoJSON or a label image.

    The format follows the suffix: ``.json`` (NimbusImage list), ``.geojson``
    (FeatureCollection of Polygons with closed rings; ``properties`` holds ``tags``,
    ``location``, ``channel`` and every JSON-serialisable entry of
    ``Annotation.properties``), ``.tif`` / ``.tiff`` (uint16 label image, uint32 above
    65535 objects), ``.png`` (uint16 label image) or ``.csv`` (clicks: ``x,y``). Clicks
    (annotations with a ``point`` and no outline) are NimbusImage ``"point"`` records and
    GeoJSON ``Point`` features in the JSON formats. Label ``i + 1`` is annotation
    ``i``; where objects overlap, the first one keeps the pixel. Mask-only annotations
    are outlined (exact pixel contour) for the polygon formats. The file appears
    complete or not at all.

    Parameters
    ----------
    path : str or path-like
    annotations : iterable of Annotation
        Each must have a ``polygon`` or a ``mask``, or (JSON formats and ``.csv``) a ``point``.
    shape : tuple of int
        ``(Y, X)`` of the frame (the label image's shape; clips masks and polygons).
    tags : sequence of str or str, optional
        Replace every annotation's tags.
    location : Location, optional
        Replace every annotation's location.
    coordinates : {"pixel-corner", "pixel-centre"}
        The JSON formats' convention (see :func:`read_annotations`); default
        NimbusImage's and QuPath's pixel-corner origin.

    Raises
    ------
    InputError
        Unsupported suffix, or more than 65535 objects for a PNG.
    ValueError
        An annotation with neither polygon nor mask, or with an empty mask.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "found.geojson"
    >>> square = np.array([[1.0, 1.0], [1.0, 4.0], [4.0, 4.0], [4.0, 1.0]])
    >>> write_annotations(path, [Annotation(polygon=square, properties={"score": 0.9})],
    ...                   shape=(10, 10), tags=["found"])
    >>> [a] = read_annotations(path)
    >>> a.tags, a.properties["score"], np.allclose(a.polygon, square)
    (('found',), 0.9, True)
    """
    target = os.fspath(path)
    suffix = Path(target).suffix.lower()
    writer = _WRITERS.get(suffix)
    if writer is None:
        raise InputError(
            target,
            f"cannot write annotations as {suffix or 'a suffix-less file'}; "
            "supported: .json (NimbusImage), .geojson, .tif / .tiff / .png (label image), .csv (clicks)",
        )
    _file_offset(coordinates)
    annotations = list(annotations)
    clicks_too = suffix in JSON_SUFFIXES + CSV_SUFFIXES
    for annotation in annotations:
        if annotation.polygon is None and annotation.mask is None and not (clicks_too and annotation.point is not None):
            raise ValueError(f"{annotation.origin or 'annotation'} has neither polygon nor mask"
                             + (" (a click is written to .json, .geojson or .csv)" if annotation.point is not None else ""))
    if isinstance(tags, str):
        tags = (tags,)
    overrides = {}
    if tags is not None:
        overrides["tags"] = tuple(tags)
    if location is not None:
        overrides["location"] = location
    annotations = [replace(a, **overrides) if overrides else a for a in annotations]
    writer(target, annotations, tuple(shape), coordinates)


def _polygon_of(annotation: Annotation) -> np.ndarray:
    if annotation.polygon is not None:
        return np.asarray(annotation.polygon, dtype=float)
    polygon = mask_to_polygon(annotation.mask, smoothing=0.0)
    if polygon is None:
        raise ValueError(f"{annotation.origin or 'annotation'} has an empty mask; nothing to outline")
    return polygon


def _write_nimbus(target: str, annotations: list[Annotation], shape: tuple[int, int], coordinates: str) -> None:
    _write_text(target, _json_list([to_nimbus(a, coordinates=coordinates) for a in annotations]))


def _write_geojson(target: str, annotations: list[Annotation], shape: tuple[int, int], coordinates: str) -> None:
    features = []
    for a in annotations:
        properties = {k: v for k, v in ((k, _jsonable(v)) for k, v in a.properties.items()) if v is not _SKIP}
        properties.update(tags=list(a.tags), location=a.location.as_nimbus(), channel=int(a.channel))
        if _is_click(a):
            [[y, x]] = _to_file(a.point[None, :], coordinates)
            geometry = {"type": "Point", "coordinates": [float(x), float(y)]}
        else:
            ring = [[float(x), float(y)] for y, x in _to_file(_polygon_of(a), coordinates)]
            geometry = {"type": "Polygon", "coordinates": [ring + ring[:1]]}
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    _write_text(target, '{"type": "FeatureCollection", "features": ' + _json_list(features) + "}")


_SKIP = object()


def _jsonable(value):
    """``value`` as plain JSON data (numpy scalars and arrays converted), or ``_SKIP``."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return _SKIP
    return value


def _json_list(items: list) -> str:
    """A JSON list with one item per line: compact, yet readable and diff-able."""
    return "[\n" + ",\n".join(json.dumps(item) for item in items) + "\n]" if items else "[]"


def _write_text(target: str, text: str) -> None:
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def _label_image(annotations: list[Annotation], shape: tuple[int, int]) -> np.ndarray:
    masks = [_clip(a.to_mask(shape), shape) for a in annotations]
    labels = labels_from_masks(masks, shape)
    return labels.astype(np.uint16 if len(masks) <= 65535 else np.uint32)


def _clip(mask: ObjectMask, shape: tuple[int, int]) -> ObjectMask:
    """``mask`` without the part outside a frame of ``shape``."""
    r0, c0, r1, c1 = mask.bbox
    if r0 >= 0 and c0 >= 0 and r1 <= shape[0] and c1 <= shape[1]:
        return mask
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = max(min(r1, shape[0]), top), max(min(c1, shape[1]), left)
    crop = mask.mask[top - r0 : bottom - r0, left - c0 : right - c0]
    return ObjectMask(top, left, crop)


def _write_tiff_labels(target: str, annotations: list[Annotation], shape: tuple[int, int], coordinates: str) -> None:
    import tifffile

    from .frames import LABELS_MARK

    labels = _label_image(annotations, shape)
    with atomic_path(target) as tmp:  # marked, so napari's File > Open through fewseg opens it as Labels
        tifffile.imwrite(tmp, labels, photometric="minisblack", compression="zlib", metadata=dict(LABELS_MARK))


def _write_png_labels(target: str, annotations: list[Annotation], shape: tuple[int, int], coordinates: str) -> None:
    import imageio.v3 as iio

    if len(annotations) > 65535:
        raise InputError(target, f"a PNG label image holds at most 65535 objects, got {len(annotations)}; write a .tif instead")
    labels = _label_image(annotations, shape)
    with atomic_path(target) as tmp:
        iio.imwrite(tmp, labels, plugin="pillow", extension=".png")


def _write_click_table(target: str, annotations: list[Annotation], shape: tuple[int, int], coordinates: str) -> None:
    """Clicks as a ``.csv`` of ``x,y`` (placed as in the JSON formats), the table
    :func:`_read_click_table` reads; one frame's clicks, so one location."""
    import csv
    import io

    outlines = [a.origin or f"annotations[{i}]" for i, a in enumerate(annotations) if not _is_click(a)]
    if outlines:
        raise InputError(target, f"a .csv holds clicks only; {len(outlines)} annotation(s) are outlines "
                                 f"(first: {outlines[0]}); write them as .json or .geojson")
    places = {a.location for a in annotations}
    if len(places) > 1:
        raise InputError(target, f"a .csv holds the clicks of one frame; these lie at {len(places)} locations "
                                 f"({'; '.join(map(_format_location, sorted(places, key=lambda l: (l.time, l.z, l.xy))))}); "
                                 "write them as .json or .geojson")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["x", "y"])
    for a in annotations:
        [[y, x]] = _to_file(a.point[None, :], coordinates)
        writer.writerow([repr(float(x)), repr(float(y))])
    _write_text(target, text.getvalue().rstrip("\n"))


_WRITERS = {
    ".json": _write_nimbus,
    ".geojson": _write_geojson,
    ".csv": _write_click_table,
    ".tif": _write_tiff_labels,
    ".tiff": _write_tiff_labels,
    ".png": _write_png_labels,
}
