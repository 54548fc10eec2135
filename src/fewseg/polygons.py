"""Masks <-> polygons: rasterise outlines, trace and simplify contours, check validity.

Polygons are ``(N, 2)`` arrays of ``(row, col)`` vertices, open (the first vertex is not
repeated), with pixel centres at integer coordinates.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon
from skimage.measure import find_contours

from .errors import InputError
from .objects import ObjectMask, rasterize  # noqa: F401 (rasterize is public here too)


def _outer_contour(mask: ObjectMask) -> np.ndarray | None:
    padded = np.zeros((mask.mask.shape[0] + 2, mask.mask.shape[1] + 2), dtype=np.float32)
    padded[1:-1, 1:-1] = mask.mask  # np.pad(mask.mask, 1), as float32, without np.pad's overhead
    contours = find_contours(padded, 0.5)
    if not contours:
        return None

    def enclosed(c):
        return abs(Polygon(c).area) if len(c) >= 4 else 0.0

    outer = contours[0] if len(contours) == 1 else max(contours, key=enclosed)
    return outer[:-1] + np.array([mask.row - 1, mask.col - 1], dtype=float)


def mask_to_polygon(mask: ObjectMask, *, smoothing: float = 0.3) -> np.ndarray | None:
    """Outer contour of ``mask``, simplified with tolerance ``smoothing`` (pixels).

    Holes are filled (only the outer contour is kept). Returns a valid polygon with at
    least 3 vertices, or ``None`` when the mask is too small to have one.

    Examples
    --------
    >>> m = ObjectMask(5, 5, np.ones((4, 4), dtype=bool))
    >>> poly = mask_to_polygon(m, smoothing=0.3)
    >>> rasterize(poly, (20, 20)).area
    16
    """
    contour = _outer_contour(mask)
    if contour is None or len(contour) < 3:
        return None
    geom = Polygon(contour[:, ::-1])  # shapely works in x, y
    if smoothing > 0:
        geom = geom.simplify(smoothing, preserve_topology=True)
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    geom = _largest_polygon(geom)
    if geom is None or geom.area <= 0:
        return None
    xy = np.asarray(geom.exterior.coords)[:-1]
    if len(xy) < 3:
        return None
    return xy[:, ::-1].copy()


def _largest_polygon(geom):
    if isinstance(geom, Polygon):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    polys += [p for g in getattr(geom, "geoms", []) for p in getattr(g, "geoms", []) if isinstance(p, Polygon)]
    return max(polys, key=lambda p: p.area) if polys else None


#: A self-crossing outline is repaired when its largest simple part keeps at least this
#: share of its area (a small loop where a hand-drawn line crossed itself), else refused.
KEEP_WHEN_REPAIRED = 0.8
#: An outline partly outside the frame is clipped to it when at least this share of its
#: area is inside, else refused ("mostly outside").
INSIDE_TO_CLIP = 0.5


def _checked(polygon, *, source: str, field: str) -> tuple[np.ndarray, Polygon]:
    """An open ``(N, 2)`` float array of at least 3 distinct vertices and positive area, and its shapely polygon."""
    try:
        arr = np.asarray(polygon, dtype=float)
    except (TypeError, ValueError):
        raise InputError(source, "expected a list of numeric vertices", field=field) from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(source, f"expected vertices as (x, y) pairs, got array of shape {arr.shape}", field=field)
    if not np.isfinite(arr).all():
        raise InputError(source, "vertex coordinates must be finite numbers", field=field)
    if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]
    if len(np.unique(arr, axis=0)) < 3:
        raise InputError(source, f"a polygon needs at least 3 distinct vertices, got {len(np.unique(arr, axis=0))}", field=field)
    geom = Polygon(arr[:, ::-1])
    if geom.area <= 0 and (geom.is_valid or shapely.make_valid(geom).area <= 0):  # a bow tie's signed halves cancel
        raise InputError(source, "polygon has zero area (all vertices on one line)", field=field)
    return arr, geom


def check_polygon(polygon, *, source: str, field: str) -> np.ndarray:
    """Return ``polygon`` as an open ``(N, 2)`` float array or raise :class:`InputError`.

    Rejects fewer than 3 distinct vertices, non-finite values, zero area and
    self-intersection, naming ``source`` and ``field`` in the message
    (:func:`repair_polygon` repairs small mistakes instead).
    """
    arr, geom = _checked(polygon, source=source, field=field)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise InputError(source, f"polygon is not simple ({reason}); expected a non-self-intersecting outline", field=field)
    return arr


def _as_rows_cols(geom: Polygon) -> np.ndarray:
    return np.asarray(geom.exterior.coords)[:-1, ::-1].copy()


def repair_polygon(polygon, *, source: str, field: str, shape: tuple[int, int] | None = None
                   ) -> tuple[np.ndarray, str | None]:
    """``polygon`` checked, with small hand-drawing mistakes repaired, and what was repaired.

    * An outline that crosses itself is made simple (shapely's ``make_valid``) and its
      largest part kept, when that part holds at least :data:`KEEP_WHEN_REPAIRED` of the
      area (a small loop); a figure of eight is refused.
    * With ``shape`` (the frame's ``(Y, X)``), an outline reaching beyond the frame's edge
      (half a pixel beyond the border pixel centres) is clipped to it, when at least
      :data:`INSIDE_TO_CLIP` of its area is inside; one mostly outside is refused.

    Fewer than 3 vertices and zero area are refused as :func:`check_polygon` does.

    Returns
    -------
    polygon : ndarray
        ``(N, 2)`` ``(row, col)``, open.
    note : str or None
        What was repaired (``"crossed itself: made simple, 93% of its area kept"``,
        ``"reached 0.5 px outside the 40 x 50 frame: clipped to it"``), None when nothing was.

    Examples
    --------
    >>> arr, note = repair_polygon([[-0.9, 2], [-0.9, 9], [6, 9], [6, 2]], source="a", field="shapes[0]", shape=(20, 20))
    >>> note, float(arr[:, 0].min())
    ('reached 0.4 px outside the 20 x 20 frame: clipped to it', -0.5)
    >>> repair_polygon([[0, 0], [4, 4], [0, 4], [4, 0]], source="a", field="shapes[1]")
    Traceback (most recent call last):
    ...
    fewseg.errors.InputError: a: shapes[1]: polygon is not simple (Self-intersection[2 2]): its largest simple part holds only 50% of its area; expected a non-self-intersecting outline
    """
    arr, geom = _checked(polygon, source=source, field=field)
    notes = []
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        fixed = shapely.make_valid(geom)
        part = _largest_polygon(fixed)
        share = part.area / fixed.area if part is not None and fixed.area > 0 else 0.0
        if part is None or share < KEEP_WHEN_REPAIRED:
            raise InputError(source, f"polygon is not simple ({reason}): its largest simple part holds only "
                                     f"{share:.0%} of its area; expected a non-self-intersecting outline", field=field)
        geom = Polygon(part.exterior)
        notes.append(f"crossed itself: made simple, {share:.0%} of its area kept")
    if shape is not None:
        from shapely.geometry import box

        frame = box(-0.5, -0.5, shape[1] - 0.5, shape[0] - 0.5)
        if not frame.covers(geom):
            inside = _largest_polygon(shapely.make_valid(geom.intersection(frame)))
            share = inside.area / geom.area if inside is not None else 0.0
            if inside is None or share < INSIDE_TO_CLIP:
                raise InputError(source, f"polygon lies mostly outside the {shape[0]} x {shape[1]} (rows x cols) frame "
                                         f"({share:.0%} of its area inside)", field=field)
            x0, y0, x1, y1 = geom.bounds
            beyond = max(-0.5 - x0, -0.5 - y0, x1 - (shape[1] - 0.5), y1 - (shape[0] - 0.5))
            geom = inside
            notes.append(f"reached {beyond:.2g} px outside the {shape[0]} x {shape[1]} frame: clipped to it")
    if not notes:
        return arr, None
    return _as_rows_cols(geom), "; ".join(notes)


def remove_overlaps(polygons: list[np.ndarray]) -> list[np.ndarray | None]:
    """Make polygons disjoint: each gives up the area already claimed by earlier ones.

    Polygons are processed in order (put the most trusted first). A polygon left with
    no area, or split so that only slivers remain, keeps its largest piece; one that
    vanishes becomes ``None``. Touching along an edge is allowed.
    """
    from shapely.strtree import STRtree

    geoms = [Polygon(p[:, ::-1]) for p in polygons]
    tree = STRtree(geoms)
    out: list[np.ndarray | None] = []
    for i, g in enumerate(geoms):
        earlier = [geoms[j] for j in tree.query(g) if j < i and out[j] is not None]
        if earlier:
            claimed = shapely.union_all(earlier)
            if g.intersection(claimed).area > 1e-9:
                g = _largest_polygon(shapely.make_valid(g.difference(claimed)))
                geoms[i] = g if g is not None else geoms[i]
        if g is None or g.area <= 0:
            out.append(None)
            continue
        xy = np.asarray(g.exterior.coords)[:-1]
        out.append(xy[:, ::-1].copy() if len(xy) >= 3 else None)
    return out
