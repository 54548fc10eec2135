"""A frame predicted block by block gives whole-frame ``predict``'s objects."""

import numpy as np
import pytest

from fewseg.demo import make_demo
from fewseg.classic.describe import channel_levels
from fewseg.classic.examples import estimate_background
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.objects import Frame
from fewseg.classic import blockwise as mosaic


def _tiled(n=2, tile=256):
    """A mosaic of n x n demo frames (different seeds), stitched edge to edge."""
    tiles = [make_demo(seed=s, shape=(tile, tile), n_blobs=45) for s in range(n * n)]
    data = np.concatenate([np.concatenate([tiles[r * n + c][0].data for c in range(n)], axis=2) for r in range(n)], axis=1)
    frame = Frame(data, channel_names=tiles[0][0].channel_names)
    return frame, tiles[0][1][:10]  # examples: from the top-left tile (same coordinates in the mosaic)


@pytest.fixture(scope="module")
def fitted():
    frame, examples = _tiled()
    return frame, examples, WeightFreeSegmenter().fit(frame, examples)


def _reader(frame):
    return lambda rows, cols: Frame(frame.data[:, rows, cols], channel_names=frame.channel_names)


@pytest.mark.parametrize("block", [96, 200])
def test_blockwise_equals_whole_frame(fitted, block):
    frame, examples, model = fitted
    whole = model.predict(frame, exclude=examples)
    parts = mosaic.predict_blockwise(model, _reader(frame), frame.shape, block=block, exclude=examples)
    assert parts.extra["blocks"]["count"] > 4
    assert parts.n_candidates == whole.n_candidates and parts.n_rediscovered == whole.n_rediscovered > 0
    assert len(parts.polygons) == len(whole.polygons) > 100
    for p, q in zip(parts.polygons, whole.polygons):
        np.testing.assert_array_equal(p, q)
    # Shape moments are summed in block coordinates (last-bit differences, ~1e-15) and
    # the mixture's EM stops when no responsibility moves by 1e-5, so scores agree to
    # ~1e-9 mostly and ~1e-3 near the decision; the objects kept are the same.
    np.testing.assert_allclose(parts.scores, whole.scores, rtol=0, atol=1e-3)


def test_frame_medians_are_numpy_medians():
    rng = np.random.default_rng(3)
    for shape in ((37, 41), (40, 40)):  # odd and even pixel counts
        data = np.stack([rng.normal(100, 20, shape), rng.integers(0, 5, shape), -rng.exponential(3, shape)]).astype(np.float32)
        frame = Frame(data)
        got = mosaic.frame_medians(_reader(frame), shape, mosaic.blocks(shape, 16))
        assert got == channel_levels(frame)


def test_background_from_blocks_is_the_frame_background(fitted):
    frame, _, model = fitted
    cores = mosaic.blocks(frame.shape, 7 * 20)
    coarse = mosaic._coarse_backgrounds(_reader(frame), frame.shape, cores, model.profile)
    for c, w in enumerate(model.profile.weights):
        if w == 0:
            assert coarse[c] is None
            continue
        full = estimate_background(frame.data[c] * np.sign(w), radius=model.profile.radius)
        region = (slice(33, 300), slice(250, 512))
        np.testing.assert_array_equal(mosaic.upsample_background(coarse[c], frame.shape, *region), full[region])


def test_halo_covers_an_object_and_the_filters(fitted):
    _, examples, model = fitted
    diameter = 2 * np.sqrt(max(model.profile.areas) / np.pi)
    assert mosaic.halo_for(model) > 3 * diameter


def test_cli_block_writes_the_whole_frame_objects(tmp_path, fitted):
    """``fewseg segment --block`` on an OME-Zarr: the whole-frame run's outlines."""
    import json

    pytest.importorskip("ome_zarr")
    from fewseg.io.annotations import write_annotations
    from fewseg.cli import main
    from fewseg.io.formats.omezarr import write_image
    from fewseg.objects import Location

    frame, examples, _ = fitted
    write_image(tmp_path / "m.ome.zarr", frame.data, axes="cyx", channel_names=frame.channel_names, version="0.4",
                chunks=(1, 128, 128), scale_factors=())
    write_annotations(tmp_path / "ex.json", examples, shape=frame.shape, tags=["blob"], location=Location())
    common = [str(tmp_path / "m.ome.zarr"), "--examples", str(tmp_path / "ex.json")]
    assert main(["segment", *common, "-o", str(tmp_path / "whole.geojson")]) == 0
    assert main(["segment", *common, "-o", str(tmp_path / "blocks.geojson"), "--block", "128"]) == 0
    whole, blocks = ([f["geometry"] for f in json.loads((tmp_path / n).read_text())["features"]]
                     for n in ("whole.geojson", "blocks.geojson"))
    assert len(blocks) > 100 and blocks == whole
    record = json.loads((tmp_path / "blocks.geojson.fewseg.json").read_text())
    assert record["blocks"]["count"] == 16 and record["n_objects"] == len(blocks)
    assert main(["segment", *common, "-o", str(tmp_path / "x.geojson"), "--block", "128", "--method", "fast"]) == 2


def test_fit_region_fits_on_the_examples_box_plus_margin(fitted):
    frame, examples, _ = fitted
    model, (r0, c0, r1, c1) = mosaic.fit_region(WeightFreeSegmenter().config, _reader(frame), frame.shape, examples,
                                                margin=20)
    boxes = np.array([a.to_mask(frame.shape).bbox for a in examples])
    assert (r0, c0) == (max(boxes[:, 0].min() - 20, 0), max(boxes[:, 1].min() - 20, 0))
    assert (r1, c1) == (min(boxes[:, 2].max() + 20, frame.shape[0]), min(boxes[:, 3].max() + 20, frame.shape[1]))
    crop = Frame(frame.data[:, r0:r1, c0:c1], channel_names=frame.channel_names)
    shifted = [a.to_mask(frame.shape) for a in examples]
    from fewseg.objects import ObjectMask

    direct = WeightFreeSegmenter().fit(crop, [ObjectMask(m.row - r0, m.col - c0, m.mask) for m in shifted])
    assert model.profile == direct.profile and model.settings == direct.settings


def test_rediscoveries_dropped_near_the_examples_as_on_the_whole_frame(fitted):
    from fewseg.match import drop_rediscovered, rediscovered

    frame, examples, model = fitted
    found = model.predict(frame)  # the examples not excluded: some objects re-discover them
    masks = [e.to_mask(frame.shape) for e in examples]
    kept, scores, n = drop_rediscovered(found.masks, masks, iou=0.3, scores=found.scores)  # as the mosaic calls it
    hit = rediscovered(found.masks, masks, frame.shape, iou=0.3)  # found.masks are best score first already
    assert n == hit.sum() > 0 and len(kept) == len(found.masks) - n
    assert [m.bbox for m in kept] == [m.bbox for m, h in zip(found.masks, hit) if not h]
    np.testing.assert_array_equal(scores, found.scores[~hit])
