"""OME-Zarr images (NGFF 0.4 / Zarr v2 and NGFF 0.5 / Zarr v3) through ``ome-zarr``.

An image is one XY position with axes drawn from ``t, c, z, y, x``; channel names come
from its ``omero`` metadata. Pixels are read chunk-wise (``ome-zarr`` gives dask arrays
over the Zarr arrays; only the requested plane or region is computed). Label images are
written into an image's ``labels/`` group (:func:`write_labels`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ..._reading import library_errors
from ...errors import InputError, require
from ._source import PlaneSource

__all__ = ["open_omezarr", "write_labels", "write_image"]


def _reader_nodes(source: str):
    require("ome_zarr", extra="formats", purpose="Reading OME-Zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    # ome-zarr logs a "version mismatch" line while it probes the format: not for users.
    logging.getLogger("ome_zarr").setLevel(logging.ERROR)
    with library_errors(source, "OME-Zarr", loggers=(), also=(AttributeError,)):
        location = parse_url(source, mode="r")
        nodes = list(Reader(location)()) if location is not None else []
    images = [n for n in nodes if any(isinstance(s, Multiscales) for s in n.specs)]
    if not images:
        raise InputError(source, "is not an OME-Zarr image (no 'multiscales' metadata found)")
    return images[0]


def open_omezarr(source: str, *, level: int = 0) -> PlaneSource:
    """Open an OME-Zarr image at resolution ``level`` (see :class:`PlaneSource`)."""
    node = _reader_nodes(source)
    with library_errors(source, "OME-Zarr", loggers=(), also=(AttributeError,)):  # metadata of any shape: lists, axes, names
        return _open_node(source, node, level)


def _open_node(source: str, node, level: int) -> PlaneSource:
    levels = node.data
    if not 0 <= level < len(levels):
        raise InputError(source, f"--level {level} is out of range: the image has {len(levels)} resolution level(s) "
                                 f"(0..{len(levels) - 1})", field="multiscales")
    axes = [a.get("name") if isinstance(a, dict) else a for a in node.metadata.get("axes", [])]
    if not all(isinstance(a, str) for a in axes):
        raise InputError(source, f"expected axis names from t, c, z, y, x; got {axes}", field="axes")
    array = levels[level]
    if not axes:  # NGFF 0.1-0.3: always 5-D tczyx
        axes = list("tczyx")[-array.ndim:]
    if "y" not in axes or "x" not in axes or len(axes) != array.ndim or len(set(axes)) != len(axes):
        raise InputError(source, f"expected y and x axes, each once; the image has axes {axes} of shape "
                                 f"{tuple(array.shape)}", field="axes")
    unknown = [a for a, n in zip(axes, array.shape) if a not in ("t", "c", "z", "y", "x") and n > 1]
    if unknown:  # reading index 0 of them would drop data silently
        raise InputError(source, f"expected axes from t, c, z, y, x; axis {unknown[0]!r} has "
                                 f"{array.shape[axes.index(unknown[0])]} entries", field="axes")
    if min(array.shape, default=0) < 1:
        raise InputError(source, f"the array is empty (shape {tuple(array.shape)})", field="multiscales")
    sizes = dict(zip(axes, array.shape))
    n_channels = sizes.get("c", 1)
    names = node.metadata.get("channel_names") or []
    names = tuple(str(n) for n in names) if len(names) == n_channels else tuple(str(i) for i in range(n_channels))
    dtype = np.dtype(array.dtype)

    def read(*, t, z, xy, channels, rows, cols):
        index = []
        for axis in axes:
            if axis == "t":
                index.append(t)
            elif axis == "z":
                index.append(z)
            elif axis == "c":
                index.append(channels)
            elif axis == "y":
                index.append(rows)
            elif axis == "x":
                index.append(cols)
            else:
                index.append(0)
        with library_errors(source, "OME-Zarr", loggers=(), also=(AttributeError,)):  # a corrupt or truncated chunk
            data = np.asarray(array[tuple(index)].compute(scheduler="synchronous"))
        if "c" not in axes:
            data = np.stack([data] * len(channels)) if channels else data[None]
        return data

    return PlaneSource(source, {"T": sizes.get("t", 1), "Z": sizes.get("z", 1), "XY": 1}, names,
                       (sizes["y"], sizes["x"]), dtype, level, len(levels), "ome-zarr", read, axes=tuple(axes))


def write_image(path: str | os.PathLike, data: np.ndarray, *, axes: str, channel_names=None, version: str = "0.5",
                chunks=None, scale_factors=(2, 4)) -> None:
    """Write ``data`` as an OME-Zarr image (NGFF ``version`` 0.4 or 0.5) with a pyramid.

    Used by the tests and benchmarks to make datasets; written into a temporary
    directory beside ``path`` and moved into place complete.
    """
    require("ome_zarr", extra="formats", purpose="Writing OME-Zarr")
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image as _write

    fmt = {"0.4": FormatV04, "0.5": FormatV05}[version]()
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    root = zarr.open_group(str(tmp), mode="w", zarr_format=fmt.zarr_format)
    metadata = {}
    if channel_names is not None:
        metadata["omero"] = {"channels": [{"label": str(n), "color": "FFFFFF", "window": {"start": 0, "end": 1, "min": 0,
                                                                                           "max": 1}}
                                          for n in channel_names]}
    _write(data, root, axes=axes, fmt=fmt, scale_factors=list(scale_factors),
           storage_options=dict(chunks=chunks) if chunks else None, **metadata)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def write_labels(image_path: str | os.PathLike, labels: np.ndarray, *, name: str = "fewseg",
                 axes: str, properties: dict | None = None) -> Path:
    """Write a label image into the OME-Zarr image's ``labels/<name>`` group.

    ``labels``: integer array with ``axes`` (the image's axes without ``c``, e.g.
    ``"tzyx"``). An existing ``labels/<name>`` is replaced only if fewseg wrote it
    (its metadata says so); other label groups are kept. The group is written under a
    temporary name and renamed into place, so it appears complete or not at all.
    Returns the group's path.
    """
    require("ome_zarr", extra="formats", purpose="Writing OME-Zarr labels")
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_multiscale_labels

    image_path = Path(image_path)
    node = _reader_nodes(str(image_path))
    version = str(node.zarr.version) if hasattr(node.zarr, "version") else "0.4"
    fmt = FormatV05() if version.startswith("0.5") else FormatV04()
    root = zarr.open_group(str(image_path), mode="r+")
    target = image_path / "labels" / name
    if target.exists() and not _written_by_fewseg(target):
        raise InputError(str(target), "a label image of this name exists and was not written by fewseg; "
                                      "choose another name")
    labels_group = root.require_group("labels")
    tmp_name = f".{name}.part"
    shutil.rmtree(image_path / "labels" / tmp_name, ignore_errors=True)
    group = labels_group.create_group(tmp_name, overwrite=True)
    write_multiscale_labels([labels if hasattr(labels, "compute") else np.asarray(labels)], group, name=name, fmt=fmt, axes=axes,
                            label_metadata={"source": {"image": "../../"}, "properties": [],
                                            **({"fewseg": properties} if properties else {"fewseg": {}})})
    # write_multiscale_labels writes into group/labels/name: move that group to labels/name.
    made = image_path / "labels" / tmp_name
    inner = made / "labels" / name
    staged = image_path / "labels" / f".{name}.staged"
    shutil.rmtree(staged, ignore_errors=True)
    os.replace(inner, staged)
    shutil.rmtree(made)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staged, target)
    names = _label_names(image_path / "labels")
    if name not in names:
        labels_group = zarr.open_group(str(image_path / "labels"), mode="r+")
        _set_ome_attr(labels_group, "labels", names + [name], fmt)
    return target


def _attrs(group_path: Path) -> dict:
    if (group_path / "zarr.json").exists():
        return json.loads((group_path / "zarr.json").read_text()).get("attributes", {})
    if (group_path / ".zattrs").exists():
        return json.loads((group_path / ".zattrs").read_text())
    return {}


def _ome(attrs: dict) -> dict:
    return attrs.get("ome", attrs)


def _written_by_fewseg(group_path: Path) -> bool:
    return "fewseg" in _ome(_attrs(group_path)).get("image-label", {})


def _label_names(labels_path: Path) -> list[str]:
    return [n for n in _ome(_attrs(labels_path)).get("labels", []) if (labels_path / n).exists()]


def _set_ome_attr(group, key: str, value, fmt) -> None:
    if fmt.version.startswith("0.5"):
        ome = dict(group.attrs.get("ome", {}))
        ome[key] = value
        ome.setdefault("version", fmt.version)
        group.attrs["ome"] = ome
    else:
        group.attrs[key] = value
