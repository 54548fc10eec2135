"""Examples given as clicks: outline each clicked object from the signal around it.

A click says "an object like the others is here", near its centre but rarely on it. What
an outline would say (the object's size and its boundary) is read from the frame:

1. **Which channels show the objects, and how.** Per channel, the smoothed level at the
   clicks against the median of a wide window around each, in noise units
   (:func:`~fewseg.classic.examples.robust_noise`): the signed contrast, as
   :func:`~fewseg.classic.examples.learn_profile` learns it from outlines.
2. **Size.** Per click, on that signed combination of the channels: move to the
   brightest point within the current radius of the click, and take the radius at which
   the radial profile around it (a low percentile per ring, so a touching neighbour
   does not hold it up) falls below half the centre's level; twice, starting from 3 px.
3. **Outlines.** Discs of those radii teach a first :class:`~fewseg.classic.examples.ExampleProfile`
   and object signal; in a window around each click the proposer with its default
   settings for the median radius (:func:`~fewseg.classic.propose.default_settings`) cuts the
   objects, and of those within half the radius of the click the one whose centre is
   nearest it is the example (else the nearest within the radius).
4. **Checks.** A click lands within about a quarter radius of its object's centroid. When
   the outline's centroid is farther from the click (over :data:`_CENTRED` of its
   equivalent radius: a textured object cut in two, a touching neighbour taken with
   it), or the outline is under :data:`_SMALL` times the median outline's area (a lobe
   of a textured object) or over :data:`_MERGED` times the larger of that and the
   click's disc (two objects), the objects at the click cut with the settings of
   :data:`_TRIALS`, and (unless the outline was only small) their unions with each
   touching object, are candidates: of those not over that size and centred on the
   click the largest is the example, else the one whose centroid is nearest the click. An outline still too large is cut at
   its distance maxima, keeping the part nearest the click. A click on nothing keeps
   its disc.

When some examples are outlines (outline and click examples may be mixed), the outlines
give the profile, the size and the proposer's settings (fitted to them,
:func:`~fewseg.classic.propose.fit_proposer`), and only steps 3 and 4 run. (Tried: a second
round that fits the proposer to the click outlines and outlines again: stardist F1
unchanged, demo 0.928 -> 0.921.)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from ..objects import Annotation, Frame, ObjectMask
from .examples import example_masks, is_click

_WINDOW = 48  # px each side of a click for the background level and the radial profile
_MIN_RADIUS, _MAX_RADIUS = 1.5, 40.0
_SPLIT_ABOVE = 1.5  # x the area of a disc of the median radius
_MERGED = 1.6  # an outline this many times the median one's (or the click's disc) holds two objects
_SMALL = 0.5  # an outline under this many times the median one's area may be a piece of its object
_CENTRED = 0.35  # a click's offset from its outline's centroid, in equivalent radii, taken as centred
# The proposer's settings (beside those given) tried when an outline fails the checks:
# seeds at distance maxima do not cut a textured object at its bright spots. (Chosen on
# stardist's split seeds 0-4, benchmarks/click_outlines.py; trying thresholds too, floor
# 0.3 and fraction 0.35 / 0.55, gave stardist F1 0.933 against 0.936, and examples cut
# tighter moved the fitted threshold: the busy frame's mean IoU fell 0.05 on seed 4.)
_TRIALS = ({}, {"seeds": "distance"})


def click_or_outline_masks(examples: list[Annotation] | list[ObjectMask], frame: Frame, *,
                           source: str = "examples") -> list[ObjectMask]:
    """Masks of examples that may be outlines (polygons, masks) or clicks, in their order:
    outlines rasterised (:func:`~fewseg.classic.examples.example_masks`), clicks outlined on
    ``frame`` (:func:`outline_clicks`, taught by the outlines when there are any) and
    made disjoint from the other examples (:func:`separate_clicks`)."""
    examples = list(examples)
    clicks = [k for k, e in enumerate(examples) if is_click(e)]
    if not clicks:
        return example_masks(examples, frame.shape, source=source)
    outlines = [e for e in examples if not is_click(e)]
    outlined = example_masks(outlines, frame.shape, source=source) if outlines else []
    masks = iter(outlined)
    points = np.array([examples[k].point for k in clicks], dtype=float)
    # Examples are described side by side, so they must not share pixels (step 5).
    pixels = np.clip(np.rint(points).astype(int), 0, np.array(frame.shape) - 1)
    found = iter(separate_clicks(outline_clicks(frame, points, outlined=outlined), pixels, outlined=outlined))
    chosen = set(clicks)
    return [next(found) if k in chosen else next(masks) for k in range(len(examples))]


def outline_clicks(frame: Frame, clicks: np.ndarray, *, outlined: list[ObjectMask] = ()) -> list[ObjectMask]:
    """One example mask per click.

    Parameters
    ----------
    frame : Frame
    clicks : ndarray, shape (N, 2)
        ``(row, col)`` of each click, pixel centres at integers.
    outlined : list of ObjectMask
        Examples given as outlines, if any: they teach the profile and the size.

    Returns
    -------
    list of ObjectMask
        ``N`` masks, in click order, each holding at least the clicked pixel.

    Examples
    --------
    >>> from fewseg.demo import make_demo_scene
    >>> scene = make_demo_scene(seed=1, shape=(256, 256), n_blobs=30)
    >>> truth = scene.blobs[:8]
    >>> clicks = np.array([np.argwhere(m.mask).mean(axis=0) + (m.row, m.col) for m in truth])
    >>> masks = outline_clicks(scene.frame, clicks)
    >>> float(np.mean([a.iou(b) for a, b in zip(masks, truth)])) > 0.6
    True
    """
    from .examples import learn_profile_and_signal
    from .propose import default_settings, fit_proposer

    clicks = np.asarray(clicks, dtype=float).reshape(-1, 2)
    if len(clicks) == 0:
        return []
    shape = frame.shape
    pixels = np.clip(np.rint(clicks).astype(int), 0, np.array(shape) - 1)
    if outlined:
        profile, signal = learn_profile_and_signal(frame, list(outlined))
        radii = np.full(len(clicks), profile.radius)
        centres = np.array([_recentre(signal, p, profile.radius) for p in pixels])
    else:
        combined = _signed_combination(frame, pixels)
        centres, radii = np.empty_like(pixels), np.empty(len(pixels))
        for k, p in enumerate(pixels):
            centres[k], radii[k] = _click_size(combined, p)
        discs = [_disc(c, r, shape) for c, r in zip(centres, radii)]
        profile, signal = learn_profile_and_signal(frame, discs)
    radius = float(np.median(radii))
    # Regions much larger than a typical clicked object are cut along dark lines
    # (touching objects), as fit_proposer sets it up for outlined examples.
    area = np.pi * radius**2
    settings = replace(default_settings(radius), split_above=_SPLIT_ABOVE * area, min_part=0.3 * area, part_fill=0.5)
    if outlined:
        return outline_on_signal(signal, clicks, radius=profile.radius,
                                 settings=fit_proposer(signal, list(outlined), profile.radius)[0])
    return _outline_at(signal, pixels, centres, radii, settings, clicks)


def outline_on_signal(signal: np.ndarray, clicks: np.ndarray, *, radius: float, settings) -> list[ObjectMask]:
    """One mask per click (``(N, 2)`` ``(row, col)``) on an object ``signal`` already
    learned, with the objects' ``radius`` and the proposer's ``settings``: what
    :func:`outline_clicks` does once outlines have taught those (steps 3 and 4). A
    fitted model outlines clicks given as negatives with it."""
    clicks = np.asarray(clicks, dtype=float).reshape(-1, 2)
    if len(clicks) == 0:
        return []
    pixels = np.clip(np.rint(clicks).astype(int), 0, np.array(signal.shape) - 1)
    centres = np.array([_recentre(signal, p, radius) for p in pixels])
    return _outline_at(signal, pixels, centres, np.full(len(clicks), radius), settings, clicks)


def _outline_at(signal: np.ndarray, pixels: np.ndarray, centres: np.ndarray, radii: np.ndarray, settings,
                clicks: np.ndarray | None = None) -> list[ObjectMask]:
    """Steps 3 and 4 of the module's recipe: the proposer's object at each click, checked.
    ``pixels`` are the clicks rounded (``clicks`` themselves, for the offset check),
    ``centres`` and ``radii`` the clicked objects' brightest points and sizes (step 2)."""
    from .propose import segment_signal, smooth_signal

    shape = signal.shape
    clicks = pixels.astype(float) if clicks is None else clicks
    margin = int(3 * settings.peak_radius) + 4
    trials = [replace(settings, **t) for t in _TRIALS]
    windows = [tuple(slice(max(0, min(v, w) - margin), min(n, max(v, w) + margin + 1)) for v, w, n in zip(c, p, shape))
               for p, c in zip(pixels, centres)]
    smooth = [smooth_signal(signal[win], settings) for win in windows]
    starts = [np.array([s.start for s in win]) for win in windows]
    caches: list[dict] = [{} for _ in windows]

    def at(k: int, trial, unions: bool) -> list[ObjectMask]:
        # Chosen around the click itself: the brightest point near it may lie in a
        # brighter neighbour.
        labels = segment_signal(smooth[k], trial, cache=caches[k])
        return _candidates_at(labels, pixels[k] - starts[k], radii[k], starts[k], trial.outline_sigma, unions=unions)

    first = [at(k, trials[0], False) for k in range(len(pixels))]
    typical = float(np.median([f[0].area for f in first if f] or [np.pi * np.median(radii) ** 2]))
    out = []
    for k, (p, q, c, r) in enumerate(zip(pixels, clicks, centres, radii)):
        # Larger than this, an outline holds the clicked object and a touching one.
        cap = _MERGED * max(typical, np.pi * r**2)
        default = first[k][0] if first[k] else None
        if default is not None and _SMALL * typical <= default.area <= cap and _offset(default, q) <= _CENTRED:
            out.append(default)
            continue
        # Only small (centred, not too large): other settings may keep its object whole; a
        # union with a touching object would take a neighbour.
        small = default is not None and default.area <= cap and _offset(default, q) <= _CENTRED
        every = [m for trial in trials for m in at(k, trial, not small)]
        fit = [m for m in every if m.area <= cap] or every
        centred = [m for m in fit if _offset(m, q) <= _CENTRED]
        found = max(centred, key=lambda m: m.area) if centred else min(fit, key=lambda m: _offset(m, q)) if fit else None
        if found is None:
            out.append(_disc(c, r, shape))
        else:
            # Still too large: cut at its distance maxima, keep the part nearest the click.
            out.append(_part_at(found, p, settings.neck_depth / 2) if found.area > cap else found)
    return out


def separate_clicks(masks: list[ObjectMask], pixels: np.ndarray, *, outlined: list[ObjectMask] = ()) -> list[ObjectMask]:
    """Click outlines made disjoint from the examples' other outlines (step 5).

    A click is one object. Where the outline drawn for it takes pixels of another
    example (a click whose outline merged two touching objects, and the user then clicked
    the second one, missed because the first example's outline covered it), the two
    would describe one object twice and the second object not at all. So each click's
    outline loses the pixels of the examples given as outlines (the user's own
    drawing), and clicks whose outlines share pixels divide their union between them,
    cut along its narrowest place (a watershed of the union's distance map from the
    clicked pixels), each keeping the piece holding its click. A click lying inside an
    outline example, or on the same pixel as another click, marks that object again and
    keeps its outline as drawn.

    ``pixels``: the clicked pixels ``(N, 2)`` ``(row, col)``, in the order of ``masks``.

    Examples
    --------
    >>> both = ObjectMask(0, 0, np.ones((5, 12), bool))  # one outline over two objects
    >>> left, right = separate_clicks([both, both], np.array([[2, 2], [2, 9]]))
    >>> left.area + right.area == both.area, left.holds(2, 2), right.holds(2, 9), left.holds(2, 9)
    (True, True, True, False)
    """
    from skimage.segmentation import watershed

    masks, pixels = list(masks), np.asarray(pixels, dtype=int).reshape(-1, 2)
    drawn = list(outlined)
    inside = [any(o.holds(*p) for o in _touching(drawn, _box_at(p))) for p in pixels]
    # Each click's outline less the outlines' pixels (unless the click lies on one).
    pieces = [m if inside[k] else _minus(m, _touching(drawn, m.bbox)) for k, m in enumerate(masks)]
    # Clicks whose outlines share pixels, grouped (connected through shared pixels).
    free = [k for k in range(len(masks)) if not inside[k] and pieces[k].holds(*pixels[k])]
    group = {k: k for k in free}

    def root(k: int) -> int:
        while group[k] != k:
            k = group[k]
        return k

    boxes = np.array([pieces[k].bbox for k in free]).reshape(-1, 4)
    for i, a in enumerate(free):
        for j in i + 1 + _meeting(boxes[i + 1:], boxes[i]):
            b = free[j]
            if _shared(pieces[a], pieces[b]) is not None and tuple(pixels[a]) != tuple(pixels[b]):
                group[root(b)] = root(a)
    members: dict[int, list[int]] = {}
    for k in free:
        members.setdefault(root(k), []).append(k)
    for ks in (ks for ks in members.values() if len(ks) > 1):
        r0, c0 = min(pieces[k].row for k in ks), min(pieces[k].col for k in ks)
        shape = (max(pieces[k].bbox[2] for k in ks) - r0, max(pieces[k].bbox[3] for k in ks) - c0)
        union = np.zeros(shape, dtype=bool)
        markers = np.zeros(shape, dtype=np.int32)
        for k in ks:
            ObjectMask(pieces[k].row - r0, pieces[k].col - c0, pieces[k].mask).paste(union)
        for j, k in enumerate(ks, start=1):
            markers[pixels[k][0] - r0, pixels[k][1] - c0] = j
        parts = watershed(-ndi.distance_transform_edt(union), markers, mask=union)
        for j, k in enumerate(ks, start=1):
            piece, _ = ndi.label(parts == j)
            cut = ObjectMask.from_full(piece == piece[pixels[k][0] - r0, pixels[k][1] - c0])
            pieces[k] = ObjectMask(cut.row + r0, cut.col + c0, cut.mask)
    # A click outline wholly under outlines: kept as drawn.
    return [m if pieces[k].area == 0 else pieces[k] for k, m in enumerate(masks)]


def _box_at(pixel) -> tuple[int, int, int, int]:
    return int(pixel[0]), int(pixel[1]), int(pixel[0]) + 1, int(pixel[1]) + 1


def _touching(masks: list[ObjectMask], box: tuple[int, int, int, int]) -> list[ObjectMask]:
    """The ``masks`` whose bounding boxes meet ``box`` (``(r0, c0, r1, c1)``, end-exclusive)."""
    return [masks[i] for i in _meeting(np.array([m.bbox for m in masks]).reshape(-1, 4), box)]


def _meeting(boxes: np.ndarray, box) -> np.ndarray:
    """Indices of the ``boxes`` (``(N, 4)``, as ``box``) that meet ``box``."""
    return np.flatnonzero((boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2]) & (boxes[:, 1] < box[3])
                          & (box[1] < boxes[:, 3]))


def _shared(a: ObjectMask, b: ObjectMask) -> np.ndarray | None:
    """``a``'s pixels that ``b`` holds too, over ``a``'s crop; None when they share none."""
    r0, c0 = max(a.row, b.row), max(a.col, b.col)
    r1, c1 = min(a.bbox[2], b.bbox[2]), min(a.bbox[3], b.bbox[3])
    if r0 >= r1 or c0 >= c1:
        return None
    common = np.zeros_like(a.mask)
    common[r0 - a.row:r1 - a.row, c0 - a.col:c1 - a.col] = (a.mask[r0 - a.row:r1 - a.row, c0 - a.col:c1 - a.col]
                                                            & b.mask[r0 - b.row:r1 - b.row, c0 - b.col:c1 - b.col])
    return common if common.any() else None


def _minus(m: ObjectMask, others: list[ObjectMask]) -> ObjectMask:
    """``m`` without the pixels of ``others``."""
    mask = m.mask
    for o in others:
        common = _shared(m, o)
        if common is not None:
            mask = mask & ~common
    if mask is m.mask:
        return m
    cut = ObjectMask.from_full(mask)
    return ObjectMask(m.row + cut.row, m.col + cut.col, cut.mask)


def _candidates_at(labels: np.ndarray, point: np.ndarray, radius: float, start: np.ndarray, outline_sigma: float, *,
                   unions: bool = True) -> list[ObjectMask]:
    """The object of a window's ``labels`` at a click (:func:`_object_at`), tidied, and
    (``unions``) its unions with each touching object (a textured object cut in two);
    in frame coordinates, ``start`` the window's corner. Empty when there is none."""
    from .propose import tidy_mask

    value = _object_at(labels, point, radius)
    if value is None:
        return []
    mask = labels == value
    pieces = [mask]
    if unions:
        touching = np.unique(labels[ndi.binary_dilation(mask, iterations=2) & ~mask])
        pieces += [ndi.binary_closing(mask | (labels == v), iterations=2) | mask | (labels == v)
                   for v in touching if v not in (0, value)]
    out = []
    for piece in pieces:
        m = ObjectMask.from_full(piece)
        m = tidy_mask(ObjectMask(m.row + int(start[0]), m.col + int(start[1]), m.mask), outline_sigma=outline_sigma)
        if m.area > 0:
            out.append(m)
    return out


def _offset(mask: ObjectMask, point: np.ndarray) -> float:
    """Distance of ``point`` from the centroid of ``mask``, in its equivalent radii."""
    centroid = np.argwhere(mask.mask).mean(axis=0) + (mask.row, mask.col)
    return float(np.hypot(*(centroid - point)) / np.sqrt(mask.area / np.pi))


def _part_at(mask: ObjectMask, pixel: np.ndarray, depth: float) -> ObjectMask:
    """The part of ``mask``, cut at maxima of its distance map (:mod:`fewseg.classic.propose`),
    whose centroid is nearest ``pixel``; ``mask`` itself when it has one part."""
    from .propose import _parts_at_distance_maxima

    parts, k = _parts_at_distance_maxima(mask.mask, mask.mask, depth)
    if k < 2:
        return mask
    ids = np.arange(1, k + 1)
    centres = np.array(ndi.center_of_mass(parts > 0, parts, ids)) + (mask.row, mask.col)
    best = int(ids[np.argmin(((centres - pixel) ** 2).sum(axis=1))])
    part = ObjectMask.from_full(parts == best)
    return ObjectMask(mask.row + part.row, mask.col + part.col, part.mask)


def _signed_combination(frame: Frame, pixels: np.ndarray) -> np.ndarray:
    """The channels combined with the sign and weight of their contrast at the clicks
    (noise units, each channel's median removed); channels that barely show the clicked
    objects are left out, as :func:`~fewseg.classic.examples.learn_profile` leaves them."""
    from .examples import robust_noise

    contrast, scaled = [], []
    for channel in frame.data:
        sigma = robust_noise(channel)
        smooth = ndi.gaussian_filter(channel.astype(np.float32), 1.0)
        at, around = [], []
        for r, c in pixels:
            win = smooth[max(0, r - _WINDOW) : r + _WINDOW + 1, max(0, c - _WINDOW) : c + _WINDOW + 1]
            at.append(smooth[r, c])
            around.append(np.median(win))
        contrast.append(float(np.mean((np.array(at) - np.array(around)) / sigma)))
        scaled.append((smooth - np.median(smooth)) / np.float32(sigma))
    contrast = np.array(contrast)
    strength = np.abs(contrast)
    keep = strength >= 0.1 * strength.max() if strength.max() > 0 else np.ones_like(strength, bool)
    weights = np.where(keep, contrast, 0.0)
    weights = weights / max(np.abs(weights).sum(), 1e-12)
    return sum(np.float32(w) * s for w, s in zip(weights, scaled) if w != 0)


def _click_size(image: np.ndarray, pixel: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the object clicked at ``pixel`` on a signed ``(Y, X)`` image
    (objects bright): twice, move to the brightest point within the radius and take the
    half-level radius of the radial profile around it."""
    radius = 3.0
    centre = pixel
    for _ in range(2):
        centre = _recentre(image, pixel, radius)
        radius = _half_radius(image, centre)
    return centre, radius


def _recentre(image: np.ndarray, pixel: np.ndarray, radius: float) -> np.ndarray:
    """The brightest pixel of ``image`` (smoothed at a third of ``radius``) within
    ``radius`` of ``pixel``."""
    reach = int(np.ceil(radius))
    r0, c0 = max(0, pixel[0] - reach - 4), max(0, pixel[1] - reach - 4)
    win = image[r0 : pixel[0] + reach + 5, c0 : pixel[1] + reach + 5]
    smooth = ndi.gaussian_filter(win, max(1.0, radius / 3))
    rows, cols = np.indices(win.shape)
    near = (rows + r0 - pixel[0]) ** 2 + (cols + c0 - pixel[1]) ** 2 <= radius**2
    k = int(np.argmax(np.where(near, smooth, -np.inf)))
    return np.array([r0 + k // win.shape[1], c0 + k % win.shape[1]])


def _half_radius(image: np.ndarray, centre: np.ndarray) -> float:
    """Where the radial profile of ``image`` around ``centre`` (the 30th percentile of
    each 1-px ring) falls below half the centre's level above the window's background
    (its 20th percentile)."""
    r, c = centre
    r0, c0 = max(0, r - _WINDOW), max(0, c - _WINDOW)
    win = image[r0 : r + _WINDOW + 1, c0 : c + _WINDOW + 1]
    rows, cols = np.indices(win.shape)
    rho = np.rint(np.hypot(rows + r0 - r, cols + c0 - c)).astype(int).ravel()
    values = win.ravel()
    background = float(np.percentile(values, 20))
    peak = float(ndi.gaussian_filter(win, 1.0)[r - r0, c - c0]) - background
    if peak <= 0:
        return _MIN_RADIUS
    order = np.argsort(rho, kind="stable")
    rho, values = rho[order], values[order]
    bounds = np.searchsorted(rho, np.arange(int(_MAX_RADIUS) + 2))
    for k in range(1, int(_MAX_RADIUS) + 1):
        ring = values[bounds[k] : bounds[k + 1]]
        if ring.size and np.percentile(ring, 30) - background < 0.5 * peak:
            return float(np.clip(k - 0.5, _MIN_RADIUS, _MAX_RADIUS))
    return _MAX_RADIUS


def _disc(centre: np.ndarray, radius: float, shape: tuple[int, int]) -> ObjectMask:
    """Pixels within ``radius`` of ``centre`` (at least the centre), clipped to the frame."""
    reach = int(np.ceil(radius))
    r0, c0 = max(0, centre[0] - reach), max(0, centre[1] - reach)
    r1, c1 = min(shape[0], centre[0] + reach + 1), min(shape[1], centre[1] + reach + 1)
    rows, cols = np.indices((r1 - r0, c1 - c0))
    mask = (rows + r0 - centre[0]) ** 2 + (cols + c0 - centre[1]) ** 2 <= max(radius, 0.5) ** 2
    return ObjectMask(int(r0), int(c0), mask)


def _object_at(labels: np.ndarray, point: np.ndarray, radius: float) -> int | None:
    """The object of a window's label image that the click at ``point`` most likely
    meant: of those with pixels within half the ``radius`` of it (the click lands near
    the centre), the one whose centroid is nearest; else the nearest object within
    ``radius``; its label, None when there is none."""
    rows, cols = np.nonzero(labels)
    if rows.size == 0:
        return None
    d2 = (rows - point[0]) ** 2 + (cols - point[1]) ** 2
    near = np.unique(labels[rows[d2 <= (radius / 2) ** 2], cols[d2 <= (radius / 2) ** 2]])
    if near.size:
        ids = labels[rows, cols]
        count = np.bincount(ids)
        centre_r = np.bincount(ids, weights=rows) / np.maximum(count, 1)
        centre_c = np.bincount(ids, weights=cols) / np.maximum(count, 1)
        value = int(near[np.argmin((centre_r[near] - point[0]) ** 2 + (centre_c[near] - point[1]) ** 2)])
    else:
        k = int(np.argmin(d2))
        if d2[k] > radius**2:
            return None
        value = int(labels[rows[k], cols[k]])
    return value


def as_masks(items, frame: Frame) -> list[ObjectMask]:
    """Examples (annotations or masks) as masks on ``frame``, validated; ``[]`` for none."""
    return click_or_outline_masks(list(items), frame, source=frame.source) if items else []
