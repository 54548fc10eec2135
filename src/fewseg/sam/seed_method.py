"""The seed report's method, step by step (``--method seed``).

1. Candidates: the official automatic mask generator on the whole uint8 RGB frame
   (``points_per_side``, ``pred_iou_thresh`` 0.88, ``stability_score_thresh`` 0.95,
   ``min_mask_region_area = min_area``).
2. Area filter: ``min_area <= area <= max_area`` (0 = no upper bound).
3. Each candidate and each example: a square crop around it in which it covers
   ``target_occupancy`` of the area (side ``sqrt(area / occupancy)``, at least the
   bounding box, centred on the box, shifted to stay inside the image), encoded with the
   SAM image encoder; the crop mask resized to the embedding grid (bilinear) weights a
   mean of the embedding: one vector per object.
4. Prototype: L2-normalised mean of the example vectors; keep candidates with cosine
   similarity >= ``similarity`` (0.5). With negatives (``fit(..., negatives=...)``), a
   candidate nearer a negative's vector than the prototype is scored down, and one at
   or under a negative on the frame they were marked on is never kept
   (:mod:`fewseg.sam.contrast`).
5. Polygons: outer contour simplified by ``smoothing`` (shared with every method).

One full encoder pass per candidate is what makes this slow (the report: 350 of 393 s
per frame with ViT-H); ``--method fast`` encodes each frame once instead.

One deliberate difference: PyPI's ``segment-anything`` 1.0 generator crashes in
torchvision's ``batched_nms`` on CUDA with many boxes (its category tensor lives on the
CPU). On CUDA, SAM1 candidates therefore come from :mod:`fewseg.sam.generate`, fewseg's
re-implementation of the same generator (tested mask-for-mask against the official one
on CPU), instead of patching the library.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from ..config import FROM_CONFIG, SegmentConfig, similarity_of
from ..objects import Frame, ObjectMask
from ..result import Candidates, Segmentation, keep_selected
from ..classic.clicks import as_masks
from ..classic.select import fit_prototype_selector
from .contrast import ContrastSelector, FittedNegatives, negative_points, rgb_digest, unit_rows


def occupancy_crop(mask: ObjectMask, shape: tuple[int, int], occupancy: float) -> tuple[int, int, int, int]:
    """The seed's crop box ``(row0, col0, row1, col1)`` for one object.

    Square of side ``sqrt(area / occupancy)``, at least the bounding box, centred on the
    box, shifted to stay inside the image (and clipped where the image is smaller).

    Examples
    --------
    >>> m = ObjectMask(50, 50, np.ones((10, 10), bool))
    >>> occupancy_crop(m, (200, 200), 0.25)
    (45, 45, 65, 65)
    """
    r0, c0, r1, c1 = mask.bbox
    side = max(math.sqrt(mask.area / occupancy), r1 - r0, c1 - c0)
    side = int(math.ceil(side))
    out = []
    for lo, hi, n in ((r0, r1, shape[0]), (c0, c1, shape[1])):
        s = min(side, n)
        start = int(round((lo + hi) / 2 - s / 2))
        start = min(max(start, 0), n - s)
        out.append((start, start + s))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def crop_vectors(model, rgb: np.ndarray, masks: list[ObjectMask], occupancy: float, *,
                 batch_size: int = 8, progress_bar: bool | None = None) -> np.ndarray:
    """The seed's per-object vectors, ``(N, C)``: encode each object's occupancy crop,
    take the mask-weighted mean of its embedding (the crop mask resized to the
    embedding grid, bilinear). Crops go through the encoder ``batch_size`` at a time."""
    from skimage.transform import resize

    from ..progress import progress
    from .runtime import encode_batch

    out = []
    starts = range(0, len(masks), batch_size)
    for start in progress(starts, total=len(starts), desc="encoding crops", enabled=progress_bar):
        chunk = masks[start : start + batch_size]
        boxes = [occupancy_crop(m, rgb.shape[:2], occupancy) for m in chunk]
        embs = encode_batch(model, [np.ascontiguousarray(rgb[r0:r1, c0:c1]) for r0, c0, r1, c1 in boxes])
        for m, (r0, c0, r1, c1), emb in zip(chunk, boxes, embs):
            local = np.zeros((r1 - r0, c1 - c0), dtype=np.float32)
            local[m.row - r0 : m.row - r0 + m.mask.shape[0], m.col - c0 : m.col - c0 + m.mask.shape[1]] = m.mask
            features = emb.feature_map()  # (C, h, w)
            weights = resize(local, features.shape[1:], order=1, anti_aliasing=False, preserve_range=True)
            total = float(weights.sum())
            out.append((features * weights).sum(axis=(1, 2)) / total if total > 0 else features.mean(axis=(1, 2)))
    return np.stack(out) if out else np.zeros((0, model.embed_dim), dtype=np.float32)


def crop_vector(model, rgb: np.ndarray, mask: ObjectMask, occupancy: float) -> np.ndarray:
    """:func:`crop_vectors` of one object: ``(C,)``."""
    return crop_vectors(model, rgb, [mask], occupancy, batch_size=1, progress_bar=False)[0]


def generate_candidates(model, rgb: np.ndarray, config: SegmentConfig) -> list[ObjectMask]:
    """Step 1 + 2: generator masks on the frame, area-filtered, as crop masks."""
    if model.family == "sam1" and model.device.type == "cuda":
        from .generate import generate_masks

        full = generate_masks(model, rgb, points_per_side=config.points_per_side,
                              pred_iou_thresh=config.pred_iou_thresh,
                              stability_score_thresh=config.stability_score_thresh)
    else:
        full = [r["segmentation"] for r in official_generator(model, config).generate(rgb)]
    masks = [ObjectMask.from_full(m) for m in full]
    return [m for m in masks if m.area >= config.min_area and (config.max_area <= 0 or m.area <= config.max_area)]


def official_generator(model, config: SegmentConfig):
    """The official automatic mask generator for ``model`` with the seed's settings."""
    kwargs = dict(
        points_per_side=config.points_per_side,
        pred_iou_thresh=config.pred_iou_thresh,
        stability_score_thresh=config.stability_score_thresh,
        min_mask_region_area=config.min_area,
        output_mode="binary_mask",
    )
    if model.family == "sam1":
        from segment_anything import SamAutomaticMaskGenerator

        return SamAutomaticMaskGenerator(model.module, **kwargs)
    import warnings

    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    with warnings.catch_warnings():
        # SAM2Transforms calls torch.jit.script, which recent torch deprecates with a
        # FutureWarning; nothing a fewseg user can act on. Only that warning is silenced.
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
        gen = SAM2AutomaticMaskGenerator(model.module, **kwargs)
    # The official predictor assumes a 1024 input ((256, 256), (128, 128), (64, 64)
    # backbone maps); state the geometry of this model (the same values for official ones).
    s = model.image_size
    gen.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    return _Autocast(gen, model)


class _Autocast:
    """Run a SAM2 generator under the model's precision policy (bf16 autocast on CUDA)."""

    def __init__(self, generator, model):
        self.generator, self.model = generator, model

    def generate(self, rgb):
        import torch

        with torch.inference_mode(), self.model.autocast():
            return self.generator.generate(rgb)


class SeedSegmenter:
    """The seed report's pipeline with the same ``fit`` / ``predict`` as the others."""

    def __init__(self, config: SegmentConfig | None = None, *, model=None, render=None, batch_size: int = 8,
                 negative_rule: str = "nearest", negative_weight: float = 0.5):
        self.config = config or SegmentConfig(method="seed")
        self.batch_size = batch_size
        self.render = render
        self.negative_rule, self.negative_weight = negative_rule, negative_weight
        self._model = model
        self.selector = None
        self.example_vectors: np.ndarray | None = None
        self.negatives: FittedNegatives | None = None
        self._seen: tuple | None = None  # (frame digest, model, config, candidates, vectors) of the last frame

    @property
    def model(self):
        if self._model is None:
            from .build import load_sam

            self._model = load_sam(self.config.model, checkpoint=self.config.checkpoint, device=self.config.device)
        return self._model

    def rgb(self, frame: Frame) -> np.ndarray:
        from ..render import to_rgb

        return to_rgb(frame, self.render)

    def fit(self, frame: Frame, examples, *, negatives=None) -> "SeedSegmenter":
        """Learn the prototype from ``examples`` on ``frame``; ``negatives`` (objects or
        regions that are not the kind wanted, as annotations, masks or clicks) are
        learned from too and never returned on ``frame`` (:mod:`fewseg.sam.contrast`)."""
        masks = as_masks(examples, frame)
        rgb = self.rgb(frame)
        occ = self.config.target_occupancy
        self.example_vectors = crop_vectors(self.model, rgb, masks, occ, batch_size=self.batch_size)
        threshold = 0.5 if self.config.similarity is None else self.config.similarity
        self.selector = fit_prototype_selector(self.example_vectors, threshold=threshold)
        self.negatives = None
        if negatives:
            neg = as_masks(negatives, frame)
            vectors = crop_vectors(self.model, rgb, neg, occ, batch_size=self.batch_size)
            self.negatives = FittedNegatives(rgb_digest(rgb), neg, negative_points(negatives))
            self.selector = ContrastSelector(self.selector.prototype, unit_rows(vectors),
                                             unit_rows(self.example_vectors), threshold,
                                             rule=self.negative_rule, weight=self.negative_weight)
        return self

    def predict(self, frame: Frame, *, exclude=None, similarity: float | None | str = FROM_CONFIG) -> Segmentation:
        """The frame's objects like the examples; ``similarity`` as in
        :meth:`fewseg.classic.model.WeightFreeSegmenter.predict` (None: the seed's 0.5)."""
        if self.selector is None:
            raise RuntimeError("call fit(frame, examples) before predict(frame)")
        cfg = self.config
        rgb = self.rgb(frame)
        digest = rgb_digest(rgb)
        t0 = time.perf_counter()
        seen = self._seen
        again = seen is not None and seen[0] == digest and seen[1] is self.model and seen[2] == cfg
        # A frame predicted again (a correction round: refit, predict the same frame) reuses
        # its candidates and their vectors: neither depends on the examples.
        candidates = seen[3] if again else generate_candidates(self.model, rgb, cfg)
        t1 = time.perf_counter()
        vectors = seen[4] if again else crop_vectors(self.model, rgb, candidates, cfg.target_occupancy,
                                                      batch_size=self.batch_size)
        self._seen = (digest, self.model, cfg, candidates, vectors)
        t2 = time.perf_counter()
        found = Candidates(candidates, frame.shape, exclude=as_masks(exclude, frame) if exclude else None,
                           source=frame.source)
        selector = self._selector(similarity)
        scores = selector.similarity(vectors)
        if self.negatives is not None:
            scores, n_rejected = self.negatives.mask_out(digest, candidates, scores)
        out = keep_selected(found, selector.decide(scores), config=cfg)
        t3 = time.perf_counter() - out.timings["polygons"]
        out.timings = {"propose": t1 - t0, "embed": t2 - t1, "select": t3 - t2, "polygons": out.timings["polygons"],
                       "mask_generation": t1 - t0, "encoding": t2 - t1}
        finite = scores[np.isfinite(scores)]
        out.extra = {"mean_similarity": float(np.mean(finite)) if len(finite) else None}
        if self.negatives is not None:
            out.extra["n_under_negatives"] = n_rejected
        return out

    def rethreshold(self, segmentation: Segmentation, *, similarity: float | None | str = FROM_CONFIG) -> Segmentation:
        """``segmentation`` (from :meth:`predict`) kept at another ``similarity``: the cosine
        similarities are kept, only the keep decision and :func:`~fewseg.result.finish` are redone."""
        candidates = segmentation.require_candidates()
        out = keep_selected(candidates, self._selector(similarity).decide(segmentation.selection.scores),
                            config=self.config)
        out.extra = dict(segmentation.extra)
        return out

    def _selector(self, similarity: float | None | str):
        """The fitted selector at the threshold asked for (None: the seed's 0.5)."""
        threshold = similarity_of(self.config, similarity)
        return replace(self.selector, threshold=0.5 if threshold is None else threshold)

    def describe_fit(self) -> dict:
        m = self._model
        return {
            "method": "seed",
            "model": self.config.model,
            "family": getattr(m, "family", None),
            "checkpoint": str(getattr(m, "checkpoint", None)),
            "device": str(getattr(m, "device", None)),
            "n_examples": 0 if self.example_vectors is None else int(len(self.example_vectors)),
            "similarity_threshold": None if self.selector is None else self.selector.threshold,
            **({} if self.negatives is None else self.negatives.describe(self.negative_rule, self.negative_weight)),
        }

