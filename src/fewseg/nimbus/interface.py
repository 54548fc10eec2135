"""The worker's tool fields (what the platform shows) and their values as fewseg settings.

Field values arrive in the compute parameters' ``workerInterface`` under the field names
below. Defaults and ranges are the command line's (:mod:`fewseg.cli.segment`,
:class:`fewseg.config.SegmentConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import BOUNDARIES, METHODS, SegmentConfig
from ..errors import InputError

TRAINING_TAGS = "Training tags"
NOT_TAGS = "Not these tags"
BATCH_XY, BATCH_Z, BATCH_TIME = "Batch XY", "Batch Z", "Batch Time"
METHOD, MODEL, DEVICE, BOUNDARY = "Method", "Model", "Device", "Boundary"

_BATCH_TIP = ("Which {axis} to segment, 1-based as in the viewer: '1-3, 5-8', 'all', or empty for the "
              "current one only.")

#: Number fields: name -> (SegmentConfig field, default, min, max, step, unit, tooltip). 0 for
#: "Similarity" means "derived from the examples" (the CLI's default, None).
NUMBERS = {
    "Minimum area": ("min_area", 30, 0, 1_000_000, 1, "px", "Smallest object area in pixels."),
    "Maximum area": ("max_area", 0, 0, 10_000_000, 1, "px", "Largest object area in pixels; 0 = no limit."),
    "Smoothing": ("smoothing", 0.3, 0, 10, 0.1, "px", "Outline simplification tolerance in pixels."),
    "Similarity": ("similarity", 0.0, 0, 1, 0.01, None,
                   "Keep threshold on how like the examples an object must be; 0 = derived from the examples "
                   "(the seed method uses 0.5 cosine)."),
    "IoU": ("iou", 0.3, 0.01, 1, 0.01, None,
            "Overlap at which a found object counts as one of the examples (those are not uploaded again)."),
    "Points per side": ("points_per_side", 128, 1, 1024, 1, None,
                        "Seed method: SAM's automatic mask generator grid (points per side)."),
    "Predicted IoU threshold": ("pred_iou_thresh", 0.88, 0, 1, 0.01, None,
                                "Seed method: drop SAM masks whose predicted IoU is lower."),
    "Stability threshold": ("stability_score_thresh", 0.95, 0, 1, 0.01, None,
                            "Seed method: drop SAM masks whose stability score is lower."),
    "Target occupancy": ("target_occupancy", 0.2, 0.01, 1, 0.01, None,
                         "Seed method: fraction of each crop the object fills before SAM encodes it."),
    "Max tiles": ("max_tiles", 4, 1, 64, 1, None,
                  "Fast method: at most this many encoder passes per frame (more tiles: more detail, slower)."),
}


def fields(models: list[str], *, default_model: str) -> dict:
    """The interface the worker posts to ``/worker_interface``: ``{name: field}``."""
    out = {
        TRAINING_TAGS: {"type": "tags", "displayOrder": 0,
                        "tooltip": "Polygons (outlines) or points (a click near an object's centre) with any of "
                                   "these tags are the examples (about 10 are enough); every other object like "
                                   "them is outlined."},
        NOT_TAGS: {"type": "tags", "displayOrder": 1,
                   "tooltip": "Polygons or points with any of these tags are objects you do not want (tag a wrong "
                              "result, or click a point on it): things like them are scored down everywhere and "
                              "the objects under them are never returned. Run again after tagging."},
        BATCH_XY: {"type": "text", "displayOrder": 2, "default": "", "tooltip": _BATCH_TIP.format(axis="XY positions")},
        BATCH_Z: {"type": "text", "displayOrder": 3, "default": "", "tooltip": _BATCH_TIP.format(axis="Z planes")},
        BATCH_TIME: {"type": "text", "displayOrder": 4, "default": "", "tooltip": _BATCH_TIP.format(axis="time points")},
        METHOD: {"type": "select", "items": list(METHODS), "default": "classic", "displayOrder": 5,
                 "tooltip": "classic: weight-free, learns from the examples alone (CPU, seconds). "
                            "fast: SAM outlines the objects classic finds (one encoder pass per tile). "
                            "seed: the seed report's SAM pipeline (automatic masks, slow without a GPU)."},
        MODEL: {"type": "select", "items": list(models), "default": default_model, "displayOrder": 6,
                "tooltip": "SAM checkpoint for the fast and seed methods (only those in this worker's image run)."},
        DEVICE: {"type": "select", "items": ["auto", "cpu", "cuda"], "default": "auto", "displayOrder": 7,
                 "tooltip": "Where SAM runs; auto = the GPU when there is one."},
        BOUNDARY: {"type": "select", "items": list(BOUNDARIES), "default": "level", "displayOrder": 8,
                   "tooltip": "Classic method: outlines at each object's own signal level, or redrawn by a "
                              "per-pixel model learned from the examples (closer outlines, ~0.3 s more per frame)."},
    }
    for order, (name, (_, default, lo, hi, step, unit, tip)) in enumerate(NUMBERS.items(), start=9):
        field = {"type": "number", "min": lo, "max": hi, "step": step, "default": default,
                 "displayOrder": order, "tooltip": tip}
        if unit:
            field["unit"] = unit
        out[name] = field
    return out


@dataclass(frozen=True)
class Choices:
    """What the user chose in the tool's fields."""

    training_tags: tuple[str, ...]
    negative_tags: tuple[str, ...]
    batch_xy: str
    batch_z: str
    batch_time: str
    config: SegmentConfig


def _text(values: dict, name: str) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if not isinstance(value, (str, int)):
        raise InputError(name, f"expected text like '1-3, 5', got {value!r:.80}")
    return str(value)


def _choice(values: dict, name: str, allowed, default: str) -> str:
    value = values.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        what = f"one of {', '.join(allowed)}" if allowed is not None else "a model name"
        raise InputError(name, f"expected {what}, got {value!r}")
    return value


def _tag_list(values: dict, name: str) -> tuple[str, ...]:
    tags = values.get(name) or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InputError(name, f"expected a list of tags, got {tags!r:.80}")
    return tuple(t for t in tags if t.strip())


def choices(values: dict) -> Choices:
    """Read the ``workerInterface`` values; :class:`InputError` names the field at fault."""
    if not isinstance(values, dict):
        raise InputError("workerInterface", f"expected the tool's fields as a JSON object, got {values!r:.80}")
    tags, negative_tags = _tag_list(values, TRAINING_TAGS), _tag_list(values, NOT_TAGS)
    both = sorted(set(tags) & set(negative_tags))
    if both:
        raise InputError(NOT_TAGS, f"{both[0]!r} is also a training tag; an object is either an example or not "
                                   "wanted: give the unwanted ones a tag of their own")
    settings = {}
    for name, (key, default, lo, hi, *_rest) in NUMBERS.items():
        value = values.get(name)
        value = default if value is None or value == "" else value
        try:
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(name, f"expected a number, got {value!r:.80}") from None
        if not lo <= value <= hi:  # NaN too
            raise InputError(name, f"expected a value in {lo}..{hi}, got {value:g}")
        settings[key] = int(value) if isinstance(default, int) else value
    if not settings["similarity"]:
        settings["similarity"] = None
    if settings.get("max_area") and settings["max_area"] < settings["min_area"]:
        raise InputError("Maximum area", f"{settings['max_area']} is below the minimum area {settings['min_area']} "
                                         "(0 = no limit)")
    method = _choice(values, METHOD, METHODS, "classic")
    config = SegmentConfig(method=method, model=_choice(values, MODEL, None, SegmentConfig.model),
                           device=_choice(values, DEVICE, ("auto", "cpu", "cuda"), "auto"),
                           # the classic method's; SAM draws the others' outlines (the form shows every field)
                           boundary=_choice(values, BOUNDARY, BOUNDARIES, "level") if method == "classic" else "level",
                           **settings)
    return Choices(tags, negative_tags, _text(values, BATCH_XY), _text(values, BATCH_Z),
                   _text(values, BATCH_TIME), config)
