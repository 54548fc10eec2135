"""Regions of a large TIFF frame, read tile by tile (``tifffile``'s Zarr view).

:func:`fewseg.io.frames.read_frame` reads TIFF planes whole; a mosaic too large for memory
is read here a block at a time (:mod:`fewseg.classic.blockwise`). Pyramidal TIFFs give their
levels.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ._source import PlaneSource

__all__ = ["open_tiff"]


def open_tiff(source: str, *, level: int = 0) -> PlaneSource:
    """Open the first series of a TIFF for region reads (see :class:`PlaneSource`)."""
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(source) as tif:
            series = tif.series[0]
            n_levels = len(series.levels)
            level_shape = series.levels[min(max(level, 0), n_levels - 1)].shape
            axes, shape, dtype = series.axes, series.shape, series.dtype
            names = None
            if tif.is_ome and tif.ome_metadata:
                import xml.etree.ElementTree as ET

                pixels = ET.fromstring(tif.ome_metadata).find("{*}Image/{*}Pixels")
                if pixels is not None:
                    names = [c.get("Name") or str(i) for i, c in enumerate(pixels.findall("{*}Channel"))]
    except (ValueError, OSError, EOFError, KeyError, IndexError) as exc:
        raise InputError(source, f"cannot read it as TIFF: {exc}") from None
    if not 0 <= level < n_levels:
        raise InputError(source, f"--level {level} is out of range: the file has {n_levels} level(s)", field="level")
    if "Y" not in axes or "X" not in axes or any(a not in "TZCSYX" and n > 1 for a, n in zip(axes, shape)):
        raise InputError(source, f"expected an image with Y, X and optional T, Z, C axes; got {axes} {shape}", field="axes")
    sizes = dict(zip(axes, shape))
    n_channels = sizes.get("C", 1) * sizes.get("S", 1)
    if names is None or len(names) != n_channels:
        names = [str(i) for i in range(n_channels)]

    def read(*, t, z, xy, channels, rows, cols):
        store = tifffile.imread(source, aszarr=True, level=level)
        try:
            opened = zarr.open(store, mode="r")
            array = opened[str(level)] if isinstance(opened, zarr.Group) else opened
            index = []
            for axis in axes:
                index.append({"T": t, "Z": z, "Y": rows, "X": cols}.get(axis, slice(None) if axis in "CS" else 0))
            data = np.asarray(array[tuple(index)])
        finally:
            store.close()
        kept = [a for a in axes if a in "CSYX"]
        order = [kept.index(a) for a in "CS" if a in kept] + [kept.index("Y"), kept.index("X")]
        data = np.transpose(data, order)
        data = data.reshape((-1,) + data.shape[-2:])
        return data[channels]

    y, x = level_shape[axes.index("Y")], level_shape[axes.index("X")]
    return PlaneSource(source, {"T": sizes.get("T", 1), "Z": sizes.get("Z", 1), "XY": 1}, tuple(names), (y, x),
                       np.dtype(dtype), level, n_levels, "tiff", read)
