"""fewseg's frames and annotations as napari layer data, and back.

Plain numpy: nothing here imports napari, so it is tested without a viewer.

Coordinates need no conversion: napari, like fewseg inside, puts pixel ``(r, c)``'s
centre at the point ``(r, c)``, and its Shapes vertices are ``(row, col)``. What the
annotation files store (x / y, and where the pixel corner is) is the business of
:mod:`fewseg.io.annotations`, which the reader and writers call.

Stacks: an image layer is ``(*lead, Y, X)``, where the leading axes are a subset of
``("time", "z")`` in that order (the names travel in ``metadata["fewseg"]["axes"]``; a
layer without them is read as ``(Z, Y, X)`` or ``(T, Z, Y, X)``). A shape with more
than two coordinates lies on the frame its leading coordinates name (napari aligns
trailing axes, so only the last ``len(lead)`` of them count); a 2-D shape lies on
every frame, i.e. on the one shown when the user runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..objects import Annotation, Location, ObjectMask, masks_from_labels
from ..polygons import mask_to_polygon, repair_polygon
from ..render import default_styles, parse_color

#: Leading axes a stack may have, outermost first, and the Location field of each.
STACK_AXES = ("time", "z")

#: Shape types that outline an area (lines and paths do not).
AREA_SHAPES = ("polygon", "rectangle", "ellipse")

#: Edge colours of the evaluation layer, like ``fewseg evaluate``'s figure (fewseg.figure).
OUTCOME_COLORS = {"matched": (0, 255, 0), "false": (255, 0, 0), "matched truth": (0, 128, 255), "missed": (255, 255, 0)}

#: Edge colour of the found outlines (the widget's Shapes layer, and a results file reopened).
FOUND_EDGE = "#00ff00"

#: The correction loop's layer of rejected results, and the tag each of its marks carries
#: (so a saved file of them is known again when reopened, whatever its name).
NOT_THESE = "not these"

#: The marks of the loop's own layers: rejected results (``not these``) and clicks on missed objects.
NOT_THESE_COLOR, CLICKS_COLOR = "#ff3030", "#00ffff"

#: How a ``not these`` Points layer is drawn, made by the loop or reopened from a file:
#: red crosses, as the widget's legend shows them (clicks are cyan discs).
NOT_THESE_POINTS = {"face_color": NOT_THESE_COLOR, "border_color": "white", "symbol": "x", "size": 9}


def lead_axes(n_lead: int, metadata: dict | None = None, *, source: str = "layer") -> tuple[str, ...]:
    """Names of a layer's leading (non-YX) axes.

    Examples
    --------
    >>> lead_axes(0), lead_axes(1), lead_axes(2)
    ((), ('z',), ('time', 'z'))
    >>> lead_axes(1, {"fewseg": {"axes": ["time"]}})
    ('time',)
    """
    named = ((metadata or {}).get("fewseg") or {}).get("axes")
    if named is not None and len(named) == n_lead and all(a in STACK_AXES for a in named):
        return tuple(named)
    if n_lead > len(STACK_AXES):
        raise InputError(source, f"has {n_lead} axes before Y and X; fewseg reads at most two (time, z)", field="axes")
    return STACK_AXES[len(STACK_AXES) - n_lead:]


def location_at(index: Sequence[int], axes: Sequence[str], *, xy: int = 0) -> Location:
    """The :class:`~fewseg.objects.Location` of the frame at ``index`` along ``axes``.

    Examples
    --------
    >>> location_at((2, 5), ("time", "z"))
    Location(xy=0, z=5, time=2)
    """
    values = dict(zip(axes, (int(i) for i in index)))
    return Location(xy=xy, z=values.get("z", 0), time=values.get("time", 0))


def index_of(location: Location, axes: Sequence[str]) -> tuple[int, ...]:
    """The inverse of :func:`location_at`.

    Examples
    --------
    >>> index_of(Location(z=5, time=2), ("time", "z"))
    (2, 5)
    """
    return tuple(int(getattr(location, a)) for a in axes)


# --------------------------------------------------------------------------- images


def channel_colors(n_channels: int) -> list[tuple[float, float, float]]:
    """One RGB colour per channel: fewseg's render defaults (gray + yellow for two).

    Examples
    --------
    >>> channel_colors(2)
    [(0.5019607843137255, 0.5019607843137255, 0.5019607843137255), (1.0, 1.0, 0.0)]
    """
    return [s.rgb for s in default_styles(n_channels)]


def image_layers(stack: np.ndarray, names: Sequence[str], *, source: str, axes: Sequence[str]) -> list[tuple]:
    """One Image layer per channel of a ``(C, *lead, Y, X)`` stack.

    Colours are fewseg's render defaults (one colormap from black to the channel's
    colour), blended additively; contrast limits are the 0.1 and 99.9 percentiles of
    the channel (of its first frame for a stack), as :mod:`fewseg.render` shows it.

    Returns
    -------
    list of napari LayerDataTuple ``(data, kwargs, "image")``
    """
    styles = default_styles(stack.shape[0])
    out = []
    for k, (channel, name, style) in enumerate(zip(stack, names, styles)):
        first = channel[(0,) * (channel.ndim - 2)]
        lo, hi = style.limits(np.asarray(first, dtype=np.float32))
        if hi <= lo:
            hi = lo + 1.0
        r, g, b = style.rgb
        kwargs = {
            "name": str(name),
            "colormap": {"colors": [[0.0, 0.0, 0.0, 1.0], [r, g, b, 1.0]], "name": f"fewseg {style.color}"},
            "contrast_limits": [float(lo), float(hi)],
            "blending": "additive",
            "metadata": {"fewseg": {"source": source, "channel": str(name), "channel_index": k, "axes": list(axes)}},
        }
        out.append((channel, kwargs, "image"))
    return out


# --------------------------------------------------------------------------- shapes


def annotation_shapes(annotations: Sequence[Annotation], *, name: str, source: str = "",
                      axes: Sequence[str] | None = None) -> tuple:
    """A Shapes LayerDataTuple of polygon annotations, their tags and the rest as features.

    ``axes``: the leading axes to give the shapes (default: those of ``("time", "z")``
    along which the annotations' locations differ, so a file of one frame's annotations
    gives 2-D shapes). Features: ``tag`` (the first tag), ``tags`` (all, as a JSON
    list), ``z``, ``time``, ``xy``, ``channel`` and every numeric or text property
    (``score``...). Mask-only annotations are outlined.
    """
    annotations = list(annotations)
    if axes is None:
        axes = varying_axes(annotations)
    data = []
    for a in annotations:
        polygon = a.polygon if a.polygon is not None else mask_to_polygon(a.mask, smoothing=0.0)
        lead = np.array(index_of(a.location, axes), dtype=float)
        data.append(np.column_stack([np.broadcast_to(lead, (len(polygon), len(lead))), polygon]))
    features = _annotation_features(annotations)
    kwargs = {
        "name": name,
        "shape_type": "polygon",
        "features": features,
        "edge_color": "#00ffff",
        "face_color": "transparent",
        "edge_width": 1.5,
        "metadata": {"fewseg": {"source": source, "axes": list(axes)}},
    }
    if not data:
        kwargs["ndim"] = 2 + len(axes)
    return data, kwargs, "shapes"


def not_these_style(kwargs: dict, kind: str) -> dict:
    """``kwargs`` of a Points or Shapes LayerDataTuple (:func:`annotation_points`,
    :func:`annotation_shapes`) drawn as the loop's ``not these`` marks, whose later marks
    carry the ``not these`` tag too, and marked so the widget chooses the layer as its
    ``not these``.

    Examples
    --------
    >>> kw = not_these_style(annotation_points([], name="rejected")[1], "points")
    >>> kw["symbol"], kw["feature_defaults"]["tag"], kw["feature_defaults"]["tags"], kw["metadata"]["fewseg"]["marks"]
    ('x', 'not these', '["not these"]', 'not these')
    """
    style = dict(NOT_THESE_POINTS) if kind == "points" else {"edge_color": NOT_THESE_COLOR}
    fewseg = {**(kwargs.get("metadata") or {}).get("fewseg", {}), "marks": NOT_THESE}
    features = kwargs.get("features") or {"tag": []}
    # napari wants a default for every column: the tag, the plane of the newest mark (a new
    # one is usually on it; the widget reads a mark's plane from its coordinates or the
    # plane shown first), and nothing for the file's other properties.
    defaults = {key: (values[-1] if key in ("xy", "z", "time", "channel") and len(values) else
                      "" if key in ("tag", "tags") or values and isinstance(values[0], str) else np.nan)
                for key, values in features.items()}
    defaults.update({"tag": NOT_THESE, **({"tags": json.dumps([NOT_THESE])} if "tags" in features else {})})
    return {**kwargs, **style, "features": features, "feature_defaults": defaults,
            "metadata": {**(kwargs.get("metadata") or {}), "fewseg": fewseg}}


def is_results(annotations: Sequence[Annotation]) -> bool:
    """Whether a file's annotations are results fewseg wrote (every one scored, as
    ``fewseg segment`` and the widget's outlines layer save them), so the reader draws
    them as the widget draws results, not in the examples' colour.

    Examples
    --------
    >>> found = Annotation(polygon=np.array([[0.0, 0], [0, 4], [4, 4]]), properties={"score": 0.97})
    >>> is_results([found]), is_results([]), is_results([Annotation(polygon=found.polygon)])
    (True, False, False)
    """
    return bool(annotations) and all(isinstance(a.properties.get("score"), (int, float)) for a in annotations)


def evaluation_outcomes(annotations: Sequence[Annotation]) -> list[str] | None:
    """Each annotation's ``outcome`` when the file is an evaluation layer the widget drew
    and the writer saved (every outline has one of :data:`OUTCOME_COLORS`' outcomes),
    so the reader colours it again as Evaluate did; else None.

    Examples
    --------
    >>> tri = np.array([[0.0, 0], [0, 4], [4, 4]])
    >>> evaluation_outcomes([Annotation(polygon=tri, properties={"outcome": "missed"})])
    ['missed']
    >>> evaluation_outcomes([Annotation(polygon=tri, properties={"outcome": "perhaps"})]) is None
    True
    """
    outcomes = [a.properties.get("outcome") for a in annotations]
    return outcomes if outcomes and all(o in OUTCOME_COLORS for o in outcomes) else None


def outcome_edges(outcomes: Sequence[str]) -> list[list[float]]:
    """The evaluation layer's edge colour (RGBA) of each outcome (:data:`OUTCOME_COLORS`),
    as Evaluate draws it and a saved evaluation reopens.

    Examples
    --------
    >>> outcome_edges(["false", "missed"])
    [[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0]]
    """
    return [rgba(OUTCOME_COLORS[o]) for o in outcomes]


def is_not_these(annotations: Sequence[Annotation], name: str) -> bool:
    """Whether a file's annotations are the loop's ``not these`` marks: the file is named
    so, or every annotation carries the ``not these`` tag (the loop's marks do).

    Examples
    --------
    >>> mark = Annotation(point=np.array([1.0, 2.0]), tags=(NOT_THESE,))
    >>> is_not_these([mark], "rejected monday"), is_not_these([], "not these"), is_not_these([], "examples")
    (True, True, False)
    """
    return name == NOT_THESE or bool(annotations) and all(NOT_THESE in a.tags for a in annotations)


def varying_axes(annotations: Sequence[Annotation]) -> list[str]:
    """The stack axes along which the annotations' locations differ."""
    return [a for a in STACK_AXES if len({getattr(x.location, a) for x in annotations}) > 1]


def _annotation_features(annotations: Sequence[Annotation]) -> dict[str, list]:
    """Layer features of annotations: tag, tags (JSON), xy, z, time, channel and every
    numeric or text property."""
    features: dict[str, list] = {
        "tag": [a.tags[0] if a.tags else "" for a in annotations],
        "tags": [json.dumps(list(a.tags)) for a in annotations],
        "xy": [a.location.xy for a in annotations],
        "z": [a.location.z for a in annotations],
        "time": [a.location.time for a in annotations],
        "channel": [a.channel for a in annotations],
    }
    for key in sorted({k for a in annotations for k in a.properties} - set(features)):
        values = [a.properties.get(key) for a in annotations]
        present = [v for v in values if v is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            features[key] = [np.nan if v is None else float(v) for v in values]
        elif all(isinstance(v, str) for v in present):
            features[key] = ["" if v is None else v for v in values]
    return features


def annotation_points(annotations: Sequence[Annotation], *, name: str, source: str = "",
                      axes: Sequence[str] | None = None) -> tuple:
    """A Points LayerDataTuple of click annotations (``point``), features as
    :func:`annotation_shapes` gives them.

    Examples
    --------
    >>> data, kwargs, kind = annotation_points([Annotation(point=np.array([3.0, 4.0]), tags=("cell",))], name="clicks")
    >>> kind, data.tolist(), kwargs["features"]["tag"]
    ('points', [[3.0, 4.0]], ['cell'])
    """
    annotations = list(annotations)
    if axes is None:
        axes = varying_axes(annotations)
    data = np.array([[*index_of(a.location, axes), *a.point] for a in annotations], dtype=float)
    kwargs = {
        "name": name,
        "features": _annotation_features(annotations),
        "face_color": "#00ffff",
        "size": 7,
        "metadata": {"fewseg": {"source": source, "axes": list(axes)}},
    }
    if not annotations:
        data = np.zeros((0, 2 + len(axes)))
    return data, kwargs, "points"


def points_annotations(data: np.ndarray, features=None, *, source: str, axes: Sequence[str] = (),
                       here: Location | None = None) -> list[Annotation]:
    """Click annotations from a Points layer's data and features.

    Each point is a click (:attr:`~fewseg.objects.Annotation.point`) that the library
    outlines on its frame when it fits (:mod:`fewseg.classic.clicks`). Its location
    follows the rules of :func:`shapes_annotations`.

    Examples
    --------
    >>> [a, b] = points_annotations(np.array([[2.0, 10.0, 12.0], [4.0, 1.0, 2.0]]), source="clicks", axes=("z",))
    >>> a.point.tolist(), a.location.z, b.location.z, a.origin
    ([10.0, 12.0], 2, 4, 'clicks: points[0]')
    """
    data = np.asarray(data, dtype=float)
    out = []
    for i, row in enumerate(data.reshape(len(data), -1) if len(data) else []):
        field = f"points[{i}]"
        if not np.isfinite(row).all():
            raise InputError(source, "click coordinates must be finite numbers", field=field)
        location = _location_of(row[:-2], axes, features, i, here, source=source, field=field)
        channel = _feature(features, "channel", i)
        out.append(Annotation(point=row[-2:].copy(), tags=_tags_at(features, i), location=location,
                              channel=int(channel) if channel is not None else 0, origin=f"{source}: {field}",
                              properties=_properties(features, i)))
    return out


def _location_of(lead: np.ndarray, axes: Sequence[str], features, i: int, here: Location | None, *,
                 source: str, field: str) -> Location:
    """Where item ``i`` lies: its leading coordinates along ``axes`` when it has them,
    else ``here`` when given, else its ``xy`` / ``z`` / ``time`` features (whole numbers,
    else one line naming ``source`` and ``field``)."""
    values = {a: _feature(features, a, i) for a in ("xy", "z", "time")}
    if here is not None:
        values = {"xy": here.xy, "z": here.z, "time": here.time}
    if len(lead) and axes:
        lead = lead[-len(axes):]
        values.update({a: int(round(v)) for a, v in zip(axes[-len(lead):], lead)})
    try:
        return Location(**{a: int(v) for a, v in values.items() if v is not None})
    except (TypeError, ValueError, OverflowError):  # a NaN, text or infinite feature
        raise InputError(source, f"expected whole numbers for xy, z and time, got {values}", field=field) from None


def _properties(features, i: int) -> dict:
    """Item ``i``'s features other than those fewseg places (tags, location, channel...)."""
    properties = {}
    if features is not None:
        for key in features.keys() if hasattr(features, "keys") else features:
            if key not in ("tag", "tags", "xy", "z", "time", "channel", "label"):
                value = _feature(features, key, i)
                if value is not None:
                    properties[key] = value.item() if isinstance(value, np.generic) else value
    return properties


def shape_polygon(vertices: np.ndarray, shape_type: str) -> np.ndarray:
    """The ``(N, 2)`` outline of one napari shape's last two coordinates.

    Polygons and rectangles are their vertices; an ellipse (napari stores the four
    corners of its bounding box) is sampled along its boundary.

    Examples
    --------
    >>> box = np.array([[0.0, 0.0], [0.0, 4.0], [2.0, 4.0], [2.0, 0.0]])
    >>> p = shape_polygon(box, "ellipse")
    >>> p.min(axis=0).round(3).tolist(), p.max(axis=0).round(3).tolist()
    ([0.0, 0.0], [2.0, 4.0])
    """
    yx = np.asarray(vertices, dtype=float)[:, -2:]
    if shape_type != "ellipse":
        return yx
    centre = yx.mean(axis=0)
    u, w = (yx[1] - yx[0]) / 2, (yx[3] - yx[0]) / 2
    n = 4 * int(np.clip(np.pi * (np.hypot(*u) + np.hypot(*w)) / 4, 4, 64))  # a multiple of 4 reaches each side
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)[:, None]
    return centre + np.cos(t) * u + np.sin(t) * w


def _feature(features, key: str, i: int):
    if features is None or key not in features:
        return None
    value = features[key][i] if not hasattr(features, "iloc") else features[key].iloc[i]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def _tags_at(features, i: int) -> tuple[str, ...]:
    raw = _feature(features, "tags", i)
    if isinstance(raw, str) and raw.startswith("["):
        try:
            return tuple(str(t) for t in json.loads(raw))
        except ValueError:
            pass
    one = raw if raw is not None else _feature(features, "tag", i)
    return (str(one),) if one not in (None, "") else ()


def shapes_annotations(data: Sequence[np.ndarray], shape_types: Sequence[str], features=None, *, source: str,
                       axes: Sequence[str] = (), here: Location | None = None) -> list[Annotation]:
    """Annotations from a Shapes layer's data, shape types and features.

    A shape's location comes from its leading coordinates along ``axes`` when it has
    them; a 2-D shape lies on ``here`` (the frame shown) when given, else where its
    ``z`` / ``time`` / ``xy`` features say (a file's annotations keep their place).
    Lines and paths outline no area and raise :class:`~fewseg.errors.InputError`.
    """
    out = []
    for i, (vertices, kind) in enumerate(zip(data, shape_types)):
        field = f"shapes[{i}]"
        if kind not in AREA_SHAPES:
            raise InputError(source, f"is a {kind}; examples and results are areas: polygons, rectangles or ellipses",
                             field=field)
        vertices = np.asarray(vertices, dtype=float)
        if vertices.ndim != 2 or vertices.shape[1] < 2 or not np.isfinite(vertices).all():
            raise InputError(source, "vertex coordinates must be finite numbers, two or more per vertex", field=field)
        location = _location_of(vertices[0, :-2], axes, features, i, here, source=source, field=field)
        properties = _properties(features, i)
        channel = _feature(features, "channel", i)
        # as a file's are: a small loop repaired (properties["repaired"] says so), a figure of eight refused
        polygon, repaired = repair_polygon(shape_polygon(vertices, kind), source=source, field=field)
        out.append(Annotation(polygon=polygon, tags=_tags_at(features, i), location=location,
                              channel=int(channel) if channel is not None else 0, origin=f"{source}: {field}",
                              properties={**properties, **({"repaired": repaired} if repaired else {})}))
    return out


# --------------------------------------------------------------------------- labels


def labels_annotations(labels: np.ndarray, *, source: str, axes: Sequence[str] = ()) -> list[Annotation]:
    """One mask annotation per label of each frame of a ``(*lead, Y, X)`` label image.

    Examples
    --------
    >>> labels = np.zeros((2, 6, 6), np.int32); labels[1, 1:3, 1:4] = 7
    >>> [a] = labels_annotations(labels, source="painted", axes=("z",))
    >>> a.location.z, a.mask.area, a.properties["label"]
    (1, 6, 7)
    """
    labels = np.asarray(labels)
    n_lead = labels.ndim - 2
    axes = tuple(axes)[-n_lead:] if n_lead else ()
    out = []
    for index in np.ndindex(*labels.shape[:n_lead]):
        plane = labels[index]
        if not plane.any():
            continue
        values = np.unique(plane)
        values = values[values != 0]
        compact = np.searchsorted(values, plane) + 1
        compact[plane == 0] = 0
        location = location_at(index, axes)
        for value, mask in zip(values, masks_from_labels(compact)):
            out.append(Annotation(mask=mask, location=location, origin=f"{source}: label {int(value)}",
                                  properties={"label": int(value)}))
    return out


def at_location(annotations: Iterable[Annotation], location: Location) -> list[Annotation]:
    """The annotations lying on ``location``'s frame."""
    return [a for a in annotations if a.location == location]


def placed(annotations: Iterable[Annotation], location: Location) -> list[Annotation]:
    """The annotations, each moved to ``location`` (2-D shapes lie on the frame shown)."""
    return [replace(a, location=location) for a in annotations]


# --------------------------------------------------------------------------- results


def paint_results(labels: np.ndarray, results, *, axes: Sequence[str]) -> tuple[np.ndarray, list[list[int]]]:
    """``labels`` (``(*lead, Y, X)``) with each result's frame repainted; other frames kept.

    Objects get ids above every id kept, in frame order then score order, so each
    object's id is unique in the whole stack. ``results``: FrameResult objects.
    Returns the new label image and the ids given, one list per result.
    """
    out = np.array(labels, dtype=np.int32, copy=True)
    indices = [index_of(r.location, axes) for r in results]
    for index in indices:
        out[index] = 0
    next_id = int(out.max(initial=0)) + 1
    ids = []
    for index, result in zip(indices, results):
        plane = out[index]
        frame_ids = []
        for mask in result.segmentation.masks:
            region = plane[mask.slices]
            region[mask.mask & (region == 0)] = next_id
            frame_ids.append(next_id)
            next_id += 1
        ids.append(frame_ids)
    return out, ids


def result_shapes(results, ids, *, axes: Sequence[str], tag: str) -> tuple[list[np.ndarray], dict[str, list]]:
    """Polygons (with leading coordinates) and features (score, tag, label, z, time) of results."""
    data, features = [], {"score": [], "tag": [], "label": [], "z": [], "time": []}
    for result, frame_ids in zip(results, ids):
        lead = np.array(index_of(result.location, axes), dtype=float)
        for polygon, score, label in zip(result.segmentation.polygons, result.segmentation.scores, frame_ids):
            data.append(np.column_stack([np.broadcast_to(lead, (len(polygon), len(lead))), polygon]))
            features["score"].append(float(score))
            features["tag"].append(tag)
            features["label"].append(int(label))
            features["z"].append(result.location.z)
            features["time"].append(result.location.time)
    return data, features


def outline_of(mask: ObjectMask) -> np.ndarray | None:
    """A mask's outer contour as an ``(N, 2)`` polygon (exact pixel outline)."""
    return mask_to_polygon(mask, smoothing=0.0)


def rgba(color) -> list[float]:
    """``(r, g, b)`` in 0-255 or a colour name / hex as RGBA in ``[0, 1]``.

    Examples
    --------
    >>> rgba((255, 0, 0)), rgba("yellow")
    ([1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0])
    """
    if isinstance(color, str):
        return [*parse_color(color), 1.0]
    return [c / 255 for c in color] + [1.0]
