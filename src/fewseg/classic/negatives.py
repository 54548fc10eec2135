"""Negatives ("not these"): objects or regions marked as not the kind wanted.

A negative is given as an example is (an outline, a label-image object, or a click) on
the frame fitted on. :func:`negative_marks` turns each into a :class:`NegativeMark`: its
pixels (a click outlined as example clicks are, :mod:`fewseg.classic.clicks`, with the
examples' settings) and, for a click, the clicked pixel. The marks reject the candidates
at or under them (:func:`fewseg.classic.select.rejected`) and what those candidates look
like is learned (:meth:`fewseg.classic.model.WeightFreeSegmenter.fit`).
:func:`check_negatives` refuses, in one line, a negative that overlaps an example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..objects import Frame, ObjectMask
from .examples import is_click

#: A negative overlapping an example by this share of the smaller of the two is refused.
OVERLAP = 0.5


@dataclass(frozen=True)
class NegativeMark:
    """One negative on its frame.

    Attributes
    ----------
    mask : ObjectMask
        Its pixels: the outline or label-image object, or the object outlined at a click.
    point : tuple of int, optional
        A click's pixel ``(row, col)``: the candidates holding it are rejected.
    origin : str
        Where it came from, for messages.
    """

    mask: ObjectMask
    point: tuple[int, int] | None = None
    origin: str = ""


def negative_marks(negatives: list, frame: Frame, *, signal: np.ndarray, radius: float, settings) -> list[NegativeMark]:
    """Each negative (annotation or :class:`~fewseg.objects.ObjectMask`) on ``frame``, in
    order, as a :class:`NegativeMark`. Clicks are outlined on the object ``signal`` with
    the examples' ``radius`` and proposer ``settings``
    (:func:`fewseg.classic.clicks.outline_on_signal`).

    Raises
    ------
    InputError
        A negative outside the frame (it covers no pixel of it, or its click lies outside).
    """
    from .clicks import outline_on_signal

    shape = frame.shape
    clicks = [k for k, n in enumerate(negatives) if is_click(n)]
    points = []
    for k in clicks:
        row, col = (float(v) for v in negatives[k].point)
        if not (-0.5 <= row < shape[0] - 0.5 and -0.5 <= col < shape[1] - 0.5):
            raise InputError(_where(negatives[k], k, frame.source),
                             f"negative click at (row {row:g}, col {col:g}) lies outside the "
                             f"{shape[1]} x {shape[0]} (X x Y) frame", field="point")
        points.append((row, col))
    outlined = iter(outline_on_signal(signal, np.array(points, dtype=float).reshape(-1, 2), radius=radius,
                                      settings=settings))
    others = [n for n in negatives if not is_click(n)]
    rasters = iter(_negative_masks(others, shape, frame.source))
    out = []
    for k, n in enumerate(negatives):
        if is_click(n):
            point = tuple(int(v) for v in np.clip(np.rint(n.point), 0, np.array(shape) - 1))
            out.append(NegativeMark(next(outlined), point, _where(n, k, frame.source)))
        else:
            out.append(NegativeMark(next(rasters), None, _where(n, k, frame.source)))
    return out


def _negative_masks(negatives: list, shape: tuple[int, int], source: str) -> list[ObjectMask]:
    """Outlines and masks of negatives rasterised on a frame of ``shape`` (one line for
    one covering no pixel of it)."""
    out = []
    for k, n in enumerate(negatives):
        m = n if isinstance(n, ObjectMask) else n.to_mask(shape)
        if m.area == 0:
            raise InputError(_where(n, k, source), f"negative covers no pixel of the {shape[1]} x {shape[0]} "
                                                   "(X x Y) frame (it lies outside it)")
        out.append(m)
    return out


def _where(item, k: int, source: str) -> str:
    return getattr(item, "origin", "") or f"negative {k}"


#: Two clicks this many pixels apart or closer (in rows and in columns) are the same spot:
#: a negative click there on an example click is refused (:func:`check_negatives`).
SAME_CLICK = 2


def check_negatives(marks: list[NegativeMark], masks: list[ObjectMask], examples: list, negatives: list, *,
                    source: str = "frame") -> None:
    """Refuse a negative that overlaps an example: a click inside an example, or an
    outline sharing :data:`OVERLAP` or more of the smaller of the two. One line naming
    both (their ``origin``, else their index). An example given as a click is the
    clicked pixel, not the outline fewseg drew for it: a negative outline conflicts with
    it where it holds that pixel, a negative click where the two clicks are within
    :data:`SAME_CLICK` pixels (the user pointed at the same spot both ways). A rejection
    next to a clicked object, or of a false object that merged it with a neighbour, is
    not refused because the engine's guessed outlines of the two clicks meet.

    Examples
    --------
    >>> square = ObjectMask(0, 0, np.ones((4, 4), bool))
    >>> check_negatives([NegativeMark(square, (1, 1))], [square], [square], [None])
    Traceback (most recent call last):
    ...
    fewseg.errors.InputError: negative 0: lies on example 0 (a negative must mark something that is not an example)
    """
    from .examples import is_click

    for k, mark in enumerate(marks):
        for j, m in enumerate(masks):
            if j < len(examples) and is_click(examples[j]):
                r, c = (int(v) for v in np.rint(examples[j].point))
                if mark.point is not None:  # two clicks: the same spot, whatever the guessed outlines
                    same = max(abs(mark.point[0] - r), abs(mark.point[1] - c)) <= SAME_CLICK
                else:  # an outline (or label-image object) drawn over the clicked pixel
                    same = mark.mask.holds(r, c)
                if same:
                    origin = getattr(examples[j], "origin", "")
                    raise InputError(mark.origin or f"negative {k}", f"marks the object clicked as example {j}"
                                     f"{f' ({origin})' if origin else ''} (a negative must mark something that is "
                                     "not an example)")
                continue
            inter = _overlap(m, mark)
            if inter and (mark.point is not None or inter >= OVERLAP * min(m.area, mark.mask.area)):
                origin = getattr(examples[j], "origin", "")
                raise InputError(mark.origin or f"negative {k}", f"lies on example {j}{f' ({origin})' if origin else ''}"
                                                                 " (a negative must mark something that is not an example)")


def _overlap(m: ObjectMask, mark: NegativeMark) -> int:
    """Pixels ``m`` shares with the mark (a click: 1 when ``m`` holds the clicked pixel)."""
    if mark.point is not None:
        return int(m.holds(*mark.point))
    other = mark.mask
    r0, c0 = max(m.row, other.row), max(m.col, other.col)
    r1 = min(m.row + m.mask.shape[0], other.row + other.mask.shape[0])
    c1 = min(m.col + m.mask.shape[1], other.col + other.mask.shape[1])
    if r0 >= r1 or c0 >= c1:
        return 0
    a = m.mask[r0 - m.row : r1 - m.row, c0 - m.col : c1 - m.col]
    b = other.mask[r0 - other.row : r1 - other.row, c0 - other.col : c1 - other.col]
    return int(np.count_nonzero(a & b))
