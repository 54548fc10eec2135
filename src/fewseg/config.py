"""Settings of a run, as one frozen dataclass saved as JSON next to the results."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .errors import InputError

METHODS = ("classic", "seed", "fast")
BOUNDARIES = ("level", "learned")
_FLOAT_OPTIONS = ("smoothing", "similarity", "iou", "pred_iou_thresh", "stability_score_thresh", "target_occupancy")


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except (TypeError, OverflowError):
        return False


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class SegmentConfig:
    """Everything that decides what fewseg outputs.

    Attributes
    ----------
    method : str
        ``"classic"``: weight-free (learned threshold, seeded watershed, descriptors,
        mixture selection). ``"seed"``: the seed report's SAM pipeline. ``"fast"``:
        SAM, encode once, prompt where the objects are.
    min_area, max_area : int
        Object area bounds in pixels (``max_area`` 0 = no upper bound).
    smoothing : float
        Polygon simplification tolerance in pixels.
    similarity : float or None
        Keep threshold on the selector's score; None = derived from the data
        (mixture: 0.5 posterior; seed method: the seed's 0.5 cosine).
    iou : float
        IoU at which a prediction counts as matching (evaluation, and dropping
        re-discovered examples).
    exclude_examples : bool
        Drop predictions that re-discover an example in the same frame.
    model, checkpoint, device : SAM model name, local checkpoint file, device.
    points_per_side, pred_iou_thresh, stability_score_thresh, target_occupancy :
        The seed method's generator and crop settings.
    feature_model, feature_checkpoint : str or None
        Fast method: pool features from this model instead of ``model`` (hybrid, e.g.
        SAM1 masks with SAM2.1 features). None = the same model.
    max_tiles : int
        Fast method: at most this many encoder passes per frame (tiles). More tiles give
        small objects more feature cells; each costs one pass (~10 s for ViT-B on CPU).
    decode_window : int or None
        Fast method: decode each prompt on a window of this many embedding cells per side
        around it (the decoder's cost grows with the window's area); None = 4 object
        diameters, at least 16 cells; 0 = the whole embedding (the official decode).
    boundary : str
        Classic method: where outlines lie. ``"level"``: at the fraction of each object's
        peak fitted to the examples (the proposer's outline). ``"learned"``: redrawn by a
        per-pixel model fitted on the examples of the frame (:mod:`fewseg.classic.boundary`).
    """

    method: str = "classic"
    min_area: int = 30
    max_area: int = 0
    smoothing: float = 0.3
    similarity: float | None = None
    iou: float = 0.3
    exclude_examples: bool = True
    model: str = "sam1_vit_h"
    checkpoint: str | None = None
    device: str = "auto"
    points_per_side: int = 128
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    target_occupancy: float = 0.20
    feature_model: str | None = None
    feature_checkpoint: str | None = None
    max_tiles: int = 4
    decode_window: int | None = None
    boundary: str = "level"

    def __post_init__(self):
        for name in _FLOAT_OPTIONS:
            value = getattr(self, name)
            if value is not None and not _finite(value):
                raise InputError(_option(name), f"expected a finite number, got {value!r}")
        if self.boundary not in BOUNDARIES:
            raise InputError("--boundary", f"expected one of {', '.join(BOUNDARIES)}, got {self.boundary!r}")
        if self.method not in METHODS:
            raise InputError("--method", f"expected one of {', '.join(METHODS)}, got {self.method!r}")
        if self.min_area < 0 or self.max_area < 0:
            raise InputError("--min-area/--max-area", "areas must be >= 0")
        if self.max_area and self.max_area < self.min_area:
            raise InputError("--max-area", f"{self.max_area} is below --min-area {self.min_area}")
        if self.smoothing < 0:
            raise InputError("--smoothing", f"expected >= 0, got {self.smoothing}")
        if not 0 < self.iou <= 1:
            raise InputError("--iou", f"expected a value in (0, 1], got {self.iou}")
        if not 0 < self.target_occupancy <= 1:
            raise InputError("--target-occupancy", f"expected a value in (0, 1], got {self.target_occupancy}")
        if self.max_tiles < 1:
            raise InputError("--max-tiles", f"expected at least 1, got {self.max_tiles}")
        if self.decode_window is not None and self.decode_window < 0:
            raise InputError("--decode-window", f"expected >= 0 cells (0 = whole embedding), got {self.decode_window}")
        if not 1 <= self.points_per_side <= 1024:
            raise InputError("--points-per-side", f"expected 1..1024, got {self.points_per_side}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config") -> "SegmentConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(source, f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


#: ``similarity="config"`` (the default of ``predict`` and ``rethreshold``): the config's threshold.
FROM_CONFIG = "config"


def similarity_of(config: SegmentConfig, similarity: float | None | str = FROM_CONFIG) -> float | None:
    """The keep threshold a ``predict`` or ``rethreshold`` call asks for.

    ``"config"`` means ``config.similarity``; None means the method's own threshold
    (derived from the data, as ``SegmentConfig(similarity=None)``); a finite number is
    that threshold.

    Examples
    --------
    >>> config = SegmentConfig(similarity=0.9)
    >>> similarity_of(config), similarity_of(config, None), similarity_of(config, 0.25)
    (0.9, None, 0.25)
    """
    if isinstance(similarity, str):
        if similarity != FROM_CONFIG:
            raise ValueError(f"similarity must be a number, None or {FROM_CONFIG!r}, got {similarity!r}")
        return config.similarity
    if similarity is None:
        return None
    if not _finite(similarity):
        raise ValueError(f"similarity must be a finite number or None, got {similarity!r}")
    return float(similarity)
