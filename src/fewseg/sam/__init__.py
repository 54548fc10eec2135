"""Segment Anything inside fewseg: load a model, encode an image once, prompt it with points.

* :func:`load_sam` -> :class:`SamModel` (SAM1 ``vit_h/l/b`` or SAM2.1 ``hiera_t/s/b+/l``,
  or a tiny model from a fewseg checkpoint), built from the official packages' classes.
* :func:`encode` an ``(Y, X, 3)`` uint8 image -> :class:`Embedding`;
  :func:`feature_grid` says which image region each embedding cell covers.
* :func:`predict_points` -> low-res mask logits and predicted IoUs for many one-point
  prompts (:func:`predict_points_local`: each decoded on a window of the embedding
  around it, much faster); :func:`logits_to_image` upsamples them to the image (or a
  window of it).

Importing this package does not import torch; the functions do, when called.
"""

from .build import SamModel, build_tiny_sam1, build_tiny_sam2, load_sam, save_tiny
from .device import pick_device
from .runtime import (Embedding, FeatureGrid, LocalLogits, encode, feature_grid, logits_to_image,
                      predict_points, predict_points_local)

__all__ = [
    "Embedding",
    "FeatureGrid",
    "LocalLogits",
    "SamModel",
    "build_tiny_sam1",
    "build_tiny_sam2",
    "encode",
    "feature_grid",
    "load_sam",
    "logits_to_image",
    "pick_device",
    "predict_points",
    "predict_points_local",
    "save_tiny",
]
