"""A synthetic frame like the seed's: Brightfield + YFP with hundreds of small YFP blobs.

The seed experiment used one 1024 x 1022 (X x Y) frame with two channels (Brightfield,
YFP) and 544 polygons tagged "YFP blob". :func:`make_demo` draws a frame of that kind
with known truth, so every stage of fewseg can be run and scored without the original
data:

* **Brightfield** (channel 0): about 2000-3000 counts, uneven transmitted illumination,
  large faint cells (dark rim, bright halo), the objects of the YFP channel as faint
  shadows, Gaussian (shot-like) noise.
* **YFP** (channel 1): a camera offset of 100 plus autofluorescence (brighter inside the
  cells) under an illumination gradient, so the background is about 140-180 counts.
  Small blobs (area 30-400 px, elliptical with random orientation and a mildly irregular
  outline, flat-topped) with log-normal brightness; 15 % are dim (signal-to-noise ratio
  3-4, where SNR = mean blob signal above background / background noise s.d.) and about
  15 % sit in touching pairs or triples. Bright distractors that are *not* blobs and not
  in the truth: a few irregular aggregates (1500-5000 px) and thin curved fibres (2-4 px
  wide, 100-300 px long). Everything is blurred by a Gaussian PSF (sigma 1 px), then
  Poisson shot noise and Gaussian read noise (s.d. 3) are added.

``busy=True`` draws a harder frame of the same kind (:data:`BUSY`): 540 blobs, three times
the aggregates and fibres, large *diffuse* aggregates (soft-edged patches 3000-9000 px
whose glow reaches beyond them, so blobs sit in it) and twice as many cells whose
outlines in Brightfield are four times as strong.

The truth is one polygon per blob (:func:`fewseg.polygons.mask_to_polygon`, smoothing
0.3), and the blob drawn in the image is exactly the rasterised polygon, so
``annotation.to_mask(shape)`` is the true object. Blobs never overlap; touching blobs
share a boundary; other blobs keep at least 2 px apart, from each other and from the
distractors.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .objects import Annotation, Frame, Location, ObjectMask
from .polygons import mask_to_polygon, rasterize

__all__ = ["BUSY", "DemoScene", "make_demo", "make_demo_scene", "write_demo"]

DEMO_SHAPE = (1022, 1024)
DEMO_TAG = "YFP blob"
DEMO_LOCATION = Location(xy=0, z=3, time=0)
CHANNEL_NAMES = ("Brightfield", "YFP")

_FULL_AREA = DEMO_SHAPE[0] * DEMO_SHAPE[1]
_AREA_RANGE = (30, 400)  # px, of a blob's mask
_DIM_FRACTION = 0.15
_DIM_SNR = (3.0, 4.0)
_BRIGHT_SNR = (6.0, 15.0, 0.5)  # floor, median, log-normal sigma
_TOUCHING_FRACTION = 0.15
_GAP = 2  # px between blobs that do not touch
_DISTRACTOR_GAP = 3
_OFFSET = 100.0  # camera offset (counts, noiseless)
_AUTOFLUORESCENCE = 55.0  # YFP background photons at illumination 1
_CELL_AUTOFLUORESCENCE = 15.0
_READ_NOISE = 3.0
_PSF_SIGMA = 1.0
_BRIGHTFIELD = 2600.0

#: The busy scene's counts on a full-size frame (scaled with the area like the defaults):
#: blobs, aggregates, fibres, diffuse aggregates, cells, and the Brightfield cell-outline
#: contrast relative to the plain scene's.
BUSY = {"n_blobs": 540, "n_aggregates": 12, "n_fibres": 15, "n_diffuse": 8, "n_cells": 140, "cell_contrast": 4.0}


@dataclass(frozen=True, eq=False)
class DemoScene:
    """A demo frame with everything known about it.

    Attributes
    ----------
    frame : Frame
        ``(2, Y, X)`` float32, integer-valued counts; channels ``("Brightfield", "YFP")``.
    annotations : list of Annotation
        One polygon per blob, tagged ``"YFP blob"``, channel 1, at XY 0, Z 3, Time 0.
    blobs : list of ObjectMask
        ``blobs[i]`` is ``annotations[i].to_mask(frame.shape)``: the pixels drawn.
    dim : ndarray of bool
        Which blobs were drawn dim (SNR 3-4).
    snr : ndarray of float
        The signal-to-noise ratio each blob was drawn with.
    touching : ndarray of bool
        Which blobs touch another blob.
    distractors : list of ObjectMask
        Bright objects that are not blobs (not in ``annotations``).
    distractor_kinds : tuple of str
        ``"aggregate"``, ``"fibre"`` or ``"diffuse"`` (the core of a diffuse aggregate,
        whose glow reaches further), one per distractor.
    """

    frame: Frame
    annotations: list
    blobs: list
    dim: np.ndarray
    snr: np.ndarray
    touching: np.ndarray
    distractors: list
    distractor_kinds: tuple


def make_demo(
    *,
    seed: int = 0,
    shape: tuple[int, int] = DEMO_SHAPE,
    n_blobs: int | None = None,
    n_aggregates: int | None = None,
    n_fibres: int | None = None,
    busy: bool = False,
) -> tuple[Frame, list[Annotation]]:
    """A synthetic Brightfield + YFP frame and its "YFP blob" polygons.

    Parameters
    ----------
    seed : int
        The same seed gives the same frame and annotations.
    shape : (int, int)
        ``(Y, X)``; the seed frame's is ``(1022, 1024)``.
    n_blobs : int, optional
        Number of blobs (exactly; default 500, busy 540 on a full-size frame, scaled with
        the area); raises :class:`RuntimeError` if they do not fit.
    n_aggregates, n_fibres : int, optional
        Distractors; default 4 and 5 on a full-size frame (busy: :data:`BUSY`), scaled
        with the frame's area (at least 1 each when both sides are at least 128 px).
    busy : bool
        The busy scene: more blobs and distractors, diffuse aggregates, strong cell
        outlines in Brightfield (:data:`BUSY`).

    Returns
    -------
    frame : Frame
    annotations : list of Annotation

    See Also
    --------
    make_demo_scene : the same, with the true masks, brightness and distractors.

    Examples
    --------
    >>> frame, truth = make_demo(seed=1, shape=(200, 240), n_blobs=20)
    >>> frame.data.shape, frame.channel_names, len(truth), truth[0].tags
    ((2, 200, 240), ('Brightfield', 'YFP'), 20, ('YFP blob',))
    """
    scene = make_demo_scene(seed=seed, shape=shape, n_blobs=n_blobs, n_aggregates=n_aggregates, n_fibres=n_fibres,
                            busy=busy)
    return scene.frame, scene.annotations


def make_demo_scene(
    *,
    seed: int = 0,
    shape: tuple[int, int] = DEMO_SHAPE,
    n_blobs: int | None = None,
    n_aggregates: int | None = None,
    n_fibres: int | None = None,
    busy: bool = False,
) -> DemoScene:
    """Like :func:`make_demo`, returning a :class:`DemoScene` with the ground truth.

    Examples
    --------
    >>> scene = make_demo_scene(seed=0, shape=(200, 240), n_blobs=20)
    >>> len(scene.blobs), int(scene.dim.sum()), sorted(set(scene.distractor_kinds))
    (20, 3, ['aggregate', 'fibre'])
    """
    height, width = (int(s) for s in shape)
    if height < 64 or width < 64:
        raise ValueError(f"demo frames must be at least 64 x 64, got {shape}")
    scale = height * width / _FULL_AREA
    counts = BUSY if busy else {"n_blobs": 500, "n_aggregates": 4, "n_fibres": 5, "n_diffuse": 0, "n_cells": 70,
                                "cell_contrast": 1.0}
    if n_blobs is None:
        n_blobs = counts["n_blobs"] if not busy or scale == 1 else round(counts["n_blobs"] * scale)
    if n_blobs < 0:
        raise ValueError(f"n_blobs must be >= 0, got {n_blobs}")
    at_least = 1 if min(height, width) >= 128 else 0
    n_aggregates = max(at_least, round(counts["n_aggregates"] * scale)) if n_aggregates is None else int(n_aggregates)
    n_fibres = max(at_least, round(counts["n_fibres"] * scale)) if n_fibres is None else int(n_fibres)
    n_diffuse = max(at_least, round(counts["n_diffuse"] * scale)) if busy else 0
    rng = np.random.default_rng(seed)
    shape = (height, width)

    yfp_illum = _illumination(rng, shape, vignette=0.22, tilt=0.08)
    bf_illum = _illumination(rng, shape, vignette=0.12, tilt=0.10)
    cell_rim, cell_inside = _cells(rng, shape, n_cells=max(3, round(counts["n_cells"] * scale)))
    cell_rim *= np.float32(counts["cell_contrast"])

    canvas = np.zeros(shape, dtype=np.int32)  # 0 free, -1 distractor, k > 0 blob k
    signal = np.zeros(shape, dtype=np.float32)  # YFP photons at illumination 1, before blur
    background = yfp_illum * (_AUTOFLUORESCENCE + _CELL_AUTOFLUORESCENCE * cell_inside)
    noise_sd = np.sqrt(background + _READ_NOISE**2)

    distractors, kinds = [], []
    for kind, count in (("diffuse", n_diffuse), ("aggregate", n_aggregates), ("fibre", n_fibres)):
        for _ in range(count):
            mask, texture = _place_distractor(rng, kind, canvas)
            distractors.append(mask)
            kinds.append(kind)
            r, c = _centre(mask)
            if kind == "diffuse":
                # A soft patch: its glow (the core blurred by a third of its radius) reaches
                # beyond the core, where blobs may sit in it.
                amplitude = rng.uniform(8, 20) * noise_sd[r, c] / yfp_illum[r, c]
                _add_glow(signal, mask, amplitude * texture)
                continue
            snr = rng.uniform(15, 35) if kind == "aggregate" else rng.uniform(25, 45)
            amplitude = snr * noise_sd[r, c] / yfp_illum[r, c]
            signal[mask.slices] += np.where(mask.mask, amplitude * texture, 0).astype(np.float32)

    n_dim = round(_DIM_FRACTION * n_blobs)
    dim = np.zeros(n_blobs, dtype=bool)
    dim[rng.permutation(n_blobs)[:n_dim]] = True
    floor, median, sigma = _BRIGHT_SNR
    snr = np.where(
        dim,
        rng.uniform(*_DIM_SNR, size=n_blobs),
        np.maximum(floor, median * rng.lognormal(0.0, sigma, size=n_blobs)),
    )
    blobs, touching = _place_blobs(rng, canvas, n_blobs)
    for i, (mask, params, _) in enumerate(blobs):
        profile = _blob_profile(params, mask)
        r, c = params[0], params[1]
        r, c = min(max(int(round(r)), 0), height - 1), min(max(int(round(c)), 0), width - 1)
        gain = _blurred_mean(profile, mask.mask)
        amplitude = snr[i] * noise_sd[r, c] / (yfp_illum[r, c] * gain)
        signal[mask.slices] += (amplitude * profile).astype(np.float32)

    objects = (canvas != 0).astype(np.float32)
    signal = ndi.gaussian_filter(signal, _PSF_SIGMA)
    expected = yfp_illum * (signal + _AUTOFLUORESCENCE + _CELL_AUTOFLUORESCENCE * cell_inside)
    yfp = _OFFSET + rng.poisson(expected).astype(np.float32) + rng.normal(0, _READ_NOISE, shape).astype(np.float32)

    shadow = ndi.gaussian_filter(objects, 1.5)
    bf = _BRIGHTFIELD * bf_illum * (1 + cell_rim - 0.015 * shadow)
    bf += np.sqrt(bf) * rng.standard_normal(shape, dtype=np.float32)

    data = np.stack([bf, yfp]).astype(np.float32)
    np.rint(data, out=data)
    np.clip(data, 0, 65535, out=data)
    frame = Frame(data, channel_names=CHANNEL_NAMES, source=f"fewseg demo (seed {seed})", location=DEMO_LOCATION)
    annotations = [
        Annotation(
            polygon=polygon,
            tags=(DEMO_TAG,),
            location=DEMO_LOCATION,
            channel=1,
            origin=f"demo blob {i}",
        )
        for i, polygon in enumerate(p[2] for p in blobs)
    ]
    return DemoScene(
        frame=frame,
        annotations=annotations,
        blobs=[b[0] for b in blobs],
        dim=dim,
        snr=snr,
        touching=touching,
        distractors=distractors,
        distractor_kinds=tuple(kinds),
    )


def write_demo(
    directory: str | os.PathLike,
    *,
    seed: int = 0,
    shape: tuple[int, int] = DEMO_SHAPE,
    n_blobs: int | None = None,
    n_aggregates: int | None = None,
    n_fibres: int | None = None,
    busy: bool = False,
) -> dict[str, Path]:
    """Write a demo frame and its annotations into ``directory``.

    Files (each written atomically):

    * ``demo_frame.ome.tif``: the frame, axes CYX, channel names in the OME metadata
      (:func:`fewseg.io.frames.write_frame`; the counts fit uint16).
    * ``demo_annotations.json``: the blobs in NimbusImage's list format, ``x = col``,
      ``y = row`` in NimbusImage's pixel-corner coordinates
      (:func:`fewseg.io.annotations.write_annotations`).

    Returns
    -------
    dict
        ``{"frame": path, "annotations": path}``.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_demo(tempfile.mkdtemp(), shape=(128, 128), n_blobs=5)
    >>> sorted(p.name for p in paths.values())
    ['demo_annotations.json', 'demo_frame.ome.tif']
    """
    from .io.annotations import write_annotations
    from .io.frames import write_frame

    directory = Path(directory)
    frame, annotations = make_demo(
        seed=seed, shape=shape, n_blobs=n_blobs, n_aggregates=n_aggregates, n_fibres=n_fibres, busy=busy
    )
    paths = {"frame": directory / "demo_frame.ome.tif", "annotations": directory / "demo_annotations.json"}
    write_frame(paths["frame"], frame)
    write_annotations(paths["annotations"], annotations, shape=frame.shape)
    return paths


# --- drawing -------------------------------------------------------------------------


def _illumination(rng, shape, *, vignette: float, tilt: float) -> np.ndarray:
    """A smooth field near 1: radial fall-off around an off-centre point plus a tilt."""
    yy = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :]
    cy, cx = rng.uniform(-0.35, 0.35, 2)
    gy, gx = rng.uniform(-tilt, tilt, 2)
    strength = vignette * rng.uniform(0.7, 1.0)
    field = (1 + 0.5 * strength) - strength * ((yy - cy) ** 2 + (xx - cx) ** 2) / 2
    return (field + gy * yy + gx * xx).astype(np.float32)


def _harmonics(rng, n: int, amplitude: float) -> np.ndarray:
    """``(n, 3)`` rows of (order, amplitude, phase) for an outline r(phi) = 1 + sum."""
    orders = np.arange(2, 2 + n)
    return np.column_stack(
        [orders, rng.normal(0, amplitude, n) / np.sqrt(orders - 1), rng.uniform(0, 2 * np.pi, n)]
    )


def _polar(params, r0: int, c0: int, h: int, w: int):
    """Normalised radius and outline limit of shape ``params`` over a crop."""
    cy, cx, a, b, theta, harm = params
    dy = (np.arange(r0, r0 + h, dtype=np.float64) - cy)[:, None]
    dx = (np.arange(c0, c0 + w, dtype=np.float64) - cx)[None, :]
    cos, sin = math.cos(theta), math.sin(theta)
    u = (dx * cos + dy * sin) / a
    v = (dy * cos - dx * sin) / b
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)
    limit = np.ones_like(rho)
    for order, amp, phase in harm:
        limit += amp * np.cos(order * phi + phase)
    return rho, limit


def _shape_mask(params, frame_shape) -> ObjectMask | None:
    """Pixels of an outline; None if its crop leaves the frame."""
    cy, cx, a, b, _, harm = params
    reach = int(math.ceil(max(a, b) * (1 + np.abs(harm[:, 1]).sum()))) + 1
    r0, c0 = int(math.floor(cy)) - reach, int(math.floor(cx)) - reach
    size = 2 * reach + 2
    if r0 < 1 or c0 < 1 or r0 + size > frame_shape[0] - 1 or c0 + size > frame_shape[1] - 1:
        return None
    rho, limit = _polar(params, r0, c0, size, size)
    return ObjectMask(r0, c0, rho <= limit)


def _cells(rng, shape, *, n_cells: int):
    """Brightfield cell texture (relative modulation) and a 0-1 'inside a cell' map."""
    rim = np.zeros(shape, dtype=np.float32)
    inside = np.zeros(shape, dtype=np.float32)
    for _ in range(n_cells):
        radius = rng.uniform(25, 55)
        ratio = rng.uniform(1.0, 1.5)
        params = (
            rng.uniform(0, shape[0]),
            rng.uniform(0, shape[1]),
            radius * math.sqrt(ratio),
            radius / math.sqrt(ratio),
            rng.uniform(0, np.pi),
            _harmonics(rng, 3, 0.05),
        )
        reach = int(math.ceil(params[2] * 1.35)) + 2
        r0, c0 = max(0, int(params[0]) - reach), max(0, int(params[1]) - reach)
        r1, c1 = min(shape[0], int(params[0]) + reach), min(shape[1], int(params[1]) + reach)
        if r1 <= r0 or c1 <= c0:
            continue
        rho, limit = _polar(params, r0, c0, r1 - r0, c1 - c0)
        x = rho / limit - 1  # 0 on the cell's edge, negative inside
        width = 1.6 / radius  # edge features about 1.6 px wide
        contrast = rng.uniform(0.6, 1.0)
        rim[r0:r1, c0:c1] += contrast * (
            0.01 * (x < 0)
            - 0.045 * np.exp(-((x / width) ** 2))
            + 0.025 * np.exp(-(((x - 2.5 * width) / (1.5 * width)) ** 2))
        ).astype(np.float32)
        np.maximum(inside[r0:r1, c0:c1], np.clip(-x / width, 0, 1).astype(np.float32), out=inside[r0:r1, c0:c1])
    return rim, inside


def _dilate(mask: np.ndarray, gap: int) -> np.ndarray:
    padded = np.pad(mask, gap)
    return ndi.binary_dilation(padded, structure=np.ones((2 * gap + 1, 2 * gap + 1), bool))


def _neighbourhood(canvas: np.ndarray, mask: ObjectMask, gap: int):
    """Canvas values under ``mask`` and within ``gap`` px of it (square distance)."""
    r0, c0, r1, c1 = mask.bbox
    if r0 < gap or c0 < gap or r1 + gap > canvas.shape[0] or c1 + gap > canvas.shape[1]:
        return None, None
    region = canvas[r0 - gap : r1 + gap, c0 - gap : c1 + gap]
    near = region[_dilate(mask.mask, gap)]
    under = canvas[mask.slices][mask.mask]
    return under, near


def _centre(mask: ObjectMask) -> tuple[int, int]:
    rows, cols = np.nonzero(mask.mask)
    return mask.row + int(np.median(rows)), mask.col + int(np.median(cols))


def _place_distractor(rng, kind: str, canvas: np.ndarray):
    """Draw and place one distractor on ``canvas`` (as -1); returns (mask, texture)."""
    height, width = canvas.shape
    for _ in range(500):
        if kind == "fibre":
            mask = _fibre(rng, canvas.shape)
        else:
            mask = _aggregate(rng, canvas.shape, area=(3000, 9000) if kind == "diffuse" else (1500, 5000),
                              harmonics=0.08 if kind == "diffuse" else 0.17)
        if mask is None:
            continue
        under, near = _neighbourhood(canvas, mask, _DISTRACTOR_GAP * 2)
        if near is None or near.any():
            continue
        mask.paste(canvas, -1)
        h, w = mask.mask.shape
        texture = ndi.gaussian_filter(rng.random((h, w), dtype=np.float32), 6 if kind == "fibre" else 3)
        texture = (texture - texture.min()) / max(float(np.ptp(texture)), 1e-6)
        return mask, (0.55 + 0.45 * texture) if kind != "diffuse" else (0.8 + 0.2 * texture)
    raise RuntimeError(f"could not place a {kind} in a frame of shape {canvas.shape}; use fewer distractors")


def _add_glow(signal: np.ndarray, core: ObjectMask, texture: np.ndarray) -> None:
    """Add ``texture`` over ``core`` blurred by a third of the core's radius (clipped to
    the frame): a diffuse patch brightest inside the core, fading beyond it."""
    sigma = math.sqrt(core.area / math.pi) / 3
    pad = int(3 * sigma)
    h, w = core.mask.shape
    patch = np.zeros((h + 2 * pad, w + 2 * pad), dtype=np.float32)
    patch[pad : pad + h, pad : pad + w] = np.where(core.mask, texture, 0)
    patch = ndi.gaussian_filter(patch, sigma)
    r0, c0 = core.row - pad, core.col - pad
    R0, C0 = max(r0, 0), max(c0, 0)
    R1, C1 = min(r0 + patch.shape[0], signal.shape[0]), min(c0 + patch.shape[1], signal.shape[1])
    signal[R0:R1, C0:C1] += patch[R0 - r0 : R1 - r0, C0 - c0 : C1 - c0] / max(float(patch.max()), 1e-6) * float(texture.max())


def _aggregate(rng, shape, *, area=(1500, 5000), harmonics: float = 0.17) -> ObjectMask | None:
    lo, hi = area
    area = rng.uniform(lo, hi)
    radius = math.sqrt(area / math.pi)
    ratio = rng.uniform(1.0, 1.6)
    reach = radius * math.sqrt(ratio) * 1.8 + 4
    if 2 * reach >= min(shape):
        return None
    params = (
        rng.uniform(reach, shape[0] - reach),
        rng.uniform(reach, shape[1] - reach),
        radius * math.sqrt(ratio),
        radius / math.sqrt(ratio),
        rng.uniform(0, np.pi),
        _harmonics(rng, 8, harmonics),
    )
    mask = _shape_mask(params, shape)
    if mask is None:
        return None
    # keep the largest piece; strong harmonics can pinch off islands
    labels, n = ndi.label(mask.mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = ObjectMask(mask.row, mask.col, labels == 1 + int(np.argmax(sizes)))
    mask = _trim(mask)
    return mask if lo <= mask.area <= hi else None


def _fibre(rng, shape) -> ObjectMask | None:
    length = rng.uniform(100, 300)
    length = min(length, 0.6 * min(shape))
    half_width = rng.uniform(1.0, 1.7)  # px from the centre line: 2-4 px wide
    t = np.arange(0, length, 0.5)
    heading = (
        rng.uniform(0, 2 * np.pi)
        + rng.uniform(-1.2, 1.2) * t / length
        + rng.uniform(-0.5, 0.5) * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t / length + rng.uniform(0, 2 * np.pi))
    )
    rows = np.concatenate([[0.0], np.cumsum(0.5 * np.sin(heading))[:-1]])
    cols = np.concatenate([[0.0], np.cumsum(0.5 * np.cos(heading))[:-1]])
    pad = 4
    extent_r, extent_c = np.ptp(rows) + 2 * pad + 1, np.ptp(cols) + 2 * pad + 1
    if extent_r >= shape[0] - 4 or extent_c >= shape[1] - 4:
        return None
    r0 = int(rng.uniform(2, shape[0] - 2 - extent_r))
    c0 = int(rng.uniform(2, shape[1] - 2 - extent_c))
    h, w = int(extent_r) + 1, int(extent_c) + 1
    centre = np.ones((h, w), dtype=bool)
    centre[np.rint(rows - rows.min() + pad).astype(int), np.rint(cols - cols.min() + pad).astype(int)] = False
    mask = ndi.distance_transform_edt(centre) <= half_width
    return _trim(ObjectMask(r0, c0, mask))


def _trim(mask: ObjectMask) -> ObjectMask:
    rows = np.flatnonzero(mask.mask.any(axis=1))
    cols = np.flatnonzero(mask.mask.any(axis=0))
    crop = mask.mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return ObjectMask(mask.row + int(rows[0]), mask.col + int(cols[0]), crop)


def _blob_params(rng, cy: float, cx: float):
    area = math.exp(rng.uniform(math.log(36), math.log(360)))
    ratio = rng.uniform(1.0, 1.8)
    radius = math.sqrt(area / math.pi)
    return (cy, cx, radius * math.sqrt(ratio), radius / math.sqrt(ratio), rng.uniform(0, np.pi), _harmonics(rng, 3, 0.06))


def _equivalent_radius(params) -> float:
    return math.sqrt(params[2] * params[3])


def _truth_mask(mask: ObjectMask, shape):
    """The polygon of ``mask`` and the pixels it rasterises to (what the truth says)."""
    polygon = mask_to_polygon(mask, smoothing=0.3)
    if polygon is None:
        return None, None
    return polygon, rasterize(polygon, shape)


def _place_blobs(rng, canvas: np.ndarray, n_blobs: int):
    """Place ``n_blobs`` blobs on ``canvas`` (labels 1..n); singles plus touching groups.

    Returns a list of ``(mask, params, polygon)`` and a bool array "touches another blob".
    """
    n_grouped = round(_TOUCHING_FRACTION * n_blobs)
    units = []
    while sum(units) < n_grouped and n_blobs - sum(units) >= 2:
        units.append(int(min(rng.choice([2, 2, 2, 3]), n_blobs - sum(units))))
    units += [1] * (n_blobs - sum(units))
    units = [units[i] for i in rng.permutation(len(units))]

    placed: list = []
    touching = np.zeros(n_blobs, dtype=bool)
    margin = 16
    for size in units:
        group = [_place_single(rng, canvas, len(placed) + 1, margin, placed)]
        for _ in range(size - 1):
            label = len(placed) + 1
            parent = _place_touching(rng, canvas, label, group, placed, touching)
            if parent is None:
                _place_single(rng, canvas, label, margin, placed)
            else:
                touching[[parent - 1, label - 1]] = True
            group.append(label)
    return placed, touching


def _place_single(rng, canvas, label: int, margin: int, placed: list) -> int:
    shape = canvas.shape
    for _ in range(2000):
        params = _blob_params(rng, rng.uniform(margin, shape[0] - margin), rng.uniform(margin, shape[1] - margin))
        drawn = _shape_mask(params, shape)
        if drawn is None:
            continue
        under, near = _neighbourhood(canvas, drawn, _GAP + 1)
        if near is None or near.any():
            continue
        polygon, mask = _truth_mask(drawn, shape)
        if polygon is None or not _AREA_RANGE[0] <= mask.area <= _AREA_RANGE[1]:
            continue
        under, near = _neighbourhood(canvas, mask, _GAP)
        if near is None or near.any():
            continue
        mask.paste(canvas, label)
        placed.append((mask, params, polygon))
        return label
    raise RuntimeError(
        f"could not place blob {label} in a frame of shape {shape}; ask for fewer blobs or a bigger frame"
    )


def _place_touching(rng, canvas, label: int, group: list, placed: list, touching: np.ndarray) -> int | None:
    """Place a blob sharing a boundary with a member of ``group``; returns that member's label.

    Sharing a boundary means 4-connected neighbours (a diagonal contact does not count).
    The new blob keeps the usual gap from every blob except that member and the group's
    members that already touch one. Returns None when no placement fits.
    """
    shape = canvas.shape
    for _ in range(12):
        parent = group[int(rng.integers(len(group)))]
        p_params = placed[parent - 1][1]
        angle = rng.uniform(0, 2 * np.pi)
        params = _blob_params(rng, 0.0, 0.0)
        distance = (_equivalent_radius(p_params) + _equivalent_radius(params)) * rng.uniform(0.75, 0.95)
        params = (p_params[0] + distance * math.sin(angle), p_params[1] + distance * math.cos(angle)) + params[2:]
        drawn = _shape_mask(params, shape)
        if drawn is None:
            continue
        full = drawn.area
        free = drawn.mask & (canvas[drawn.slices] == 0)
        if free.sum() < 0.7 * full:
            continue
        polygon, mask = _truth_mask(ObjectMask(drawn.row, drawn.col, free), shape)
        if polygon is None or not _AREA_RANGE[0] <= mask.area <= _AREA_RANGE[1]:
            continue
        under, near = _neighbourhood(canvas, mask, _GAP)
        if near is None or under.any():
            continue
        allowed = [0, parent, *(g for g in group if touching[g - 1])]
        others = np.setdiff1d(near, allowed)
        if others.size:
            continue
        r0, c0, r1, c1 = mask.bbox
        edge = ndi.binary_dilation(np.pad(mask.mask, 1))  # 4-connected neighbours
        if parent not in canvas[r0 - 1 : r1 + 1, c0 - 1 : c1 + 1][edge]:
            continue
        if ndi.label(mask.mask)[1] != 1:
            continue
        mask.paste(canvas, label)
        placed.append((mask, params, polygon))
        return parent
    return None


def _blob_profile(params, mask: ObjectMask) -> np.ndarray:
    """Flat-topped brightness (1 at the centre, 0.7 at the edge) on the mask's crop, 0 outside."""
    h, w = mask.mask.shape
    rho, limit = _polar(params, mask.row, mask.col, h, w)
    x = np.clip(rho / limit, 0, 1)
    return np.where(mask.mask, 1 - 0.3 * x**2, 0.0)


def _blurred_mean(profile: np.ndarray, mask: np.ndarray) -> float:
    """Mean over ``mask`` of ``profile`` after the PSF blur (how much signal stays inside)."""
    pad = 4
    blurred = ndi.gaussian_filter(np.pad(profile, pad), _PSF_SIGMA)[pad:-pad, pad:-pad]
    return float(blurred[mask].mean())
