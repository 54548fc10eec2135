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


def with_similarity(segmenter, similarity: float | None):
    """A fitted segmenter that predicts with another keep threshold, without refitting.

    What ``fit`` learned is shared, not copied or redone; only ``config.similarity``
    (the selector's keep threshold, :class:`~fewseg.config.SegmentConfig`) differs, so
    re-thresholding costs one ``predict``, and on the frame the classic method predicted
    last, less: its candidates and their descriptors are reused (only selecting and
    outlining are redone). ``segmenter`` itself is unchanged. Works for every method:
    each reads ``config.similarity`` when it predicts.

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
    import copy
    import math
    from dataclasses import replace

    if similarity is not None and not math.isfinite(float(similarity)):
        raise ValueError(f"similarity must be a finite number or None, got {similarity!r}")
    out = copy.copy(segmenter)
    out.config = replace(segmenter.config, similarity=None if similarity is None else float(similarity))
    return out
