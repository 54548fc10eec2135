"""Fast SAM path (``--method fast``): encode each frame once, prompt where objects are.

1. **Detect** (weight-free, :mod:`fewseg.classic.propose`): candidate objects, their scale
   learned from the examples. Each plausible one (weight-free mixture posterior >= 0.1)
   becomes one point prompt at its most interior pixel, instead of a blind grid (a
   128 x 128 grid is 16,384 prompts; a frame of 500 objects needs ~500).
2. **Encode once** (:func:`~fewseg.sam.embedding.encode_frame`): tiles sized so an
   object spans several feature cells, cached on disk with a checked signature.
3. **Refine** (hybrid): SAM decodes the prompts (multimask), each on a window of the
   embedding around it (:func:`~fewseg.sam.runtime.predict_points_local`: the decoder's
   cost grows with the cells it attends to); each prompt keeps the mask
   whose predicted IoU and size fit the examples best (:func:`choose_mask`). The SAM
   mask replaces the detection where the two agree (IoU >= ``agree_iou``); otherwise
   the detection stands, so a model that does not know these objects cannot make the
   result worse than the weight-free method.
4. **Embed**: SAM features pooled per object from the frame's embedding (sub-cell,
   mask-weighted), next to the weight-free descriptors.
5. **Select**: the weight-free mixture over the descriptors plus each object's cosine
   similarity to the SAM prototype (the seed's vector, one column among several). With
   negatives (``fit(..., negatives=...)``) that column is scored down near the
   negatives' SAM vectors, and an object at or under a negative on the frame they were
   marked on is never kept (:mod:`fewseg.sam.contrast`).

Hybrid models: ``feature_model`` (``--feature-model``) pools features from a second
model while ``model`` decodes the masks, e.g. SAM1's masks with SAM2.1's features.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi

from ..config import FROM_CONFIG, SegmentConfig, similarity_of
from ..classic.describe import describe
from ..classic.examples import object_signal
from ..classic.model import WeightFreeSegmenter
from ..objects import Frame, ObjectMask
from ..classic.propose import propose
from ..result import Candidates, Segmentation, keep_selected
from ..classic.clicks import as_masks
from ..classic.select import fit_prototype_selector, mixture_selection, select_by_mixture
from .contrast import ContrastSelector, FittedNegatives, negative_points, unit_rows
from .embedding import encode_frame, tile_side
from .generate import low_res_pixel_area, upsample_mask
from .runtime import features_side


def interior_point(mask: ObjectMask) -> tuple[float, float]:
    """The mask pixel farthest from its boundary, ``(row, col)`` in frame coordinates."""
    dist = ndi.distance_transform_edt(np.pad(mask.mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(mask.row + r), float(mask.col + c)


def choose_mask(iou: np.ndarray, areas: np.ndarray, expected_area: float, *, size_weight: float = 0.25) -> np.ndarray:
    """Per prompt, the index of the mask maximising ``iou - size_weight * |log(area / expected)|``.

    ``iou``, ``areas``: ``(n, K)`` predicted IoU and mask area in frame pixels.
    """
    penalty = np.abs(np.log((areas + 1.0) / max(expected_area, 1.0)))
    return np.argmax(iou - size_weight * penalty, axis=1)


class FastSegmenter:
    """Encode once, prompt at detected objects, refine with SAM; ``fit`` / ``predict``."""

    def __init__(self, config: SegmentConfig | None = None, *, model=None, render=None, cache_dir=None,
                 cells_per_diameter: float = 4.0, max_tiles: int | None = None, agree_iou: float = 0.5,
                 feature_model=None, negative_rule: str = "nearest", negative_weight: float = 0.5):
        self.config = config or SegmentConfig(method="fast")
        self.negative_rule, self.negative_weight = negative_rule, negative_weight
        self.render = render
        self.cache_dir = cache_dir
        self.cells_per_diameter = cells_per_diameter
        self.max_tiles = self.config.max_tiles if max_tiles is None else max_tiles
        self.agree_iou = agree_iou
        self._model = model
        self._feature_model = feature_model
        self._embeddings: dict[str, object] = {}
        self.classic: WeightFreeSegmenter | None = None
        self.prototype = None
        self.expected_area = None
        self.example_descriptors = None
        self.negatives: FittedNegatives | None = None

    @property
    def model(self):
        """The model that decodes prompts into masks (``--model``)."""
        if self._model is None:
            from .build import load_sam

            self._model = load_sam(self.config.model, checkpoint=self.config.checkpoint, device=self.config.device)
        return self._model

    @property
    def feature_model(self):
        """The model whose embedding is pooled (``--feature-model``; default the same)."""
        if self.config.feature_model is None:
            return self.model
        if self._feature_model is None:
            from .build import load_sam

            self._feature_model = load_sam(self.config.feature_model, checkpoint=self.config.feature_checkpoint,
                                           device=self.config.device)
        return self._feature_model

    def rendered(self, frame: Frame) -> tuple[np.ndarray, str]:
        """The frame as SAM sees it (uint8 RGB) and that image's sha256."""
        import hashlib

        from ..render import to_rgb

        rgb = to_rgb(frame, self.render)
        return rgb, hashlib.sha256(rgb.tobytes()).hexdigest()

    def encode(self, frame: Frame, model=None, *, rendered: tuple[np.ndarray, str] | None = None):
        """The frame's embedding by ``model`` (default the mask model): from this object's
        memory, the disk cache, or the encoder. ``rendered``: :meth:`rendered` of the
        frame, when the caller already has it."""
        model = model or self.model
        rgb, digest = rendered or self.rendered(frame)
        side = tile_side(self.classic.profile.radius, model.image_size, frame.shape,
                         cells_per_diameter=self.cells_per_diameter, max_tiles=self.max_tiles)
        # Keyed by content and model: fit and predict on the same frame encode it once.
        key = f"{digest}:{model.name}:{id(model)}:{side}"
        if key not in self._embeddings:
            kept = {k: v for k, v in self._embeddings.items() if k.split(":")[0] == digest}
            kept[key] = encode_frame(model, rgb, side=side, cache_dir=self.cache_dir)
            self._embeddings = kept  # only this frame's embeddings stay in memory
        return self._embeddings[key]

    def features(self, frame: Frame, *, rendered: tuple[np.ndarray, str] | None = None):
        """The embedding pooled for descriptors (the feature model's)."""
        return self.encode(frame, self.feature_model, rendered=rendered)

    def fit(self, frame: Frame, examples, *, negatives=None) -> "FastSegmenter":
        """Learn from ``examples`` on ``frame``; ``negatives`` (objects or regions that are
        not the kind wanted, as annotations, masks or clicks) score down what is like them
        (the SAM column) and are never returned on ``frame`` (:mod:`fewseg.sam.contrast`)."""
        masks = as_masks(examples, frame)
        self.classic = WeightFreeSegmenter(self.config).fit(frame, masks)
        self.expected_area = float(np.median([m.area for m in masks]))
        rendered = self.rendered(frame)
        fe = self.features(frame, rendered=rendered)
        pooled = fe.pool(masks)
        self.prototype = fit_prototype_selector(pooled)
        self.negatives = None
        if negatives:
            neg = as_masks(negatives, frame)
            self.prototype = ContrastSelector(self.prototype.prototype, unit_rows(fe.pool(neg)), unit_rows(pooled),
                                              rule=self.negative_rule, weight=self.negative_weight)
            self.negatives = FittedNegatives(rendered[1], neg, negative_points(negatives))
        self.example_descriptors = np.column_stack([self.classic.example_vectors, self._cosine(masks, fe)])
        return self

    def _cosine(self, masks: list[ObjectMask], fe) -> np.ndarray:
        """Cosine similarity of each mask's pooled feature to the SAM prototype (scored
        down near the negatives, when there are any)."""
        return self.prototype.similarity(fe.pool(masks)) if masks else np.zeros(0)

    def decode_window(self, emb) -> int:
        """Decoder window side in cells for ``emb`` (``config.decode_window``; by default
        4 object diameters, at least 16 cells; never more than the embedding)."""
        side = features_side(emb)
        if self.config.decode_window == 0:
            return side
        if self.config.decode_window is not None:
            return min(self.config.decode_window, side)
        diameter = 2.0 * self.classic.profile.radius / min(emb.grid.cell_size)
        return min(side, max(16, 2 * int(np.ceil(2.0 * diameter))))

    def refine(self, fe, detections: list[ObjectMask]) -> tuple[list[ObjectMask], int, int]:
        """SAM masks for the detections (hybrid rule); returns (masks, prompts, decoded)."""
        from .runtime import predict_points_local

        out = list(detections)
        n_decoded = 0
        by_tile: dict[int, list[int]] = {}
        for k, m in enumerate(detections):
            by_tile.setdefault(fe.tile_for(m), []).append(k)
        for t, ks in by_tile.items():
            tile, emb = fe.tiles[t], fe.embeddings[t]
            pts = np.array([interior_point(detections[k]) for k in ks]) - (tile.row, tile.col)
            local = predict_points_local(self.model, emb, pts, window=self.decode_window(emb), multimask=True)
            n_decoded += local.iou.size
            areas = (local.logits > 0).sum(axis=(-1, -2)) * low_res_pixel_area(emb, local.full_side)
            pick = choose_mask(local.iou, areas, self.expected_area)
            for n, (k, best) in enumerate(zip(ks, pick)):
                m = upsample_mask(self.model, emb, local.placed(n, best))
                if m is None:
                    continue
                m = ObjectMask(m.row + tile.row, m.col + tile.col, m.mask)
                if m.iou(detections[k]) >= self.agree_iou:
                    out[k] = m
        return out, len(detections), n_decoded

    def predict(self, frame: Frame, *, exclude=None, similarity: float | None | str = FROM_CONFIG) -> Segmentation:
        """The frame's objects like the examples; ``similarity`` as in
        :meth:`fewseg.classic.model.WeightFreeSegmenter.predict` (None: the Bayes decision, 0.5)."""
        if self.classic is None:
            raise RuntimeError("call fit(frame, examples) before predict(frame)")
        cfg = self.config
        t0 = time.perf_counter()
        rendered = self.rendered(frame)
        masks_fe = self.encode(frame, rendered=rendered)
        features_fe = self.features(frame, rendered=rendered)
        t1 = time.perf_counter()
        signal = object_signal(frame, self.classic.profile)
        detections = propose(signal, self.classic.settings, min_area=cfg.min_area, max_area=cfg.max_area)
        # Only detections the weight-free descriptors find plausible are worth a decoder
        # pass (halo fragments, debris are not); the rest stay candidates, unrefined.
        plausible = select_by_mixture(self.classic.example_vectors,
                                      describe(frame, signal, detections, self.classic.profile)).scores >= 0.1
        which = np.flatnonzero(plausible)
        refined, n_prompts, n_decoded = self.refine(masks_fe, [detections[i] for i in which])
        candidates = list(detections)
        for i, m in zip(which, refined):
            candidates[i] = m
        t2 = time.perf_counter()
        vectors = np.column_stack([describe(frame, signal, candidates, self.classic.profile),
                                   self._cosine(candidates, features_fe)])
        t3 = time.perf_counter()
        selection = select_by_mixture(self.example_descriptors, vectors, threshold=similarity_of(cfg, similarity))
        n_rejected = 0
        if self.negatives is not None:
            scores, n_rejected = self.negatives.mask_out(rendered[1], candidates, selection.scores)
            selection = mixture_selection(scores, selection.typicality, threshold=similarity_of(cfg, similarity))
        found = Candidates(candidates, frame.shape, exclude=as_masks(exclude, frame) if exclude else None,
                           source=frame.source)
        out = keep_selected(found, selection, config=cfg)
        polygons = out.timings["polygons"]
        out.timings = {"propose": t2 - t1, "embed": (t1 - t0) + (t3 - t2), "select": time.perf_counter() - t3 - polygons,
                       "polygons": polygons, "encoding": t1 - t0}
        out.extra = {"n_prompts": n_prompts, "n_decoded": n_decoded, "n_tiles": len(masks_fe.tiles)}
        if self.negatives is not None:
            out.extra["n_under_negatives"] = n_rejected
        return out

    def rethreshold(self, segmentation: Segmentation, *, similarity: float | None | str = FROM_CONFIG) -> Segmentation:
        """``segmentation`` (from :meth:`predict`) kept at another ``similarity``: the mixture's
        posteriors are kept, only the keep decision and :func:`~fewseg.result.finish` are redone."""
        candidates = segmentation.require_candidates()
        prior = segmentation.selection
        selection = mixture_selection(prior.scores, prior.typicality, threshold=similarity_of(self.config, similarity))
        out = keep_selected(candidates, selection, config=self.config)
        out.extra = dict(segmentation.extra)
        return out

    def describe_fit(self) -> dict:
        return {
            "method": "fast",
            "model": self.config.model,
            "feature_model": self.config.feature_model or self.config.model,
            "classic": self.classic.describe_fit() if self.classic else None,
            "expected_area": self.expected_area,
            "cells_per_diameter": self.cells_per_diameter,
            "agree_iou": self.agree_iou,
            "decode_window": self.config.decode_window,
            **({} if self.negatives is None else self.negatives.describe(self.negative_rule, self.negative_weight)),
        }
