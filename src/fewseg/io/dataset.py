"""A dataset's frames: which files, which XY / Z / T, read one frame at a time.

A batch is one image file with several XY positions (scenes), Z planes and time points,
or a list of files (one XY position each: ``a.tif b.tif`` or a glob ``'plate/*.nd2'``).
:class:`FileFrames` names them and reads the frame at a :class:`~fewseg.objects.Location`
when asked; it holds no pixels, so it can be sent to other processes (the scale-out
workers) and each reads only its own frame.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..objects import Frame, Location

__all__ = ["FileFrames", "expand_inputs"]

_GLOB = set("*?[")


def expand_inputs(items) -> tuple[str, ...]:
    """Paths named by ``items``: each an existing path or a glob pattern (sorted matches)."""
    out: list[str] = []
    for item in [items] if isinstance(items, (str, os.PathLike)) else items:
        item = os.fspath(item)
        if not Path(item).exists() and _GLOB & set(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise InputError(item, "the pattern matches no file")
            out.extend(matches)
        else:
            out.append(item)
    return tuple(out)


@dataclass(frozen=True)
class FileFrames:
    """Frames of one file (XY = its scenes) or of several files (XY = the file's index).

    Attributes
    ----------
    paths : tuple of str
    channels : str or None
        As :func:`fewseg.io.frames.read_frame` takes them (``"0,1"``, ``"YFP,BF"``).
    level : int
        Resolution level (OME-Zarr, vendor files).
    planes : tuple of dict
        Per path, ``{"Z": nz, "T": nt}`` (how many planes, from the file's header).
    axes : str or None
        What the files' stored axes are (``"TYX"``), as :func:`fewseg.io.frames.read_frame`
        takes it; None: the files' own (or a plain stack's guess).
    """

    paths: tuple[str, ...]
    channels: str | None = None
    level: int = 0
    planes: tuple = ()
    axes: str | None = None

    @classmethod
    def open(cls, paths, *, channels=None, level: int = 0, axes: str | None = None) -> "FileFrames":
        from .frames import plane_counts

        paths = expand_inputs(paths)
        return cls(paths, channels, level, tuple(plane_counts(p, axes=axes) for p in paths), axes)

    def path_of(self, location: Location) -> str:
        if len(self.paths) == 1:
            return self.paths[0]
        if not 0 <= location.xy < len(self.paths):
            raise InputError("--xy", f"{location.xy} is out of range: {len(self.paths)} files were given (0..{len(self.paths) - 1})")
        return self.paths[location.xy]

    def counts(self, location: Location = Location()) -> dict:
        """``{"Z", "T", "XY"}`` sizes; XY is the file count for a list of files."""
        c = dict(self.planes[self.paths.index(self.path_of(location))])
        c["XY"] = len(self.paths) if len(self.paths) > 1 else c.get("XY", 1)
        return c

    def read(self, location: Location) -> Frame:
        """The frame at ``location`` (only its plane and channels are read)."""
        from .frames import read_frame

        path = self.path_of(location)
        counts = self.planes[self.paths.index(path)]
        # A file list's XY picks the file; inside it the frame is at scene 0.
        at = location if len(self.paths) == 1 else Location(xy=0, z=location.z, time=location.time)
        frame = read_frame(path, z=location.z if counts["Z"] > 1 else None, t=location.time if counts["T"] > 1 else None,
                           channels=self.channels, location=at, level=self.level, axes=self.axes)
        return Frame(frame.data, channel_names=frame.channel_names, source=frame.source, location=location)

    __call__ = read

    def identity(self, location: Location) -> dict:
        """What names the frame at ``location`` (for result signatures): path, size,
        modification time, channels, level."""
        path = self.path_of(location)
        stat = os.stat(path)
        return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "channels": self.channels, "level": self.level, **({"axes": self.axes} if self.axes else {})}


def frame_digest(frame: Frame) -> str:
    """SHA-256 of a frame's pixels and channel names."""
    h = hashlib.sha256()
    h.update(repr((frame.data.shape, str(frame.data.dtype), frame.channel_names)).encode())
    h.update(frame.data.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class FilePlane:
    """One plane of a file, read a region at a time: ``plane(rows, cols) -> Frame``.

    Holds only names (path, plane, channels, level), so it can be sent to other
    processes; the file is opened (metadata) on first use in each process.
    """

    path: str
    z: int | None = None
    t: int | None = None
    xy: int = 0
    channels: str | None = None
    level: int = 0

    def _opened(self):
        from .frames import open_plane

        cache = self.__dict__.get("_plane")
        if cache is None:
            cache = open_plane(self.path, z=self.z, t=self.t, xy=self.xy, channels=self.channels, level=self.level)
            object.__setattr__(self, "_plane", cache)
        return cache

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_plane"}

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._opened().shape)

    def __call__(self, rows: slice, cols: slice) -> Frame:
        return self._opened().read(rows=rows, cols=cols)
