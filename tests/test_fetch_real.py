"""The benchmarks' real data: the pinned hash check (benchmarks/fetch_stardist.py) and the
3-D nuclei set's planes laid in a row (fetch_stardist3d.py); the download is not run here."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fetch_stardist  # noqa: E402
import fetch_stardist3d  # noqa: E402


def test_check_refuses_a_changed_file():
    data = b"II*\x00 some tiff bytes"
    fetch_stardist.check(data, hashlib.sha256(data).hexdigest(), "img3d.tif")
    with pytest.raises(SystemExit, match="img3d.tif: sha256 .* != pinned"):
        fetch_stardist.check(data + b"\x00", hashlib.sha256(data).hexdigest(), "img3d.tif")


def test_pinned_sources_are_sha256():
    assert set(fetch_stardist3d.SOURCES) == {"img3d.tif", "mask3d.tif"}
    assert all(len(s) == 64 and int(s, 16) >= 0 for s in fetch_stardist3d.SOURCES.values())


def test_montage_keeps_every_plane_and_numbers_labels_once():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 200, size=(5, 8, 6)).astype(np.uint16)
    labels = np.zeros((5, 8, 6), dtype=np.uint16)
    labels[1, 1:4, 1:4] = 7  # the same label id in two planes: two objects in the row
    labels[3, 1:4, 1:4] = 7
    labels[3, 5:7, 2:5] = 2
    frame, truth = fetch_stardist3d.montage(image, labels, planes=(1, 3), gap=3)
    assert frame.shape == truth.shape == (8, 6 + 3 + 6)
    np.testing.assert_array_equal(frame[:, :6], image[1])
    np.testing.assert_array_equal(frame[:, 9:], image[3])
    assert (frame[:, 6:9] == np.median(image)).all() and (truth[:, 6:9] == 0).all()
    assert sorted(np.unique(truth)) == [0, 1, 2, 3]
    # Each object keeps its pixels, under a label of its own.
    assert (truth[:, :6] > 0).sum() == 9 and len(np.unique(truth[:, :6][truth[:, :6] > 0])) == 1
    assert np.array_equal(truth[:, 9:] > 0, labels[3] > 0)
    assert len(np.unique(truth[:, 9:][truth[:, 9:] > 0])) == 2
