"""fewseg: few-shot object segmentation for microscopy.

The weight-free method, stage by stage (each a module of :mod:`fewseg.classic`, between
reading and writing in :mod:`fewseg.io`)::

    io.frames -> examples -> propose -> describe -> select -> result.finish -> io.annotations / evaluate

The public API is listed here; the modules behind it load on first use, so importing
fewseg (or running ``fewseg --help``) stays fast and never imports torch.

Examples
--------
>>> import fewseg
>>> frame, truth = fewseg.make_demo(seed=1, shape=(200, 200), n_blobs=25)
>>> model = fewseg.WeightFreeSegmenter().fit(frame, truth[:10])
>>> found = model.predict(frame, exclude=truth[:10])
>>> len(found.polygons) > 5
True
"""

from importlib import import_module

from .errors import FewsegError, InputError
from .objects import Annotation, Frame, Location, ObjectMask

__version__ = "0.1.0"

_LAZY = {
    "read_frame": "io.frames",
    "write_frame": "io.frames",
    "read_annotations": "io.annotations",
    "write_annotations": "io.annotations",
    "SegmentConfig": "config",
    "WeightFreeSegmenter": "classic.model",
    "Segmentation": "result",
    "make_segmenter": "methods",
    "run_evaluation": "evaluate",
    "score": "evaluate",
    "split_examples": "evaluate",
    "to_rgb": "render",
    "RenderConfig": "render",
    "evaluation_figure": "figure",
    "overlay_png": "figure",
    "make_demo": "demo",
}

__all__ = ["Annotation", "FewsegError", "Frame", "InputError", "Location", "ObjectMask", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fewseg' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
