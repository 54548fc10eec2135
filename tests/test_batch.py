"""The batch loop every way in shares: fit once, predict each frame lazily, collect."""

from dataclasses import replace

import numpy as np
import pytest

from fewseg.batch import parse_range, plan_fit, run_record, segment_batch, segment_frames
from fewseg.config import SegmentConfig
from fewseg.demo import make_demo
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.match import drop_rediscovered, rediscovered
from fewseg.objects import Annotation, Frame, Location, ObjectMask


@pytest.fixture(scope="module")
def stack():
    """Three demo frames at Z = 0, 1, 2 (different content), the examples on Z = 1."""
    frames, examples = {}, None
    for z in range(3):
        frame, truth = make_demo(seed=20 + z, shape=(160, 160), n_blobs=25)
        frames[Location(z=z)] = Frame(frame.data, frame.channel_names, f"stack[z={z}]", Location(z=z))
        if z == 1:
            examples = truth[:10]
    return frames, examples


def test_batch_equals_predicting_each_frame(stack):
    frames, examples = stack
    reads = []

    def read(location):
        reads.append(location)
        return frames[location]

    locations = list(frames)
    batch = segment_batch(SegmentConfig(), frames[Location(z=1)], examples, read, locations)
    # The examples' frame is not read again; the others are read once each, in order.
    assert reads == [Location(z=0), Location(z=2)]
    alone = WeightFreeSegmenter().fit(frames[Location(z=1)], examples)
    for location, result in zip(locations, batch.frames):
        expected = alone.predict(frames[location], exclude=examples if location.z == 1 else None)
        assert result.location == location
        assert len(result.segmentation.polygons) == len(expected.polygons) > 5
        for a, b in zip(result.segmentation.polygons, expected.polygons):
            np.testing.assert_array_equal(a, b)
    # Annotations carry their frame's location and the tags asked for.
    found = batch.annotations(tags=["blob"])
    assert {a.location.z for a in found} == {0, 1, 2}
    assert len(found) == sum(len(r.segmentation.polygons) for r in batch.frames)
    assert all(a.tags == ("blob",) for a in found)
    summary = batch.summary()
    assert [f["z"] for f in summary["frames"]] == [0, 1, 2] and summary["n_objects"] == len(found)
    assert summary["learned"]["method"] == "classic"


def test_examples_are_excluded_only_where_they_were_drawn(stack):
    frames, examples = stack
    batch = segment_batch(SegmentConfig(), frames[Location(z=1)], examples, frames.__getitem__, list(frames))
    assert batch.at(Location(z=1)).segmentation.n_rediscovered > 0
    assert batch.at(Location(z=0)).segmentation.n_rediscovered == 0


def test_cancel_stops_between_frames(stack):
    frames, examples = stack
    model = WeightFreeSegmenter().fit(frames[Location(z=1)], examples)
    done = []
    for result in segment_frames(model, frames.__getitem__, list(frames), cancelled=lambda: len(done) == 2):
        done.append(result.location)
    assert done == [Location(z=0), Location(z=1)]


def test_parse_range_is_zero_based_and_checked():
    assert parse_range("0-2, 4", size=5, option="--batch-z") == [0, 1, 2, 4]
    with pytest.raises(Exception, match="outside 0-4"):
        parse_range("3-5", size=5, option="--batch-z")


def _at(z: int, n: int, *, xy: int = 0) -> list[Annotation]:
    return [Annotation(point=(float(i), 0.0), location=Location(xy=xy, z=z)) for i in range(n)]


def test_plan_fit_learns_from_every_location_and_excludes_each_where_it_lies():
    on_z2, on_z0 = _at(2, 8), _at(0, 2)
    plan = plan_fit(on_z0 + on_z2, current=Location())
    assert plan.fit_location == Location(z=2) and plan.examples == on_z2
    assert plan.exclude == {Location(z=0): on_z0, Location(z=2): on_z2}
    assert plan.examples_at == plan.exclude == plan.learn and plan.n_not_learned_from == 0 and plan.n_learned == 10
    assert plan.locations == plan.fit_locations == [Location(z=0), Location(z=2)] and plan.warning is None
    # A way in that fits on one frame learns on the one holding the most, and says what it leaves out.
    one = plan.one_frame()
    assert one.learn == {Location(z=2): on_z2} and one.fit_locations == [Location(z=2)] and one.exclude == plan.exclude
    assert one.n_not_learned_from == 2 and one.warning == ("learning from the 8 examples at XY 1, Z 3, Time 1; 2 example(s) at other locations "
                            "(XY 1, Z 1, Time 1) are not learned from (but are not outlined again)")
    # A tie: where the user is wins, else the first in time, Z, XY order.
    assert plan_fit(_at(3, 2) + _at(1, 2), current=Location(z=3)).fit_location == Location(z=3)
    assert plan_fit(_at(3, 2) + _at(1, 2), current=Location(z=5)).fit_location == Location(z=1)
    # All on one frame: learned from, no warning.
    alone = plan_fit(on_z2)
    assert (alone.examples, alone.warning, alone.n_not_learned_from) == (on_z2, None, 0)
    with pytest.raises(ValueError):
        plan_fit([])


def test_plan_fit_on_one_frame_and_negatives_carried():
    drawn = _at(0, 3) + _at(4, 1)  # locations the file gave; the frame is another one
    plan = plan_fit(drawn, at=Location(z=7))
    assert plan.fit_location == Location(z=7) and plan.examples == drawn and plan.warning is None
    assert plan.exclude == {Location(z=7): drawn}
    on_z2, negatives = _at(2, 3), _at(2, 1) + _at(5, 2)
    plan = plan_fit(on_z2, negatives=negatives)
    assert plan.negatives == tuple(negatives) and plan.examples == on_z2 and plan.warning is None
    assert plan.exclude == {Location(z=2): on_z2 + negatives[:1], Location(z=5): negatives[1:]}
    assert plan.n_not_learned_from == 0 and plan.locations == [Location(z=2), Location(z=5)]
    # Negatives are learned from where they lie, a frame holding only negatives included.
    assert plan.negatives_at == {Location(z=2): negatives[:1], Location(z=5): negatives[1:]}
    assert plan.fit_locations == [Location(z=2), Location(z=5)]
    assert plan.one_frame().negatives_at == {Location(z=2): negatives[:1]}


def test_run_record_keys_are_the_same_for_every_way_in(stack):
    frames, examples = stack
    # A way in that fits on one frame (as the napari plugin and the NimbusImage worker do).
    plan = plan_fit([replace(a, location=Location(z=1 if i < 8 else 0)) for i, a in enumerate(examples)]).one_frame()
    batch = segment_batch(SegmentConfig(), frames[Location(z=1)], plan.examples, frames.__getitem__, list(frames),
                          exclude=plan.exclude)
    summaries = [r.summary() for r in batch.frames]
    record = run_record(plan, batch.segmenter, summaries, config=SegmentConfig(), fit_seconds=1.23456,
                        total_seconds=2.5)
    assert list(record) == ["config", "learned", "fit_location", "fit_locations", "n_examples", "n_examples_not_learned_from",
                            "n_frames", "n_objects", "n_candidates", "n_pred_on_examples", "fit_s", "total_s", "frames"]
    assert record["fit_location"] == {"XY": 0, "Z": 1, "Time": 0}
    assert (record["n_examples"], record["n_examples_not_learned_from"], record["n_frames"]) == (8, 2, 3)
    assert record["n_objects"] == len(batch.annotations()) and record["frames"] == summaries
    assert record["n_pred_on_examples"] == sum(r.segmentation.n_rediscovered for r in batch.frames)
    assert batch.at(Location(z=1)).segmentation.n_rediscovered > 0
    assert (record["fit_s"], record["total_s"], record["config"]) == (1.2346, 2.5, SegmentConfig().to_dict())
    assert "total_s" not in run_record(plan, batch.segmenter, summaries, config=SegmentConfig(), fit_seconds=0)
    totals = batch.summary()
    assert {k: totals[k] for k in ("n_frames", "n_objects", "n_candidates", "n_pred_on_examples")} == {
        k: record[k] for k in ("n_frames", "n_objects", "n_candidates", "n_pred_on_examples")}


def test_drop_rediscovered_on_a_window_equals_the_frame_wide_matching():
    rng = np.random.default_rng(0)

    def blob(r, c, h, w):
        return ObjectMask(int(r), int(c), rng.random((int(h), int(w))) < 0.8)

    shape = (300, 300)
    examples = [blob(r, c, 12, 14) for r, c in rng.integers(0, 280, (15, 2))]
    pred = [blob(r, c, h, w) for (r, c), (h, w) in zip(rng.integers(0, 280, (200, 2)), rng.integers(5, 20, (200, 2)))]
    pred += [ObjectMask(e.row + 1, e.col, e.mask) for e in examples]  # near copies
    scores = rng.random(len(pred))
    kept, kept_scores, n = drop_rediscovered(pred, examples, shape, iou=0.3, scores=scores)
    order = np.argsort(-scores, kind="stable")
    hit = rediscovered([pred[i] for i in order], examples, shape, iou=0.3)
    assert n == int(hit.sum()) >= 15
    assert kept == [pred[i] for i, h in zip(order, hit) if not h]
    np.testing.assert_array_equal(kept_scores, scores[order][~hit])
    assert drop_rediscovered(pred, [], shape) == (pred, 0)
