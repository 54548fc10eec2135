"""The one interface every image source offers: sizes, channel names, plane reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PlaneSource:
    """An opened image: what it holds, and reads of one plane (or a region of it).

    Attributes
    ----------
    source : str
        The file or directory, for messages.
    sizes : dict
        ``{"T": nt, "Z": nz, "XY": n_positions}``.
    channel_names : tuple of str
    shape : tuple of int
        ``(Y, X)`` of a plane at the opened resolution level.
    dtype : numpy dtype
    level, n_levels : int
        The opened resolution level and how many there are.
    """

    source: str
    sizes: dict
    channel_names: tuple[str, ...]
    shape: tuple[int, int]
    dtype: np.dtype
    level: int = 0
    n_levels: int = 1
    kind: str = ""
    _reader: object = field(default=None, repr=False)
    #: The file's axes (lower case) when it names them (OME-Zarr), e.g. ``("t", "c", "y", "x")``.
    axes: tuple[str, ...] = ()

    @property
    def axes_without_channel(self) -> list[str]:
        return [a for a in self.axes if a != "c"]

    def read(self, *, t: int = 0, z: int = 0, xy: int = 0, channels=None, rows: slice = slice(None),
             cols: slice = slice(None)) -> np.ndarray:
        """``(C, Y, X)`` pixels of one plane (or its ``rows`` x ``cols`` region), as stored.

        ``channels``: indices to read, in this order (None = all). Only the chunks that
        hold the requested pixels are read.
        """
        channels = list(range(len(self.channel_names))) if channels is None else [int(c) for c in channels]
        data = self._reader(t=int(t), z=int(z), xy=int(xy), channels=channels, rows=rows, cols=cols)
        return np.asarray(data)

    def __getstate__(self):  # sources travel to workers as their path and level only
        raise TypeError("a PlaneSource is opened where it is read; send its path and level instead")
