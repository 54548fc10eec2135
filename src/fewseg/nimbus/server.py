"""What the worker reads from and writes to a NimbusImage server, through the ``nimbusimage`` SDK.

Frames come from the dataset's large image (``/item/{id}/tiles/region?frame=i&encoding=pickle:5``,
the SDK's ``images.get``), one channel at a time, stacked to fewseg's ``(C, Y, X)``.
Annotations are read with the SDK's ``afterId`` cursor (every page) and written with
``/upenn_annotation/multiple`` in chunks. Coordinates cross the boundary only through
:func:`fewseg.annotations.from_nimbus` / :func:`~fewseg.annotations.to_nimbus` (the
platform's pixel-corner origin). How the frame is shown (its display layers: colour,
contrast, visibility, from ``dataset_view`` and ``upenn_collection``) becomes the
:class:`~fewseg.render.RenderConfig` the SAM methods see.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from ..annotations import from_nimbus, to_nimbus
from ..errors import InputError, require
from ..objects import Annotation, Frame, Location

#: Annotations per ``POST /upenn_annotation/multiple`` (the platform rejects a whole batch
#: on one bad element, so a frame's upload is split only by size).
CHUNK = 1000


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
        self.context = ni.worker_context(dataset_id=dataset_id, api_url=api_url, token=token, params=params or {})
        self.api_url = api_url
        self.dataset_id = dataset_id

    @property
    def dataset(self):
        return self.context.dataset

    # ---- what the dataset holds

    @property
    def shape(self) -> tuple[int, int]:
        """``(Y, X)`` of every frame."""
        return tuple(self.dataset.shape)

    @property
    def sizes(self) -> dict[str, int]:
        """How many XY positions, Z planes, time points and channels the dataset has."""
        d = self.dataset
        return {"XY": d.num_xy, "Z": d.num_z, "Time": d.num_time, "C": d.num_channels}

    def channel_names(self) -> tuple[str, ...]:
        names = list(self.dataset.channels or [])
        n = self.dataset.num_channels
        return tuple(names[i] if i < len(names) and names[i] else str(i) for i in range(n))

    # ---- reading

    def read(self, location: Location) -> Frame:
        """The frame at ``location``: every channel, ``(C, Y, X)`` float32, as stored."""
        planes = [self.dataset.images.get(xy=location.xy, z=location.z, time=location.time, channel=c)
                  for c in range(self.dataset.num_channels)]
        data = np.stack([np.asarray(p, dtype=np.float32) for p in planes])
        return Frame(data, channel_names=self.channel_names(), location=location,
                     source=f"dataset {self.dataset_id} at XY {location.xy + 1}, Z {location.z + 1}, "
                            f"Time {location.time + 1}")

    def examples(self, tags: Sequence[str]) -> tuple[list[Annotation], list[str]]:
        """Every polygon carrying any of ``tags`` (all pages), and why any were skipped.

        Returns the annotations (fewseg coordinates) and one message per polygon that is
        degenerate (fewer than 3 distinct vertices, zero area, self-crossing) or outside
        the frame.
        """
        wanted = set(tags)
        found, skipped = [], []
        rows, cols = self.shape
        for record in self.dataset.annotations.iter_all(shape="polygon", tags=list(tags)):
            item = record.to_dict()
            if not wanted & set(item.get("tags", [])):
                continue
            name = f"annotation {item.get('_id', '?')}"
            try:
                annotation = from_nimbus(item, source=f"dataset {self.dataset_id}", field=name)
            except InputError as exc:
                skipped.append(str(exc))
                continue
            if annotation is None:
                continue
            low, high = annotation.polygon.min(axis=0), annotation.polygon.max(axis=0)
            if (high < -0.5).any() or low[0] > rows - 0.5 or low[1] > cols - 0.5:
                skipped.append(f"{name}: lies outside the {rows} x {cols} frame")
                continue
            found.append(annotation)
        return found, skipped

    def render_config(self, frame: Frame):
        """How the platform shows ``frame``'s channels, as a :class:`~fewseg.render.RenderConfig`.

        From the dataset's configuration: per channel the first layer showing it (colour,
        contrast, visibility); ``percentile`` contrast is, as in the app, a percent of the
        frame's min..max range, turned into absolute intensities of this frame. None when the
        dataset has no configuration (fewseg's default rendering is used).
        """
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

    # ---- writing

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
