"""A correction round reuses what did not change (fewseg.classic.reuse), with the results
of a cold fit + predict: the same objects and scores for added and removed examples
(outlines and clicks) and negatives, on a new segmenter or the same one."""

import numpy as np
import pytest

from fewseg.classic import reuse
from fewseg.classic.examples import example_masks
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.config import SegmentConfig
from fewseg.demo import make_demo
from fewseg.evaluate import as_clicks, clicks_inside, score
from fewseg.methods import make_segmenter
from fewseg.objects import Annotation, Frame, labels_from_masks


@pytest.fixture(scope="module")
def scene():
    frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=45, busy=True)
    masks = example_masks(truth, frame.shape)
    reuse.clear()
    first = WeightFreeSegmenter().fit(frame, truth[:8]).predict(frame, exclude=truth[:8])
    found = score(first.masks, masks[8:], frame.shape, iou=0.5)
    objects = labels_from_masks(masks, frame.shape)
    false = [first.masks[i] for i in np.flatnonzero(~found.matched_pred)]
    negatives = [Annotation(point=p, origin=f"negative {k}") for k, p in enumerate(clicks_inside(false, seed=0))
                 if objects[int(round(p[0])), int(round(p[1]))] == 0]
    missed = [8 + i for i in np.flatnonzero(~found.matched_truth)]
    clicks = [Annotation(point=p, origin=f"click {k}") for k, p in enumerate(as_clicks([masks[i] for i in missed], seed=0))]
    assert len(negatives) >= 2 and len(clicks) >= 2 and len(missed) >= 2
    return frame, truth, negatives, clicks, missed


def fit_predict(frame, examples, negatives=(), *, model=None, config=None):
    model = model or make_segmenter(config or SegmentConfig())
    model.fit(frame, examples, **({"negatives": list(negatives)} if negatives else {}))
    return model.predict(frame, exclude=examples)


def assert_same(a, b):
    assert len(a.masks) == len(b.masks) and a.n_candidates == b.n_candidates
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.selection.scores, b.selection.scores)
    for p, q in zip(a.polygons, b.polygons):
        np.testing.assert_array_equal(p, q)
    for x, y in zip(a.masks, b.masks):
        assert (x.row, x.col) == (y.row, y.col) and np.array_equal(x.mask, y.mask)


def cold(frame, examples, negatives=(), **kwargs):
    reuse.clear()
    return fit_predict(frame, examples, negatives, **kwargs)


def test_rounds_of_corrections_give_the_cold_results(scene):
    frame, truth, negatives, clicks, missed = scene
    outlines = list(truth[:8])
    rounds = [  # each state after the one before: added, then removed, examples and negatives
        (outlines, []),
        (outlines, negatives[:1]),  # + a negative click
        (outlines + clicks[:1], negatives[:1]),  # + an example click
        (outlines + clicks[:2], negatives[:2]),  # + both
        (outlines + clicks[:2] + [truth[missed[0]]], negatives[:2]),  # + an example outline
        (outlines + clicks[:2], negatives[:2]),  # the outline removed
        (outlines + clicks[1:2], negatives[1:2]),  # a click and a negative removed
        (outlines, []),  # back to the start
    ]
    reuse.clear()
    warm = [fit_predict(frame, ex, neg) for ex, neg in rounds]
    for (ex, neg), result in zip(rounds, warm):
        assert_same(result, cold(frame, ex, neg))


def test_a_round_reuses_the_frames_candidates_and_the_same_segmenter_can_be_refitted(scene):
    frame, truth, negatives, clicks, _ = scene
    reuse.clear()
    model = WeightFreeSegmenter()
    first = fit_predict(frame, truth[:8], model=model)
    assert first.timings["embed"] > 0  # described here
    again = fit_predict(frame, truth[:8] + clicks[:1], negatives[:1], model=model)  # the same object, refitted
    assert again.timings["embed"] == 0.0  # the frame's candidates and descriptors were kept
    assert_same(again, cold(frame, truth[:8] + clicks[:1], negatives[:1]))


def test_clicks_only_and_the_learned_boundary_give_the_cold_results(scene):
    frame, truth, negatives, clicks, _ = scene
    config = SegmentConfig(boundary="learned")
    start = [Annotation(point=p) for p in as_clicks(example_masks(truth[:8], frame.shape), seed=1)]
    reuse.clear()
    warm = [fit_predict(frame, ex, neg, config=config) for ex, neg in
            [(start, []), (start, negatives[:1]), (start + clicks[:1], negatives[:1])]]
    assert_same(warm[1], cold(frame, start, negatives[:1], config=config))
    assert_same(warm[2], cold(frame, start + clicks[:1], negatives[:1], config=config))


def test_the_same_bytes_in_a_new_array_are_reused_and_new_bytes_are_not(scene):
    frame, truth, *_ = scene
    reuse.clear()
    fit_predict(frame, truth[:8])
    copy = Frame(frame.data.copy(), frame.channel_names, frame.source)
    assert fit_predict(copy, truth[:8]).timings["embed"] == 0.0
    copy.data[0, 100:140, 100:140] += 50.0  # edited in place: the same array, other bytes
    changed = fit_predict(copy, truth[:8])
    assert changed.timings["embed"] > 0
    assert_same(changed, cold(copy, truth[:8]))


def test_kept_work_is_bounded_and_read_only():
    for k in range(reuse.SIZE + 3):
        reuse.reuse("bounded", k, lambda: np.zeros(3))
    assert len(reuse._kept["bounded"]) == reuse.SIZE and 0 not in reuse._kept["bounded"]
    kept = reuse.reuse("bounded", reuse.SIZE + 2, lambda: None)
    with pytest.raises(ValueError, match="read-only"):
        kept[0] = 1.0
    reuse.clear()
    assert not reuse._kept
