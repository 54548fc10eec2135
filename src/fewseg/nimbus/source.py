"""A dataset on a NimbusImage server as the frame and truth of ``fewseg evaluate`` / ``sweep``.

``fewseg evaluate nimbus:DATASET_ID --api-url URL --tag "YFP blob" --z 3 ...`` reads the
frame at that location from the server (every channel) and the polygons carrying the tag
there, the way the seed report's script did. Credentials come only from the environment
(``NI_TOKEN``: a Girder token, or ``NI_API_KEY``), as the ``nimbusimage`` SDK reads them;
they are never printed nor written into results (a result names the dataset and location).
"""

from __future__ import annotations

import os

from ..errors import FewsegError, InputError
from ..objects import Annotation, Frame, Location

PREFIX = "nimbus:"
ENV_URL = "NI_API_URL"


def is_dataset(image: str) -> bool:
    """Whether ``image`` names a NimbusImage dataset (``nimbus:DATASET_ID``)."""
    return str(image).startswith(PREFIX)


def read_dataset(image: str, *, api_url: str | None, location: Location, tag: str | None) -> tuple[Frame, list[Annotation]]:
    """The frame at ``location`` and the polygons tagged ``tag`` there."""
    dataset_id = image[len(PREFIX):].strip()
    if not dataset_id:
        raise InputError(image, "expected nimbus:DATASET_ID (the dataset's folder id)")
    api_url = api_url or os.environ.get(ENV_URL)
    if not api_url:
        raise InputError("--api-url", f"a NimbusImage dataset needs the server's API URL (--api-url or ${ENV_URL})")
    if not (os.environ.get("NI_TOKEN") or os.environ.get("NI_API_KEY")):
        raise InputError("NI_TOKEN", "set NI_TOKEN (a token) or NI_API_KEY (an API key) in the environment to read "
                                     "a NimbusImage dataset; credentials are taken from nowhere else")
    if not tag:
        raise InputError("--tag", "name the tag of the dataset's polygons to use (e.g. --tag 'YFP blob')")
    import girder_client
    import requests

    from .server import DatasetSource

    try:
        source = DatasetSource(api_url, None, dataset_id)
        sizes = source.sizes
        for axis, value, option in (("XY", location.xy, "--xy"), ("Z", location.z, "--z"), ("Time", location.time, "--t")):
            if value >= sizes[axis]:
                raise InputError(option, f"{value} is out of range: the dataset has {sizes[axis]} ({axis} 0..{sizes[axis] - 1})")
        frame = source.read(location)
        found, skipped = source.examples([tag])
    except requests.exceptions.ConnectionError:
        raise FewsegError(f"cannot reach the NimbusImage server at {api_url}") from None
    except girder_client.HttpError as exc:
        raise FewsegError(f"the NimbusImage server answered {exc.status} to {exc.method} {exc.url} "
                          "(a refused or expired token, or a wrong dataset id)") from None
    here = [a for a in found if a.location == location]
    if not here:
        elsewhere = sorted({(a.location.xy, a.location.z, a.location.time) for a in found})
        raise InputError(image, f"no polygon tagged {tag!r} at XY={location.xy}, Z={location.z}, Time={location.time}"
                                + (f"; they are at (XY, Z, Time) {elsewhere[:10]}" if elsewhere else
                                   f"; the dataset has none{' usable' if skipped else ''}"), field="tags")
    return frame, here
