"""One frame larger than memory, its blocks as dask tasks.

The engine predicts a frame block by block (:func:`fewseg.classic.blockwise.predict_blockwise`),
one block after another unless given a ``map_blocks``; :func:`dask_map_blocks` is that
``map_blocks`` for a dask cluster: each block a task that reads its own region.
"""

from __future__ import annotations

__all__ = ["dask_map_blocks"]


def dask_map_blocks(client):
    """A ``map_blocks`` for :func:`~fewseg.classic.blockwise.predict_blockwise` that runs
    each block as a task on ``client`` (the model and the coarse background sent to the
    workers once; each task reads its own block through ``read``, which must be
    picklable, e.g. :class:`fewseg.io.dataset.FilePlane`). Yields the blocks' results in order.

    Examples
    --------
    >>> from fewseg.classic.blockwise import predict_blockwise
    >>> segmentation = predict_blockwise(model, plane, plane.shape, map_blocks=dask_map_blocks(client))  # doctest: +SKIP
    """

    def map_blocks(function, model, read, shape, cores, *, halo, base, coarse):
        model_f, coarse_f = client.scatter([model, coarse], broadcast=True, hash=False)
        futures = [client.submit(function, model_f, read, shape, core, halo=halo, base=base, coarse=coarse_f, pure=False)
                   for core in cores]
        for future in futures:
            yield future.result()
            future.release()

    return map_blocks
