"""The batch loop every way in shares: fit once, predict each frame lazily, collect."""

import numpy as np
import pytest

from fewseg.batch import parse_range, segment_batch, segment_frames
from fewseg.config import SegmentConfig
from fewseg.demo import make_demo
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.objects import Frame, Location


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
