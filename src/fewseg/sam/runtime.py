"""fewseg's own image and point-prompt path through SAM1 / SAM2: numpy in, numpy out.

The three steps mirror the official predictors (``SamPredictor``, ``SAM2ImagePredictor``)
and give the same numbers, but batch many prompts per call and never hold full-size masks
that nobody asked for:

1. :func:`encode` an ``(Y, X, 3)`` uint8 RGB image once -> :class:`Embedding`;
2. :func:`predict_points` for many one-point prompts -> low-resolution mask logits and
   predicted IoUs;
3. :func:`logits_to_image` upsamples the logits to the image, or only a window of it.

How each family maps an image onto its square input (this is what :func:`feature_grid`
describes, so that pooling code maps pixels to feature cells correctly):

* SAM1 resizes the longest side to ``image_size`` (keeping the aspect ratio) and pads the
  bottom / right with zeros (after normalisation). Feature cells past the resized image
  cover padding only.
* SAM2 stretches the image to ``image_size x image_size`` (aspect ratio not kept).

Coordinates: fewseg points are ``(row, col)`` with pixel centres at integers. They are
handed to the model exactly as the official predictors do with ``(x, y) = (col, row)``:
``x * input_w / X`` (SAM1) or ``x / X * image_size`` (SAM2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .build import SamModel, prompt_heads


@dataclass(eq=False)
class Embedding:
    """An encoded image.

    Attributes
    ----------
    features : torch.Tensor, shape (1, C, h, w)
        The image embedding on the model's device (C = 256, h = w = 64 for the official
        models).
    original_size : (int, int)
        ``(Y, X)`` of the image that was encoded.
    input_size : (int, int)
        ``(Y, X)`` after resizing, before padding (SAM1); ``(image_size, image_size)``
        (SAM2).
    family : {"sam1", "sam2"}
    image_size : int
        Side of the square model input.
    high_res : list of torch.Tensor or None
        SAM2 only: the stride-4 and stride-8 features its mask decoder also reads.
    """

    features: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    family: str
    image_size: int
    high_res: list | None = None

    def feature_map(self) -> np.ndarray:
        """The embedding as a ``(C, h, w)`` float32 numpy array."""
        return self.features[0].detach().float().cpu().numpy()

    @property
    def grid(self) -> "FeatureGrid":
        return feature_grid(self)


@dataclass(frozen=True)
class FeatureGrid:
    """Which part of the image each cell of an embedding covers.

    Image pixel ``(r, c)`` covers ``[r, r+1) x [c, c+1)`` in *edge* coordinates; feature
    cell ``(i, j)`` covers ``[i * cell_size[0], (i+1) * cell_size[0]) x [j * cell_size[1],
    (j+1) * cell_size[1])`` of the same coordinates. Cells beyond ``image_extent`` (SAM1's
    padding) cover no image.

    Attributes
    ----------
    shape : (int, int)
        ``(h, w)`` of the embedding.
    cell_size : (float, float)
        Image pixels per cell along rows and columns (16 x the resize factor's inverse).
    image_extent : (float, float)
        How many cells (fractional) the image spans: ``(Y / cell_size[0], X / cell_size[1])``.
    image_shape : (int, int)
        ``(Y, X)`` of the image.
    """

    shape: tuple[int, int]
    cell_size: tuple[float, float]
    image_extent: tuple[float, float]
    image_shape: tuple[int, int]

    @property
    def valid_shape(self) -> tuple[int, int]:
        """Cells that cover at least part of the image: ``ceil(image_extent)``."""
        return tuple(min(n, int(np.ceil(e - 1e-9))) for n, e in zip(self.shape, self.image_extent))

    def to_cells(self, points) -> np.ndarray:
        """``(N, 2)`` image ``(row, col)`` (pixel centres at integers) -> fractional cell
        coordinates with cell centres at integers."""
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        return (p + 0.5) / np.asarray(self.cell_size) - 0.5

    def cell_box(self, i: int, j: int) -> tuple[float, float, float, float]:
        """``(row0, col0, row1, col1)`` in edge coordinates, clipped to the image."""
        sr, sc = self.cell_size
        y, x = self.image_shape
        return (min(i * sr, y), min(j * sc, x), min((i + 1) * sr, y), min((j + 1) * sc, x))

    def _overlap(self, start: int, stop: int, axis: int) -> np.ndarray:
        """``(cells, stop - start)``: length of pixel ``p``'s extent inside each cell, in
        units of the cell size."""
        size = self.cell_size[axis]
        edges = np.arange(self.shape[axis] + 1) * size
        lo = np.arange(start, stop, dtype=float)
        over = (np.minimum(lo[None, :] + 1, edges[1:, None]) - np.maximum(lo[None, :], edges[:-1, None]))
        return np.clip(over, 0.0, None) / size

    def mask_weights(self, mask) -> np.ndarray:
        """Fraction of each feature cell's area covered by ``mask``: ``(h, w)`` float32.

        ``mask`` is a full ``(Y, X)`` boolean image, or an object with ``row``, ``col`` and
        a ``mask`` crop (:class:`fewseg.objects.ObjectMask`). The mask-weighted mean of
        the embedding is ``(features * w).sum((1, 2)) / w.sum()``.
        """
        if hasattr(mask, "mask") and hasattr(mask, "row"):
            r0, c0, crop = int(mask.row), int(mask.col), np.asarray(mask.mask, dtype=bool)
        else:
            crop = np.asarray(mask, dtype=bool)
            if crop.shape != tuple(self.image_shape):
                raise ValueError(f"mask shape {crop.shape} != image shape {self.image_shape}")
            r0 = c0 = 0
        h, w = crop.shape
        wr = self._overlap(r0, r0 + h, 0)
        wc = self._overlap(c0, c0 + w, 1)
        return (wr @ crop.astype(np.float64) @ wc.T).astype(np.float32)


def feature_grid(emb: Embedding) -> FeatureGrid:
    """The :class:`FeatureGrid` of an embedding (see the module docstring)."""
    h, w = (int(s) for s in emb.features.shape[-2:])
    y, x = emb.original_size
    iy, ix = emb.input_size
    stride_y, stride_x = emb.image_size / h, emb.image_size / w  # 16 for SAM1 and SAM2
    cell = (stride_y * y / iy, stride_x * x / ix)
    return FeatureGrid(shape=(h, w), cell_size=cell, image_extent=(y / cell[0], x / cell[1]),
                       image_shape=(int(y), int(x)))


# --------------------------------------------------------------------------- encode


def _check_rgb(rgb) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise InputError("rgb", f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError("rgb", f"expected an (Y, X, 3) RGB image, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InputError("rgb", f"expected dtype uint8 (0-255), got {rgb.dtype}; convert "
                         "float images with a contrast stretch first")
    return np.ascontiguousarray(rgb)


def resized_shape(y: int, x: int, long_side: int) -> tuple[int, int]:
    """SAM1's ``ResizeLongestSide.get_preprocess_shape``: ``(Y, X)`` scaled so the longest
    side is ``long_side``, each rounded half up."""
    scale = long_side * 1.0 / max(y, x)
    return int(y * scale + 0.5), int(x * scale + 0.5)


def _sam1_input(model: SamModel, rgb: np.ndarray):
    import torch
    from PIL import Image

    new_h, new_w = resized_shape(rgb.shape[0], rgb.shape[1], model.image_size)
    # Same resampling as ResizeLongestSide.apply_image (torchvision resize of a PIL image).
    resized = np.array(Image.fromarray(rgb).resize((new_w, new_h), Image.BILINEAR))
    x = torch.as_tensor(resized, device=model.device).permute(2, 0, 1).contiguous()[None]
    return model.module.preprocess(x), (new_h, new_w)  # normalise, pad bottom/right


def _sam2_input(model: SamModel, rgb: np.ndarray):
    import torch
    import torch.nn.functional as F

    s = model.image_size
    x = torch.as_tensor(rgb, device=model.device).permute(2, 0, 1)[None].float() / 255.0
    # SAM2Transforms: ToTensor, Resize((s, s)) (antialiased bilinear), Normalize.
    x = F.interpolate(x, (s, s), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std, (s, s)


def encode(model: SamModel, rgb: np.ndarray) -> Embedding:
    """Run the image encoder once.

    Parameters
    ----------
    model : SamModel
    rgb : ndarray, shape (Y, X, 3), uint8

    Returns
    -------
    Embedding

    Examples
    --------
    >>> emb = encode(model, np.zeros((200, 300, 3), np.uint8))  # doctest: +SKIP
    >>> emb.feature_map().shape  # doctest: +SKIP
    (256, 64, 64)
    """
    return encode_batch(model, [rgb])[0]


def encode_batch(model: SamModel, images: list[np.ndarray]) -> list[Embedding]:
    """Encode several images (of any sizes) in one encoder pass.

    Every image is resized and padded to the model's square input first, so they stack
    into one batch; the results equal :func:`encode` of each image.
    """
    import torch

    images = [_check_rgb(rgb) for rgb in images]
    if not images:
        return []
    module = model.module
    make_input = _sam1_input if model.family == "sam1" else _sam2_input
    inputs = [make_input(model, rgb) for rgb in images]
    x = torch.cat([i[0] for i in inputs])
    with torch.no_grad(), model.autocast():
        if model.family == "sam1":
            features = module.image_encoder(x)
            high_res = [None] * len(images)
            per_image = [features[k : k + 1] for k in range(len(images))]
        else:
            backbone_out = module.forward_image(x)
            _, vision_feats, _, _ = module._prepare_backbone_features(backbone_out)
            if module.directly_add_no_mem_embed:
                vision_feats[-1] = vision_feats[-1] + module.no_mem_embed
            s = model.image_size
            sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
            n = len(images)
            feats = [f.permute(1, 2, 0).reshape(n, -1, *hw) for f, hw in zip(vision_feats, sizes)]
            per_image = [feats[-1][k : k + 1] for k in range(n)]
            high_res = [[f[k : k + 1] for f in feats[:-1]] for k in range(n)]
    return [
        Embedding(features=f, original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
                  input_size=tuple(int(v) for v in inp[1]), family=model.family,
                  image_size=model.image_size, high_res=h)
        for f, rgb, inp, h in zip(per_image, images, inputs, high_res)
    ]


# --------------------------------------------------------------------------- prompts


def _model_coords(model: SamModel, emb: Embedding, points: np.ndarray) -> np.ndarray:
    """(row, col) image points -> (x, y) model input coordinates (official mapping)."""
    y, x = emb.original_size
    iy, ix = emb.input_size
    out = np.empty_like(points, dtype=np.float64)
    out[:, 0] = points[:, 1] * (ix / x)
    out[:, 1] = points[:, 0] * (iy / y)
    return out


def predict_points(model: SamModel, emb: Embedding, points, *, labels=None,
                   multimask: bool = True, batch_size: int = 64):
    """Masks for one-point prompts, batched.

    Parameters
    ----------
    model : SamModel
    emb : Embedding
        From :func:`encode` with the same model.
    points : array-like, shape (N, 2)
        ``(row, col)`` image coordinates, one point per prompt.
    labels : array-like of int, shape (N,), optional
        1 = foreground (default), 0 = background.
    multimask : bool
        Three masks per prompt (``K = 3``) or SAM's single-mask output (``K = 1``).
    batch_size : int
        Prompts per decoder call.

    Returns
    -------
    low_res_logits : ndarray, shape (N, K, L, L), float32
        Mask logits on the model's low-resolution grid (``L = 256`` for the official
        models); see :func:`logits_to_image`. Not clamped.
    iou_pred : ndarray, shape (N, K), float32
        The model's predicted IoU of each mask.
    """
    import torch

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError("points", f"expected an (N, 2) array of (row, col), got shape {pts.shape}")
    n = len(pts)
    lab = np.ones(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    if lab.shape != (n,):
        raise InputError("labels", f"expected shape ({n},), got {lab.shape}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    k = 3 if multimask else 1
    side = 4 * features_side(emb)
    if n == 0:
        return np.zeros((0, k, side, side), np.float32), np.zeros((0, k), np.float32)

    xy = _model_coords(model, emb, pts)
    with torch.no_grad(), model.autocast():
        return _decode(model, emb, xy, lab, multimask=multimask, batch_size=batch_size)


def _decode(model: SamModel, emb: Embedding, xy: np.ndarray, lab: np.ndarray, *, multimask: bool,
            batch_size: int, window: tuple[int, int, int] | None = None):
    """The official prompt encoder + mask decoder over ``emb`` or over a square window
    ``(i0, j0, side)`` of its cells (features, dense positional encoding, dense prompt
    embedding and SAM2's high-resolution features cut alike)."""
    import torch

    module = model.module
    dev = emb.features.device
    encoder, decoder = prompt_heads(module)
    features, image_pe, high_res = emb.features, encoder.get_dense_pe(), emb.high_res
    if window is not None:
        i0, j0, w = window
        features = features[..., i0 : i0 + w, j0 : j0 + w]
        image_pe = image_pe[..., i0 : i0 + w, j0 : j0 + w]
        if high_res is not None:  # stride 4 and stride 8: 4x and 2x the embedding's cells
            up = [f.shape[-1] // features_side(emb) for f in high_res]
            high_res = [f[..., u * i0 : u * (i0 + w), u * j0 : u * (j0 + w)] for f, u in zip(high_res, up)]
    logits_out, iou_out = [], []
    for start in range(0, len(xy), batch_size):
        sl = slice(start, start + batch_size)
        coords = torch.as_tensor(xy[sl], dtype=torch.float, device=dev)[:, None, :]
        lbl = torch.as_tensor(lab[sl], dtype=torch.int, device=dev)[:, None]
        sparse, dense = encoder(points=(coords, lbl), boxes=None, masks=None)
        if window is not None:
            dense = dense[..., i0 : i0 + w, j0 : j0 + w]
        if model.family == "sam1":
            low, iou = decoder(image_embeddings=features, image_pe=image_pe, sparse_prompt_embeddings=sparse,
                               dense_prompt_embeddings=dense, multimask_output=multimask)
        else:
            low, iou, _, _ = decoder(image_embeddings=features, image_pe=image_pe,
                                     sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                     multimask_output=multimask, repeat_image=True, high_res_features=high_res)
        logits_out.append(low.float().cpu().numpy())
        iou_out.append(iou.float().cpu().numpy())
    return np.concatenate(logits_out), np.concatenate(iou_out)


def features_side(emb: Embedding) -> int:
    """Cells per side of the (square) embedding."""
    return int(emb.features.shape[-1])


@dataclass(frozen=True)
class LocalLogits:
    """Mask logits decoded on a window of the embedding around each prompt
    (:func:`predict_points_local`).

    Attributes
    ----------
    logits : ndarray, shape (N, K, 4 * side, 4 * side), float32
        Each prompt's low-resolution logits over its window.
    iou : ndarray, shape (N, K), float32
        Predicted IoUs.
    origin : ndarray, shape (N, 2), int
        Top-left of each window on the full low-resolution grid (low-res pixels).
    full_side : int
        ``L``, side of the full low-resolution grid.
    """

    logits: np.ndarray
    iou: np.ndarray
    origin: np.ndarray
    full_side: int

    def placed(self, n: int, k: int, *, fill: float = -1e4) -> np.ndarray:
        """Prompt ``n``'s mask ``k`` on the full ``(L, L)`` low-res grid (``fill``, i.e.
        background, outside its window), ready for :func:`logits_to_image`."""
        out = np.full((self.full_side, self.full_side), fill, np.float32)
        r, c = (int(v) for v in self.origin[n])
        side = self.logits.shape[-1]
        out[r : r + side, c : c + side] = self.logits[n, k]
        return out


def window_starts(side: int, window: int, *, step: int | None = None) -> np.ndarray:
    """Origins of overlapping windows along an axis of length ``side``: every ``step``
    (default ``window // 2``, so any cell lies in the central half of some window except
    near the ends), the last flush with the end; one window at 0 when it covers the
    axis. Also places the encoder's tiles (:func:`fewseg.sam.embedding.plan_tiles`)."""
    if window >= side:
        return np.zeros(1, dtype=np.int64)
    step = max(window // 2 if step is None else step, 1)
    return np.unique(np.append(np.arange(0, side - window, step), side - window))


def predict_points_local(model: SamModel, emb: Embedding, points, *, window: int = 16,
                         multimask: bool = True, batch_size: int = 64) -> LocalLogits:
    """Like :func:`predict_points` (foreground points), but each prompt is decoded on a
    ``window x window`` cell window of the embedding whose centre is nearest to it.

    SAM's decoder attends over every embedding cell it is given, so its cost grows with
    the window's area: a 16-cell window is 1/16 of a 64 x 64 embedding (ViT-B on a CPU:
    ~23x less time for the same prompts, ``benchmarks/bench_fast.py``). The window
    changes what the decoder sees, so the masks can differ from the full decode: with
    the self-trained tiny SAM1 they agree (``tests/test_sam_runtime.py``); for the
    official weights that is assumed, not measured (no weights offline). An object
    larger than the window is cut at its edge. ``window >=`` the embedding's side is
    the full decode.

    Parameters
    ----------
    window : int
        Window side in embedding cells (16 cells = 256 model-input pixels).

    Returns
    -------
    LocalLogits
    """
    import torch

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError("points", f"expected an (N, 2) array of (row, col), got shape {pts.shape}")
    if window < 1:
        raise ValueError("window must be >= 1 cell")
    h = features_side(emb)
    w = min(int(window), h)
    k = 3 if multimask else 1
    n = len(pts)
    logits = np.zeros((n, k, 4 * w, 4 * w), np.float32)
    iou = np.zeros((n, k), np.float32)
    origin = np.zeros((n, 2), np.int64)
    if n:
        xy = _model_coords(model, emb, pts)
        cells = xy[:, ::-1] / (emb.image_size / h)  # (row, col) in cells, edges at integers
        starts = window_starts(h, w)
        centre = starts + w / 2.0
        wi = starts[np.abs(cells[:, 0:1] - centre[None]).argmin(1)]
        wj = starts[np.abs(cells[:, 1:2] - centre[None]).argmin(1)]
        lab = np.ones(n, dtype=np.int64)
        with torch.no_grad(), model.autocast():
            for i0, j0 in sorted(set(zip(wi.tolist(), wj.tolist()))):
                idx = np.flatnonzero((wi == i0) & (wj == j0))
                lg, io = _decode(model, emb, xy[idx], lab[idx], multimask=multimask, batch_size=batch_size,
                                 window=(i0, j0, w))
                logits[idx], iou[idx] = lg, io
                origin[idx] = (4 * i0, 4 * j0)
    return LocalLogits(logits=logits, iou=iou, origin=origin, full_side=4 * h)


# --------------------------------------------------------------------------- upsampling


def _bilinear_matrix(n_in: int, n_out: int, dst: np.ndarray | None = None) -> np.ndarray:
    """Rows ``dst`` of the ``(n_out, n_in)`` matrix of ``F.interpolate(mode="bilinear",
    align_corners=False, size=n_out)`` along one axis (PyTorch's index arithmetic)."""
    dst = np.arange(n_out) if dst is None else np.asarray(dst)
    # float32 index arithmetic, as torch does for float32 tensors: the weights then agree
    # to ~1e-7 instead of ~1e-5.
    f32 = np.float32
    src = f32(f32(n_in) / f32(n_out)) * (dst.astype(f32) + f32(0.5)) - f32(0.5)
    src = np.maximum(src, f32(0.0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0.astype(f32)).astype(np.float64)
    m = np.zeros((len(dst), n_in))
    rows = np.arange(len(dst))
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


@functools.lru_cache(maxsize=16)
def _axis_map(family: str, low: int, image_size: int, n_input: int, n_orig: int):
    """The full low-res -> image map along one axis, ``(n_orig, low)`` float32, and for
    each image row the first / last low-res index with non-zero weight (cached: a frame
    has two, and every crop of it reuses them)."""
    if family == "sam1":  # upsample to the padded input, drop the padding, resize
        m = _bilinear_matrix(n_input, n_orig) @ _bilinear_matrix(low, image_size)[:n_input]
    else:  # resize straight to the image
        m = _bilinear_matrix(low, n_orig)
    nonzero = m != 0
    first = nonzero.argmax(1)
    last = low - 1 - nonzero[:, ::-1].argmax(1)
    m = m.astype(np.float32)
    for a in (m, first, last):
        a.flags.writeable = False
    return m, first, last


def logits_to_image(model: SamModel, emb: Embedding, logits, *, crop=None) -> np.ndarray:
    """Upsample low-resolution mask logits to the original image, like the official
    predictors (SAM1: to the padded input, remove padding, resize to the image; SAM2:
    resize to the image).

    Parameters
    ----------
    model : SamModel
    emb : Embedding
    logits : ndarray, shape (..., L, L)
        From :func:`predict_points`.
    crop : (r0, c0, r1, c1), optional
        Compute only this window of the full-resolution result (end-exclusive, inside
        the image). Only the low-res region that influences it is resampled, with the
        same coordinate mapping, so it equals the full result's window to float rounding.

    Returns
    -------
    ndarray, float32, shape (..., Y, X) or (..., r1 - r0, c1 - c0)
        Logits; the mask is ``> 0``.
    """
    import torch
    import torch.nn.functional as F

    arr = np.asarray(logits, dtype=np.float32)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"expected (..., L, L) low-res logits, got shape {arr.shape}")
    low = arr.shape[-1]
    lead = arr.shape[:-2]
    flat = arr.reshape(-1, low, low)
    y, x = emb.original_size

    if crop is None:
        t = torch.from_numpy(flat)[None]
        if emb.family == "sam1":
            t = F.interpolate(t, (emb.image_size, emb.image_size), mode="bilinear",
                              align_corners=False)
            t = t[..., : emb.input_size[0], : emb.input_size[1]]
        t = F.interpolate(t, (y, x), mode="bilinear", align_corners=False)
        return t[0].numpy().reshape(*lead, y, x)

    r0, c0, r1, c1 = (int(v) for v in crop)
    if not (0 <= r0 < r1 <= y and 0 <= c0 < c1 <= x):
        raise ValueError(f"crop {crop} is not a non-empty window inside the image {(y, x)}")
    maps = [_axis_map(emb.family, low, int(emb.image_size), int(emb.input_size[a]), int(emb.original_size[a]))
            for a in (0, 1)]
    (mr, fr, lr_), (mc, fc, lc_) = maps
    # Only the low-res rows / columns with non-zero weight in the window matter.
    lr, hr = int(fr[r0:r1].min()), int(lr_[r0:r1].max()) + 1
    lc, hc = int(fc[c0:c1].min()), int(lc_[c0:c1].max()) + 1
    sub = flat[:, lr:hr, lc:hc]
    out = np.einsum("ij,njk,lk->nil", mr[r0:r1, lr:hr], sub, mc[c0:c1, lc:hc], optimize=True)
    return out.astype(np.float32, copy=False).reshape(*lead, r1 - r0, c1 - c0)
