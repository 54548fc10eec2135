"""One frame larger than memory: fit on the examples' region, predict block by block.

The engine's own large-frame path (as stardist's ``predict_instances_big`` belongs to
its model): :func:`fit_region` fits the weight-free model
(:class:`fewseg.classic.model.WeightFreeSegmenter`) on the region around the examples,
:func:`predict_blockwise` predicts the whole frame a region at a time. ``predict`` is
local except for three steps, which are done here frame-wide, from passes over the
blocks that hold only small summaries in memory:

1. **Background** (:func:`fewseg.classic.examples.estimate_background`) works on a grid coarsened
   by the object radius: the blocks' coarse samples are put together (1 / step**2 of
   the frame), filtered there exactly as for a whole frame, and each block's background
   is interpolated from it at its own pixels, with the interpolation ``ndimage.zoom``
   uses (:func:`upsample_background`).
2. **Channel levels** (:func:`fewseg.classic.describe.channel_levels`, each channel's median): exact,
   from a histogram of the float32 values' top 16 bits over all blocks and a second
   pass collecting the values in the median's bin (:func:`frame_medians`).
3. **Selection**: every block proposes and describes candidates on the block plus a
   halo (:func:`halo_for`: more than an object's diameter plus the reach of the
   proposer's filters); a candidate is kept by the block whose core holds its centre;
   then the model's own selection and choice of outlines over all blocks' candidates
   (``WeightFreeSegmenter.select`` and ``.outlines``, which ``predict`` uses) and the
   shared last stage (:func:`fewseg.result.finish`).

Blocks run one after another here; ``map_blocks`` runs them elsewhere (as dask tasks:
:func:`fewseg.scale.mosaic.dask_map_blocks`). Memory is set by the block (plus halo)
size, the coarse background grid and the candidates' small masks (every candidate's,
until the frame-wide selection: a few KB each); the one frame-sized array left is
``choose_outlines``' boolean image (1 byte per pixel). Re-discovered examples are
dropped on the examples' window (:func:`fewseg.match.drop_rediscovered`, the one
implementation every method uses), not on a frame-sized label image.
Compared with whole-frame ``predict`` the output is the same objects; where it can
differ (objects larger than the halo, a watershed region spanning blocks) is listed by
the benchmark (``benchmarks/bench_scale.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from ..config import FROM_CONFIG, SegmentConfig
from ..match import drop_rediscovered
from ..objects import Annotation, Frame, ObjectMask
from ..result import Segmentation, finish, shape_only
from .clicks import as_masks
from .describe import describe
from .examples import background_step, coarse_background, object_signal
from .model import WeightFreeSegmenter
from .propose import propose_levels

__all__ = ["fit_region", "predict_blockwise", "block_candidates", "halo_for", "frame_medians", "upsample_background",
           "blocks"]

#: Pixels around the examples' bounding box that :func:`fit_region` fits on.
FIT_MARGIN = 512

#: ``read(rows, cols) -> Frame``: the ``(C, h, w)`` pixels of a region of the frame.
RegionReader = Callable[[slice, slice], Frame]


def halo_for(model) -> int:
    """Halo (pixels) around each block: three times the largest example's diameter plus
    the reach of the proposer's filters (smoothing, seeds, peaks, dark lines, rings)."""
    p, s = model.profile, model.settings
    diameter = 2 * math.sqrt(max(p.areas) / math.pi)
    reach = (4 * s.smooth + 4 * s.seed_sigma + 4 + 2 * s.min_distance + 2 * s.peak_radius
             + 4 * s.valley_sigma + 2 + max(2, round(p.radius / 2)) + 2)
    return int(math.ceil(3 * diameter + reach))


def blocks(shape: tuple[int, int], block: int) -> list[tuple[slice, slice]]:
    """The cores of the blocks tiling a ``shape`` frame, row-major."""
    return [(slice(r, min(r + block, shape[0])), slice(c, min(c + block, shape[1])))
            for r in range(0, shape[0], block) for c in range(0, shape[1], block)]


def _grow(core: tuple[slice, slice], halo: int, shape) -> tuple[slice, slice]:
    return tuple(slice(max(s.start - halo, 0), min(s.stop + halo, n)) for s, n in zip(core, shape))


def _ordered_bits(values: np.ndarray) -> np.ndarray:
    """float32 values as uint32 keys in the same order (sign-flipped IEEE bits)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))


def frame_medians(read: RegionReader, shape, cores) -> tuple[float, ...]:
    """Each channel's exact median over the frame (``np.median``'s value), two passes
    over the blocks, 65,536 counts per channel plus the values of the median's bins."""
    hist = None
    for rows, cols in cores:
        data = read(rows, cols).data
        if hist is None:
            hist = np.zeros((data.shape[0], 1 << 16), dtype=np.int64)
        for c, channel in enumerate(data):
            hist[c] += np.bincount((_ordered_bits(channel) >> 16).ravel(), minlength=1 << 16)
    n = shape[0] * shape[1]
    ranks = (n - 1) // 2, n // 2  # np.median: mean of these two order statistics
    cum = np.cumsum(hist, axis=1)
    bins = [[int(np.searchsorted(cum[c], r, side="right")) for r in ranks] for c in range(len(hist))]
    below = [[int(cum[c][b - 1]) if b else 0 for b in bins[c]] for c in range(len(hist))]
    found: list[list[np.ndarray]] = [[] for _ in hist]
    for rows, cols in cores:
        data = read(rows, cols).data
        for c, channel in enumerate(data):
            keys = _ordered_bits(channel).ravel() >> 16
            found[c].append(channel.ravel()[np.isin(keys, bins[c])])
    out = []
    for c in range(len(hist)):
        values = np.sort(np.concatenate(found[c]))
        picks = np.array([values[r - below[c][0]] for r in ranks], dtype=np.float32)
        out.append(float(np.mean(picks)))  # as np.median takes the mean of the middle two
    return tuple(out)


def upsample_background(coarse: np.ndarray, shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """``ndimage.zoom(coarse, shape / coarse.shape, order=1, mode="nearest",
    grid_mode=True)[rows, cols]`` as float32, computing only that region."""
    zoom_r, zoom_c = coarse.shape[0] / shape[0], coarse.shape[1] / shape[1]
    rr = (np.arange(rows.start, rows.stop, dtype=np.float64) + 0.5) * zoom_r - 0.5
    cc = (np.arange(cols.start, cols.stop, dtype=np.float64) + 0.5) * zoom_c - 0.5
    grid = np.stack(np.meshgrid(rr, cc, indexing="ij"))
    return ndi.map_coordinates(coarse, grid, order=1, mode="nearest").astype(np.float32)


def _coarse_backgrounds(read: RegionReader, shape, cores, profile) -> list[np.ndarray | None]:
    """Per channel with a non-zero weight, :func:`coarse_background` of the frame's
    ``channel * sign(weight)`` sampled every step pixels, from the blocks' samples."""
    step = background_step(profile.radius)
    n_rows, n_cols = -(-shape[0] // step), -(-shape[1] // step)
    small: list = [None] * len(profile.weights)
    for rows, cols in cores:
        data = read(rows, cols).data
        r0, c0 = -(-rows.start // step), -(-cols.start // step)
        for c, (channel, w) in enumerate(zip(data, profile.weights)):
            if w == 0:
                continue
            sample = (channel * np.sign(w))[r0 * step - rows.start::step, c0 * step - cols.start::step]
            if small[c] is None:
                small[c] = np.zeros((n_rows, n_cols), dtype=sample.dtype)
            small[c][r0:r0 + sample.shape[0], c0:c0 + sample.shape[1]] = sample
    return [None if s is None else coarse_background(s, radius=profile.radius) for s in small]


def _centre(mask: ObjectMask) -> tuple[int, int]:
    rr, cc = np.nonzero(mask.mask)
    return mask.row + int(np.floor(rr.mean() + 0.5)), mask.col + int(np.floor(cc.mean() + 0.5))


def block_candidates(model, read: RegionReader, shape, core: tuple[slice, slice], *, halo: int, base, coarse) -> list:
    """One block's candidates: propose and describe on the core plus ``halo`` (with the
    frame-wide background and channel levels), keep those whose centre is in the core.
    Returns, per outline level, ``(masks in frame coordinates, descriptor rows)``."""
    cfg, profile = model.config, model.profile
    rows, cols = core
    outer = _grow(core, halo, shape)
    frame = read(*outer)
    backgrounds = [None if c is None else upsample_background(c, shape, *outer) for c in coarse]
    signal = object_signal(frame, profile, backgrounds=backgrounds)
    out = []
    for level in propose_levels(signal, model.settings, min_area=cfg.min_area, max_area=cfg.max_area):
        masks, kept = [], []
        v = describe(frame, signal, level, profile, base=base) if level else np.zeros((0, 0))
        for m, row in zip(level, v):
            shifted = ObjectMask(m.row + outer[0].start, m.col + outer[1].start, m.mask)
            r, c = _centre(shifted)
            if rows.start <= r < rows.stop and cols.start <= c < cols.stop:
                masks.append(shifted)
                kept.append(row)
        out.append((masks, kept))
    return out


def fit_region(config: SegmentConfig, read: RegionReader, shape: tuple[int, int], examples: list[Annotation], *,
               margin: int = FIT_MARGIN) -> tuple[WeightFreeSegmenter, tuple[int, int, int, int]]:
    """Fit the weight-free model on the region around ``examples`` only (the model never
    sees the whole frame): their bounding box plus ``margin`` pixels, clipped to the frame.

    Parameters
    ----------
    config : SegmentConfig
    read : callable
        ``read(rows, cols) -> Frame`` with the region's ``(C, h, w)`` pixels.
    shape : tuple of int
        ``(Y, X)`` of the whole frame.
    examples : list of Annotation
        In frame coordinates.
    margin : int

    Returns
    -------
    model : WeightFreeSegmenter
        Fitted on the region, the examples shifted into it.
    region : tuple of int
        ``(row0, col0, row1, col1)`` of the region fitted on.

    Examples
    --------
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    >>> read = lambda rows, cols: Frame(frame.data[:, rows, cols], channel_names=frame.channel_names)
    >>> model, region = fit_region(SegmentConfig(), read, frame.shape, truth[:5], margin=16)
    >>> model.profile is not None, all(0 <= v <= 256 for v in region)
    (True, True)
    """
    boxes = np.array([a.to_mask(shape).bbox for a in examples])
    r0, c0 = max(int(boxes[:, 0].min()) - margin, 0), max(int(boxes[:, 1].min()) - margin, 0)
    r1, c1 = min(int(boxes[:, 2].max()) + margin, shape[0]), min(int(boxes[:, 3].max()) + margin, shape[1])
    crop = read(slice(r0, r1), slice(c0, c1))

    def shifted(a: Annotation) -> Annotation:
        if a.polygon is not None:
            return replace(a, polygon=np.asarray(a.polygon, float) - (r0, c0))
        return replace(a, mask=ObjectMask(a.mask.row - r0, a.mask.col - c0, a.mask.mask))

    return WeightFreeSegmenter(config).fit(crop, [shifted(a) for a in examples]), (r0, c0, r1, c1)


def predict_blockwise(model: WeightFreeSegmenter, read: RegionReader, shape: tuple[int, int], *, block: int = 1024,
                      halo: int | None = None, exclude=None, similarity: float | None | str = FROM_CONFIG,
                      source: str = "<mosaic>", progress=None, map_blocks=None) -> Segmentation:
    """``model.predict`` of a frame too large for memory, read a region at a time.

    Parameters
    ----------
    model : WeightFreeSegmenter
        Fitted (on a frame, or a crop of this one holding the examples: :func:`fit_region`).
    read : callable
        ``read(rows, cols) -> Frame`` with the region's ``(C, h, w)`` pixels.
    shape : tuple of int
        ``(Y, X)`` of the whole frame.
    block : int
        Core size of a block (rounded up to the background grid's step).
    halo : int, optional
        Pixels read around each core; default :func:`halo_for`.
    exclude : list, optional
        Examples (frame coordinates) whose re-discoveries are dropped.
    similarity : float, None or "config"
        The keep threshold, as in ``model.predict``.
    progress : callable, optional
        Wraps the blocks' iterable (e.g. :func:`fewseg.progress.progress`).
    map_blocks : callable, optional
        ``map_blocks(block_candidates, model, read, shape, cores, **kwargs)`` yielding
        each core's :func:`block_candidates` in order (e.g. as dask tasks,
        :func:`fewseg.scale.mosaic.dask_map_blocks`); default: one after another here.

    Returns
    -------
    Segmentation
        As ``model.predict`` returns it, with ``extra["blocks"]`` (count, block, halo);
        it keeps no candidates (predict again for another threshold). Outlines are
        each object's level (the learned boundary is not drawn block by block).

    Examples
    --------
    >>> from fewseg.demo import make_demo
    >>> frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    >>> model = WeightFreeSegmenter().fit(frame, truth[:10])
    >>> read = lambda rows, cols: Frame(frame.data[:, rows, cols], channel_names=frame.channel_names)
    >>> parts = predict_blockwise(model, read, frame.shape, block=128, exclude=truth[:10])
    >>> parts.extra["blocks"]["count"], len(parts.polygons) == len(model.predict(frame, exclude=truth[:10]).polygons)
    (4, True)
    """
    if model.profile is None:
        raise RuntimeError("call fit(frame, examples) before predict_blockwise")
    cfg, profile = model.config, model.profile
    step = background_step(profile.radius)
    block = int(math.ceil(max(block, step) / step) * step)  # cores start on the background grid
    halo = halo_for(model) if halo is None else int(halo)
    cores = blocks(shape, block)
    wrap = progress or (lambda items, **_: items)
    t0 = time.perf_counter()
    base = frame_medians(read, shape, cores)
    coarse = _coarse_backgrounds(read, shape, cores, profile)
    t1 = time.perf_counter()
    candidates: list[list[ObjectMask]] = [[], []]
    vectors: list[list[np.ndarray]] = [[], []]
    if map_blocks is None:
        found = (block_candidates(model, read, shape, core, halo=halo, base=base, coarse=coarse) for core in cores)
    else:
        found = map_blocks(block_candidates, model, read, shape, cores, halo=halo, base=base, coarse=coarse)
    for per_level in wrap(found, total=len(cores), desc="blocks"):
        for k, (masks, v) in enumerate(per_level):
            candidates[k].extend(masks)
            vectors[k].extend(v)
    n_levels = 2 if candidates[1] else 1
    t2 = time.perf_counter()
    all_masks = [m for k in range(n_levels) for m in candidates[k]]
    level_of = np.concatenate([np.full(len(candidates[k]), k) for k in range(n_levels)])
    dim = model.example_vectors.shape[1]
    all_vectors = np.vstack([np.reshape(vectors[k], (-1, dim)) for k in range(n_levels)])
    selection = model.select(all_vectors, similarity=similarity)
    kept, scores = model.outlines(all_masks, level_of, selection, shape)
    t3 = time.perf_counter()
    whole = shape_only(shape, source)
    n_re = 0
    if exclude and cfg.exclude_examples:
        kept, scores, n_re = drop_rediscovered(kept, as_masks(exclude, whole), iou=cfg.iou, scores=scores)
    polys, masks, scores, _ = finish(whole, kept, scores, config=cfg, exclude=None)
    t4 = time.perf_counter()
    return Segmentation(polygons=polys, masks=masks, scores=scores, n_candidates=len(all_masks), n_rediscovered=n_re,
                        timings={"frame_wide": t1 - t0, "blocks": t2 - t1, "select": t3 - t2, "polygons": t4 - t3},
                        selection=selection, extra={"blocks": {"count": len(cores), "block": block, "halo": halo}})
