"""The data fewseg passes between stages: frames, object masks and annotations.

Conventions used everywhere in fewseg:

* Images are ``(C, Y, X)`` float32 arrays (channels first), one frame at a time.
* Positions are ``(row, col)`` inside fewseg. File formats that say x/y (NimbusImage
  JSON, GeoJSON) store ``x = col`` and ``y = row``.
* Pixel ``(r, c)`` has its centre at the coordinate ``(r, c)`` (the scikit-image / napari
  convention): a polygon vertex at ``(2.5, 3.0)`` lies on the edge between rows 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Location:
    """Where a frame sits in a dataset (NimbusImage's ``location``)."""

    xy: int = 0
    z: int = 0
    time: int = 0

    def as_nimbus(self) -> dict:
        return {"XY": self.xy, "Z": self.z, "Time": self.time}


@dataclass(frozen=True)
class Frame:
    """One 2-D multi-channel image.

    Attributes
    ----------
    data : ndarray, shape (C, Y, X), float32
        Pixel values as read (not normalised).
    channel_names : tuple of str
        One name per channel (``"0"``, ``"1"``... when the file names none).
    source : str
        The file it came from, for messages.
    location : Location
        Its XY / Z / Time position.
    """

    data: np.ndarray
    channel_names: tuple[str, ...] = ()
    source: str = "<array>"
    location: Location = Location()

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(f"Frame.data must be (C, Y, X); got shape {self.data.shape}")
        if self.data.dtype.kind in "fc" and not np.isfinite(self.data).all():  # every way in builds a Frame
            from .errors import InputError

            bad = (~np.isfinite(self.data)).reshape(self.data.shape[0], -1).sum(axis=1)
            c = int(np.argmax(bad))
            name = self.channel_names[c] if c < len(self.channel_names or ()) else str(c)
            raise InputError(self.source, f"{int(bad.sum())} pixel(s) are NaN or infinite ({int(bad[c])} in channel "
                                          f"{name}); expected finite intensities")
        if not self.channel_names:
            object.__setattr__(self, "channel_names", tuple(str(i) for i in range(self.data.shape[0])))

    @property
    def shape(self) -> tuple[int, int]:
        """``(Y, X)``."""
        return self.data.shape[1], self.data.shape[2]

    @classmethod
    def from_array(cls, image: np.ndarray, **kwargs) -> "Frame":
        """Wrap a ``(Y, X)`` or ``(C, Y, X)`` array."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[None]
        return cls(np.asarray(image, dtype=np.float32), **kwargs)


@dataclass(frozen=True, eq=False)
class ObjectMask:
    """A binary mask stored as its bounding-box crop.

    Attributes
    ----------
    row, col : int
        Top-left corner of the crop in the frame.
    mask : ndarray of bool, shape (h, w)
    """

    row: int
    col: int
    mask: np.ndarray

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """``(row0, col0, row1, col1)``, end-exclusive."""
        h, w = self.mask.shape
        return self.row, self.col, self.row + h, self.col + w

    @property
    def slices(self) -> tuple[slice, slice]:
        r0, c0, r1, c1 = self.bbox
        return slice(r0, r1), slice(c0, c1)

    def holds(self, row: int, col: int) -> bool:
        """Whether the pixel ``(row, col)`` (frame coordinates) is in the mask.

        Examples
        --------
        >>> m = ObjectMask(10, 20, np.array([[True, False]]))
        >>> m.holds(10, 20), m.holds(10, 21), m.holds(9, 20)
        (True, False, False)
        """
        r, c = int(row) - self.row, int(col) - self.col
        return bool(0 <= r < self.mask.shape[0] and 0 <= c < self.mask.shape[1] and self.mask[r, c])

    def paste(self, canvas: np.ndarray, value=True) -> np.ndarray:
        """Write ``value`` into ``canvas`` where the mask is set; returns ``canvas``."""
        canvas[self.slices][self.mask] = value
        return canvas

    def to_full(self, shape: tuple[int, int]) -> np.ndarray:
        return self.paste(np.zeros(shape, dtype=bool))

    def iou(self, other: "ObjectMask") -> float:
        """Intersection over union with another mask (computed on the boxes' overlap).

        Examples
        --------
        >>> a = ObjectMask(0, 0, np.ones((2, 2), bool))
        >>> a.iou(ObjectMask(1, 0, np.ones((2, 2), bool)))
        0.3333333333333333
        """
        r0, c0 = max(self.row, other.row), max(self.col, other.col)
        r1 = min(self.row + self.mask.shape[0], other.row + other.mask.shape[0])
        c1 = min(self.col + self.mask.shape[1], other.col + other.mask.shape[1])
        inter = 0
        if r1 > r0 and c1 > c0:
            a = self.mask[r0 - self.row : r1 - self.row, c0 - self.col : c1 - self.col]
            b = other.mask[r0 - other.row : r1 - other.row, c0 - other.col : c1 - other.col]
            inter = int(np.count_nonzero(a & b))
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    @classmethod
    def from_full(cls, mask: np.ndarray) -> "ObjectMask":
        """Crop a full-frame boolean mask to its bounding box (empty masks stay 0 x 0)."""
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return cls(0, 0, np.zeros((0, 0), dtype=bool))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return cls(int(r0), int(c0), mask[r0:r1, c0:c1].copy())


def rasterize(polygon: np.ndarray, shape: tuple[int, int]) -> ObjectMask:
    """Pixels whose centres lie inside ``polygon``, clipped to a frame of ``shape``.

    Examples
    --------
    >>> square = np.array([[0.5, 0.5], [0.5, 3.5], [3.5, 3.5], [3.5, 0.5]])
    >>> rasterize(square, (10, 10)).area
    9
    """
    from skimage.draw import polygon as draw_polygon

    polygon = np.asarray(polygon, dtype=float)
    rr, cc = draw_polygon(polygon[:, 0], polygon[:, 1], shape=shape)
    if rr.size == 0:
        return ObjectMask(0, 0, np.zeros((0, 0), dtype=bool))
    r0, c0 = int(rr.min()), int(cc.min())
    crop = np.zeros((int(rr.max()) - r0 + 1, int(cc.max()) - c0 + 1), dtype=bool)
    crop[rr - r0, cc - c0] = True
    return ObjectMask(r0, c0, crop)


def masks_from_labels(labels: np.ndarray) -> list[ObjectMask]:
    """One :class:`ObjectMask` per non-zero label of a ``(Y, X)`` label image, in label order."""
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    out = []
    for value, sl in enumerate(ndi.find_objects(labels.astype(np.int64, copy=False)), start=1):
        if sl is None:
            continue
        out.append(ObjectMask(sl[0].start, sl[1].start, labels[sl] == value))
    return out


def labels_from_masks(masks, shape: tuple[int, int]) -> np.ndarray:
    """Paint masks into a ``(Y, X)`` int32 label image, label ``i + 1`` for ``masks[i]``.

    Later masks do not overwrite earlier ones: the first claim on a pixel wins.
    """
    labels = np.zeros(shape, dtype=np.int32)
    for i, m in enumerate(masks, start=1):
        region = labels[m.slices]
        region[m.mask & (region == 0)] = i
    return labels


@dataclass(frozen=True, eq=False)
class Annotation:
    """One outlined (or clicked) object, read from or written to an annotation file.

    Exactly one of ``polygon``, ``mask`` and ``point`` is usually set: polygon files give
    polygons, label images give masks, clicks (point annotations) give points.
    :meth:`to_mask` gives the mask of the first two; a click is outlined on its frame
    (:func:`fewseg.classic.clicks.outline_clicks`, which example reading calls).

    Attributes
    ----------
    polygon : ndarray, shape (N, 2), float64, or None
        Outer contour as ``(row, col)`` vertices, not closed (first != last).
    mask : ObjectMask or None
    tags : tuple of str
    location : Location
    channel : int
    origin : str
        Where it came from, for messages: ``"examples.json: annotations[4]"``.
    properties : dict
        Anything else the file carried that a writer may pass through.
    point : ndarray, shape (2,), float64, or None
        A click on the object, ``(row, col)``.
    """

    polygon: np.ndarray | None = None
    mask: ObjectMask | None = None
    tags: tuple[str, ...] = ()
    location: Location = Location()
    channel: int = 0
    origin: str = ""
    properties: dict = field(default_factory=dict)
    point: np.ndarray | None = None

    def to_mask(self, shape: tuple[int, int]) -> ObjectMask:
        """The object's pixels inside a frame of ``shape`` ``(Y, X)``."""
        if self.mask is not None:
            return self.mask
        if self.polygon is None and self.point is not None:
            raise ValueError(f"{self.origin or 'annotation'} is a click: outline it on its frame "
                             "(fewseg.classic.clicks.outline_clicks)")
        if self.polygon is None:
            raise ValueError(f"{self.origin or 'annotation'} has neither polygon nor mask")
        return rasterize(self.polygon, shape)


def label_shapes(labels: np.ndarray, n: int | None = None) -> dict[str, np.ndarray]:
    """Area, elongation and ellipse fill of every label 1..n of a ``(Y, X)`` label image.

    From second moments (each pixel a unit square): ``elongation`` is the ratio of the
    moment ellipse's axes, ``ellipse_fill`` the area over that ellipse's area (~1 for an
    ellipse, lower for crescents and for two touching objects). Arrays of length ``n``.
    """
    labels = np.asarray(labels)
    n = int(labels.max()) if n is None else int(n)
    flat = labels.ravel()
    count = np.maximum(np.bincount(flat, minlength=n + 1)[1 : n + 1].astype(np.float64), 1)
    # Coordinates of the labelled pixels only (a frame's worth of indices costs more).
    where = np.flatnonzero(flat)
    ids = flat[where]
    r, c = np.divmod(where, labels.shape[1])
    r, c = r.astype(np.float64), c.astype(np.float64)

    def mean_of(v):
        return np.bincount(ids, weights=v, minlength=n + 1)[1 : n + 1] / count

    mr, mc = mean_of(r), mean_of(c)
    dr, dc = r - mr[ids - 1], c - mc[ids - 1]
    crr, ccc, crc = mean_of(dr * dr) + 1 / 12, mean_of(dc * dc) + 1 / 12, mean_of(dr * dc)
    half = (crr + ccc) / 2
    root = np.sqrt(np.maximum(half**2 - (crr * ccc - crc**2), 0))
    l1, l2 = half + root, np.maximum(half - root, 1e-6)
    return {
        "area": count,
        "elongation": np.sqrt(l1 / l2),
        "ellipse_fill": count / (4 * np.pi * np.sqrt(l1 * l2)),
    }
