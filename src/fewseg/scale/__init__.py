"""Scale-out: a whole dataset on ``dask.distributed``, and frames larger than memory.

* :mod:`~fewseg.scale.cluster`: a local cluster (``--workers N``) or an existing
  scheduler (``--scheduler ADDRESS`` / ``DASK_SCHEDULER_ADDRESS``).
* :mod:`~fewseg.scale.frames`: fit once, send the fitted model to every worker once,
  one task per frame (each reads only its frame and calls
  :func:`fewseg.batch.predict_frame`), each frame's result written atomically to a
  results directory with a signature, so a re-run redoes only what is missing or stale
  (:mod:`~fewseg.scale.store`).
* :mod:`~fewseg.scale.mosaic`: the blocks of one frame as dask tasks, for the engine's
  block-by-block prediction (:mod:`fewseg.classic.blockwise`: each object kept by the
  block holding its centre, the frame-wide steps done frame-wide).

``pip install 'fewseg[scale]'``.
"""
