"""The weight-free method stage by stage, on small synthetic frames."""

import os
import sys
import threading

import numpy as np
import pytest
from scipy import ndimage as ndi

from fewseg.config import SegmentConfig
from fewseg.demo import make_demo
from fewseg.classic.describe import SHAPE_DESCRIPTORS, describe, descriptor_names
from fewseg.evaluate import run_evaluation, score
from fewseg.classic.examples import estimate_background, learn_profile, object_signal, percentile_filter, robust_noise
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.classic import reuse
from fewseg.objects import Frame, ObjectMask, masks_from_labels
from dataclasses import replace

from fewseg.classic.propose import (default_settings, propose, propose_levels, segment_signal, smooth_signal, split_at_necks,
                            FIT_EXAMPLES, fit_subset, hessian_eigenvalue, split_large, split_regions, valleys)
from fewseg.classic.select import (Selection, choose_outlines, fit_prototype_selector, mixture_fit, mixture_posterior,
                           select_by_mixture)


def disc_frame(*, dark=False, noise=2.0, seed=0, shape=(160, 200)):
    """Discs of radius 6 on a tilted background; returns frame and true masks."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices(shape)
    img = 100 + 0.1 * cols
    labels = np.zeros(shape, dtype=np.int32)
    k = 0
    for r in range(15, shape[0] - 10, 28):
        for c in range(15, shape[1] - 10, 30):
            k += 1
            disc = (rows - r) ** 2 + (cols - c) ** 2 <= 36
            labels[disc] = k
            img = img + (-60 if dark else 60) * disc
    img = img + rng.normal(0, noise, shape)
    return Frame.from_array(img.astype(np.float32)), masks_from_labels(labels)


def test_noise_estimate_ignores_gradient():
    rng = np.random.default_rng(0)
    img = np.add.outer(np.arange(100.0), np.arange(100.0)) + rng.normal(0, 3, (100, 100))
    assert robust_noise(img) == pytest.approx(3, rel=0.15)


def test_background_follows_tilt_not_objects():
    frame, masks = disc_frame()
    bg = estimate_background(frame.data[0], radius=6)
    outside = np.ones(frame.shape, bool)
    for m in masks:
        outside[m.slices] &= ~m.mask
    assert np.abs(bg - frame.data[0])[outside].mean() < 5


@pytest.mark.parametrize("shape", [(205, 205), (40, 61), (17, 30), (9, 50), (1, 5)])
@pytest.mark.parametrize("kind", ["float32", "float64 of float32 values", "float64"])
@pytest.mark.parametrize("size, percentile", [(17, 30), (3, 50), (7, 0), (5, 99.9), (4, 30)])
def test_percentile_filter_is_scipys(shape, kind, size, percentile):
    rng = np.random.default_rng(sum(shape) + size)
    image = rng.normal(0, 5, shape)
    image[::3] = np.round(image[::3])  # ties
    image = image.astype(np.float32) if kind == "float32" else image
    image = image.astype(np.float32).astype(np.float64) if kind == "float64 of float32 values" else image
    got = percentile_filter(image, percentile, size=size)
    want = ndi.percentile_filter(image, percentile, size=size, mode="reflect")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dark", [False, True])
def test_profile_learns_polarity_and_signal_scale(dark):
    frame, masks = disc_frame(dark=dark)
    profile = learn_profile(frame, masks[:5])
    assert np.sign(profile.weights[0]) == (-1 if dark else 1)
    signal = object_signal(frame, profile)
    inside = np.mean([signal[m.slices][m.mask].mean() for m in masks])
    assert inside == pytest.approx(1.0, abs=0.1)
    assert abs(np.median(signal)) < 0.1


def test_profile_weights_the_channel_that_shows_objects():
    frame, masks = disc_frame()
    rng = np.random.default_rng(1)
    noise_channel = rng.normal(500, 5, frame.shape).astype(np.float32)
    two = Frame(np.stack([noise_channel, frame.data[0]]))
    profile = learn_profile(two, masks[:5])
    assert profile.weights[0] == 0 and profile.weights[1] == pytest.approx(1.0)


@pytest.mark.parametrize("dark", [False, True])
def test_proposals_recover_discs(dark):
    frame, masks = disc_frame(dark=dark)
    profile = learn_profile(frame, masks[:5])
    found = propose(object_signal(frame, profile), default_settings(profile.radius), min_area=10)
    s = score(found, masks, frame.shape)
    assert s.recall == 1.0 and s.mean_iou > 0.8


def test_proposals_are_disjoint_and_respect_area_bounds():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    found = propose(object_signal(frame, profile), default_settings(profile.radius), min_area=100, max_area=130)
    assert all(100 <= m.area <= 130 for m in found)
    canvas = np.zeros(frame.shape, int)
    for m in found:
        canvas[m.slices] += m.mask
    assert canvas.max() <= 1


def test_propose_levels_outlines_every_object_at_both_levels():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    signal = object_signal(frame, profile)
    settings = default_settings(profile.radius)
    fitted, lower = propose_levels(signal, settings, min_area=10)
    assert [m.bbox for m in fitted] == [m.bbox for m in propose(signal, settings, min_area=10)]
    for level in (fitted, lower):
        assert score(level, masks, frame.shape).recall == 1.0
    # The second level is cut lower (fraction - 0.1), so each disc's outline there is larger.
    pairs = [(a, b) for a in fitted for b in lower if a.iou(b) > 0.5]
    assert len(pairs) == len(masks) and all(b.area > a.area for a, b in pairs)
    assert len(propose_levels(signal, replace(settings, alternative=0.0), min_area=10)) == 1


SIDE_BY_SIDE = """
import hashlib, os, sys
from dataclasses import replace
import numpy as np
from fewseg.classic import parallel, reuse
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.classic.propose import propose_levels
from fewseg.demo import make_demo

parallel.MIN_PIXELS = 0
frame, truth = make_demo(seed=1, shape=(300, 300), n_blobs=40)
seeds = sys.argv[1]
for value in ("0", "1"):
    os.environ["FEWSEG_PARALLEL"] = value
    reuse.clear()
    model = WeightFreeSegmenter().fit(frame, truth[:8])
    model.settings = replace(model.settings, seeds=seeds)
    signal = model._signal(frame, reuse.array_key(frame.data))[0]
    levels = propose_levels(signal, model.settings, min_area=10)
    found = model.predict(frame)
    digest = hashlib.sha256()
    for level in levels:
        for m in level:
            digest.update(np.array([m.row, m.col, *m.mask.shape]).tobytes() + m.mask.tobytes())
    for array in (found.selection.scores, found.scores, *found.polygons):
        digest.update(np.ascontiguousarray(array).tobytes())
    print(value, parallel.parallel(), [len(level) for level in levels], len(found.polygons), digest.hexdigest())
"""


@pytest.mark.parametrize("seeds", ["distance", "intensity"])
def test_the_two_levels_side_by_side_give_the_same_candidates_and_descriptors(seeds):
    """The second level in a forked child (fewseg.classic.parallel) changes the time,
    never a candidate or a number. In a fresh interpreter: this one may run threads left
    by other tests, and then it does not fork."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("forks only on Linux with two cores or more")
    done = subprocess.run([sys.executable, "-c", SIDE_BY_SIDE, seeds], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    serial, apart = [line.split(" ", 2) for line in done.stdout.strip().splitlines()]
    assert serial[1] == "False" and apart[1] == "True"  # one level after the other, then side by side
    assert serial[2] == apart[2] and int(serial[2].split()[-2]) > 20  # the same candidates, scores and outlines


FAILS_APART = """
import os
from fewseg.classic import parallel

def square_or_fail(x):
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x

here = os.getpid()
assert parallel.parallel()
assert parallel.map_levels(square_or_fail, [2, 3, 4], pixels=10**6) == [4, 9, 16]
try:
    parallel.map_levels(square_or_fail, [2, -3], pixels=10**6)
    raise SystemExit("no error")
except ValueError as exc:
    assert str(exc) == "negative -3", exc
# A child that dies without answering: its level is computed here.
assert parallel.map_levels(lambda x: os._exit(3) if os.getpid() != here else x + 1, [1, 2], pixels=10**6) == [2, 3]
print("ok")
"""


def test_a_level_that_fails_apart_fails_here():
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("forks only on Linux with two cores or more")
    done = subprocess.run([sys.executable, "-c", FAILS_APART], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "FEWSEG_PARALLEL"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_container_limited_to_one_cpu_does_not_fork(monkeypatch, tmp_path):
    """docker run --cpus=1 leaves every CPU in the affinity mask; the cgroup's quota says one."""
    from fewseg.classic import parallel

    if not sys.platform.startswith("linux"):
        pytest.skip("cgroups are Linux's")
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    v2 = tmp_path / "cpu.max"
    monkeypatch.setattr(parallel, "CGROUP_V2", str(v2))
    monkeypatch.setattr(parallel, "CGROUP_V1", (str(tmp_path / "quota"), str(tmp_path / "period")))
    assert parallel.cores() == 4  # no cgroup files: the affinity mask
    v2.write_text("max 100000\n")
    assert parallel.cores() == 4
    v2.write_text("100000 100000\n")  # --cpus=1
    assert parallel.cores() == 1 and not parallel.parallel()
    v2.write_text("250000 100000\n")
    assert parallel.cores() == 2.5
    v2.unlink()
    (tmp_path / "quota").write_text("150000\n")  # cgroup v1, --cpus=1.5
    (tmp_path / "period").write_text("100000\n")
    assert parallel.cores() == 1.5 and not parallel.parallel()
    (tmp_path / "quota").write_text("-1\n")  # no limit
    assert parallel.cores() == 4


def test_parallel_comes_from_one_rule(monkeypatch):
    from fewseg.classic import parallel
    from fewseg.errors import InputError

    monkeypatch.setenv("FEWSEG_PARALLEL", "0")
    assert not parallel.parallel()
    monkeypatch.setenv("FEWSEG_PARALLEL", "2")
    with pytest.raises(InputError, match="FEWSEG_PARALLEL.*expected 0"):
        parallel.parallel()
    monkeypatch.delenv("FEWSEG_PARALLEL")
    release = threading.Event()
    other = threading.Thread(target=release.wait)  # napari's threads, a dask worker's pool
    other.start()
    try:
        assert not parallel.parallel()
    finally:
        release.set()
        other.join()


def test_shared_first_split_gives_the_same_objects():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    settings = replace(default_settings(profile.radius), seeds="intensity")
    smooth = smooth_signal(object_signal(frame, profile), settings)
    np.testing.assert_array_equal(segment_signal(smooth, settings, first=split_regions(smooth, settings)),
                                  segment_signal(smooth, settings))


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_tidying_near_a_region_equals_tidying_all_there(sigma):
    """example_fit tidies only the objects that can reach the example: for the objects
    overlapping it, the outlines are those tidying every object gives."""
    from fewseg.objects import labels_from_masks
    from fewseg.classic.propose import _tidy_near, tidy_mask

    rng = np.random.default_rng(0)
    rows, cols = np.indices((120, 120))
    labels = np.zeros((120, 120), np.int32)
    for k in range(1, 40):  # ragged blobs, some touching
        r, c, rad = rng.integers(5, 115), rng.integers(5, 115), rng.integers(3, 9)
        blob = (rows - r) ** 2 + (cols - c) ** 2 <= rad**2
        labels[blob & (rng.random((120, 120)) > 0.15) & (labels == 0)] = k
    region = np.zeros_like(labels, dtype=bool)
    region[35:85, 35:85] = True
    everything = labels_from_masks([tidy_mask(m, outline_sigma=sigma) for m in masks_from_labels(labels)], labels.shape)
    near = _tidy_near(labels, region, sigma)
    hit = np.unique(everything[region])
    assert hit.size > 2
    for value in hit[hit > 0]:  # relabelled in the same order, so compare pixel sets of the hit objects
        old = everything == value
        new_value = np.bincount(near[old]).argmax()
        np.testing.assert_array_equal(near == new_value, old)


def test_necks_are_cut_only_in_regions_with_room_for_two():
    rows, cols = np.indices((50, 80))
    pair = (((rows - 25) ** 2 + (cols - 25) ** 2 <= 144) | ((rows - 25) ** 2 + (cols - 52) ** 2 <= 144)).astype(np.int32)
    split = split_at_necks(pair, depth=1.0, min_area=pair.sum())
    assert split[25, 25] != split[25, 52] and split[25, 25] > 0 and split[25, 52] > 0
    np.testing.assert_array_equal(split_at_necks(pair, depth=1.0, min_area=pair.sum() + 1), pair)


def _selection(keep, typicality):
    keep = np.asarray(keep, dtype=bool)
    return Selection(keep.astype(float), keep, 0.5, "test", np.asarray(typicality, dtype=float))


def test_choose_outlines_prefers_the_fitted_level_unless_clearly_less_typical():
    core = ObjectMask(10, 10, np.ones((6, 6), bool))        # fitted level
    whole = ObjectMask(8, 8, np.ones((10, 10), bool))       # the same object, cut lower
    apart = ObjectMask(30, 30, np.ones((5, 5), bool))       # another object, fitted level
    masks, level = [core, whole, apart], np.array([0, 1, 0])
    # Within the margin (1.0) the fitted level wins; beyond it the other outline does.
    assert choose_outlines(masks, level, _selection([1, 1, 1], [0.0, 0.9, 0.0]), (50, 50)).tolist() == [0, 2]
    assert sorted(choose_outlines(masks, level, _selection([1, 1, 1], [0.0, 1.5, 0.0]), (50, 50)).tolist()) == [1, 2]
    # A candidate the selector rejected is never chosen, however typical.
    assert choose_outlines(masks, level, _selection([1, 0, 0], [0.0, 9.0, 9.0]), (50, 50)).tolist() == [0]
    # The chosen outlines never overlap by more than max_overlap of their area.
    chosen = choose_outlines(masks, level, _selection([1, 1, 1], [0.0, 1.5, 0.0]), (50, 50), max_overlap=0.0)
    canvas = np.zeros((50, 50), int)
    for i in chosen:
        masks[i].paste(canvas, canvas[masks[i].slices][masks[i].mask] + 1)
    assert canvas.max() == 1
    with pytest.raises(ValueError, match="typicality"):
        choose_outlines(masks, level, Selection(np.ones(3), np.ones(3, bool), 0.5, "test"), (50, 50))


def _touching_pair(line_depth):
    """Two ellipses side by side, overlapping a little, with a dark line of relative
    depth ``line_depth`` where they meet; their union is convex enough to pass as one
    blob by shape alone."""
    rows, cols = np.indices((60, 90)).astype(float)
    left = ((rows - 30) / 12) ** 2 + ((cols - 32) / 14) ** 2 <= 1
    right = ((rows - 30) / 12) ** 2 + ((cols - 57) / 13) ** 2 <= 1
    signal = ndi.gaussian_filter(1.0 * (left | right), 1.0)
    signal *= 1 - line_depth * np.exp(-((cols - 45.5) ** 2) / 2.0)
    return signal.astype(np.float32), (left | right).astype(np.int32)


def test_valleys_mark_dark_lines_not_interiors():
    signal, union = _touching_pair(0.4)
    v = valleys(signal, 2.0)
    assert v[30, 45:47].max() > 0.1
    assert np.abs(v[30, 25:35]).max() < 0.04 and np.abs(v[30, 52:62]).max() < 0.04


def test_fit_subset_bounds_the_search_and_spans_the_sizes():
    masks = [ObjectMask(0, 0, np.ones((1, a), bool)) for a in np.random.default_rng(0).permutation(np.arange(1, 101))]
    assert fit_subset(masks[:FIT_EXAMPLES]) == masks[:FIT_EXAMPLES]
    chosen = fit_subset(masks)
    areas = [m.area for m in chosen]
    assert len(chosen) == FIT_EXAMPLES and areas == sorted(areas) and areas[0] == 1 and areas[-1] == 100
    assert np.diff(areas).max() <= 100 / (FIT_EXAMPLES - 1) + 1


def test_predict_on_the_fitted_frame_reuses_its_signal_unless_it_changed():
    frame, truth = make_demo(seed=2, shape=(192, 192), n_blobs=25)
    model = WeightFreeSegmenter().fit(frame, truth[:8])
    a = model.predict(frame)
    reuse.clear()  # nothing kept: the signal computed anew
    b = model.predict(frame)
    assert len(a.masks) == len(b.masks) and all(np.array_equal(x.mask, y.mask) for x, y in zip(a.masks, b.masks))
    frame.data[1] = frame.data[1, ::-1]  # same array, new content: the kept signal must not be used
    c = model.predict(frame)
    reuse.clear()
    d = model.predict(frame)
    assert [m.bbox for m in c.masks] == [m.bbox for m in d.masks] != [m.bbox for m in a.masks]


def test_rethresholding_the_same_frame_reuses_its_candidates_and_equals_a_fresh_run():
    frame, truth = make_demo(seed=3, shape=(256, 256), n_blobs=40)
    model = WeightFreeSegmenter().fit(frame, truth[:10])
    first = model.predict(frame, exclude=truth[:10], similarity=0.999)
    cached = first.candidates
    again = model.rethreshold(first, similarity=1e-6)
    assert again.candidates is cached and first.candidates is cached  # proposed and described once
    fresh = WeightFreeSegmenter().fit(frame, truth[:10]).predict(frame, exclude=truth[:10], similarity=1e-6)
    assert len(again.polygons) == len(fresh.polygons) > len(first.polygons)  # looser: more kept
    np.testing.assert_array_equal(again.scores, fresh.scores)
    for a, b in zip(again.polygons, fresh.polygons):
        np.testing.assert_array_equal(a, b)
    # Another frame is proposed anew.
    moved_data = frame.data.copy()
    moved_data[:, :, :128] = np.flip(moved_data[:, :, :128], axis=2)
    other = Frame(moved_data, frame.channel_names)
    moved = model.predict(other, similarity=1e-6)
    assert moved.candidates is not cached
    expected = WeightFreeSegmenter().fit(frame, truth[:10]).predict(other, similarity=1e-6)
    np.testing.assert_array_equal(moved.scores, expected.scores)
    # A pickled result (sent back by a dask worker) carries no candidates.
    import pickle

    assert pickle.loads(pickle.dumps(first)).candidates is None


def test_rethreshold_is_a_fresh_predict_at_that_threshold():
    """Every threshold, both boundaries, with and without exclusions: rethreshold equals
    predict(similarity=...), and the default (the config's) gives the first result back."""
    import pickle

    frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    for boundary in ("level", "learned"):
        model = WeightFreeSegmenter(SegmentConfig(boundary=boundary)).fit(frame, truth[:10])
        for exclude in (truth[:10], None):
            first = model.predict(frame, exclude=exclude)
            for similarity in (1e-6, 0.3, 0.99, None):
                again = model.rethreshold(first, similarity=similarity)
                fresh = model.predict(frame, exclude=exclude, similarity=similarity)
                assert (again.n_candidates, again.n_rediscovered) == (fresh.n_candidates, fresh.n_rediscovered)
                assert again.selection.to_dict() == fresh.selection.to_dict()
                np.testing.assert_array_equal(again.scores, fresh.scores)
                assert len(again.polygons) == len(fresh.polygons)
                for a, b in zip(again.masks, fresh.masks):
                    assert a.bbox == b.bbox and np.array_equal(a.mask, b.mask)
            back = model.rethreshold(model.rethreshold(first, similarity=0.99))
            np.testing.assert_array_equal(back.scores, first.scores)
    with pytest.raises(ValueError, match="keeps no candidates"):
        model.rethreshold(pickle.loads(pickle.dumps(first)))
    with pytest.raises(ValueError, match="finite"):
        model.rethreshold(first, similarity=float("inf"))


def test_predict_takes_the_threshold_as_an_argument():
    from fewseg.config import similarity_of

    frame, truth = make_demo(seed=1, shape=(200, 200), n_blobs=25)
    config = SegmentConfig(similarity=0.99)
    model = WeightFreeSegmenter(config).fit(frame, truth[:8])
    assert model.predict(frame).selection.threshold == 0.99  # the config's
    own = model.predict(frame, similarity=None).selection  # the method's own
    assert (own.threshold, own.threshold_source) == (0.5, "mixture posterior (Bayes decision)")
    assert model.predict(frame, similarity=0.2).selection.threshold == 0.2
    assert (similarity_of(config), similarity_of(config, None), similarity_of(config, "config")) == (0.99, None, 0.99)
    with pytest.raises(ValueError, match="'config'"):
        similarity_of(config, "auto")


@pytest.mark.parametrize("sigma", [0.8, 2.0, 3.5])
def test_hessian_eigenvalue_is_scikit_images(sigma):
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals

    image = np.random.default_rng(1).random((50, 70)).astype(np.float32)
    expected = hessian_matrix_eigvals(hessian_matrix(image, sigma=sigma, order="rc", use_gaussian_derivatives=True))[0]
    np.testing.assert_allclose(hessian_eigenvalue(image, sigma), expected, rtol=0, atol=1e-6)


def test_split_large_cuts_along_dark_lines_only():
    signal, union = _touching_pair(0.4)
    settings = replace(default_settings(13.0), split_above=0.8 * union.sum(), min_part=100, valley=0.04)
    out = split_large(union, signal, settings)
    left, right = out[30, 30], out[30, 60]
    assert left != right and set(np.unique(out[union > 0])) == {left, right}
    assert (out[:, :40][union[:, :40] > 0] == left).all() and (out[:, 52:][union[:, 52:] > 0] == right).all()
    # Below split_above, or with the valley test off, nothing changes...
    # ... nor when the parts would not be shaped like examples (ellipse fill too low).
    for s in (replace(settings, split_above=union.sum() + 1.0), replace(settings, valley=0.0),
              replace(settings, part_fill=1.0)):
        np.testing.assert_array_equal(split_large(union, signal, s), union)
    # One large object without a dark line across it stays whole.
    rows, cols = np.indices((60, 90)).astype(float)
    blob = (((rows - 30) / 13) ** 2 + ((cols - 45) / 26) ** 2 <= 1).astype(np.int32)
    smooth = ndi.gaussian_filter(blob.astype(float), 1.0).astype(np.float32)
    smooth += np.random.default_rng(0).normal(0, 0.02, smooth.shape).astype(np.float32)
    np.testing.assert_array_equal(split_large(blob, smooth, replace(settings, split_above=0.5 * blob.sum())), blob)


def test_descriptors_shape_and_values():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    x = describe(frame, object_signal(frame, profile), masks, profile)
    assert x.shape == (len(masks), len(descriptor_names(1)))
    area = np.exp(x[:, 0])
    assert np.allclose(area, [m.area for m in masks])
    assert np.all(x[:, 1] < 1.2)  # discs are round
    assert np.all(np.abs(x[:, 2] - 1) < 0.1)  # and fill their moment ellipse


@pytest.mark.parametrize("width", [1, 2, 5])
def test_ring_masks_match_grown_labels(width):
    """The ring is what skimage's expand_labels adds between distance 1 and width + 1."""
    from skimage.segmentation import expand_labels

    from fewseg.classic.examples import ring_masks
    from fewseg.objects import labels_from_masks

    frame, truth = make_demo(seed=2, shape=(160, 200), n_blobs=40)
    labels = labels_from_masks([a.to_mask(frame.shape) for a in truth], frame.shape)
    inner = expand_labels(labels, distance=1)
    expected = np.where((labels == 0) & (inner == 0), expand_labels(labels, distance=width + 1), 0)
    np.testing.assert_array_equal(ring_masks(labels, width), expected)
    assert not ring_masks(np.zeros((5, 5), np.int32), width).any()


def test_ring_masks_in_windows_equal_the_whole_frames():
    """A few objects: the rings from windows around them are those of one transform of
    the whole frame, also where a pixel is equally near two objects (points on a grid,
    mirrored pairs)."""
    from fewseg.classic.examples import _ring_in, _ring_windows, ring_masks

    rng = np.random.default_rng(0)
    windowed = 0
    for _ in range(400):
        labels = np.zeros(rng.integers(20, 90, 2), np.int32)
        h, w = labels.shape
        if rng.random() < 0.3:  # a sparse grid: many equidistant pixels
            step = rng.integers(5, 12)
            spots = [(r, c) for r in range(0, h, step) for c in range(0, w, step) if rng.random() < 0.3]
            for k, (r, c) in enumerate(spots, start=1):
                labels[r, c] = k
        else:
            for k in range(1, rng.integers(2, 8)):
                r, c = rng.integers(0, h), rng.integers(0, w)
                kind = rng.integers(3)
                if kind == 0:
                    labels[r:r + rng.integers(1, 6), c:c + rng.integers(1, 6)] = k
                elif kind == 1:  # a pixel and its mirror image across a column
                    labels[r, c] = k
                    labels[r, min(w - 1, c + 2 * rng.integers(1, 4))] = k + 10
                else:
                    labels[r, c] = k
        width = int(rng.integers(1, 5))
        windowed += _ring_windows(labels, reach=width + 1) is not None
        np.testing.assert_array_equal(ring_masks(labels, width), _ring_in(labels, width))
    assert windowed > 200  # the windows were used, not the whole-frame path


def test_label_means_are_scipys():
    """Means from each label's box: scipy's numbers to the bit, NaN for a label with no pixel."""
    from fewseg.classic.examples import _label_means

    rng = np.random.default_rng(1)
    for _ in range(200):
        h, w = rng.integers(5, 120, 2)
        labels = np.zeros((h, w), np.int32)
        n = int(rng.integers(1, 15))
        for k in range(1, n + 1):  # some labels overlap later ones or are left out
            r, c = rng.integers(0, h), rng.integers(0, w)
            labels[r:r + rng.integers(1, 30), c:c + rng.integers(1, 30)] = k if rng.random() > 0.1 else 0
        # a wide dynamic range, where the order of summation shows in the last bits
        values = (rng.normal(0, 1, (h, w)) * 10 ** rng.uniform(-3, 6, (h, w))).astype(np.float32)
        idx = np.arange(1, n + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            want = ndi.mean(values, labels, idx)
        got = _label_means(values, labels, idx)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_descriptors_stay_finite_for_an_object_hidden_under_another():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    vectors = describe(frame, object_signal(frame, profile), [masks[5], masks[5]], profile)
    assert np.isfinite(vectors).all()


def test_objects_cut_by_the_frame_edge_have_unknown_shape():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    cut = ObjectMask(0, 40, np.ones((4, 12), bool))  # a disc's lower part at the top edge
    x = describe(frame, object_signal(frame, profile), masks[:3] + [cut], profile)
    names = descriptor_names(1)
    shape_cols = [names.index(n) for n in SHAPE_DESCRIPTORS]
    assert np.isnan(x[3, shape_cols]).all() and np.isfinite(np.delete(x[3], shape_cols)).all()
    assert np.isfinite(x[:3]).all()


def test_mixture_marginalises_unknown_descriptors():
    """A candidate is judged on what is known about it: an unknown (NaN) descriptor
    neither counts against it nor for it, and the posteriors stay finite."""
    rng = np.random.default_rng(0)
    examples = rng.normal(0, 1, (10, 3))
    like = rng.normal(0, 1, (80, 3))
    other = rng.normal(6, 1, (40, 3))
    candidates = np.vstack([like, other, [[0.0, 0.0, 40.0], [0.0, 0.0, np.nan], [6.0, 6.0, np.nan]]])
    post = mixture_posterior(examples, candidates)
    assert np.isfinite(post).all()
    assert post[-3] < 0.5  # far off in the third descriptor
    assert post[-2] > 0.9  # the same candidate with that descriptor unknown
    assert post[-1] < 0.1  # unknown there, but like the others in what is known


def test_mixture_keeps_the_examples_cluster():
    rng = np.random.default_rng(0)
    like = rng.normal(0, 1, (80, 4))
    other = rng.normal(6, 1, (40, 4))
    examples = rng.normal(0, 1, (10, 4))
    post = mixture_posterior(examples, np.vstack([like, other]))
    assert (post[:80] > 0.5).mean() > 0.95 and (post[80:] < 0.5).mean() > 0.95
    sel = select_by_mixture(examples, np.vstack([like, other]), threshold=0.99)
    assert sel.threshold_source == "user" and sel.keep.sum() <= (post >= 0.99).sum()


def test_typicality_ranks_candidates_within_the_examples_cluster():
    rng = np.random.default_rng(0)
    examples = rng.normal(0, 1, (10, 3))
    central, off = [0.0, 0, 0], [1.5, 1.5, 1.5]
    unknown, off_known = [np.nan, 0, 0], [2.5, 0, 0]
    candidates = np.vstack([rng.normal(0, 1, (80, 3)), rng.normal(6, 1, (40, 3)), [central, off, unknown, off_known]])
    post, typicality = mixture_fit(examples, candidates)
    np.testing.assert_array_equal(post, mixture_posterior(examples, candidates))
    t_central, t_off, t_unknown, t_off_known = typicality[-4:]
    assert post[-4] > 0.9 and post[-3] > 0.9  # both in the examples' cluster ...
    assert t_central > t_off + 1  # ... but the central one is more typical
    assert typicality[80:120].max() < typicality[:80].min()
    assert t_off_known < t_unknown < t_central
    # An unknown descriptor counts as a typical member's value would: one standard
    # deviation off (the expected squared deviation), not as if the column did not exist.
    from fewseg.classic.select import _typicality

    mean, var = np.array([0.0, 0.0]), np.array([4.0, 0.25])
    assert _typicality(np.array([[np.nan, 0.0]]), mean, var)[0] == pytest.approx(
        _typicality(np.array([[2.0, 0.0]]), mean, var)[0])


def test_examples_anchor_their_component(monkeypatch):
    """Weighting the examples to a quarter of their component keeps it on them: on a
    demo frame whose candidates are mostly other things, the weighted mixture is never
    worse than the plain one (examples weighted one each), and on one split (2) the
    plain one takes in other things (precision 0.84) where the weighted one keeps to the
    blobs (F1 0.89 -> 0.94). Checked with one outline level, so the mixture is judged on
    its own (a second level adds blob-like candidates, which anchor the component too).
    (Before the clusters of flat contacts the plain one drifted on split 1 instead, F1
    0.86 -> 0.93; the cluster size now keeps it there.)"""
    import fewseg.classic.model as model
    import fewseg.classic.select as select

    fit_proposer = model.fit_proposer

    def one_level(*args):
        settings, score = fit_proposer(*args)
        return replace(settings, alternative=0.0), score

    monkeypatch.setattr(model, "fit_proposer", one_level)
    frame, truth = make_demo(seed=0, shape=(512, 512), n_blobs=150)
    plain = select.mixture_fit
    f1 = {}
    for share in (0.0, 0.25):
        monkeypatch.setattr(select, "mixture_fit",
                            lambda e, x, share=share, **kw: plain(e, x, example_share=share))
        for split in (0, 2):
            f1[share, split] = run_evaluation(frame, truth, config=SegmentConfig(), num_train=10, seed=split).metrics["f1"]
    assert all(f1[0.25, split] >= f1[0.0, split] - 0.005 for split in (0, 2)), f1
    assert f1[0.25, 2] >= f1[0.0, 2] + 0.04, f1
    with pytest.raises(ValueError, match="example_share"):
        plain(np.zeros((2, 2)), np.ones((3, 2)), example_share=1.0)


def test_prototype_selector_is_the_seed_rule():
    ex = np.array([[1.0, 0.0], [1.0, 0.2]])
    sel = fit_prototype_selector(ex)
    assert np.linalg.norm(sel.prototype) == pytest.approx(1)
    kept = sel.select(np.array([[2.0, 0.1], [0.0, 1.0], [-1, 0]])).keep
    assert kept.tolist() == [True, False, False]


def test_segmenter_end_to_end_on_small_demo():
    frame, truth = make_demo(seed=3, shape=(256, 256), n_blobs=40)
    model = WeightFreeSegmenter(SegmentConfig()).fit(frame, truth[:10])
    result = model.predict(frame, exclude=truth[:10])
    s = score(result.masks, [a.to_mask(frame.shape) for a in truth[10:]], frame.shape)
    assert s.recall > 0.9 and s.f1 > 0.7 and s.mean_iou > 0.8
    assert result.n_rediscovered >= 8
    assert len(result.polygons) == len(result.masks) == len(result.scores)
    assert set(result.timings) == {"propose", "embed", "select", "polygons"}


def test_predict_before_fit_and_channel_mismatch():
    frame, truth = make_demo(seed=3, shape=(128, 128), n_blobs=15)
    with pytest.raises(RuntimeError, match="fit"):
        WeightFreeSegmenter().predict(frame)
    model = WeightFreeSegmenter().fit(frame, truth[:5])
    one = Frame(frame.data[:1], source="one.tif")
    with pytest.raises(Exception, match="one.tif: has 1 channel"):
        model.predict(one)


def test_example_outside_frame_is_rejected():
    from fewseg.errors import InputError
    from fewseg.objects import Annotation

    frame, truth = make_demo(seed=3, shape=(128, 128), n_blobs=15)
    far = Annotation(polygon=np.array([[500.0, 500], [500, 510], [510, 510]]), origin="ex.json: annotations[0]")
    with pytest.raises(InputError, match="ex.json: annotations\\[0\\]: example covers no pixel"):
        WeightFreeSegmenter().fit(frame, [far])


def test_outputs_are_disjoint_valid_polygons():
    from shapely.geometry import Polygon

    frame, truth = make_demo(seed=4, shape=(256, 256), n_blobs=60)
    result = WeightFreeSegmenter().fit(frame, truth[:10]).predict(frame)
    polys = [Polygon(p[:, ::-1]) for p in result.polygons]
    assert all(p.is_valid and len(p.exterior.coords) >= 4 for p in polys)
    for i, a in enumerate(polys):
        for b in polys[i + 1 :]:
            assert a.intersection(b).area < 1e-6


@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.0])
def test_tidy_labels_equals_tidying_each_mask(sigma):
    from fewseg.classic.propose import tidy_labels, tidy_mask

    rng = np.random.default_rng(4)
    labels = ndi.label(ndi.gaussian_filter(rng.random((120, 140)), 2.5) > 0.52)[0]
    labels[labels % 3 == 0] = 0
    labels[40:60, 40:60][labels[40:60, 40:60] == 0] = 0
    expected = [tidy_mask(m, outline_sigma=sigma) for m in masks_from_labels(labels)]
    found = tidy_labels(labels, outline_sigma=sigma)
    assert len(found) == len(expected) > 10
    for a, b in zip(found, expected):
        assert (a.row, a.col) == (b.row, b.col) and np.array_equal(a.mask, b.mask)


def test_predict_takes_the_threshold_as_an_argument_without_refitting():
    frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    model = WeightFreeSegmenter().fit(frame, truth[:10])
    default = model.predict(frame, exclude=truth[:10])
    profile, vectors = model.profile, model.example_vectors
    kept_strict = model.predict(frame, exclude=truth[:10], similarity=0.99)  # posteriors crowd near 0 and 1
    kept_loose = model.predict(frame, exclude=truth[:10], similarity=1e-6)
    assert model.profile is profile and model.example_vectors is vectors  # nothing refitted
    # The same as a model fitted with that threshold from the start.
    fresh = WeightFreeSegmenter(SegmentConfig(similarity=0.99)).fit(frame, truth[:10]).predict(frame, exclude=truth[:10])
    np.testing.assert_array_equal(kept_strict.scores, fresh.scores)
    assert kept_strict.selection.threshold == 0.99 and kept_strict.selection.threshold_source == "user"
    assert len(kept_strict.polygons) < len(default.polygons) < len(kept_loose.polygons)
    assert (kept_strict.scores >= 0.99).all()
    # The model itself is unchanged, and None goes back to the method's own threshold.
    assert model.config.similarity is None
    np.testing.assert_array_equal(model.predict(frame, exclude=truth[:10], similarity=None).scores, default.scores)
    with pytest.raises(ValueError, match="finite"):
        model.predict(frame, similarity=float("nan"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fill_holes_is_scipys(seed):
    from fewseg.classic.propose import fill_holes

    rng = np.random.default_rng(seed)
    mask = ndi.gaussian_filter(rng.random((90, 110)), 1.5) > 0.5
    mask[0, :] = mask[:, -1] = True  # holes against the border are not holes
    expected = ndi.binary_fill_holes(mask)
    assert expected.sum() > mask.sum()
    np.testing.assert_array_equal(fill_holes(mask), expected)
    np.testing.assert_array_equal(fill_holes(np.ones((4, 5), bool)), np.ones((4, 5), bool))


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_tidy_labels_with_a_cache_is_the_same_and_shares_no_arrays(sigma):
    from fewseg.classic.propose import tidy_labels

    rng = np.random.default_rng(4)
    labels = ndi.label(ndi.gaussian_filter(rng.random((120, 140)), 2.5) > 0.52)[0]
    expected = tidy_labels(labels, outline_sigma=sigma)
    cache: dict = {}
    first = tidy_labels(labels, outline_sigma=sigma, cache=cache)
    # The same objects shifted elsewhere come from the cache, at their own place.
    shifted = np.pad(labels, ((7, 0), (3, 0)))
    second = tidy_labels(shifted, outline_sigma=sigma, cache=cache)
    assert 10 < len(cache) <= len(expected)  # (two objects of the same shape share an entry)
    for a, b, c in zip(expected, first, second):
        assert (a.row, a.col) == (b.row, b.col) == (c.row - 7, c.col - 3)
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.mask, c.mask) and b.mask is not c.mask


def test_levels_sharing_cuts_give_what_each_level_gives_alone():
    frame, masks = disc_frame()
    profile = learn_profile(frame, masks[:5])
    settings = replace(default_settings(profile.radius), seeds="intensity", split_above=100.0, min_part=0.0)
    smooth = smooth_signal(object_signal(frame, profile), settings)
    first = split_regions(smooth, settings)
    cache: dict = {}
    for fraction in (0.45, 0.35, 0.45):
        alone = segment_signal(smooth, replace(settings, fraction=fraction))
        shared = segment_signal(smooth, replace(settings, fraction=fraction), first=first, cache=cache)
        np.testing.assert_array_equal(shared, alone)
    assert any(key[0] == "dark" for key in cache if isinstance(key, tuple))


def test_propose_levels_gives_what_propose_gives_at_each_level():
    """propose_levels shares cuts and tidied objects between its levels (and the first
    split): the candidates are those of each level alone."""
    frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40)
    model = WeightFreeSegmenter().fit(frame, truth[:10])
    signal, settings = object_signal(frame, model.profile), model.settings
    levels = propose_levels(signal, settings, min_area=10)
    lower = float(np.clip(settings.fraction + settings.alternative, 0.05, 0.95))
    for level, fraction in zip(levels, (settings.fraction, lower)):
        alone = propose(signal, replace(settings, fraction=fraction), min_area=10)
        assert len(level) == len(alone) > 20
        for a, b in zip(level, alone):
            assert (a.row, a.col) == (b.row, b.col) and np.array_equal(a.mask, b.mask)


@pytest.mark.parametrize("seed", [1, 2])
def test_sparse_split_and_trim_equal_the_whole_frame(monkeypatch, seed):
    """Piece by piece (little above the floor: the second pass) and over the whole frame,
    split_regions and trim_regions give the same regions."""
    import fewseg.classic.propose as propose_module

    frame, truth = make_demo(seed=seed, shape=(256, 256), n_blobs=60)
    model = WeightFreeSegmenter().fit(frame, truth[:10])
    settings = replace(model.settings, seeds="intensity")
    smooth = smooth_signal(object_signal(frame, model.profile), settings)
    # What the second pass sees: the signal away from the first pass's objects.
    first = segment_signal(smooth, settings, passes=1)
    masked = np.where(~ndi.binary_dilation(first > 0), smooth, 0.0).astype(smooth.dtype)
    found = {}
    for name, sparse in (("dense", 0.0), ("sparse", 1e9)):
        monkeypatch.setattr(propose_module, "SPARSE", sparse)
        regions = split_regions(masked, settings)
        found[name] = (regions, propose_module.trim_regions(masked, regions, settings))
    assert found["dense"][0].max() >= 2
    for a, b in zip(found["dense"], found["sparse"]):
        np.testing.assert_array_equal(a, b)
