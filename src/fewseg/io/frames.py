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
* A single other axis of size > 1 (``Q``, ``I``: tifffile's "unknown" and "image
  sequence") is taken to be channels, provided the file has no ``C`` or ``S`` axis.
  Axes of size 1 are ignored whatever their letter.
"""

from __future__ import annotations

import operator
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path
from .._reading import check_input_file, check_memory, describe, library_errors
from ..errors import InputError
from .formats import is_source_path
from ..objects import Frame, Location

__all__ = ["read_frame", "write_frame", "read_array", "open_plane"]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf2", ".tf8")

_AXIS_OPTIONS = {"Z": ("z", "--z", "Z planes"), "T": ("t", "--t", "time points")}


# --------------------------------------------------------------------------- reading


def read_frame(
    path: str | os.PathLike,
    *,
    z: int | None = None,
    t: int | None = None,
    channels: str | Sequence[int | str] | None = None,
    location: Location | None = None,
    level: int = 0,
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
        index is out of range; a channel is unknown; the pixel type is not numeric.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.ome.tif"
    >>> tifffile.imwrite(path, np.zeros((3, 2, 8, 9), np.uint16),
    ...                  metadata={"axes": "ZCYX", "Channel": {"Name": ["YFP", "BF"]}})
    >>> frame = read_frame(path, z=1, channels="BF")
    >>> frame.data.shape, frame.channel_names, frame.location.z
    ((1, 8, 9), ('BF',), 1)
    """
    if location is None:
        location = Location(z=z or 0, time=t or 0)
    if is_source_path(path):  # OME-Zarr, ND2, CZI, LIF...: fewseg.io.formats
        return open_plane(path, z=z, t=t, xy=location.xy, channels=channels, level=level).read(location=location)
    source = _check_file(path)
    if level:
        raise InputError(source, f"--level {level}: only OME-Zarr and vendor files are read at other resolution levels",
                         field="level")
    if _is_tiff(source):
        data, names = _read_tiff_plane(source, z=z, t=t)
    else:
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


# ---- TIFF


def _read_tiff_plane(source: str, *, z: int | None, t: int | None) -> tuple[np.ndarray, list[str]]:
    """``(channels, Y, X)`` in the file's dtype, and the channel names."""
    import tifffile

    with library_errors(source, "TIFF"):
        with tifffile.TiffFile(source) as tif:
            series = tif.series[0]
            _check_dtype(source, series.dtype)
            _check_size(source, series.shape, series.axes)
            index = _plan_axes(source, series.axes, series.shape, z=z, t=t)
            check_memory(source, _selection_bytes(series, index), _declared(series.shape, series.axes))
            data = _read_selection(series, index)
            ome_names = _ome_channel_names(tif.ome_metadata) if tif.is_ome else None
    kept_axes = "".join(a for a, ix in zip(series.axes, index) if isinstance(ix, slice))
    data = _to_cyx(data, kept_axes)
    names = ome_names if ome_names is not None and len(ome_names) == data.shape[0] else None
    return data, names or [str(i) for i in range(data.shape[0])]


def _plan_axes(source: str, axes: str, shape: tuple[int, ...], *, z, t) -> list:
    """An index per axis: an int picks one plane, ``slice(None)`` keeps the axis (Y, X, channels)."""
    if "Y" not in axes or "X" not in axes:
        raise InputError(source, f"expected an image with Y and X axes; the file has axes {axes} of shape {shape}", field="axes")
    labelled = [a in "CS" and n > 1 for a, n in zip(axes, shape)]
    unknown = [(i, a, n) for i, (a, n) in enumerate(zip(axes, shape)) if a not in "YXCSZT" and n > 1]
    if unknown:
        if len(unknown) > 1 or any(labelled):
            described = ", ".join(f"{a} (size {n})" for _, a, n in unknown)
            raise InputError(
                source,
                f"cannot tell what axis {described} is in axes {axes} of shape {shape}; "
                "save the image with labelled axes (e.g. as OME-TIFF with C/Z/T)",
                field="axes",
            )
        labelled[unknown[0][0]] = True
    index: list = []
    for axis, size, is_channel in zip(axes, shape, labelled):
        if axis in "ZT":
            index.append(_pick_plane(source, axis, size, z if axis == "Z" else t))
        elif axis in "YX" or is_channel:
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


def plane_counts(path: str | os.PathLike) -> dict[str, int]:
    """How many Z planes and time points a file holds: ``{"Z": nz, "T": nt}``.

    Non-TIFF images have one of each. Reads only the file's header.
    """
    if is_source_path(path):
        from .formats import open_source

        sizes = open_source(path).sizes
        return {"Z": sizes["Z"], "T": sizes["T"], "XY": sizes["XY"]}
    source = _check_file(path)
    if not _is_tiff(source):
        return {"Z": 1, "T": 1}
    import tifffile

    with library_errors(source, "TIFF"):
        with tifffile.TiffFile(source) as tif:
            series = tif.series[0]
            sizes = dict(zip(series.axes, series.shape))
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
