"""What the worker uploaded, kept in the dataset's metadata, and which of it the user deleted.

After each frame's upload the worker records one interior pixel per uploaded object,
keyed by the run's tags and the frame's location, in the dataset folder's Girder
metadata (``meta.fewseg_results``). On a later run (compute or preview), every recorded
pixel that no current annotation holds (one carrying the run's tags, an example or a
negative: a polygon containing it, or a point within :data:`NEAR` pixels of its centre)
was deleted by the user: it becomes a negative click there, as a "Not these tags" point
does. A result the user deleted and drew again as an example is held by that example, so
it is an example, not a negative.

The record holds at most :data:`LIMIT` pixels in all; beyond that nothing more is
recorded (one warning says deletions there will not be learned from).

The stored form (JSON, Girder metadata)::

    {"version": 1, "entries": [{"tags": [...], "location": {"XY": 0, "Z": 0, "Time": 0},
                                "pixels": [[row, col], ...]}, ...]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ..objects import Annotation, Location, ObjectMask

#: The folder metadata key holding the record.
KEY = "fewseg_results"
#: Most recorded pixels in all (the record lives in one Girder document).
LIMIT = 100_000
#: A point annotation within this many pixels of a recorded pixel's centre holds it.
NEAR = 2.0


def interior_pixel(mask: ObjectMask) -> tuple[int, int]:
    """The ``(row, col)`` of ``mask``'s pixel farthest from its edge, in frame coordinates.

    Examples
    --------
    >>> m = np.zeros((5, 9), bool); m[1:4, 1:8] = True
    >>> interior_pixel(ObjectMask(10, 20, m))
    (12, 22)
    """
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(np.pad(mask.mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(mask.row + r), int(mask.col + c)


def _key(tags: Sequence[str], location: Location) -> tuple:
    return tuple(sorted(set(tags))), location


@dataclass
class ResultsRecord:
    """The recorded pixels by (sorted tags, location); ``usable`` is False when the stored
    record could not be read (then nothing is learned from it nor written over it)."""

    pixels: dict = field(default_factory=dict)
    usable: bool = True
    full_warned: bool = False

    @property
    def total(self) -> int:
        return sum(len(p) for p in self.pixels.values())

    @classmethod
    def from_meta(cls, meta) -> "ResultsRecord":
        """The record in a folder's ``meta``; raises ``ValueError`` when it is not what :meth:`to_meta` writes.

        Examples
        --------
        >>> r = ResultsRecord(); _ = r.add(["b", "a"], Location(z=1), [(3, 4)], warning=print)
        >>> ResultsRecord.from_meta({KEY: r.to_meta()}).pixels
        {(('a', 'b'), Location(xy=0, z=1, time=0)): [(3, 4)]}
        """
        stored = (meta or {}).get(KEY)
        if stored is None:
            return cls()
        if not isinstance(stored, dict) or stored.get("version") != 1 or not isinstance(stored.get("entries"), list):
            raise ValueError("expected {'version': 1, 'entries': [...]}")
        pixels = {}
        for entry in stored["entries"]:
            tags, where, found = entry.get("tags"), entry.get("location"), entry.get("pixels")
            if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags) and isinstance(where, dict)
                    and isinstance(found, list)):
                raise ValueError(f"an entry {entry!r:.80} is not {{'tags', 'location', 'pixels'}}")
            location = Location(xy=int(where["XY"]), z=int(where["Z"]), time=int(where["Time"]))
            pixels.setdefault(_key(tags, location), []).extend((int(r), int(c)) for r, c in found)
        return cls(pixels)

    def to_meta(self) -> dict:
        return {"version": 1, "entries": [{"tags": list(tags), "location": loc.as_nimbus(),
                                           "pixels": [list(p) for p in found]}
                                          for (tags, loc), found in self.pixels.items()]}

    def add(self, tags: Sequence[str], location: Location, pixels: Iterable[tuple[int, int]], *,
            warning: Callable[..., None]) -> bool:
        """Record ``pixels`` (up to :data:`LIMIT` in all; one warning the first time some are
        not recorded). Returns whether anything was added."""
        pixels = list(pixels)
        room = LIMIT - self.total
        if len(pixels) > room and not self.full_warned:
            self.full_warned = True
            warning(f"fewseg's record of its uploads in the dataset's metadata ('{KEY}') holds its {LIMIT} "
                    "objects: results uploaded from now on are not recorded, so deleting them will not teach "
                    "fewseg anything (tag them with a \"Not these tags\" tag instead)", "Record full")
        pixels = pixels[:max(room, 0)]
        if pixels:
            self.pixels.setdefault(_key(tags, location), []).extend(pixels)
        return bool(pixels)

    def deleted(self, tags: Sequence[str], present: Iterable[Annotation], shape: tuple[int, int]) -> list[Annotation]:
        """A negative click at every recorded pixel of ``tags`` that nothing in ``present`` holds.

        ``present``: the annotations on the server now carrying ``tags``, the examples and
        the negatives (fewseg coordinates).

        Examples
        --------
        >>> r = ResultsRecord(); r.add(["out"], Location(), [(5, 5), (20, 20)], warning=print)
        True
        >>> kept = Annotation(polygon=np.array([[3., 3.], [3., 8.], [8., 8.], [8., 3.]]))
        >>> [a.point.tolist() for a in r.deleted(["out"], [kept], (30, 30))]
        [[20.5, 20.5]]
        """
        by_location = {}
        for a in present:
            by_location.setdefault(a.location, []).append(a)
        negatives = []
        for (key_tags, location), pixels in self.pixels.items():
            if key_tags != _key(tags, location)[0]:
                continue
            here = by_location.get(location, [])
            held = np.zeros(shape, dtype=bool)
            points = []
            for a in here:
                if a.point is not None and a.polygon is None and a.mask is None:
                    points.append(a.point)
                    continue
                try:
                    m = a.to_mask(shape)
                except ValueError:
                    continue
                held[m.row:m.row + m.mask.shape[0], m.col:m.col + m.mask.shape[1]] |= m.mask
            points = np.asarray(points, dtype=float).reshape(-1, 2)
            for r, c in dict.fromkeys(pixels):
                if not (0 <= r < shape[0] and 0 <= c < shape[1]) or held[r, c]:
                    continue
                centre = np.array([r + 0.5, c + 0.5])
                if len(points) and np.hypot(*(points - centre).T).min() <= NEAR:
                    continue
                negatives.append(Annotation(point=centre, location=location,
                                            origin=f"a result deleted at XY {location.xy + 1}, Z {location.z + 1}, "
                                                   f"Time {location.time + 1} (row {r}, column {c})"))
        return negatives
