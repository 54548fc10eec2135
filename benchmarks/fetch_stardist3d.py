"""Fetch stardist's 3-D nuclei stack and its labels, and lay planes of it side by side as
one 2-D frame with its truth (real data of another kind, not committed).

The same wheel as ``fetch_stardist.py`` (`pip download stardist==0.9.2 --no-deps`) holds
`stardist/data/images/img3d.tif` (31 x 61 x 57, uint16: nuclei in a small tissue volume,
a dimmer, noisier microscope than img2d's) and `mask3d.tif` (162 labelled nuclei). One
plane holds only 10-14 nuclei, too few for the protocol's 10 examples, so the planes
:data:`PLANES` (at least 2 planes apart, none holding a cross-section under 30 pixels,
the method's smallest object) are laid in a row, :data:`GAP` pixels apart on the stack's
median, as one 61 x 459 frame with 86 nuclei of 31-297 pixels (median 121): a nucleus
seen in two planes is two different cross-sections. The two source TIFFs are checked
against pinned sha256 values; the frame ``montage.tif`` and its label image
``montage_mask.tif`` (labels renumbered 1..N, unique over the row) are written into DEST
(default `data/stardist3d/`).

    python benchmarks/fetch_stardist3d.py [DEST]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_stardist import _ok, extract  # noqa: E402

SOURCES = {
    "img3d.tif": "f5626d500c7a738cd321698f43df36e2ac149d98456579c5cbcf8af48c7253e8",
    "mask3d.tif": "a2ff51b712941a90cf3a5628b11f04f5d7fa3f29c808c065d3be6ff938b215a1",
}
#: The planes laid side by side (z indices of img3d).
PLANES = (2, 6, 9, 12, 20, 22, 29)
#: Pixels between planes in the frame.
GAP = 10


def _sources(dest: Path) -> dict[str, Path]:
    """img3d.tif and mask3d.tif in ``dest``, downloaded and checked when missing or changed."""
    paths = {name: dest / name for name in SOURCES}
    if all(_ok(p, SOURCES[n]) for n, p in paths.items()):
        return paths
    extract(SOURCES, paths)
    return paths


def montage(image: np.ndarray, labels: np.ndarray, planes=PLANES, gap: int = GAP) -> tuple[np.ndarray, np.ndarray]:
    """Planes ``planes`` of a ``(Z, Y, X)`` stack and its labels in a row, ``gap`` pixels
    apart (the stack's median there, label 0); labels renumbered 1..N over the row."""
    z, h, w = image.shape
    width = len(planes) * w + (len(planes) - 1) * gap
    frame = np.full((h, width), np.median(image), dtype=image.dtype)
    truth = np.zeros((h, width), dtype=np.uint16)
    next_label = 1
    for k, p in enumerate(planes):
        col = k * (w + gap)
        frame[:, col : col + w] = image[p]
        ids = np.unique(labels[p])
        ids = ids[ids > 0]
        lut = np.zeros(int(labels[p].max()) + 1, dtype=np.uint16)
        lut[ids] = np.arange(next_label, next_label + ids.size)
        truth[:, col : col + w] = lut[labels[p]]
        next_label += ids.size
    return frame, truth


def fetch(dest: Path) -> dict[str, Path]:
    """``{"montage.tif": ..., "montage_mask.tif": ...}`` in ``dest``, made from the
    checked sources (made again whenever they are)."""
    import tifffile

    dest.mkdir(parents=True, exist_ok=True)
    sources = _sources(dest)
    out = {"montage.tif": dest / "montage.tif", "montage_mask.tif": dest / "montage_mask.tif"}
    frame, truth = montage(tifffile.imread(sources["img3d.tif"]), tifffile.imread(sources["mask3d.tif"]))
    for name, array in (("montage.tif", frame), ("montage_mask.tif", truth)):
        path = out[name]
        if path.is_file() and np.array_equal(tifffile.imread(path), array):
            continue
        part = path.with_suffix(".part.tif")
        tifffile.imwrite(part, array)
        part.replace(path)
    return out


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "data" / "stardist3d"
    for name, path in fetch(dest).items():
        print(f"{name}: {path}")
