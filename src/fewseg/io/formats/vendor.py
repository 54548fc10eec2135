"""Vendor formats (ND2, CZI, LIF, ...) through ``bioio`` and its reader plugins.

``pip install 'fewseg[formats]'`` installs bioio with the ND2, CZI, LIF and OME-TIFF
plugins; bioio picks the plugin by the file. Scenes are XY positions; a plane (or a
region of it) is read through bioio's dask array, so only the chunks needed are read.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError, MissingDependencyError, require
from ._source import PlaneSource

__all__ = ["open_vendor"]


def open_vendor(source: str, *, level: int = 0, reader=None) -> PlaneSource:
    """Open a file bioio reads (see :class:`PlaneSource`); ``reader``: a bioio reader
    class to use instead of the one bioio would pick."""
    bioio = require("bioio", extra="formats", purpose=f"Reading {source}")
    try:
        image = bioio.BioImage(source, reader=reader) if reader is not None else bioio.BioImage(source)
    except (ImportError, MissingDependencyError):
        raise
    except Exception as exc:  # noqa: BLE001 -- bioio plugins raise their own types; one line for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "UnsupportedFileFormat" in type(exc).__name__:
            reason += " (install the reader plugin for it: pip install 'fewseg[formats]')"
        raise InputError(source, f"cannot read it through bioio: {reason}") from None
    levels = tuple(image.resolution_levels)
    if level not in levels:
        raise InputError(source, f"--level {level} is not one of the file's resolution levels {list(levels)}",
                         field="level")
    scenes = tuple(image.scenes)

    def select(xy):
        if not 0 <= xy < len(scenes):
            raise InputError(source, f"--xy {xy} is out of range: the file has {len(scenes)} scene(s) (0..{len(scenes) - 1})",
                             field="XY")
        if image.current_scene_index != xy:
            image.set_scene(xy)
        if image.current_resolution_level != level:
            image.set_resolution_level(level)

    select(0)
    dims = image.dims
    names = tuple(str(n) for n in (image.channel_names or [])) or tuple(str(i) for i in range(dims.C))

    def read(*, t, z, xy, channels, rows, cols):
        select(xy)
        data = image.get_image_dask_data("CZYX", T=t, C=channels)[:, z, rows, cols]
        return np.asarray(data.compute(scheduler="synchronous"))

    return PlaneSource(source, {"T": dims.T, "Z": dims.Z, "XY": len(scenes)}, names, (dims.Y, dims.X),
                       np.dtype(image.dtype), level, len(levels), f"bioio ({type(image.reader).__module__.split('.')[0]})",
                       read)
