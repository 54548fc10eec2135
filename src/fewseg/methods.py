"""The methods fewseg offers, by name: ``classic`` (weight-free), ``seed`` and ``fast`` (SAM).

Each is a class with ``fit(frame, examples)`` and ``predict(frame, *, exclude=None)``
returning a :class:`~fewseg.result.Segmentation`. Only the one asked for is imported, so
the weight-free path never imports torch.
"""

from __future__ import annotations

from .config import METHODS, SegmentConfig  # noqa: F401 (METHODS: the one list, public here too)


def make_segmenter(config: SegmentConfig, *, render=None):
    """The segmenter for ``config.method`` (SAM methods import torch only when asked for).

    ``render`` (:class:`~fewseg.render.RenderConfig`) is how the SAM methods merge the
    channels into the RGB image the model sees; the weight-free method reads the
    channels directly and ignores it.
    """
    if config.method == "classic":
        from .classic.model import WeightFreeSegmenter

        return WeightFreeSegmenter(config)
    if config.method == "seed":
        from .sam.seed_method import SeedSegmenter

        return SeedSegmenter(config, render=render)
    if config.method == "fast":
        from .sam.fast_method import FastSegmenter

        return FastSegmenter(config, render=render)
    raise ValueError(f"unknown method {config.method!r}; expected one of {', '.join(METHODS)}")


def learns_negatives(segmenter) -> bool:
    """Whether ``segmenter.fit`` takes ``negatives=`` (the methods that learn from them):
    what the command line checks before a run and the correction curve before each round.

    Examples
    --------
    >>> learns_negatives(make_segmenter(SegmentConfig()))
    True
    """
    import inspect

    return "negatives" in inspect.signature(segmenter.fit).parameters
