"""Writing a batch's results: one annotation file, a label stack, or OME-Zarr labels.

* ``.json`` / ``.geojson``: every object of every frame, each carrying its frame's
  location (:func:`fewseg.io.annotations.write_annotations`).
* ``.tif`` / ``.png`` for one frame: its label image, as before. ``.tif`` for several
  frames: a ``(frame, Y, X)`` label stack in the batch's order (the order is recorded
  in the run's ``.fewseg.json``).
* ``IMAGE.ome.zarr/labels/NAME``: a label image with the OME-Zarr image's axes (less
  ``c``) written into its ``labels/`` group (:func:`fewseg.io.formats.omezarr.write_labels`);
  frames not in the batch stay 0. Planes are rasterised one at a time as they are
  written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ..errors import InputError
from ..objects import labels_from_masks
from .frames import LABELS_MARK

__all__ = ["zarr_labels_target", "write_batch_output"]


def zarr_labels_target(path: str | os.PathLike) -> tuple[Path, str] | None:
    """``(image, name)`` when ``path`` is ``IMAGE/labels/NAME`` inside an OME-Zarr image."""
    from .formats import is_zarr_path

    p = Path(path)
    if p.parent.name == "labels" and is_zarr_path(p.parent.parent):
        return p.parent.parent, p.name
    return None


def _plane_labels(result, shape) -> np.ndarray:
    return labels_from_masks(result.segmentation.masks, shape).astype(np.uint32)


def write_batch_output(path: str | os.PathLike, results, *, shape: tuple[int, int], tags, level: int = 0,
                       properties: dict | None = None, coordinates: str = "pixel-corner", channel: int = 0) -> None:
    """Write the frames' results (``FrameResult`` list) to ``path`` (see the module's text).

    ``coordinates``: how JSON outputs place x / y (:data:`fewseg.io.annotations.COORDINATES`).
    ``channel``: the channel every object carries in the annotation formats (NimbusImage
    draws an annotation on its channel's layer).
    """
    from .annotations import write_annotations

    path = Path(path)
    target = zarr_labels_target(path)
    if target is not None:
        _write_zarr_labels(*target, results, shape=shape, level=level, properties=properties)
        return
    if path.suffix.lower() in (".tif", ".tiff") and len(results) > 1:
        import tifffile

        stack = np.stack([_plane_labels(r, shape) for r in results])
        stack = stack.astype(np.uint16) if stack.max(initial=0) <= 65535 else stack
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, stack, photometric="minisblack", compression="zlib",
                             metadata={"axes": "QYX", **LABELS_MARK})  # marked: napari's fewseg reader opens Labels
        return
    if path.suffix.lower() == ".png" and len(results) > 1:
        raise InputError(str(path), f"a PNG holds one label image; {len(results)} frames were segmented: write a .tif stack")
    write_annotations(path, [a for r in results for a in r.annotations(tags=tags, channel=channel)], shape=shape,
                      coordinates=coordinates)


def _write_zarr_labels(image: Path, name: str, results, *, shape, level: int, properties) -> None:
    import dask
    import dask.array as da

    from .formats.omezarr import open_omezarr, write_labels

    if level:
        raise InputError(str(image), f"labels are written at full resolution; segment with --level 0 (got {level})",
                         field="level")
    source = open_omezarr(str(image))
    if tuple(source.shape) != tuple(shape):
        raise InputError(str(image), f"the image is {source.shape} but the frames segmented are {shape}")
    axes = source.axes_without_channel
    sizes = {"t": source.sizes["T"], "z": source.sizes["Z"]}
    if any(r.location.xy for r in results):
        raise InputError(str(image), "an OME-Zarr image holds one XY position; the batch had others")
    by_plane = {(r.location.time, r.location.z): r for r in results}
    empty = da.zeros(shape, dtype=np.uint32, chunks=shape)

    def plane(t, z):
        r = by_plane.get((t, z))
        if r is None:
            return empty
        return da.from_delayed(dask.delayed(_plane_labels)(r, shape), shape=shape, dtype=np.uint32)

    lead = [a for a in axes if a in "tz"]
    if not lead:
        stack = plane(0, 0)
    elif lead == ["t", "z"]:
        stack = da.stack([da.stack([plane(t, z) for z in range(sizes["z"])]) for t in range(sizes["t"])])
    elif lead == ["z", "t"]:
        stack = da.stack([da.stack([plane(t, z) for t in range(sizes["t"])]) for z in range(sizes["z"])])
    elif lead == ["t"]:
        stack = da.stack([plane(t, 0) for t in range(sizes["t"])])
    else:
        stack = da.stack([plane(0, z) for z in range(sizes["z"])])
    with dask.config.set(scheduler="threads"):
        write_labels(image, stack, name=name, axes="".join(axes), properties=properties)
