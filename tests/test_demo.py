import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.measure import perimeter

from fewseg import Frame, Location
from fewseg.demo import DEMO_TAG, make_demo, make_demo_scene, write_demo
from fewseg.objects import labels_from_masks
from fewseg.polygons import check_polygon

SMALL = dict(shape=(256, 300), n_blobs=40)


@pytest.fixture(scope="module")
def full():
    return make_demo_scene(seed=0)


def _snr(scene) -> np.ndarray:
    """Measured SNR per blob: (mean inside - median of a background ring) / robust s.d. of the ring."""
    yfp = scene.frame.data[1]
    shape = yfp.shape
    occupied = ndi.binary_dilation(labels_from_masks(scene.blobs + scene.distractors, shape) > 0, iterations=3)
    out = []
    for m in scene.blobs:
        r0, c0, r1, c1 = m.bbox
        R0, C0, R1, C1 = max(r0 - 12, 0), max(c0 - 12, 0), min(r1 + 12, shape[0]), min(c1 + 12, shape[1])
        inside = np.zeros((R1 - R0, C1 - C0), bool)
        inside[r0 - R0 : r1 - R0, c0 - C0 : c1 - C0] = m.mask
        ring = ndi.binary_dilation(inside, iterations=10) & ~occupied[R0:R1, C0:C1]
        background = yfp[R0:R1, C0:C1][ring]
        median = np.median(background)
        sd = 1.4826 * np.median(np.abs(background - median))
        out.append((yfp[R0:R1, C0:C1][inside].mean() - median) / sd)
    return np.array(out)


def test_full_size_frame_like_the_seed(full):
    scene = full
    frame = scene.frame
    assert isinstance(frame, Frame)
    assert frame.data.shape == (2, 1022, 1024) and frame.data.dtype == np.float32
    assert frame.channel_names == ("Brightfield", "YFP")
    assert frame.location == Location(xy=0, z=3, time=0)
    assert np.array_equal(frame.data, np.rint(frame.data)) and frame.data.min() >= 0 and frame.data.max() <= 65535
    bf, yfp = frame.data
    assert 2000 <= np.median(bf) <= 3000 and 1800 < bf.min() and bf.max() < 3500
    assert 100 <= np.median(yfp) <= 200


def test_blobs_are_the_annotations(full):
    scene = full
    shape = scene.frame.shape
    assert len(scene.annotations) == len(scene.blobs) == 500
    areas = []
    for i, (a, blob) in enumerate(zip(scene.annotations, scene.blobs)):
        assert a.tags == (DEMO_TAG,) and a.channel == 1 and a.location == Location(0, 3, 0)
        check_polygon(a.polygon, source="demo", field=str(i))
        m = a.to_mask(shape)
        assert np.array_equal(m.to_full(shape), blob.to_full(shape))
        areas.append(m.area)
    assert 30 <= min(areas) and max(areas) <= 400
    assert 60 <= np.median(areas) <= 200


def test_truth_masks_do_not_overlap_and_touching_ones_share_a_boundary(full):
    scene = full
    shape = scene.frame.shape
    count = np.zeros(shape, np.int32)
    for a in scene.annotations:
        m = a.to_mask(shape)
        count[m.slices] += m.mask
    assert count.max() == 1
    labels = labels_from_masks(scene.blobs, shape)
    assert 0.10 <= scene.touching.mean() <= 0.20
    for i, m in enumerate(scene.blobs):
        r0, c0, r1, c1 = m.bbox
        region = labels[max(r0 - 2, 0) : r1 + 2, max(c0 - 2, 0) : c1 + 2]
        own = region == i + 1
        next_to = np.unique(region[ndi.binary_dilation(own) & ~own])
        near = np.unique(region[ndi.binary_dilation(own, iterations=2) & ~own])
        if scene.touching[i]:
            assert set(next_to) - {0}, f"blob {i} should touch another"
        else:
            assert set(near) == {0}, f"blob {i} should keep 2 px from others"


def test_distractors_are_bright_separate_and_not_in_truth(full):
    scene = full
    shape = scene.frame.shape
    kinds = scene.distractor_kinds
    assert kinds.count("aggregate") >= 3 and kinds.count("fibre") >= 3
    truth = labels_from_masks([a.to_mask(shape) for a in scene.annotations], shape)
    truth_near = ndi.binary_dilation(truth > 0, iterations=2)
    yfp = scene.frame.data[1]
    background, sd = np.median(yfp), 1.4826 * np.median(np.abs(yfp - np.median(yfp)))
    for kind, d in zip(kinds, scene.distractors):
        assert not truth_near[d.slices][d.mask].any()
        assert yfp[d.slices][d.mask].mean() > background + 5 * sd
        if kind == "aggregate":
            assert 1500 <= d.area <= 5000
        else:
            length = perimeter(d.mask) / 2  # a thin strip's perimeter is about twice its length
            assert 90 <= length <= 340 and 2 <= d.area / length <= 4.2


def test_dim_blobs_really_are_dim(full):
    scene = full
    snr = _snr(scene)
    assert scene.dim.sum() == 75  # 15 % of 500
    dim, bright = snr[scene.dim], snr[~scene.dim]
    assert 2.8 <= np.median(dim) <= 4.2
    assert np.mean(dim < 5) >= 0.9
    assert np.median(bright) > 10 and np.mean(bright > 5) >= 0.9
    assert np.median(snr / scene.snr) == pytest.approx(1.0, abs=0.15)  # drawn as designed


def test_deterministic_for_a_seed():
    a_frame, a_truth = make_demo(seed=3, **SMALL)
    b_frame, b_truth = make_demo(seed=3, **SMALL)
    c_frame, _ = make_demo(seed=4, **SMALL)
    assert np.array_equal(a_frame.data, b_frame.data)
    assert len(a_truth) == len(b_truth) == 40
    assert all(np.array_equal(a.polygon, b.polygon) for a, b in zip(a_truth, b_truth))
    assert not np.array_equal(a_frame.data, c_frame.data)


def test_small_variant_is_small():
    # Generation time is not asserted here (a shared machine's load decides it): no timed unit tests.
    frame, truth = make_demo(seed=0, **SMALL)
    assert frame.data.shape == (2, 256, 300) and len(truth) == 40


def test_too_many_blobs_is_an_error():
    with pytest.raises(RuntimeError, match="fewer blobs"):
        make_demo(shape=(64, 64), n_blobs=200)
    with pytest.raises(ValueError, match="at least 64"):
        make_demo(shape=(32, 600))


def test_write_demo(tmp_path):
    paths = write_demo(tmp_path / "out", seed=2, shape=(128, 160), n_blobs=8)
    assert set(paths) == {"frame", "annotations"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["demo_annotations.json", "demo_frame.ome.tif"]
    frame, truth = make_demo(seed=2, shape=(128, 160), n_blobs=8)
    with tifffile.TiffFile(paths["frame"]) as tif:
        data = tif.asarray()
        ome = tif.ome_metadata
    assert data.shape == (2, 128, 160)
    assert np.array_equal(data.astype(np.float32), frame.data)
    assert "Brightfield" in ome and "YFP" in ome
    records = json.loads(paths["annotations"].read_text())
    assert len(records) == 8
    first = records[0]
    assert first["shape"] == "polygon" and first["tags"] == [DEMO_TAG] and first["channel"] == 1
    assert first["location"] == {"XY": 0, "Z": 3, "Time": 0}
    xy = np.array([[p["x"], p["y"]] for p in first["coordinates"]])
    np.testing.assert_allclose(xy[:, ::-1], truth[0].polygon + 0.5)  # x = col, y = row, pixel-corner origin

def test_busy_scene_has_more_of_everything_and_diffuse_glow():
    plain = make_demo_scene(seed=5, shape=(512, 512))
    busy = make_demo_scene(seed=5, shape=(512, 512), busy=True)
    kinds = np.array(busy.distractor_kinds)
    assert len(busy.blobs) == round(540 * 512 * 512 / (1022 * 1024)) > 0
    assert (kinds == "diffuse").sum() == 2 and (kinds == "aggregate").sum() == 3 and (kinds == "fibre").sum() == 4
    assert len(busy.distractors) > 3 * len(plain.distractors)
    # A diffuse patch glows beyond its core: the YFP ring just outside it is well above
    # the frame's median, unlike the ring around a blob.
    yfp = busy.frame.data[1]
    core = busy.distractors[int(np.flatnonzero(kinds == "diffuse")[0])]
    inside = np.zeros(yfp.shape, bool)
    core.paste(inside)
    ring = ndi.binary_dilation(inside, iterations=4) & ~inside
    assert np.median(yfp[ring]) > np.median(yfp) + 20
    # Cell outlines in Brightfield are stronger than in the plain scene.
    assert np.std(ndi.gaussian_laplace(busy.frame.data[0], 1.5)) > 1.5 * np.std(ndi.gaussian_laplace(plain.frame.data[0], 1.5))
