"""The ``preview`` request: what a run would outline on the current tile, drawn over the view.

The platform asks a worker whose image carries the ``hasPreview`` label for a preview
with the tool's current fields (``POST worker_preview/request``); the worker computes on
the current tile only and posts ``{"image": "data:image/png;base64,...", "text": ...}`` to
``POST worker_preview?image=IMAGE``; the app stretches that PNG over the whole frame
(from its corner (0, 0) to (width, height)) above the image. Here: the same fit as
``compute`` (:func:`.compute.prepare`, :func:`.compute.fit`: examples, negatives, every
location they lie on), one prediction of the tile, an RGBA overlay of the frame's size
(:func:`overlay_rgba`) and nothing uploaded.
"""

from __future__ import annotations

import base64
from typing import Sequence

import numpy as np

from ..objects import ObjectMask
from .compute import Report, earlier_note, fit, prepare
from .server import DatasetSource

#: Outline colour (RGBA) and the alpha of the objects' fill.
COLOR = (0, 255, 0, 255)
FILL_ALPHA = 48


def overlay_rgba(masks: Sequence[ObjectMask], shape: tuple[int, int], *, color=COLOR,
                 fill_alpha: int = FILL_ALPHA) -> np.ndarray:
    """``(Y, X, 4)`` uint8: each object's own edge pixels in ``color``, its inside tinted
    with ``fill_alpha``, everything else transparent (alpha 0). Every drawn pixel lies on
    an object.

    Examples
    --------
    >>> square = ObjectMask(2, 2, np.ones((3, 3), dtype=bool))
    >>> rgba = overlay_rgba([square], (7, 7))
    >>> rgba.shape, int((rgba[..., 3] == 255).sum()), int(rgba[3, 3, 3]), int(rgba[0, 0, 3])
    ((7, 7, 4), 8, 48, 0)
    """
    from ..figure import outline
    from ..objects import labels_from_masks

    out = np.zeros((*shape, 4), dtype=np.uint8)
    if not len(masks):
        return out
    inside = labels_from_masks(masks, shape) > 0
    out[inside] = (*color[:3], fill_alpha)
    out[outline(masks, shape, mode="inner")] = color
    return out


def png_data_url(rgba: np.ndarray) -> str:
    """``rgba`` as a ``data:image/png;base64,...`` URL (what the app draws)."""
    import imageio.v3 as iio

    data = iio.imwrite("<bytes>", rgba, extension=".png", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def preview_text(n_objects: int, n_examples: int, n_negatives: int, n_earlier: int) -> str:
    """What the preview says beside its overlay. The overlay draws what a run would add;
    a rerun leaves the objects earlier runs with the job's tags found where they are (the
    app already shows them), so they are counted, not drawn: a preview after a rerun that
    reads "0 new objects" means nothing is left to add, not that nothing is found.

    Examples
    --------
    >>> preview_text(567, 10, 0, 0)
    '567 objects on the current tile from 10 examples'
    >>> preview_text(0, 10, 2, 565)
    '0 new objects on the current tile from 10 examples and 2 not wanted; 565 found there by earlier runs with these tags are left as they are (not drawn)'
    """
    text = f"{n_objects} {'new ' if n_earlier else ''}objects on the current tile from {n_examples} examples"
    if n_negatives:
        text += f" and {n_negatives} not wanted"
    return text + (earlier_note(n_earlier, where=" there") + " (not drawn)" if n_earlier else "")


def preview(source: DatasetSource, params: dict, *, token: str, progress: Report, warning: Report) -> dict:
    """Do the preview request: fit as ``compute`` would, predict the current tile, post
    the overlay for the worker's image (``params["image"]``). Returns a record: the tile,
    how many objects, the seconds."""
    import time
    import urllib.parse

    import girder_client

    from ..batch import predict_frame
    from ..errors import InputError

    image = params.get("image")
    if not isinstance(image, str) or not image:
        raise InputError("image", f"the preview is stored for the worker's image; expected its name, got {image!r:.80}")
    t0 = time.perf_counter()
    job = prepare(source, params, progress=progress, warning=warning)
    segmenter, fitted, fit_seconds = fit(source, job, progress=progress)
    tile = job.tile
    frame = fitted[tile] if tile in fitted else source.read(tile)
    progress(0.8, "Outlining objects", f"the current tile (XY {tile.xy + 1}, Z {tile.z + 1}, Time {tile.time + 1})")
    result = predict_frame(segmenter, frame, exclude=job.exclude.get(tile))
    masks = result.segmentation.masks
    text = preview_text(len(masks), job.plan.n_learned, len(job.plan.negatives), job.n_earlier([tile]))
    client = girder_client.GirderClient(apiUrl=source.api_url)
    client.setToken(token)
    try:
        client.post(f"worker_preview?image={urllib.parse.quote(image, safe='')}",
                    json={"image": png_data_url(overlay_rgba(masks, frame.shape)), "text": text})
    except girder_client.HttpError as exc:
        if exc.status not in (401, 403):
            raise
        from ..errors import FewsegError

        raise FewsegError(f"the server refused to store the preview ({exc.status}): NimbusImage stores a worker's "
                          "preview only for an administrator's job; ask one to preview, or run the tool (a run "
                          "needs only WRITE access to the dataset)") from None
    return {"tile": tile.as_nimbus(), "n_objects": len(masks), "text": text, "fit_s": round(fit_seconds, 4),
            "total_s": round(time.perf_counter() - t0, 4)}
