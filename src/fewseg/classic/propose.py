"""Propose candidate objects without model weights: adaptive threshold + seeded watershed.

The object signal (``examples.object_signal``) is bright where objects like the examples
are. A pixel belongs to an object when the smoothed signal exceeds both an absolute
floor and a fraction of the local peak, so dim objects get boundaries at the same
relative level as bright ones. Touching objects are split by a watershed from one
seed per object, the seeds being maxima of the distance to the background or of the
signal smoothed at the object scale; regions still larger than any example are split
again along the dark lines between objects (:func:`split_large`). Where the boundary
lies, how dim an object may be and how seeds are found are all fitted to the examples
by :func:`fit_proposer`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from ..objects import ObjectMask, label_shapes, labels_from_masks, masks_from_labels
from .contacts import structures
from .parallel import map_levels


@dataclass(frozen=True)
class ProposerSettings:
    """How candidates are cut out of the object signal (all lengths in pixels).

    Attributes
    ----------
    smooth : float
        Gaussian sigma applied to the signal before thresholding.
    floor : float
        Absolute threshold in units of the examples' mean signal.
    fraction : float
        Relative threshold: fraction of the local peak (max over ``peak_radius``).
    peak_radius : float
        Radius of the neighbourhood whose maximum is the local peak.
    seeds : str
        ``"distance"`` (maxima of the distance transform) or ``"intensity"``
        (maxima of the signal smoothed at ``seed_sigma``).
    seed_sigma : float
    min_distance : int
        Minimum distance between seeds.
    outline_sigma : float
        Smoothing of each object's outline (see :func:`tidy_mask`).
    neck_depth : float
        How pronounced a neck must be to split there (see :func:`split_at_necks`).
    split_above : float
        Regions larger than this many pixels are split along dark lines
        (:func:`split_large`); 0 = never. Fitted: 1.2 x the largest example.
    valley, valley_sigma : float
        A pixel is on a dark line when :func:`valleys` at ``valley_sigma`` pixels is at
        least ``valley``.
    min_part, part_fill : float
        Each part of a split must keep at least ``min_part`` pixels and an ellipse fill
        (:func:`~fewseg.objects.label_shapes`) of at least ``part_fill``, so bright
        debris is not cut into object-sized pieces. Fitted: 0.3 x the median example
        area, and the lowest ellipse fill among the examples.
    alternative : float
        :func:`propose_levels` also outlines everything at ``fraction + alternative``
        (0 = not), for the selector to choose per object
        (:func:`~fewseg.classic.select.choose_outlines`).
    """

    smooth: float = 1.0
    floor: float = 0.15
    fraction: float = 0.45
    peak_radius: float = 8.0
    seeds: str = "intensity"
    seed_sigma: float = 2.0
    min_distance: int = 4
    outline_sigma: float = 1.0
    neck_depth: float = 1.0
    split_above: float = 0.0
    valley: float = 0.04
    valley_sigma: float = 2.0
    min_part: float = 0.0
    part_fill: float = 0.0
    alternative: float = -0.1

    def to_dict(self) -> dict:
        return asdict(self)


def default_settings(radius: float) -> ProposerSettings:
    """Settings scaled to objects of equivalent radius ``radius``."""
    return ProposerSettings(
        smooth=max(0.7, radius / 8),
        peak_radius=max(2.0, 1.5 * radius),
        seed_sigma=max(1.0, radius / 2.5),
        min_distance=max(2, int(round(radius * 0.6))),
        neck_depth=max(0.5, 0.08 * radius),
    )


def smooth_signal(signal: np.ndarray, settings: ProposerSettings) -> np.ndarray:
    return ndi.gaussian_filter(signal, settings.smooth) if settings.smooth > 0 else signal


def valleys(smooth: np.ndarray, sigma: float) -> np.ndarray:
    """Dark-line strength: the larger Hessian eigenvalue at ``sigma`` (scale-normalised
    curvature across a line), relative to the local signal level, so the same value
    means the same relative dip in dim and bright objects. High on the thin dark line
    between two touching objects, ~0 on flat interiors and background."""
    curvature = hessian_eigenvalue(smooth, sigma) * sigma**2
    level = ndi.maximum_filter(ndi.gaussian_filter(smooth, 2 * sigma), size=int(4 * sigma) | 1)
    return curvature / np.maximum(level, 1e-6)


def hessian_eigenvalue(image: np.ndarray, sigma: float) -> np.ndarray:
    """The larger eigenvalue of the Hessian of a ``(Y, X)`` image at scale ``sigma``.

    The same numbers as ``skimage.feature.hessian_matrix(image, sigma,
    use_gaussian_derivatives=True)`` followed by ``hessian_matrix_eigvals(...)[0]`` (two
    first-order Gaussian derivatives at ``sigma / sqrt 2``, zero outside the image), from
    :mod:`scipy.ndimage` alone: importing ``skimage.feature`` pulls in ``scipy.stats``,
    about a second of start-up on every command.
    """
    image = image.astype(np.float64, copy=False) if image.dtype.kind != "f" else image
    kwargs = dict(sigma=sigma / np.sqrt(2), mode="constant", cval=0.0, truncate=8 if sigma > 1 else 100)
    d_row = ndi.gaussian_filter(image, order=(1, 0), **kwargs)
    d_col = ndi.gaussian_filter(image, order=(0, 1), **kwargs)
    h_rr = ndi.gaussian_filter(d_row, order=(1, 0), **kwargs)
    h_rc = ndi.gaussian_filter(d_row, order=(0, 1), **kwargs)
    h_cc = ndi.gaussian_filter(d_col, order=(0, 1), **kwargs)
    return (h_rr + h_cc) / 2 + np.sqrt(h_rc**2 + ((h_rr - h_cc) / 2) ** 2)


def split_regions(smooth: np.ndarray, settings: ProposerSettings) -> np.ndarray:
    """Seeded watershed of everything above the floor into one region per object.

    Returns a ``(Y, X)`` int32 label image. Regions are generous: their boundaries are
    set afterwards by :func:`trim_regions`.
    """
    fg = ndi.binary_opening(smooth > settings.floor)
    components, n = ndi.label(fg)
    if n == 0:
        return components.astype(np.int32)
    if settings.seeds == "intensity":
        # Where little is above the floor (the second pass, say), each piece is split in
        # its own window: the same regions, without filtering the whole frame.
        boxes = ndi.find_objects(components)
        margin = int(4.0 * settings.seed_sigma + 0.5) + settings.min_distance + 1
        crops = [tuple(slice(max(b.start - margin, 0), min(b.stop + margin, size)) for b, size in zip(box, smooth.shape))
                 for box in boxes]
        if sum((r.stop - r.start) * (c.stop - c.start) for r, c in crops) < SPARSE * smooth.size:
            return _split_sparse(smooth, settings, components, boxes, crops)
    if settings.seeds == "distance":
        dist = ndi.distance_transform_edt(smooth > settings.fraction * ndi.maximum_filter(smooth, size=2 * int(settings.peak_radius) + 1))
        surface = ndi.gaussian_filter(dist, 1.0) + 1e-3 * smooth
    elif settings.seeds == "intensity":
        surface = ndi.gaussian_filter(smooth, settings.seed_sigma)
    else:
        raise ValueError(f"unknown seed mode {settings.seeds!r}")
    # Seeds: local maxima over a (2 * min_distance + 1) window; a plateau is one seed.
    size = 2 * settings.min_distance + 1
    is_peak = (surface >= ndi.maximum_filter(surface, size=size)) & fg
    markers, n_peaks = ndi.label(is_peak)
    # Components without a peak (flat or tiny) still get one seed at their maximum.
    seeded = np.zeros(n + 1, dtype=bool)
    seeded[components[is_peak]] = True
    missing = np.flatnonzero(~seeded[1:]) + 1
    if missing.size:
        boxes = ndi.find_objects(components)
        for k, value in enumerate(missing, start=n_peaks + 1):
            box = boxes[value - 1]
            local = np.where(components[box] == value, surface[box], -np.inf)
            r, c = np.unravel_index(int(np.argmax(local)), local.shape)
            markers[box[0].start + r, box[1].start + c] = k
    return watershed(-surface, markers, mask=fg).astype(np.int32)


def _region_peaks(smooth: np.ndarray, regions: np.ndarray, n: int) -> np.ndarray:
    """Each region's maximum (0 at least) of ``smooth`` smoothed at sigma 1, as float32:
    from the whole frame, or, when the regions' windows cover little of it, window by
    window (each window a region's box plus the smoothing's reach: the same values)."""
    peak = np.zeros(n + 1, dtype=np.float32)
    boxes = ndi.find_objects(regions)
    reach = int(4.0 * 1.0 + 0.5) + 1
    crops = [None if box is None else
             tuple(slice(max(b.start - reach, 0), min(b.stop + reach, size)) for b, size in zip(box, smooth.shape))
             for box in boxes]
    if sum((r.stop - r.start) * (c.stop - c.start) for r, c in filter(None, crops)) >= SPARSE * smooth.size:
        np.maximum.at(peak, regions.ravel(), ndi.gaussian_filter(smooth, 1.0).ravel().astype(np.float32))
        return peak
    for value, crop in enumerate(crops, start=1):
        if crop is not None:
            values = ndi.gaussian_filter(smooth[crop], 1.0).astype(np.float32)[regions[crop] == value]
            peak[value] = max(np.float32(0), values.max())
    return peak


#: :func:`split_regions` splits each piece above the floor in its own window when the
#: windows cover less than this fraction of the frame.
SPARSE = 0.25


def _split_sparse(smooth: np.ndarray, settings: ProposerSettings, components: np.ndarray, boxes, crops) -> np.ndarray:
    """:func:`split_regions` with intensity seeds, piece by piece: each window (``crops``,
    a piece's box plus the reach of the seed smoothing and of the seed spacing) gives the
    same smoothed values as the whole frame on the piece and within ``min_distance`` of
    it; seeds are numbered over the whole frame, and a watershed within one piece does
    not depend on the others, so the regions are those of the dense path."""
    size = 2 * settings.min_distance + 1
    is_peak = np.zeros(smooth.shape, dtype=bool)
    surfaces, owns = [], []
    for value, crop in enumerate(crops, start=1):
        surface = ndi.gaussian_filter(smooth[crop], settings.seed_sigma)
        own = components[crop] == value
        is_peak[crop] |= (surface >= ndi.maximum_filter(surface, size=size)) & own
        surfaces.append(surface)
        owns.append(own)
    markers, n_peaks = ndi.label(is_peak)
    seeded = np.zeros(len(crops) + 1, dtype=bool)
    seeded[components[is_peak]] = True
    for k, value in enumerate(np.flatnonzero(~seeded[1:]) + 1, start=n_peaks + 1):
        box, crop = boxes[value - 1], crops[value - 1]
        inner = tuple(slice(b.start - c.start, b.stop - c.start) for b, c in zip(box, crop))
        local = np.where(owns[value - 1][inner], surfaces[value - 1][inner], -np.inf)
        r, c = np.unravel_index(int(np.argmax(local)), local.shape)
        markers[box[0].start + r, box[1].start + c] = k
    out = np.zeros(smooth.shape, dtype=np.int32)
    for crop, surface, own in zip(crops, surfaces, owns):
        found = watershed(-surface, np.where(own, markers[crop], 0), mask=own)
        out[crop][own] = found[own]
    return out


def trim_regions(smooth: np.ndarray, regions: np.ndarray, settings: ProposerSettings, *,
                 cache: dict | None = None) -> np.ndarray:
    """Cut each region at ``fraction`` of its own peak, so a dim object next to a bright
    one gets its boundary at the same relative level as the bright one. ``cache`` (a dict
    kept with one ``smooth`` and ``regions``) keeps the regions' peaks, which do not
    depend on ``fraction``."""
    n = int(regions.max())
    if n == 0:
        return regions
    if cache is not None and cache.get("peak", (None,))[0] is regions:
        peak = cache["peak"][1]
    else:
        peak = _region_peaks(smooth, regions, n)
        if cache is not None:
            cache["peak"] = (regions, peak)
    level = np.maximum(settings.fraction * peak, settings.floor)
    return np.where(smooth > level[regions], regions, 0).astype(np.int32)


def split_at_necks(labels: np.ndarray, *, depth: float, below: float = 0.96, min_area: float = 0.0,
                   cache: dict | None = None) -> np.ndarray:
    """Cut concave regions at their necks: touching objects one seed claimed together.

    Only regions whose ellipse fill (:func:`~fewseg.objects.label_shapes`) is below
    ``below`` and whose area is at least ``min_area`` (room for two objects) are
    examined, each in its own box. There the distance to the region's
    boundary (lightly smoothed) has one maximum per round object; maxima that stand at
    least ``depth`` pixels above the saddle between them seed a watershed of the
    distance map. ``cache`` (a dict) keeps each region's parts by its shape, so a region
    met again (at the other outline level, or in another trial of the fit) is not cut again.
    """
    n = int(labels.max())
    if n == 0:
        return labels
    shapes = label_shapes(labels, n)
    examine = (shapes["ellipse_fill"] < below) & (shapes["area"] >= min_area)
    out = labels.copy()
    next_label = n + 1
    for value, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or not examine[value - 1]:
            continue
        region = labels[box] == value
        if cache is None:
            parts, k = _parts_at_distance_maxima(region, region, depth)
        else:
            key = ("neck", depth, region.shape, region.tobytes())
            if key not in cache:
                cache[key] = _parts_at_distance_maxima(region, region, depth)
            parts, k = cache[key]
        if k >= 2:
            next_label = _label_parts(out[box], parts, k, next_label)
    return out


def _parts_at_distance_maxima(region: np.ndarray, inside: np.ndarray, depth: float) -> tuple[np.ndarray | None, int]:
    """Cut ``region`` (a boolean box) into one part per maximum of the lightly smoothed
    distance to what lies outside ``inside`` (a subset of it), maxima standing at least
    ``depth`` above their saddle, by a watershed of that distance over the region.
    Returns ``(parts, k)``: a label image of the box and the number of parts; parts is
    None when there are fewer than two."""
    from skimage.morphology import h_maxima

    region, inside = _padded(region, 2), _padded(inside, 2)
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(inside), 1.0)
    # Each h-maximum holds a regional maximum of its own (a plateau no neighbour rises
    # above: the connected pixels at least as high as their 8 neighbours), so with fewer
    # than two of those there is nothing to cut; most regions end here, cheaply.
    peaks = (dist >= ndi.maximum_filter(dist, size=3)) & (dist > 0)
    if ndi.label(peaks, structure=np.ones((3, 3), bool))[1] < 2:
        return None, 1
    markers, k = ndi.label(h_maxima(dist, depth) & inside)
    if k < 2:
        return None, k
    return watershed(-dist, markers, mask=region)[2:-2, 2:-2], k


def _label_parts(view: np.ndarray, parts: np.ndarray, k: int, next_label: int) -> int:
    """Give parts 2..k of a split region new labels in ``view`` (part 1 keeps the
    region's); returns the next free label."""
    for part in range(2, k + 1):
        view[parts == part] = next_label
        next_label += 1
    return next_label


def split_large(labels: np.ndarray, smooth: np.ndarray, settings: ProposerSettings, *,
                cache: dict | None = None) -> np.ndarray:
    """Split regions larger than any example along dark lines (touching objects).

    Inside each region above ``settings.split_above`` pixels, pixels on a dark line
    (:func:`valleys` >= ``settings.valley``) are removed; the distance to what remains has
    one maximum per object; maxima at least ``neck_depth`` above their saddle seed a
    watershed of the region. A split is kept only if every part has ``min_part`` pixels
    and an ellipse fill of at least ``part_fill`` (shaped like an example). ``cache`` (a
    dict) keeps each region's parts by the region and the signal around it.
    """
    if settings.valley <= 0 or settings.split_above <= 0:
        return labels
    area = np.bincount(labels.ravel())
    big = np.flatnonzero(area > settings.split_above)
    big = big[big > 0]
    if big.size == 0:
        return labels
    out = labels.copy()
    next_label = int(labels.max()) + 1
    boxes = ndi.find_objects(labels)
    pad = int(np.ceil(4 * settings.valley_sigma)) + 2
    for value in big:
        box = boxes[value - 1]
        # The dark lines, computed on the region's box plus a margin (not the whole frame).
        outer = tuple(slice(max(b.start - pad, 0), min(b.stop + pad, n)) for b, n in zip(box, smooth.shape))
        region = labels[box] == value
        if cache is None:
            parts, k = _dark_line_parts(region, smooth, box, outer, settings)
        else:
            window = np.ascontiguousarray(smooth[outer])
            key = ("dark", settings.valley, settings.valley_sigma, settings.neck_depth, settings.min_part,
                   settings.part_fill, region.shape, region.tobytes(), tuple((b.start - o.start, o.stop - b.stop)
                   for b, o in zip(box, outer)), window.shape, window.dtype.str, window.tobytes())
            if key not in cache:
                cache[key] = _dark_line_parts(region, smooth, box, outer, settings)
            parts, k = cache[key]
        if k >= 2:
            next_label = _label_parts(out[box], parts, k, next_label)
    return out


def _dark_line_parts(region: np.ndarray, smooth: np.ndarray, box, outer, settings: ProposerSettings):
    """:func:`split_large` for one region (``box`` of the frame, ``outer`` that box plus
    a margin): ``(parts, k)``, parts None and k < 2 when it is not split."""
    line = valleys(smooth[outer], settings.valley_sigma) >= settings.valley
    line = line[box[0].start - outer[0].start : box[0].stop - outer[0].start,
                box[1].start - outer[1].start : box[1].stop - outer[1].start]
    parts, k = _parts_at_distance_maxima(region, region & ~line, settings.neck_depth)
    if k < 2:
        return None, k
    shapes = label_shapes(parts, k)
    if (shapes["area"] < settings.min_part).any() or (shapes["ellipse_fill"] < settings.part_fill).any():
        return None, 1
    return parts, k


def segment_signal(smooth: np.ndarray, settings: ProposerSettings, *, passes: int = 2,
                   first: np.ndarray | None = None, cache: dict | None = None) -> np.ndarray:
    """Objects of a smoothed signal as a ``(Y, X)`` int32 label image.

    Each pass splits what is above the floor into regions, then trims every region at
    its own relative level. What a bright neighbour's trimming left over above the floor
    (a dim object in its shadow) is split and trimmed again in the next pass. ``first``
    is ``split_regions(smooth, settings)`` when the caller already has it. ``cache`` (a
    dict kept across calls on the same ``smooth``: the two outline levels, the trials of
    the fit) saves the cuts of regions met before; the result is the same.
    """
    labels = np.zeros(smooth.shape, dtype=np.int32)
    free = np.ones(smooth.shape, dtype=bool)
    for k in range(passes):
        masked = np.where(free, smooth, 0.0).astype(smooth.dtype, copy=False)
        regions = first if k == 0 and first is not None else split_regions(masked, settings)
        found = trim_regions(masked, regions, settings, cache=cache if k == 0 else None)
        if not found.any():
            break
        found = split_at_necks(found, depth=settings.neck_depth, min_area=2 * settings.min_part, cache=cache)
        found = split_large(found, masked, settings, cache=cache)
        new = found > 0
        labels[new] = found[new] + labels.max()
        free &= ~ndi.binary_dilation(labels > 0)
    return labels


def propose(signal: np.ndarray, settings: ProposerSettings, *, min_area: int = 30, max_area: int = 0) -> list[ObjectMask]:
    """Candidate objects in a ``(Y, X)`` object signal: non-overlapping masks.

    Parameters
    ----------
    signal : ndarray, shape (Y, X)
    settings : ProposerSettings
    min_area, max_area : int
        Keep candidates with ``min_area <= area`` and (``max_area`` > 0) ``area <= max_area``.
    """
    labels = segment_signal(smooth_signal(signal, settings), settings)
    return _candidates(labels, settings, min_area=min_area, max_area=max_area)


def propose_levels(signal: np.ndarray, settings: ProposerSettings, *, min_area: int = 30,
                   max_area: int = 0) -> list[list[ObjectMask]]:
    """:func:`propose` at the fitted ``fraction`` and, unless ``settings.alternative``
    is 0, again at ``fraction + alternative``: one list of non-overlapping candidates
    per level, the fitted level first.

    One level cannot suit every object: where the fitted fraction keeps only the
    brightest part of an object (a dim nucleus beside a bright one, say), the other
    level may outline it as the examples are outlined. The selector chooses between
    them (:func:`~fewseg.classic.select.choose_outlines`).
    """
    smooth = smooth_signal(signal, settings)
    fractions = [settings.fraction]
    if settings.alternative:
        fractions.append(float(np.clip(settings.fraction + settings.alternative, 0.05, 0.95)))
    # With intensity seeds the first split does not depend on the fraction: share it.
    first = split_regions(smooth, settings) if settings.seeds == "intensity" and len(fractions) > 1 else None
    # Regions and objects the two levels share (where both fractions fall below the
    # floor, say) are cut and tidied once when one level follows the other; on a large
    # frame the two run at once (:mod:`.parallel`), the second with a cache of its own:
    # the same candidates.
    cache: dict = {}
    return map_levels(lambda f: _candidates(segment_signal(smooth, replace(settings, fraction=f), first=first,
                                                           cache=cache), settings,
                                            min_area=min_area, max_area=max_area, cache=cache),
                      fractions, pixels=smooth.size)


def _candidates(labels: np.ndarray, settings: ProposerSettings, *, min_area: int, max_area: int,
                cache: dict | None = None) -> list[ObjectMask]:
    """The objects of a label image, tidied (:func:`tidy_mask`) and filtered by area."""
    # Fragments far below min_area cannot grow into objects: skip tidying them.
    area = np.bincount(labels.ravel())
    labels = np.where(area[labels] < 0.5 * min_area, 0, labels)
    masks = [m for m in tidy_labels(labels, outline_sigma=settings.outline_sigma, cache=cache) if m.area > 0]
    return [m for m in masks if m.area >= min_area and (max_area <= 0 or m.area <= max_area)]


def tidy_mask(m: ObjectMask, *, outline_sigma: float = 0.0) -> ObjectMask:
    """The largest 4-connected piece of a mask, holes filled, outline smoothed.

    ``outline_sigma`` > 0 smooths the outline (Gaussian blur of the mask, cut at 0.5),
    removing the pixel noise a threshold leaves on a boundary.
    """
    parts, n = ndi.label(m.mask)
    if n == 1 and outline_sigma <= 0:
        filled = ndi.binary_fill_holes(m.mask)
        return ObjectMask(m.row, m.col, filled)
    pad = int(np.ceil(2 * outline_sigma)) + 1
    largest = parts == (np.argmax(np.bincount(parts.ravel())[1:]) + 1) if n > 1 else m.mask
    mask = ndi.binary_fill_holes(_padded(largest, pad))
    if outline_sigma > 0:
        mask = ndi.gaussian_filter(mask.astype(np.float32), outline_sigma) > 0.5
    tight = ObjectMask.from_full(mask)
    return ObjectMask(m.row - pad + tight.row, m.col - pad + tight.col, tight.mask)


def tidy_labels(labels: np.ndarray, *, outline_sigma: float = 0.0, cache: dict | None = None) -> list[ObjectMask]:
    """``[tidy_mask(m, outline_sigma=...) for m in masks_from_labels(labels)]``, the same
    masks, with each step done once for all objects: their boxes are packed side by side,
    far enough apart not to touch or blur into each other, into one canvas. ``cache`` (a
    dict) keeps each tidied mask by the mask it came from (tidying one object does not
    depend on the others or on where it lies), so a mask met again is not tidied again."""
    masks = masks_from_labels(labels)
    if not masks:
        return []
    if cache is None:
        return _tidy_masks(masks, outline_sigma)
    keys = [("tidy", outline_sigma, m.mask.shape, m.mask.tobytes()) for m in masks]
    todo = [k for k, key in enumerate(keys) if key not in cache]
    out: list = [None] * len(masks)
    for k, tidy in zip(todo, _tidy_masks([masks[k] for k in todo], outline_sigma)):
        cache[keys[k]] = (tidy.row - masks[k].row, tidy.col - masks[k].col, tidy.mask)
        out[k] = tidy
    for k, (m, key) in enumerate(zip(masks, keys)):
        if out[k] is None:  # met before: a copy, so no two candidates share an array
            dr, dc, mask = cache[key]
            out[k] = ObjectMask(m.row + dr, m.col + dc, mask.copy())
    return out


def _tidy_masks(masks: list[ObjectMask], outline_sigma: float) -> list[ObjectMask]:
    """:func:`tidy_mask` of each of ``masks``, in one packed canvas (:func:`tidy_labels`)."""
    if not masks:
        return []
    reach = int(4 * outline_sigma + 0.5) if outline_sigma > 0 else 0
    gap = int(np.ceil(2 * outline_sigma)) + 1 + reach  # each box's margin: its own pad and the blur's reach
    boxes = [(m.mask.shape[0] + 2 * gap, m.mask.shape[1] + 2 * gap) for m in masks]
    # About square (a wide canvas with few objects is mostly empty rows to filter).
    width = max(max(w for _, w in boxes), int(np.sqrt(sum(h * w for h, w in boxes))) + 1)
    # Shelf packing: boxes left to right, a new shelf when the row is full.
    corners, row, col, shelf = [], 0, 0, 0
    for h, w in boxes:
        if col + w > width:
            row, col, shelf = row + shelf, 0, 0
        corners.append((row, col))
        col, shelf = col + w, max(shelf, h)
    canvas = np.zeros((row + shelf, width), dtype=np.int32)
    for k, (m, (r, c)) in enumerate(zip(masks, corners), start=1):
        view = canvas[r + gap : r + gap + m.mask.shape[0], c + gap : c + gap + m.mask.shape[1]]
        view[m.mask] = k
    # The largest 4-connected piece of each object (ties: the first in raster order).
    pieces, n = ndi.label(canvas > 0)
    owner = np.zeros(n + 1, dtype=np.int64)
    owner[pieces.ravel()] = canvas.ravel()
    size = np.bincount(pieces.ravel(), minlength=n + 1)
    ids = np.arange(1, n + 1)
    order = np.lexsort((ids, -size[1:], owner[1:]))
    first = np.ones(order.size, dtype=bool)
    first[1:] = owner[1:][order][1:] != owner[1:][order][:-1]
    keep = np.zeros(n + 1, dtype=bool)
    keep[ids[order][first]] = True
    tidy = fill_holes(keep[pieces])
    if outline_sigma > 0:
        tidy = ndi.gaussian_filter(tidy.astype(np.float32), outline_sigma) > 0.5
    out = []
    pad = int(np.ceil(2 * outline_sigma)) + 1
    for m, (r, c), (h, w) in zip(masks, corners, boxes):
        tight = ObjectMask.from_full(tidy[r : r + h, c : c + w])
        shift = gap if tight.mask.size else pad  # (an emptied object sits where tidy_mask puts it)
        out.append(ObjectMask(m.row - shift + tight.row, m.col - shift + tight.col, tight.mask))
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes(mask)`` (holes: background 4-connected pieces
    that do not reach the border), from one labelling of the background instead of a
    dilation repeated until nothing changes (many times cheaper on a large canvas)."""
    background, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = False
    return ~outside[background]


def _tidy_near(labels: np.ndarray, region: np.ndarray, outline_sigma: float, *, cache: dict | None = None) -> np.ndarray:
    """:func:`tidy_mask` for the objects that may overlap ``region`` once tidied, and for
    those near enough to them to take pixels from them; the rest are left out. As
    tidied, an outline grows at most its pad beyond the object, so for every object
    that overlaps ``region`` the result equals tidying all (at a fraction of the cost
    in a window full of objects)."""
    pad = int(np.ceil(2 * outline_sigma)) + 1
    # (A 3 x 3 square dilated n times is a (2n + 1) square: one maximum filter.)
    reach = ndi.maximum_filter(region, size=2 * pad + 1, mode="constant", cval=False)
    near = np.zeros(int(labels.max()) + 1, dtype=bool)
    near[labels[reach]] = True
    near[0] = False
    reach = ndi.maximum_filter(near[labels], size=2 * (2 * pad + 1) + 1, mode="constant", cval=False)
    near[:] = False
    near[labels[reach]] = True
    near[0] = False
    kept = np.where(near[labels], labels, 0)
    return labels_from_masks(tidy_labels(kept, outline_sigma=outline_sigma, cache=cache), labels.shape)


def _padded(mask: np.ndarray, width: int) -> np.ndarray:
    """``mask`` with ``width`` False pixels around it (``np.pad``, without its overhead
    in loops over objects)."""
    out = np.zeros((mask.shape[0] + 2 * width, mask.shape[1] + 2 * width), dtype=bool)
    out[width : width + mask.shape[0], width : width + mask.shape[1]] = mask
    return out


def _window(m: ObjectMask, margin: int, shape) -> tuple[slice, slice]:
    r0, c0, r1, c1 = m.bbox
    return (slice(max(0, r0 - margin), min(shape[0], r1 + margin)), slice(max(0, c0 - margin), min(shape[1], c1 + margin)))


def example_fit(signal: np.ndarray, masks: list[ObjectMask], settings: ProposerSettings, *,
                cache: dict | None = None) -> float:
    """Mean over examples of the best IoU any proposal reaches with that example.

    Proposals are made in a window around each example, so fitting costs little more
    than the examples' area. Merges and splits both lower the score. ``cache`` (a dict
    kept across calls on the same signal and examples) saves each window's smoothed
    signal and, with intensity seeds, its first split, which settings that differ in
    ``fraction`` or ``outline_sigma`` alone share.
    """
    margin = int(3 * settings.peak_radius) + 4
    cache = {} if cache is None else cache
    total = 0.0
    for k, m in enumerate(masks):
        win = _window(m, margin, signal.shape)
        key = (k, margin, settings.smooth)
        if key not in cache:
            cache[key] = smooth_signal(signal[win], settings)
        smooth = cache[key]
        first = None
        if settings.seeds == "intensity":
            split_key = key + (settings.floor, settings.seed_sigma, settings.min_distance)
            if split_key not in cache:
                cache[split_key] = split_regions(smooth, settings)
            first = cache[split_key]
        # Cuts and tidied objects are shared between trials (they depend on the region
        # alone, or on the region and the window's signal around it).
        shared = cache.setdefault(("shared", k), {})
        labels = segment_signal(smooth, settings, first=first, cache=shared)
        truth = np.zeros(labels.shape, dtype=bool)
        ObjectMask(m.row - win[0].start, m.col - win[1].start, m.mask).paste(truth)
        if settings.outline_sigma > 0:
            labels = _tidy_near(labels, truth, settings.outline_sigma, cache=shared)
        hit = labels[truth]
        ids, inter = np.unique(hit[hit > 0], return_counts=True)
        if ids.size == 0:
            continue
        areas = np.bincount(labels.ravel())[ids]
        total += float(np.max(inter / (areas + truth.sum() - inter)))
    return total / len(masks)


#: :func:`fit_proposer` segments around at most this many examples per trial setting.
FIT_EXAMPLES = 16


def fit_subset(masks: list[ObjectMask], k: int = FIT_EXAMPLES) -> list[ObjectMask]:
    """At most ``k`` of ``masks`` that span their sizes: all of them when there are no
    more than ``k``, else the ones at ``k`` evenly spaced ranks of area (the smallest and
    the largest included). Deterministic."""
    if len(masks) <= k:
        return list(masks)
    order = np.argsort([m.area for m in masks], kind="stable")
    return [masks[i] for i in order[np.round(np.linspace(0, len(masks) - 1, k)).astype(int)]]


def fit_proposer(signal: np.ndarray, masks: list[ObjectMask], radius: float) -> tuple[ProposerSettings, float]:
    """Choose proposer settings that best reproduce the examples (coordinate search).

    The size limits come from all examples; the search segments the signal around at
    most :data:`FIT_EXAMPLES` of them (:func:`fit_subset`), so its cost is bounded
    however many examples there are (14 trial settings x that many windows). Searched
    once for the same signal, masks and radius (:func:`~fewseg.classic.reuse.reuse`: the
    click outlining and the fit ask for the same search, and so does every correction
    round that adds clicks or negatives).

    Returns the settings and their example-fit score (mean best IoU, 0..1).
    """
    from .reuse import array_key, masks_key, reuse

    return reuse("proposer", (array_key(signal), masks_key(masks), float(radius)),
                 lambda: _fit_proposer(signal, masks, radius))


def _fit_proposer(signal: np.ndarray, masks: list[ObjectMask], radius: float) -> tuple[ProposerSettings, float]:
    """:func:`fit_proposer`, searched."""
    areas = np.array([m.area for m in masks], dtype=float)
    # Regions larger than any example are candidates for a split along dark lines.
    fill = label_shapes(labels_from_masks(masks, signal.shape), len(masks))["ellipse_fill"]
    best = replace(default_settings(radius), split_above=1.2 * float(areas.max()),
                   min_part=0.3 * float(np.median(areas)), part_fill=float(fill.min()))
    masks = fit_subset(masks)
    cache: dict = {}
    best_score = example_fit(signal, masks, best, cache=cache)
    grids = [
        ("fraction", (0.3, 0.4, 0.5, 0.6)),
        ("floor", (0.1, 0.2, 0.3)),
        ("seeds", ("distance", "intensity")),
        ("outline_sigma", (0.0, 2.0)),
        ("fraction", (0.35, 0.45, 0.55)),
    ]
    for name, values in grids:
        for v in values:
            trial = replace(best, **{name: v})
            if trial == best:
                continue
            s = example_fit(signal, masks, trial, cache=cache)
            if s > best_score + 1e-9:
                best, best_score = trial, s
    return best, best_score


def example_clusters(signal: np.ndarray, masks: list[ObjectMask], settings: ProposerSettings, *,
                     cache: dict | None = None) -> list[ObjectMask]:
    """Each example's cluster in its frame: the example with the objects the proposer
    finds joined to it through flat contacts (directly or through others: the pieces of
    a structure it is a piece of, :func:`~fewseg.classic.contacts.structures`), one mask
    per example.

    Examples are outlined one by one, so on their own they never touch anything, while
    candidates do (touching nuclei, pieces of a fibre or an aggregate). The descriptors
    (:func:`fewseg.classic.describe.describe`) judge a candidate by the cluster it sits in, so the
    examples' clusters are seen the same way: the signal is proposed with ``settings``
    in a window of three peak radii around each example (or, when those windows would
    cover a quarter of the frame or more, over the whole frame once), the proposals
    overlapping an example are replaced by it, and the objects joined to it, directly
    or through others, are its cluster.

    ``cache`` (a dict kept with one ``signal`` and ``settings``: a correction round adds
    an example or two) keeps the whole frame's proposals and each example's cluster found
    in its own window, which depends on that example alone; the result is the same.
    """
    cache = {} if cache is None else cache
    margin = int(3 * settings.peak_radius) + 4
    windows = [_window(m, margin, signal.shape) for m in masks]
    if sum((r.stop - r.start) * (c.stop - c.start) for r, c in windows) >= SPARSE * signal.size:
        if "frame" not in cache:
            labels = segment_signal(smooth_signal(signal, settings), settings)
            cache["frame"] = labels, np.bincount(labels.ravel())
        labels, area = cache["frame"]
        return [_cluster_of(m, labels[win], signal[win], win, area=area)
                for m, win in zip(masks, _cluster_windows(masks, labels, area))]
    out = []
    for m, win in zip(masks, windows):
        key = ("cluster", m.row, m.col, m.mask.shape, m.mask.tobytes())
        if key not in cache:
            cache[key] = _cluster_of(m, segment_signal(smooth_signal(signal[win], settings), settings), signal[win], win)
        out.append(cache[key])
    return out


def _cluster_windows(masks: list[ObjectMask], labels: np.ndarray, area: np.ndarray) -> list[tuple[slice, slice]]:
    """For :func:`example_clusters` on the whole frame: a window per example that holds
    its cluster, so each is found at the cost of its neighbourhood, not of the frame.

    An example's cluster lies in the connected components, under ``labels``' proposals
    of 15 pixels or more and every example grown by one pixel, that its own pixels touch
    (the objects it can reach are a subset of those); the window is their bounding box.
    Within it the cluster is the one found on the whole frame (every pixel its growth
    and connection need lies in those components)."""
    reach = (labels > 0) & (area >= 15)[labels]
    for m in masks:
        m.paste(reach)
    components, _ = ndi.label(ndi.binary_dilation(reach))
    boxes = ndi.find_objects(components)
    out = []
    for m in masks:
        ids = np.unique(components[m.slices][m.mask])
        ids = ids[ids > 0]
        own = [boxes[i - 1] for i in ids] + [m.slices]
        out.append((slice(min(b[0].start for b in own), max(b[0].stop for b in own)),
                    slice(min(b[1].start for b in own), max(b[1].stop for b in own))))
    return out


def _cluster_of(m: ObjectMask, labels: np.ndarray, signal: np.ndarray, win, *, area: np.ndarray | None = None) -> ObjectMask:
    """:func:`example_clusters` for one example ``m`` and the proposals ``labels`` of
    window ``win`` (fragments under 15 pixels, which :func:`propose` drops, left out;
    ``area``: each proposal's area, when ``labels`` is a window of a larger label image),
    the object signal ``signal`` of that window telling flat contacts
    (:func:`~fewseg.classic.contacts.structures`)."""
    own = np.zeros(labels.shape, dtype=bool)
    ObjectMask(m.row - win[0].start, m.col - win[1].start, m.mask).paste(own)
    area = np.bincount(labels.ravel()) if area is None else area.copy()
    drop = area < 15
    drop[labels[own]] = True
    drop[0] = True
    # The window's proposals renumbered 1..k (the example k + 1): a window of a whole frame's
    # labels holds a few of its thousands.
    present = np.unique(labels)
    present = present[~drop[present]]
    index = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    index[present] = np.arange(1, len(present) + 1)
    k = len(present) + 1
    objects = index[labels]
    objects[own] = k
    joined = structures(objects, signal, k)
    tight = ObjectMask.from_full((objects > 0) & (joined[objects] == joined[k]))
    return ObjectMask(win[0].start + tight.row, win[1].start + tight.col, tight.mask)
