"""Encode a frame once (tiled when objects are small), cache it, pool features per mask.

A SAM encoder sees a ``image_size`` square and returns one feature cell per 16 input
pixels. On a 1024 x 1024 frame a 20-pixel blob covers barely one cell, so the frame is
cut into overlapping square tiles, each resized up to the model input: with tiles of
side ``T`` a cell covers ``16 * T / image_size`` frame pixels. :func:`tile_side` picks
``T`` so an object of the examples' size spans at least ``cells_per_diameter`` cells.

Each object is pooled from the one tile that holds it best (whole, and nearest the
tile's centre), mask-weighted with sub-cell accuracy
(:meth:`~fewseg.sam.runtime.FeatureGrid.mask_weights`).

Embeddings are cached on disk as ``.npz`` with a signature (image hash, model name and
checkpoint hash, tiling, fewseg version) that is checked on reload, like micro-sam's
``precompute_image_embeddings``: a changed image, model or tiling is recomputed, never
silently reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..objects import ObjectMask
from .runtime import window_starts


@dataclass(frozen=True)
class Tile:
    """A square window ``[row, row + side) x [col, col + side)`` of the frame (clipped)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.row, self.col, self.row + self.height, self.col + self.width


def tile_side(radius: float, image_size: int, frame_shape: tuple[int, int], *, cells_per_diameter: float = 4.0,
              max_tiles: int = 4, overlap: float = 0.25) -> int:
    """Tile side so an object of ``radius`` spans ``cells_per_diameter`` feature cells.

    Never larger than the frame's longer side (one tile = the whole frame, as the seed
    encoded it), never smaller than 64 pixels, and large enough that the frame needs at
    most ``max_tiles`` tiles (each tile is one encoder pass: ~10 s for ViT-B on a 2-core
    CPU), so small objects trade resolution for a bounded cost.
    """
    cell = 2 * radius / cells_per_diameter  # frame pixels per feature cell wanted
    side = max(int(round(cell * image_size / 16)), 64)
    while side < max(frame_shape) and len(plan_tiles(frame_shape, side, overlap=overlap)) > max_tiles:
        side = int(side * 1.1) + 1
    return int(min(side, max(frame_shape)))


def plan_tiles(shape: tuple[int, int], side: int, *, overlap: float = 0.25) -> list[Tile]:
    """Overlapping tiles covering ``shape``; neighbours share ``overlap`` of a side.

    Examples
    --------
    >>> [t.box for t in plan_tiles((100, 150), 100)]
    [(0, 0, 100, 100), (0, 50, 100, 150)]
    """
    step = int(side * (1 - overlap))
    rows, cols = (window_starts(n, side, step=step).tolist() for n in shape)
    return [Tile(r, c, min(side, shape[0]), min(side, shape[1])) for r in rows for c in cols]


@dataclass(frozen=True)
class Signature:
    """What an embedding depends on; a cached one is used only if all fields agree."""

    image_sha256: str
    image_shape: tuple[int, int]
    model: str
    checkpoint: str
    tile_side: int
    overlap: float
    fewseg_version: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _file_digest(path) -> str:
    """Size + sha256 of the first and last MiB: cheap, and changes when weights change."""
    if path is None:
        return "random-weights"
    p = Path(path)
    h = hashlib.sha256(str(p.stat().st_size).encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, p.stat().st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()


def signature(model, rgb: np.ndarray, side: int, overlap: float) -> Signature:
    from .. import __version__

    return Signature(
        image_sha256=hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest(),
        image_shape=(int(rgb.shape[0]), int(rgb.shape[1])),
        model=model.name,
        checkpoint=_file_digest(model.checkpoint),
        tile_side=int(side),
        overlap=float(overlap),
        fewseg_version=__version__,
    )


class FrameEmbedding:
    """A frame's tiles and their embeddings (:class:`~fewseg.sam.runtime.Embedding`)."""

    def __init__(self, tiles: list[Tile], embeddings: list, sig: Signature):
        self.tiles = tiles
        self.embeddings = embeddings
        self.signature = sig

    def tile_for(self, mask: ObjectMask) -> int:
        """Index of the tile that contains ``mask`` whole with its centre most central
        (or, if none contains it whole, the one that contains most of its box)."""
        r0, c0, r1, c1 = mask.bbox
        cy, cx = (r0 + r1) / 2, (c0 + c1) / 2
        best, best_key = 0, None
        for i, t in enumerate(self.tiles):
            tr0, tc0, tr1, tc1 = t.box
            inside = tr0 <= r0 and tc0 <= c0 and r1 <= tr1 and c1 <= tc1
            covered = max(0, min(r1, tr1) - max(r0, tr0)) * max(0, min(c1, tc1) - max(c0, tc0))
            off = max(abs(cy - (tr0 + tr1) / 2) / t.height, abs(cx - (tc0 + tc1) / 2) / t.width)
            key = (inside, covered, -off)
            if best_key is None or key > best_key:
                best, best_key = i, key
        return best

    def local(self, mask: ObjectMask, index: int) -> ObjectMask:
        """``mask`` in the coordinates of tile ``index`` (clipped to it)."""
        t = self.tiles[index]
        full = np.zeros((t.height, t.width), dtype=bool)
        r0, c0 = mask.row - t.row, mask.col - t.col
        rs, cs = max(0, r0), max(0, c0)
        re, ce = min(t.height, r0 + mask.mask.shape[0]), min(t.width, c0 + mask.mask.shape[1])
        if re > rs and ce > cs:
            full[rs:re, cs:ce] = mask.mask[rs - r0 : re - r0, cs - c0 : ce - c0]
        return ObjectMask.from_full(full) if full.any() else ObjectMask(0, 0, np.zeros((0, 0), bool))

    def pool(self, masks: list[ObjectMask]) -> np.ndarray:
        """Mask-weighted mean feature of each mask: ``(N, C)`` float32."""
        maps = [e.feature_map() for e in self.embeddings]
        grids = [e.grid for e in self.embeddings]
        out = np.zeros((len(masks), maps[0].shape[0]), dtype=np.float32)
        for k, m in enumerate(masks):
            i = self.tile_for(m)
            lm = self.local(m, i)
            if lm.area == 0:
                continue
            w = grids[i].mask_weights(lm)
            total = float(w.sum())
            if total > 0:
                out[k] = np.tensordot(maps[i], w, axes=([1, 2], [0, 1])) / total
        return out


def encode_frame(model, rgb: np.ndarray, *, side: int, overlap: float = 0.25, cache_dir=None,
                 progress_bar: bool | None = None) -> FrameEmbedding:
    """Encode ``rgb`` once per tile, reusing a cached embedding whose signature matches."""
    from ..progress import progress
    from .runtime import encode

    sig = signature(model, rgb, side, overlap)
    tiles = plan_tiles(rgb.shape[:2], side, overlap=overlap)
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(sig.to_json().encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"{key}.npz"
        cached = _load(path, sig, model, tiles)
        if cached is not None:
            return cached
    embeddings = [encode(model, np.ascontiguousarray(rgb[t.row : t.row + t.height, t.col : t.col + t.width]))
                  for t in progress(tiles, total=len(tiles), desc="encoding tiles", enabled=progress_bar)]
    result = FrameEmbedding(tiles, embeddings, sig)
    if path is not None:
        _save(path, result)
    return result


def _save(path: Path, fe: FrameEmbedding) -> None:
    from .._atomic import atomic_path

    arrays = {"signature": np.array(fe.signature.to_json())}
    for i, e in enumerate(fe.embeddings):
        arrays[f"features_{i}"] = e.features.detach().float().cpu().numpy()
        for j, h in enumerate(e.high_res or []):
            arrays[f"high_res_{i}_{j}"] = h.detach().float().cpu().numpy()
        arrays[f"sizes_{i}"] = np.array([*e.original_size, *e.input_size, e.image_size])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _load(path: Path, sig: Signature, model, tiles: list[Tile]) -> FrameEmbedding | None:
    """The cached embedding if present and its signature matches exactly, else None."""
    import torch

    from .runtime import Embedding

    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            if str(data["signature"]) != sig.to_json():
                return None
            embeddings = []
            for i in range(len(tiles)):
                sizes = data[f"sizes_{i}"].tolist()
                high = [torch.from_numpy(data[k]).to(model.device) for k in sorted(data.files)
                        if k.startswith(f"high_res_{i}_")]
                embeddings.append(Embedding(
                    features=torch.from_numpy(data[f"features_{i}"]).to(model.device),
                    original_size=(sizes[0], sizes[1]), input_size=(sizes[2], sizes[3]),
                    family=model.family, image_size=sizes[4], high_res=high or None))
    except (OSError, KeyError, ValueError):
        return None  # unreadable or from another layout: recompute
    return FrameEmbedding(tiles, embeddings, sig)

