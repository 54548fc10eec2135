"""The weight-free engine: learn from a few examples, propose, describe, select.

The method reads top to bottom, one module a stage::

    examples -> propose -> describe -> select -> (boundary) -> result.finish

* :mod:`~fewseg.classic.examples`: what the examples say (size, noise, which channels
  show the objects with which sign) and the *object signal* image.
* :mod:`~fewseg.classic.clicks`: examples given as clicks, outlined from the frame.
* :mod:`~fewseg.classic.propose`: candidate objects at the fitted levels.
* :mod:`~fewseg.classic.describe`: a descriptor per candidate (size, shape, signal,
  contrast, texture, cluster, channel levels).
* :mod:`~fewseg.classic.select`: the mixture that keeps candidates like the examples.
* :mod:`~fewseg.classic.boundary`: the optional learned boundary.
* :mod:`~fewseg.classic.model`: :class:`~fewseg.classic.model.WeightFreeSegmenter`
  (``fit`` / ``predict``).

No model weights, no torch.
"""
