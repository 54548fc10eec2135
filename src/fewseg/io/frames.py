"""Reading and writing frames: one 2-D, multi-channel image as a :class:`~fewseg.Frame`.

TIFF and OME-TIFF files are read with ``tifffile`` (the first image series); PNG, JPEG
and the other formats Pillow knows are read through ``imageio``'s Pillow plugin. Every
problem with a file is an :class:`~fewseg.InputError` naming the file; no traceback from
the reading libraries gets through.

How TIFF axes become a ``(C, Y, X)`` frame (axis letters as ``tifffile`` reports them):

* ``Y`` and ``X`` are the image plane.
* ``C`` (channels) and ``S`` (samples, e.g. RGB) are the channels; both together give
  ``C * S`` channels, channel-major.
* ``Z`` and ``T`` must be chosen with ``z=`` / ``t=`` (``--z`` / ``--t``) when they hold
  more than one plane.
* Axes of size 1 are ignored whatever their letter.

A plain stack (``tifffile.imwrite(path, stack)`` of shape ``(N, Y, X)``, or pages without
axis names) has one unlabelled axis (``Q`` or ``I``: tifffile's "unknown" and "image
sequence"); what it holds is guessed, and :func:`frame_axes` says so in one line:

* ``N`` of 2 to 4 (:data:`MAX_GUESSED_CHANNELS`): channels (``CYX``), as a numpy script
  saves a 2- or 3-channel image;
* ``N`` of 5 or more: Z planes (``ZYX``), as bioio and Fiji read such a stack.

The guess never applies when the axes are given, either by ``axes=`` (``--axes TYX``) or
by the file's name (``stack.TYX.tif``, ``stack_CYX.tif``: a last name part of upper-case
``T`` / ``Z`` / ``C`` letters ending in ``YX``, which napari's File > Open reads too);
``axes=`` wins. Two unlabelled axes (``(N, M, Y, X)``) are refused in one line asking
for them.
"""

from __future__ import annotations

import operator
import os
import xml.etree.ElementTree as ET
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path
from .._reading import check_input_file, check_memory, describe, library_errors
from ..errors import InputError
from .formats import is_source_path
from ..objects import Frame, Location

__all__ = ["read_frame", "write_frame", "read_array", "open_plane", "frame_axes", "check_axes", "FrameAxes",
           "label_image_reason", "label_axes", "LABELS_MARK"]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf2", ".tf8")

_AXIS_OPTIONS = {"Z": ("z", "--z", "Z planes"), "T": ("t", "--t", "time points")}

#: Letters ``axes=`` / ``--axes`` takes: time, Z, channel, row, column.
AXIS_LETTERS = "TZCYX"
#: A plain stack's unlabelled axis up to this size is read as channels, above it as Z planes.
MAX_GUESSED_CHANNELS = 4
_LABELLED = "YXCSZT"
_NAME_AXES = re.compile(r"(?:^|[._-])([TZC]{0,3}YX)$")
_MEANING = {"C": "channels", "Z": "Z planes", "T": "time points"}


# --------------------------------------------------------------------------- reading


def read_frame(
    path: str | os.PathLike,
    *,
    z: int | None = None,
    t: int | None = None,
    channels: str | Sequence[int | str] | None = None,
    location: Location | None = None,
    level: int = 0,
    axes: str | None = None,
) -> Frame:
    """Read one 2-D multi-channel frame from an image file.

    Parameters
    ----------
    path : str or path-like
        A TIFF / OME-TIFF (``.tif``, ``.tiff``) or any image Pillow reads (PNG, JPEG...).
    z, t : int, optional
        The Z plane and time point to read. Required when the file has more than one
        along that axis; must be 0 (or omitted) when it has none.
    channels : str or sequence of int or str, optional
        Which channels to keep, in this order: indices or channel names, or one string
        of comma-separated indices / names as the command line passes it (``"0,1"``,
        ``"YFP,Brightfield"``). A name wins over an index when a channel is named
        like a number. ``None`` keeps all channels.
    location : Location, optional
        The frame's position in the dataset; defaults to ``Location(z=z or 0,
        time=t or 0)``. For OME-Zarr and vendor files (:mod:`fewseg.io.formats`) its
        ``xy`` picks the scene (XY position).
    level : int
        Resolution level (0 = full) of an OME-Zarr or multi-resolution vendor file.
    axes : str, optional
        What the TIFF's stored axes are, one letter each of ``T Z C Y X`` (``"TYX"``,
        ``"CYX"``, ``"TCYX"``), instead of the file's own letters or a plain stack's
        guess (module docstring; :func:`frame_axes` says how a file is read).

    Returns
    -------
    Frame
        ``data`` of shape ``(C, Y, X)``, float32 with the file's values unscaled (bool
        becomes 0 / 1). Channel names come from the OME metadata when the file has
        them, else ``"0"``, ``"1"``... RGB images give 3 channels; alpha is dropped.

    Raises
    ------
    InputError
        The file is missing, unreadable or corrupt; an axis needs ``z`` / ``t``; an
        index is out of range; a channel is unknown; the pixel type is not numeric;
        ``axes`` is not one letter per stored axis.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.ome.tif"
    >>> tifffile.imwrite(path, np.zeros((3, 2, 8, 9), np.uint16),
    ...                  metadata={"axes": "ZCYX", "Channel": {"Name": ["YFP", "BF"]}})
    >>> frame = read_frame(path, z=1, channels="BF")
    >>> frame.data.shape, frame.channel_names, frame.location.z
    ((1, 8, 9), ('BF',), 1)

    A plain stack's planes are Z planes unless ``axes`` says otherwise:

    >>> tifffile.imwrite(path.with_name("movie.tif"), np.zeros((5, 8, 9), np.uint16))
    >>> read_frame(path.with_name("movie.tif"), t=4, axes="TYX").location.time
    4
    """
    if location is None:
        location = Location(z=z or 0, time=t or 0)
    if is_source_path(path):  # OME-Zarr, ND2, CZI, LIF...: fewseg.io.formats
        if axes is not None:
            frame_axes(path, axes=axes)  # refused: such files name their own axes
        return open_plane(path, z=z, t=t, xy=location.xy, channels=channels, level=level).read(location=location)
    source = _check_file(path)
    if level:
        raise InputError(source, f"--level {level}: only OME-Zarr and vendor files are read at other resolution levels",
                         field="level")
    if _is_tiff(source):
        data, names = _read_tiff_plane(source, z=z, t=t, axes=axes)
    else:
        if axes is not None:
            frame_axes(source, axes=axes)  # a gray image is YX, a colour one YXC
        data, names = _read_pillow(source)
        _check_no_axis(source, "Z", z)
        _check_no_axis(source, "T", t)
    keep = _select_channels(source, names, channels)
    data = _as_float32(source, data[keep])
    return Frame(data, channel_names=tuple(names[i] for i in keep), source=source, location=location)


def read_array(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """The whole first image of a file, as stored, with its axis letters.

    Used for label images, which must not pass through float32. Palette images
    (PNG / GIF in "P" mode) give their palette indices, not colours.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    array : ndarray
        The pixel data in the file's own dtype (size-1 axes squeezed).
    axes : str
        One letter per axis, as ``tifffile`` names them: ``"YX"``, ``"YXS"`` (RGB)...

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.tif"
    >>> tifffile.imwrite(path, np.arange(12, dtype=np.uint16).reshape(3, 4))
    >>> array, axes = read_array(path)
    >>> array.dtype, axes
    (dtype('uint16'), 'YX')
    """
    source = _check_file(path)
    if not _is_tiff(source):
        image = _read_pillow_image(source, palette_indices=True)
        return image, "YX" if image.ndim == 2 else "YXS"
    import tifffile

    with library_errors(source, "TIFF"):
        with tifffile.TiffFile(source) as tif:
            series = tif.series[0]
            _check_size(source, series.shape, series.axes)
            # a label image is compacted to int64 labels after reading
            check_memory(source, series.size * (np.dtype(series.dtype).itemsize + 8), _declared(series.shape, series.axes))
            return series.asarray(), series.axes


def _check_file(path) -> str:
    return check_input_file(path, expected="an image file")


def _is_tiff(source: str) -> bool:
    if Path(source).suffix.lower() in TIFF_SUFFIXES:
        return True
    try:
        with open(source, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise InputError(source, f"cannot open the file ({exc.strerror or exc})") from None
    return magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _declared(shape, axes: str) -> str:
    return "an image of " + " x ".join(f"{n} {a}" for n, a in zip(shape, axes))


def _check_size(source: str, shape, axes: str) -> None:
    """Refuse an image with an axis of length 0 (a 0 x 0 image, no channels)."""
    if any(int(n) == 0 for n in shape):
        raise InputError(source, f"declares an empty image: axes {axes} of shape {tuple(shape)}", field="shape")


def _check_no_axis(source: str, axis: str, index: int | None) -> None:
    if index is not None and operator.index(index) != 0:
        name, option, _ = _AXIS_OPTIONS[axis]
        raise InputError(
            source, f"the image has no {axis} axis (a single plane); {option} must be 0 or omitted, got {index}", field=axis
        )


# ---- axes: the file's, the user's, or a plain stack's guessed


@dataclass(frozen=True)
class FrameAxes:
    """How a file's axes are read: the letters used, and where they came from.

    Attributes
    ----------
    source : str
    axes : str
        One letter per stored axis as fewseg reads it (``"ZYX"``, ``"TCYX"``, ``"YXS"``).
    shape : tuple of int
        The stored shape, one size per letter.
    stored : str
        The letters the file itself gives (tifffile's: ``Q`` / ``I`` for unlabelled).
    how : str
        ``"file"`` (its own labels), ``"option"`` (``axes=`` / ``--axes``), ``"name"``
        (``stack.TYX.tif``) or ``"guess"`` (a plain stack, see the module docstring).
    """

    source: str
    axes: str
    shape: tuple[int, ...]
    stored: str
    how: str = "file"

    def sizes(self) -> dict[str, int]:
        """``{letter: size}`` of the axes read."""
        return dict(zip(self.axes, self.shape))

    def describe(self) -> str:
        """``"ZYX (5 x 511 x 511)"``."""
        return f"{self.axes} ({' x '.join(str(n) for n in self.shape)})"

    def note(self, *, napari: bool = False) -> str | None:
        """The one line that says how a guessed (or file-named) stack was read, and how
        to say otherwise (``--axes``, or in napari the file's name); None when the file
        or the caller named the axes.

        Examples
        --------
        >>> FrameAxes("stack.tif", "ZYX", (5, 511, 511), "QYX", "guess").note()
        'read stack.tif as ZYX (5 x 511 x 511): 5 Z planes; pass --axes TYX if they are time points, --axes CYX if channels'
        >>> FrameAxes("stack.tif", "CYX", (3, 64, 64), "QYX", "guess").note(napari=True)
        'read stack.tif as CYX (3 x 64 x 64): 3 channels; name the file stack.ZYX.tif if they are Z planes, stack.TYX.tif if time points'
        """
        name = Path(self.source).name
        if self.how == "name":
            return f"read {name} as {self.describe()}, as its name says"
        if self.how != "guess":
            return None
        letter = next(a for a in self.axes if a in _MEANING and a not in self.stored)
        n = self.sizes()[letter]
        others = {"Z": "TC", "C": "ZT", "T": "ZC"}[letter]

        def instead(a: str) -> str:
            letters = self.axes.replace(letter, a)
            if napari:
                stem, dot, suffix = name.partition(".")
                return f"{stem}.{letters}.{suffix}" if dot else f"{name}.{letters}"
            return f"--axes {letters}"
        options = [f"{instead(a)} if {'they are ' if k == 0 else ''}{_MEANING[a]}" for k, a in enumerate(others)]
        verb = "name the file " if napari else "pass "
        return f"read {name} as {self.describe()}: {n} {_MEANING[letter]}; {verb}{', '.join(options)}"


def check_axes(axes: str, *, source: str = "--axes") -> str:
    """``axes`` upper-cased, checked: letters of ``T Z C Y X``, each once, Y and X present.

    Raises
    ------
    InputError
        One line naming ``source`` and what is wrong.

    Examples
    --------
    >>> check_axes("tcyx")
    'TCYX'
    >>> check_axes("TYY")
    Traceback (most recent call last):
    ...
    fewseg.errors.InputError: --axes: 'Y' appears twice in 'TYY'; name each axis once, e.g. TYX
    """
    text = str(axes).strip().upper()
    if not text:
        raise InputError(source, "expected axis letters such as TYX, ZYX, CYX or TCYX")
    for letter in text:
        if letter not in AXIS_LETTERS:
            raise InputError(source, f"unknown axis letter {letter!r} in {axes!r}; use T (time), Z, C (channels), Y and X")
        if text.count(letter) > 1:
            raise InputError(source, f"{letter!r} appears twice in {axes!r}; name each axis once, e.g. TYX")
    missing = [a for a in "YX" if a not in text]
    if missing:
        raise InputError(source, f"{axes!r} has no {' or '.join(missing)}; the image plane is Y and X (e.g. TYX, CYX)")
    return text


def axes_in_name(path: str | os.PathLike) -> str | None:
    """The axes a file's name gives (``stack.TYX.tif``, ``cells_CYX.ome.tif``), or None.

    Examples
    --------
    >>> axes_in_name("movie.TYX.tif"), axes_in_name("cells_TCYX.ome.tif"), axes_in_name("BOX.tif")
    ('TYX', 'TCYX', None)
    """
    name = Path(os.fspath(path)).name
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    if stem.lower().endswith(".ome"):
        stem = stem[:-4]
    match = _NAME_AXES.search(stem)
    if match is None:
        return None
    try:
        return check_axes(match.group(1))
    except InputError:
        return None


def _fit_axes(source: str, letters: str, stored: str, shape: tuple[int, ...], origin: str) -> str:
    """``letters`` checked against the file: one per stored axis."""
    if len(letters) != len(shape):
        raise InputError(source, f"{origin} {letters} names {len(letters)} axes; the file has {len(shape)}: {stored} "
                                 f"of shape {' x '.join(str(n) for n in shape)}", field="axes")
    return letters


def _resolve_axes(source: str, stored: str, shape, axes: str | None) -> FrameAxes:
    """How to read a TIFF whose series has axes ``stored`` of ``shape`` (see the module docstring)."""
    shape = tuple(int(n) for n in shape)
    if axes is not None:
        return FrameAxes(source, _fit_axes(source, check_axes(axes), stored, shape, "--axes"), shape, stored, "option")
    named = axes_in_name(source)
    if named is not None:
        return FrameAxes(source, _fit_axes(source, named, stored, shape, "its name gives axes"), shape, stored, "name")
    unknown = [i for i, (a, n) in enumerate(zip(stored, shape)) if a not in _LABELLED and n > 1]
    if not unknown or "Y" not in stored or "X" not in stored:
        return FrameAxes(source, stored, shape, stored, "file")
    if len(unknown) > 1 or any(a in "CS" and n > 1 for a, n in zip(stored, shape)):
        described = ", ".join(f"{stored[i]} (size {shape[i]})" for i in unknown)
        example = "T" + "C" * (len(unknown) > 1) + "".join(a if a in _LABELLED else "" for a in stored)
        raise InputError(source, f"cannot tell what axis {described} is in axes {stored} of shape "
                                 f"{' x '.join(str(n) for n in shape)}; give the axes with --axes (Python: axes=), "
                                 f"e.g. --axes {example if len(example) == len(stored) else 'TCYX'}", field="axes")
    i = unknown[0]
    taken = {a for a, n in zip(stored, shape) if n > 1}
    letter = "C" if shape[i] <= MAX_GUESSED_CHANNELS else next((a for a in "ZT" if a not in taken), "C")
    letters = ["Q" if a == letter else a for a in stored]  # a size-1 axis of the same letter is ignored anyway
    letters[i] = letter
    return FrameAxes(source, "".join(letters), shape, stored, "guess")


def frame_axes(path: str | os.PathLike, *, axes: str | None = None) -> FrameAxes:
    """How :func:`read_frame` reads ``path``'s axes (its header only), with the one-line
    :meth:`FrameAxes.note` a plain stack's guess comes with.

    Parameters
    ----------
    path : str or path-like
    axes : str, optional
        As :func:`read_frame` takes it.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> tifffile.imwrite(path, np.zeros((5, 8, 9), np.uint16))
    >>> frame_axes(path).note()
    'read movie.tif as ZYX (5 x 8 x 9): 5 Z planes; pass --axes TYX if they are time points, --axes CYX if channels'
    >>> frame_axes(path, axes="TYX").axes, frame_axes(path, axes="TYX").note() is None
    ('TYX', True)
    """
    if is_source_path(path):
        from .formats import open_source

        opened = open_source(path)
        if axes is not None:
            raise InputError(opened.source, f"names its own axes; --axes {axes} is for TIFF files", field="axes")
        sizes = {**{a: opened.sizes[a] for a in "TZ" if opened.sizes[a] > 1}, "C": len(opened.channel_names),
                 "Y": opened.shape[0], "X": opened.shape[1]}
        letters = "".join(sizes)
        return FrameAxes(opened.source, letters, tuple(sizes.values()), letters)
    source = _check_file(path)
    if not _is_tiff(source):
        image = _read_pillow_image(source)
        stored = "YX" if image.ndim == 2 else "YXS"
        if axes is not None and check_axes(axes).replace("C", "S") != stored:
            raise InputError(source, f"--axes {axes}: this image is {'YX (gray)' if image.ndim == 2 else 'YXC (colour)'}",
                             field="axes")
        return FrameAxes(source, stored, tuple(image.shape), stored, "option" if axes else "file")
    import tifffile

    with library_errors(source, "TIFF"):
        with tifffile.TiffFile(source) as tif:
            series = tif.series[0]
            stored, shape = series.axes, series.shape
    return _resolve_axes(source, stored, shape, axes)


# ---- label images: which files hold labels, not intensities

#: What fewseg's label writers put in a label TIFF's (shaped) metadata: ``{"fewseg": "labels"}``.
LABELS_MARK = {"fewseg": "labels"}
#: Name parts that say a file holds labels (``nuclei_labels.tif``, ``mask2d.tif``, ``truth.png``).
_LABEL_WORDS = re.compile(r"(?:^|[._\- ])(labels?|masks?|truth|gt|ground[_-]?truth|seg|segmentation|instances?)(?:\d*d)?"
                          r"(?:$|[._\- ])", re.IGNORECASE)
#: A label image is flat: at least this share of neighbouring pixels are equal (stardist's mask2d.tif:
#: 0.978; its img2d.tif: 0.053; scikit-image's camera 0.24, moon 0.60).
FLAT_SHARE = 0.9


def label_axes(path: str | os.PathLike) -> str:
    """A label TIFF's axes as :func:`frame_axes` reads them, except that a plain stack's
    guessed axis is Z planes, never channels (labels have no channels)."""
    read = frame_axes(path)
    if read.how != "guess":
        return read.axes
    return "".join("Z" if a not in read.stored and a != "Z" and "Z" not in read.axes else a for a in read.axes)


def label_image_reason(path: str | os.PathLike) -> str | None:
    """Why the image file at ``path`` holds labels rather than intensities, or None.

    A TIFF or PNG of one channel of integer (or boolean) pixels is a label image when

    1. fewseg's label writer marked it (:data:`LABELS_MARK` in the TIFF's metadata);
    2. its name says so: a name part ``label(s)``, ``mask(s)``, ``truth``, ``gt``,
       ``seg``, ``segmentation``, ``instance(s)`` (``mask2d.tif``, ``cells_labels.tif``);
    3. or its first plane looks like one: 0 is its most common value and at least
       :data:`FLAT_SHARE` of neighbouring pixels are equal (what napari's own label
       writer saves, whatever the name).

    Float pixels, several channels or any other file: None (an image). Reads the header
    and, for rule 3, the first plane only.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> labels = np.zeros((40, 40), np.uint16); labels[5:15, 5:15] = 1; labels[20:30, 8:20] = 2
    >>> tifffile.imwrite(d / "untitled.tif", labels)
    >>> label_image_reason(d / "untitled.tif")
    'its pixels are whole numbers in flat areas on a background of 0'
    >>> tifffile.imwrite(d / "image.tif", np.random.default_rng(0).integers(0, 4000, (40, 40), dtype=np.uint16))
    >>> label_image_reason(d / "image.tif") is None
    True
    """
    source = os.fspath(path)
    if is_source_path(source) or not Path(source).is_file():
        return None
    if _is_tiff(source):
        import tifffile

        with library_errors(source, "TIFF"):
            with tifffile.TiffFile(source) as tif:
                series = tif.series[0]
                dtype, letters = np.dtype(series.dtype), label_axes(source)
                if dtype.kind not in "biu" or any(a in "CS" and n > 1 for a, n in zip(letters, series.shape)):
                    return None
                marked = any(isinstance(m, dict) and m.get("fewseg") == LABELS_MARK["fewseg"]
                             for m in (tif.shaped_metadata or ()))
                if marked:
                    return "fewseg saved it as labels"
                if _LABEL_WORDS.search(Path(source).stem):
                    return "its name says labels"
                plane = series.pages[0].asarray() if len(series.pages) else None
    elif Path(source).suffix.lower() == ".png":
        plane = _read_pillow_image(source, palette_indices=True)
        if plane.ndim != 2 or plane.dtype.kind not in "biu":
            return None
        if _LABEL_WORDS.search(Path(source).stem):
            return "its name says labels"
    else:
        return None
    if plane is None or plane.ndim != 2 or plane.size < 2:
        return None
    values, counts = np.unique(plane, return_counts=True)
    if values[counts.argmax()] != 0:
        return None
    flat = ((plane[:, 1:] == plane[:, :-1]).sum() + (plane[1:] == plane[:-1]).sum()) / max(
        plane[:, 1:].size + plane[1:].size, 1)
    return "its pixels are whole numbers in flat areas on a background of 0" if flat >= FLAT_SHARE else None


# ---- TIFF


def _read_tiff_plane(source: str, *, z: int | None, t: int | None, axes: str | None = None) -> tuple[np.ndarray, list[str]]:
    """``(channels, Y, X)`` in the file's dtype, and the channel names."""
    import tifffile

    with library_errors(source, "TIFF"):
        with tifffile.TiffFile(source) as tif:
            series = tif.series[0]
            _check_dtype(source, series.dtype)
            _check_size(source, series.shape, series.axes)
            letters = _resolve_axes(source, series.axes, series.shape, axes).axes
            index = _plan_axes(source, letters, series.shape, z=z, t=t)
            check_memory(source, _selection_bytes(series, index), _declared(series.shape, series.axes))
            data = _read_selection(series, index)
            ome_names = _ome_channel_names(tif.ome_metadata) if tif.is_ome else None
    kept_axes = "".join(a for a, ix in zip(letters, index) if isinstance(ix, slice))
    data = _to_cyx(data, kept_axes)
    names = ome_names if ome_names is not None and len(ome_names) == data.shape[0] else None
    return data, names or [str(i) for i in range(data.shape[0])]


def _plan_axes(source: str, axes: str, shape: tuple[int, ...], *, z, t) -> list:
    """An index per axis: an int picks one plane, ``slice(None)`` keeps the axis (Y, X, channels).

    ``axes``: as :func:`_resolve_axes` gives them (no unlabelled axis of size > 1 left).
    """
    if "Y" not in axes or "X" not in axes:
        raise InputError(source, f"expected an image with Y and X axes; the file has axes {axes} of shape {shape}; "
                                 "give them with --axes (Python: axes=), e.g. --axes CYX", field="axes")
    index: list = []
    for axis, size in zip(axes, shape):
        if axis in "ZT":
            index.append(_pick_plane(source, axis, size, z if axis == "Z" else t))
        elif axis in "YXCS":
            index.append(slice(None))
        else:
            index.append(0)
    for axis, value in (("Z", z), ("T", t)):
        if axis not in axes:
            _check_no_axis(source, axis, value)
    return index


def _pick_plane(source: str, axis: str, size: int, value: int | None) -> int:
    name, option, plural = _AXIS_OPTIONS[axis]
    if value is None:
        if size > 1:
            raise InputError(
                source, f"the file has {size} {plural}; choose one with {option} (Python: {name}=) in 0..{size - 1}", field=axis
            )
        return 0
    value = operator.index(value)
    if not 0 <= value < size:
        raise InputError(source, f"{option} {value} is out of range: the file has {size} {plural} (0..{size - 1})", field=axis)
    return value


def _paged(series) -> tuple[bool, int, tuple[int, ...]]:
    """Whether pages can be read one by one, the number of leading (page) axes and their shape."""
    page_axes = series.keyframe.axes
    n_lead = len(series.axes) - len(page_axes)
    lead_shape = tuple(series.shape[:n_lead])
    paged = n_lead > 0 and series.axes.endswith(page_axes) and int(np.prod(lead_shape)) == len(series.pages)
    return paged, n_lead, lead_shape


def _selection_bytes(series, index: list) -> int:
    """Bytes that reading ``index`` of ``series`` and converting it to float32 takes."""
    kept = [n if isinstance(ix, slice) else 1 for ix, n in zip(index, series.shape)]
    selected = int(np.prod(kept, dtype=object))
    paged, n_lead, _ = _paged(series)
    read = selected if paged else int(np.prod([int(n) for n in series.shape], dtype=object))
    return read * np.dtype(series.dtype).itemsize + selected * 4


def _read_selection(series, index: list) -> np.ndarray:
    """``series.asarray()[index]``, reading only the pages needed when the layout allows."""
    paged, n_lead, lead_shape = _paged(series)
    if not paged:
        return series.asarray()[tuple(index)]
    grids = [np.arange(n)[ix] if isinstance(ix, slice) else np.array([ix]) for ix, n in zip(index[:n_lead], lead_shape)]
    mesh = np.meshgrid(*grids, indexing="ij")
    keys = np.ravel_multi_index([m.ravel() for m in mesh], lead_shape)
    data = series.asarray(key=[int(k) for k in keys])
    data = data.reshape(tuple(len(g) for g in grids) + tuple(series.shape[n_lead:]))
    lead_index = tuple(slice(None) if isinstance(ix, slice) else 0 for ix in index[:n_lead])
    return data[lead_index + tuple(index[n_lead:])]


def _to_cyx(data: np.ndarray, axes: str) -> np.ndarray:
    """Reorder an array with ``axes`` (Y, X and channel axes, in any order) to ``(C, Y, X)``."""
    y, x = axes.index("Y"), axes.index("X")
    order = [i for i in range(len(axes)) if i not in (y, x)] + [y, x]
    data = np.transpose(data, order)
    return data.reshape((-1,) + data.shape[-2:])


def _ome_channel_names(ome_xml: str | None) -> list[str] | None:
    """``Pixels/Channel@Name`` of the first OME image, or None when absent or unparsable."""
    if not ome_xml:
        return None
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    pixels = root.find("{*}Image/{*}Pixels")
    if pixels is None:
        return None
    channels = pixels.findall("{*}Channel")
    if not channels:
        return None
    return [c.get("Name") or str(i) for i, c in enumerate(channels)]


# ---- Pillow formats


def _read_pillow_image(source: str, *, palette_indices: bool = False) -> np.ndarray:
    """The only image of a Pillow-readable file, ``(Y, X)`` or ``(Y, X, S)``.

    Palette images give colours, or their palette indices with ``palette_indices``
    (what a label image saved in palette mode means).
    """
    import imageio.v3 as iio
    from PIL import Image

    try:
        with library_errors(source, "an image", loggers=()):
            with iio.imopen(source, "r", plugin="pillow") as image_file:
                properties = image_file.properties()
                n_images = properties.n_images
                if n_images is not None and n_images > 1:
                    raise InputError(
                        source, f"the file holds {n_images} images; expected one frame (for stacks use a TIFF and --z / --t)"
                    )
                shape = tuple(properties.shape)
                _check_size(source, shape, "YXS"[: len(shape)])
                nbytes = int(np.prod(shape, dtype=object)) * (np.dtype(properties.dtype).itemsize + 8)
                check_memory(source, nbytes, _declared(shape, "YXS"[: len(shape)]))
                paletted = palette_indices and image_file.metadata(index=0).get("mode") == "P"
                return image_file.read(index=0, mode="P" if paletted else None)
    except Image.DecompressionBombError as exc:
        raise InputError(source, f"refused by Pillow as a possible decompression bomb: {describe(exc)}") from None


def _read_pillow(source: str) -> tuple[np.ndarray, list[str]]:
    image = _read_pillow_image(source)
    if image.ndim == 3 and image.shape[2] in (2, 4):
        image = image[..., :-1]  # drop alpha (gray + alpha, RGBA)
    if image.ndim == 2:
        image = image[None]
    elif image.ndim == 3:
        image = np.moveaxis(image, 2, 0)
    else:
        raise InputError(source, f"expected a gray or RGB image; got an array of shape {image.shape}")
    return image, [str(i) for i in range(image.shape[0])]


# ---- channels and pixel types


def _select_channels(source: str, names: list[str], channels) -> list[int]:
    """Indices into ``names`` for the ``channels`` request (see :func:`read_frame`)."""
    if channels is None:
        return list(range(len(names)))
    if isinstance(channels, (str, int, np.integer)):
        channels = [channels]
    requested: list = []
    for item in channels:
        if isinstance(item, str):
            requested.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            requested.append(item)
    if not requested:
        raise InputError(source, "no channel was named", field="channels")
    return [_channel_index(source, names, item) for item in requested]


def _channel_index(source: str, names: list[str], item) -> int:
    if isinstance(item, str):
        if item in names:
            return names.index(item)
        if item.lstrip("-").isdigit():
            item = int(item)
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 0 <= item < len(names):
        return int(item)
    available = ", ".join(f"{i}={name!r}" for i, name in enumerate(names))
    raise InputError(source, f"no channel {item!r}; the file has {len(names)} channel(s): {available}", field="channels")


def _check_dtype(source: str, dtype) -> None:
    dtype = np.dtype(dtype)
    if dtype.kind not in "buif":
        raise InputError(source, f"unsupported pixel type {dtype}; expected integers, floats or booleans", field="dtype")


def _as_float32(source: str, data: np.ndarray) -> np.ndarray:
    _check_dtype(source, data.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(data, dtype=np.float32)


# --------------------------------------------------------------------------- writing

_EXACT_DTYPES = (np.uint8, np.uint16, np.int16, np.uint32, np.int32)


def write_frame(path: str | os.PathLike, frame: Frame) -> None:
    """Write ``frame`` as an OME-TIFF with axes ``CYX`` and its channel names.

    Pixels are stored in the smallest integer type that holds them exactly (uint8,
    uint16, int16, uint32, int32) when they are all whole numbers, else as float32.
    The file appears complete or not at all (written through :mod:`fewseg._atomic`).

    Parameters
    ----------
    path : str or path-like
        Must end in ``.tif`` or ``.tiff`` (``.ome.tif`` is conventional).
    frame : Frame

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "frame.ome.tif"
    >>> frame = Frame.from_array(np.arange(12.0).reshape(3, 4), channel_names=("DAPI",))
    >>> write_frame(path, frame)
    >>> back = read_frame(path)
    >>> back.channel_names, np.array_equal(back.data, frame.data)
    (('DAPI',), True)
    """
    import tifffile

    source = os.fspath(path)
    if Path(source).suffix.lower() not in (".tif", ".tiff"):
        raise InputError(source, "write_frame writes OME-TIFF; give a name ending in .ome.tif or .tif")
    data = np.asarray(frame.data)
    data = data.astype(_smallest_exact_dtype(data), copy=False)
    metadata = {"axes": "CYX", "Channel": {"Name": list(frame.channel_names)}}
    with atomic_path(source) as tmp:
        tifffile.imwrite(tmp, data, ome=True, photometric="minisblack", metadata=metadata)


def _smallest_exact_dtype(data: np.ndarray) -> np.dtype:
    """The first of :data:`_EXACT_DTYPES` that holds ``data`` exactly, else float32."""
    if data.size == 0 or not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
        return np.dtype(np.float32)
    lo, hi = data.min(), data.max()
    for dtype in _EXACT_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float32)


def plane_counts(path: str | os.PathLike, *, axes: str | None = None) -> dict[str, int]:
    """How many Z planes and time points a file holds: ``{"Z": nz, "T": nt}``.

    Non-TIFF images have one of each. Reads only the file's header. ``axes``: as
    :func:`read_frame` takes it.
    """
    if is_source_path(path):
        from .formats import open_source

        if axes is not None:
            frame_axes(path, axes=axes)  # refused: such files name their own axes
        sizes = open_source(path).sizes
        return {"Z": sizes["Z"], "T": sizes["T"], "XY": sizes["XY"]}
    source = _check_file(path)
    if not _is_tiff(source):
        if axes is not None:
            frame_axes(source, axes=axes)
        return {"Z": 1, "T": 1}
    sizes = frame_axes(source, axes=axes).sizes()
    return {"Z": int(sizes.get("Z", 1)), "T": int(sizes.get("T", 1))}


# --------------------------------------------------------------------------- other formats


class PlaneSelection:
    """One plane of a :mod:`fewseg.io.formats` source, chosen and checked like
    :func:`read_frame` chooses (``z`` / ``t`` / ``xy`` / ``channels``); read whole or a
    region at a time (:meth:`read`)."""

    def __init__(self, source, *, z, t, xy, channels):
        self.source = source
        sizes = source.sizes
        self.z = _pick_plane(source.source, "Z", sizes["Z"], z)
        self.t = _pick_plane(source.source, "T", sizes["T"], t)
        self.xy = operator.index(xy or 0)
        if not 0 <= self.xy < sizes["XY"]:
            raise InputError(source.source, f"--xy {self.xy} is out of range: the image has {sizes['XY']} XY position(s) "
                                            f"(0..{sizes['XY'] - 1})", field="XY")
        _check_dtype(source.source, source.dtype)
        names = list(source.channel_names)
        self.channels = _select_channels(source.source, names, channels)
        self.channel_names = tuple(names[i] for i in self.channels)
        self.shape = source.shape

    def read(self, *, rows: slice = slice(None), cols: slice = slice(None), location: Location | None = None) -> Frame:
        """The plane (or its ``rows`` x ``cols`` region) as a float32 :class:`Frame`."""
        data = self.source.read(t=self.t, z=self.z, xy=self.xy, channels=self.channels, rows=rows, cols=cols)
        return Frame(_as_float32(self.source.source, data), channel_names=self.channel_names, source=self.source.source,
                     location=location or Location(xy=self.xy, z=self.z, time=self.t))


def open_plane(path: str | os.PathLike, *, z: int | None = None, t: int | None = None, xy: int | None = None,
               channels=None, level: int = 0) -> PlaneSelection:
    """Open one plane of an OME-Zarr, vendor or TIFF file for whole or region reads
    (metadata only until :meth:`PlaneSelection.read`); selection as :func:`read_frame`."""
    from .formats import open_source

    return PlaneSelection(open_source(path, level=level), z=z, t=t, xy=xy, channels=channels)
