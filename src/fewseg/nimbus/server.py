"""What the worker reads from and writes to a NimbusImage server, through the ``nimbusimage`` SDK.

Frames come from the dataset's large image (``/item/{id}/tiles/region?frame=i&encoding=pickle:5``,
the SDK's ``images.get``), one channel at a time, stacked to fewseg's ``(C, Y, X)``.
Annotations are read with the SDK's ``afterId`` cursor (every page; one request per tag,
since the platform answers annotations carrying all the tags asked for) and written with
``/upenn_annotation/multiple`` in chunks. Coordinates cross the boundary only through
:func:`fewseg.io.annotations.from_nimbus` / :func:`~fewseg.io.annotations.to_nimbus` (the
platform's pixel-corner origin). How the frame is shown (its display layers: colour,
contrast, visibility, from ``dataset_view`` and ``upenn_collection``) becomes the
:class:`~fewseg.render.RenderConfig` the SAM methods see.
"""

from __future__ import annotations

import contextlib
import math
import operator
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..io.annotations import from_nimbus, to_nimbus
from .._reading import LIBRARY_ERRORS, describe
from ..errors import FewsegError, InputError, require
from ..objects import Annotation, Frame, Location

#: Annotations per ``POST /upenn_annotation/multiple`` (the platform rejects a whole batch
#: on one bad element, so a frame's upload is split only by size).
CHUNK = 1000


class ServerAnswerError(FewsegError):
    """The server answered, but not with what the NimbusImage API returns (not the user's doing)."""


@contextlib.contextmanager
def server_answers(api_url: str, what: str) -> Iterator[None]:
    """Turn what parsing a server's malformed answer raises into one :class:`ServerAnswerError`.

    Connection failures and HTTP errors pass through (the worker names them itself), so do
    fewseg's own errors.
    """
    import pickle

    import requests

    try:
        yield
    except FewsegError:
        raise
    except (requests.exceptions.InvalidJSONError, *LIBRARY_ERRORS, pickle.UnpicklingError, AttributeError) as exc:
        if isinstance(exc, requests.RequestException) and not isinstance(exc, requests.exceptions.InvalidJSONError):
            raise  # a connection or HTTP error: the worker names those
        # AttributeError: the SDK reading an answer of the wrong kind ('str' object has no attribute 'ndim')
        raise ServerAnswerError(f"the NimbusImage server at {api_url} answered {what} with something fewseg cannot "
                                f"read ({type(exc).__name__}: {describe(exc)}); is it a NimbusImage server, and "
                                "is the dataset intact?") from None


class DatasetSource:
    """One dataset on a NimbusImage server, as fewseg needs it.

    Parameters
    ----------
    api_url, token : str
        The platform's ``--apiUrl`` and ``--token``.
    dataset_id : str
        The dataset (a Girder folder).
    params : dict, optional
        The job's parameters (for the SDK's worker context).
    """

    def __init__(self, api_url: str, token: str, dataset_id: str | None, *, params: dict | None = None):
        ni = require("nimbusimage", extra="nimbus", purpose="the NimbusImage worker")
        if dataset_id is not None and not (isinstance(dataset_id, str) and dataset_id.strip()):
            raise InputError("datasetId", f"expected the dataset's folder id (text), got {dataset_id!r:.80}")
        self.api_url = api_url
        self.dataset_id = dataset_id
        with server_answers(api_url, "the job's login"):
            self.context = ni.worker_context(dataset_id=dataset_id, api_url=api_url, token=token, params=params or {})

    @property
    def dataset(self):
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}"):
            return self.context.dataset

    # ---- what the dataset holds

    @property
    def shape(self) -> tuple[int, int]:
        """``(Y, X)`` of every frame."""
        d = self.dataset
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}'s size"):
            shape = tuple(int(n) for n in d.shape)
            if len(shape) != 2 or min(shape) < 1:
                raise ValueError(f"a frame shape of {shape}")
        return shape

    @property
    def sizes(self) -> dict[str, int]:
        """How many XY positions, Z planes, time points and channels the dataset has."""
        d = self.dataset
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}'s size"):
            sizes = {"XY": d.num_xy, "Z": d.num_z, "Time": d.num_time, "C": d.num_channels}
            sizes = {axis: operator.index(n) for axis, n in sizes.items()}  # TypeError for None, text, 2.5
            if min(sizes.values()) < 1:
                raise ValueError(f"sizes {sizes}")
        return sizes

    def channel_names(self) -> tuple[str, ...]:
        n = self.sizes["C"]
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}'s channels"):
            names = [str(name) if name else "" for name in list(self.dataset.channels or [])]
        return tuple(names[i] if i < len(names) and names[i] else str(i) for i in range(n))

    # ---- reading

    def read(self, location: Location) -> Frame:
        """The frame at ``location``: every channel, ``(C, Y, X)`` float32, as stored."""
        shape, n = self.shape, self.sizes["C"]
        where = f"XY {location.xy + 1}, Z {location.z + 1}, Time {location.time + 1}"
        with server_answers(self.api_url, f"the tile request for {where}"):
            planes = [np.asarray(self.dataset.images.get(xy=location.xy, z=location.z, time=location.time, channel=c),
                                 dtype=np.float32) for c in range(n)]
            for c, plane in enumerate(planes):
                if plane.shape != shape:
                    raise ValueError(f"channel {c} is {plane.shape}, not the dataset's {shape}")
                if not np.isfinite(plane).all():
                    raise ValueError(f"channel {c} holds NaN or infinite values")
            data = np.stack(planes)
        return Frame(data, channel_names=self.channel_names(), location=location,
                     source=f"dataset {self.dataset_id} at XY {location.xy + 1}, Z {location.z + 1}, "
                            f"Time {location.time + 1}")

    def examples(self, tags: Sequence[str]) -> tuple[list[Annotation], list[str]]:
        """Every polygon and point carrying any of ``tags`` (all pages), and why any were skipped.

        Polygons are outlined examples; points are clicks, one near the centre of each
        example object (fewseg outlines them when it learns: :mod:`fewseg.classic.clicks`).
        Returns the annotations (fewseg coordinates) and one message per annotation that is
        degenerate (a polygon with fewer than 3 distinct vertices, zero area or crossing
        itself) or outside the frame.
        """
        wanted = set(tags)
        found, skipped = [], []
        rows, cols = self.shape
        with server_answers(self.api_url, "the annotation request"):
            items = self._carrying_any(tags)
        for item in items:
            if not isinstance(item, dict):
                skipped.append(f"the server's annotation {item!r:.60} is not a JSON object")
                continue
            tags_here = item.get("tags", [])
            if not isinstance(tags_here, list) or not all(isinstance(t, str) for t in tags_here):
                skipped.append(f"annotation {item.get('_id', '?')}: its tags {tags_here!r:.60} are not a list of text")
                continue
            if not wanted & set(tags_here):
                continue
            name = f"annotation {item.get('_id', '?')}"
            try:
                annotation = from_nimbus(item, source=f"dataset {self.dataset_id}", field=name)
            except InputError as exc:
                skipped.append(str(exc))
                continue
            except LIBRARY_ERRORS as exc:  # the server's record is malformed in a way a file would not be
                skipped.append(f"{name}: malformed ({describe(exc)})")
                continue
            if annotation is None:
                continue
            points = annotation.polygon if annotation.polygon is not None else annotation.point[None, :]
            low, high = points.min(axis=0), points.max(axis=0)
            if (high < -0.5).any() or low[0] > rows - 0.5 or low[1] > cols - 0.5:
                skipped.append(f"{name}: lies outside the {rows} x {cols} frame")
                continue
            found.append(annotation)
        return found, skipped

    def _carrying_any(self, tags: Sequence[str]) -> list:
        """Every polygon, then every point, carrying any of ``tags``: each once, in ``_id`` order.

        The platform's list endpoint answers annotations carrying *all* the tags asked for
        (``$all``), so this asks once per tag and shape (every page of the ``afterId`` cursor)
        and joins the answers by ``_id``.
        """
        items = []
        for shape in ("polygon", "point"):
            seen, here = set(), []
            for tag in dict.fromkeys(tags):
                for record in self.dataset.annotations.iter_all(shape=shape, tags=[tag]):
                    item = record.to_dict()
                    key = item.get("_id") if isinstance(item, dict) else None
                    if isinstance(key, str):
                        if key in seen:
                            continue  # carries two of the tags: counted once
                        seen.add(key)
                    here.append(item)
            if len(set(tags)) > 1:
                here.sort(key=lambda item: str(item.get("_id", "")) if isinstance(item, dict) else "")
            items += here
        return items

    def render_config(self, frame: Frame):
        """How the platform shows ``frame``'s channels, as a :class:`~fewseg.render.RenderConfig`.

        From the dataset's configuration: per channel the first layer showing it (colour,
        contrast, visibility); ``percentile`` contrast is, as in the app, a percent of the
        frame's min..max range, turned into absolute intensities of this frame. None when the
        dataset has no configuration (fewseg's default rendering is used).
        """
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}'s display layers"):
            return self._render_config(frame)

    def _render_config(self, frame: Frame):
        from ..render import ChannelStyle, RenderConfig, parse_color

        layers = self.dataset.collections.layers
        if not layers:
            return None
        overrides = self.dataset.collections.layer_contrasts
        styles = []
        for c, channel in enumerate(frame.data):
            layer = next((la for la in layers if la.get("channel", 0) == c), None)
            if layer is None:
                styles.append(ChannelStyle("white", black=0, white=1, mode="absolute", visible=False))
                continue
            contrast = overrides.get(layer.get("id")) or layer.get("contrast") or {}
            black, white = float(contrast.get("blackPoint", 0)), float(contrast.get("whitePoint", 100))
            if contrast.get("mode") != "absolute":
                lo, hi = float(channel.min()), float(channel.max())
                black = math.floor(lo + black / 100 * (hi - lo) + 0.5)
                white = math.floor(lo + white / 100 * (hi - lo) + 0.5)
            color = _css_color(layer.get("color", "white"))
            try:
                parse_color(color)
            except ValueError:
                color = "white"
            styles.append(ChannelStyle(color, black=black, white=max(white, black), mode="absolute",
                                       visible=bool(layer.get("visible", True))))
        return RenderConfig(styles=tuple(styles), blend="lighten")

    def folder(self) -> dict:
        """The dataset folder's Girder document, read afresh: its metadata
        (:meth:`folder_meta`) and the job's user's access to it (:meth:`access_level`)."""
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}'s folder"):
            folder = self.context._gc.get(f"folder/{self.dataset_id}")
            if not isinstance(folder, dict):
                raise TypeError(f"a folder of {folder!r:.60}")
        return folder

    def folder_meta(self, folder: dict) -> dict:
        """The Girder metadata (``meta``) of ``folder`` (:meth:`folder`)."""
        with server_answers(self.api_url, f"the request for dataset {self.dataset_id}'s folder"):
            meta = folder.get("meta") or {}
            if not isinstance(meta, dict):
                raise ValueError(f"a folder meta of {meta!r:.60}")
        return meta

    @staticmethod
    def access_level(folder: dict) -> int | None:
        """The job's user's access to ``folder`` (:meth:`folder`) as Girder reports it
        (``_accessLevel``: 0 READ, 1 WRITE, 2 ADMIN), or None where the server does not say."""
        level = folder.get("_accessLevel")
        return level if isinstance(level, int) else None

    # ---- writing

    def set_folder_meta(self, values: dict) -> None:
        """Set ``values``' keys in the dataset folder's metadata (``PUT folder/{id}/metadata``; other keys kept)."""
        self.context._gc.put(f"folder/{self.dataset_id}/metadata", json=values)

    def upload(self, annotations: Iterable[Annotation], *, tags: Sequence[str], channel: int,
               connect_to: dict | None = None, chunk: int = CHUNK) -> int:
        """Create ``annotations`` on the server with ``tags`` and ``channel``; returns how many."""
        ni = require("nimbusimage", extra="nimbus", purpose="the NimbusImage worker")
        records = []
        for a in annotations:
            record = to_nimbus(a)
            record.update(tags=list(tags), channel=int(channel), datasetId=self.dataset_id)
            records.append(ni.Annotation.from_dict(record))
        for start in range(0, len(records), chunk):
            with server_answers(self.api_url, "the upload"):
                self.dataset.annotations.create_many(records[start : start + chunk], connect_to=connect_to)
        return len(records)


def _css_color(color: str) -> str:
    """``rgb(r, g, b)`` (as the platform stores some colours) as ``#RRGGBB``; others unchanged."""
    text = str(color).strip()
    if text.lower().startswith("rgb(") and text.endswith(")"):
        try:
            r, g, b = (int(float(v)) for v in text[4:-1].split(","))
        except ValueError:
            return text
        return f"#{r:02X}{g:02X}{b:02X}"
    return text
