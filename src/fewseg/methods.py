"""The methods fewseg offers, by name: ``classic`` (weight-free), ``seed`` and ``fast`` (SAM).

Each is a class with ``fit(frame, examples)`` and ``predict(frame, *, exclude=None)``
returning a :class:`~fewseg.result.Segmentation`. Only the one asked for is imported, so
the weight-free path never imports torch.
"""

from __future__ import annotations

from .config import SegmentConfig

METHODS = ("classic", "seed", "fast")


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


def with_similarity(segmenter, similarity: float | None):
    """A fitted segmenter whose ``predict`` keeps objects at another threshold by default,
    without refitting: for a loop that calls ``predict(frame, exclude=...)`` and passes
    no threshold (:func:`fewseg.batch.segment_frames`, the napari plugin's "reuse").

    What ``fit`` learned is shared, not copied or redone; only ``config.similarity``
    differs, and ``segmenter`` itself is unchanged. To keep another share of a frame
    already predicted, call the method's ``rethreshold(segmentation, similarity=...)``
    instead (it proposes and describes nothing again); to predict one frame at a
    threshold, ``predict(frame, similarity=...)``.

    Parameters
    ----------
    segmenter
        A segmenter from :func:`make_segmenter`, fitted or not.
    similarity : float or None
        The new threshold; None = the method's own (derived from the data).

    Examples
    --------
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(200, 200), n_blobs=25)
    >>> model = make_segmenter(SegmentConfig()).fit(frame, truth[:8])
    >>> strict = with_similarity(model, 0.99)
    >>> strict.profile is model.profile, model.config.similarity, strict.config.similarity
    (True, None, 0.99)
    """
    from dataclasses import replace

    from .config import similarity_of

    config = replace(segmenter.config, similarity=similarity_of(segmenter.config, similarity))
    out = object.__new__(type(segmenter))  # a shallow copy: what was learned is shared
    out.__dict__.update(segmenter.__dict__)
    out.config = config
    return out
