"""Image sources beyond TIFF / PNG / JPEG: OME-Zarr and the vendor formats bioio reads.

A source is opened once (metadata only) and read plane by plane or region by region, so
no caller ever holds more than the plane or block it asked for:

* OME-Zarr images (NGFF 0.4 on Zarr v2 and 0.5 on Zarr v3), through ``ome-zarr``
  (:mod:`fewseg.io.formats.omezarr`), at a chosen resolution level.
* ND2, CZI, LIF and the other formats bioio's reader plugins know, through ``bioio``
  (:mod:`fewseg.io.formats.vendor`): ``pip install 'fewseg[formats]'``. Scenes are the XY
  positions.
* Plain TIFF, for reading regions of a large (mosaic) frame (:mod:`fewseg.io.formats.tiff`).

:func:`fewseg.io.frames.read_frame` dispatches here for the first two, so ``--z / --t / --xy
/ --channels`` select the same way whatever the format (:func:`is_source_path`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ._source import PlaneSource

__all__ = ["PlaneSource", "open_source", "is_source_path", "VENDOR_SUFFIXES"]

#: Suffixes read through bioio (lower case). OME-Zarr is recognised by its metadata.
VENDOR_SUFFIXES = (".nd2", ".czi", ".lif", ".dv", ".r3d", ".sldy", ".vsi", ".qptiff", ".lsm", ".oib", ".oif", ".ims")


def is_zarr_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Zarr group (a directory with ``zarr.json`` or ``.zattrs``/``.zgroup``)."""
    p = Path(path)
    return p.is_dir() and any((p / name).exists() for name in ("zarr.json", ".zattrs", ".zgroup"))


def is_source_path(path: str | os.PathLike) -> bool:
    """Whether :func:`fewseg.io.frames.read_frame` should read ``path`` through this package
    (an OME-Zarr directory, or a vendor format by its suffix)."""
    p = Path(path)
    return is_zarr_path(p) or p.suffix.lower() == ".zarr" or p.suffix.lower() in VENDOR_SUFFIXES


def open_source(path: str | os.PathLike, *, level: int = 0) -> PlaneSource:
    """Open an image for plane or region reads (metadata only; pixels read on demand).

    Parameters
    ----------
    path : str or path-like
        An OME-Zarr image (directory), a vendor file bioio reads, or a TIFF.
    level : int
        Resolution level (0 = full resolution) of multi-resolution images.

    Raises
    ------
    InputError
        Missing or unreadable file, no such level, a reader plugin not installed.
    """
    from ...errors import InputError

    source = os.fspath(path)
    p = Path(source)
    if not p.exists():
        raise InputError(source, "no such file or directory")
    if p.is_dir() or p.suffix.lower() == ".zarr":
        from .omezarr import open_omezarr

        return open_omezarr(source, level=level)
    if p.suffix.lower() in (".tif", ".tiff", ".btf"):
        from .tiff import open_tiff

        return open_tiff(source, level=level)
    from .vendor import open_vendor

    return open_vendor(source, level=level)
