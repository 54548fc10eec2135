"""Examples (and negatives) on several frames: all learned from, each excluded where it lies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fewseg.batch import fit_plan, plan_fit, segment_batch
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.classic.training import training_frame
from fewseg.config import SegmentConfig
from fewseg.demo import make_demo
from fewseg.errors import InputError
from fewseg.match import rediscovered
from fewseg.objects import Annotation, Frame, Location, ObjectMask


@pytest.fixture(scope="module")
def planes():
    """Three planes of 160 x 160 (Z 0, 1, 2) and their truths."""
    out = {}
    for z in range(3):
        frame, truth = make_demo(seed=30 + z, shape=(160, 160), n_blobs=25)
        out[Location(z=z)] = (replace(frame, location=Location(z=z)), [replace(t, location=Location(z=z)) for t in truth])
    return out


def _side_by_side(a: Frame, b: Frame, ex_a: list, ex_b: list) -> tuple[Frame, list[ObjectMask]]:
    """The two planes as one frame (b to the right of a), the examples moved with them."""
    frame = Frame(np.concatenate([a.data, b.data], axis=2), channel_names=a.channel_names, source=a.source)
    masks = [t.to_mask(a.shape) for t in ex_a]
    masks += [ObjectMask(m.row, m.col + a.shape[1], m.mask) for m in (t.to_mask(b.shape) for t in ex_b)]
    return frame, masks


def test_examples_on_two_planes_learn_what_both_planes_fitted_together_learn(planes):
    (a, truth_a), (b, truth_b) = planes[Location(z=0)], planes[Location(z=2)]
    ex_a, ex_b = truth_a[:3], truth_b[:5]
    several = WeightFreeSegmenter().fit_frames([(a, ex_a, None), (b, ex_b, [])])
    together = WeightFreeSegmenter().fit(*_side_by_side(a, b, ex_a, ex_b))
    assert several.describe_fit() == together.describe_fit()
    np.testing.assert_array_equal(several.example_vectors, together.example_vectors)
    for frame, exclude in ((a, ex_a), (b, ex_b), planes[Location(z=1)]):
        if isinstance(exclude, list) and exclude and exclude[0].location == Location(z=1):
            exclude = None  # the plane without examples
        got, want = several.predict(frame, exclude=exclude), together.predict(frame, exclude=exclude)
        assert [p.tolist() for p in got.polygons] == [p.tolist() for p in want.polygons]
    # Both planes' examples are learned from: not the same as learning on the plane holding the most.
    alone = WeightFreeSegmenter().fit(b, ex_b)
    assert len(several.profile.areas) == 8 and alone.describe_fit() != several.describe_fit()


def test_one_frame_fit_frames_is_fit(planes):
    frame, truth = planes[Location(z=1)]
    one = WeightFreeSegmenter().fit_frames([(frame, truth[:6], None)])
    assert one.describe_fit() == WeightFreeSegmenter().fit(frame, truth[:6]).describe_fit()


def test_training_frame_crops_around_the_examples_and_outlines_clicks_on_their_own_frame():
    big, truth = make_demo(seed=3, shape=(600, 700), n_blobs=60)
    small, truth_small = make_demo(seed=4, shape=(150, 150), n_blobs=10)
    ex = [t.to_mask(big.shape) for t in truth[:2]]
    frame, examples, negatives = training_frame([(big, ex, []), (small, [t.to_mask(small.shape) for t in truth_small[:2]], [])],
                                                margin=20)
    r0, c0 = max(min(m.row for m in ex) - 20, 0), max(min(m.col for m in ex) - 20, 0)
    r1, c1 = min(max(m.bbox[2] for m in ex) + 20, 600), min(max(m.bbox[3] for m in ex) + 20, 700)
    assert frame.shape[1] < 700 and frame.shape[0] >= r1 - r0 and negatives == []
    np.testing.assert_array_equal(frame.data[:, :r1 - r0, :c1 - c0], big.data[:, r0:r1, c0:c1])  # the crop, first
    for m, e in zip(examples[:2], ex):  # the examples shifted with it
        assert (m.row, m.col) == (e.row - r0, e.col - c0)
    assert examples[2].col >= c1 - c0  # the second frame's crop to its right
    # Clicks are outlined on their own frame, then fitted on.
    clicks = [Annotation(point=tuple(np.mean(t.polygon, axis=0))) for t in truth_small[:4]]
    model = WeightFreeSegmenter().fit_frames([(big, truth[:4], None), (small, clicks, None)])
    assert len(model.profile.areas) == 8


def test_a_batch_learns_from_every_plane_and_excludes_each_planes_examples_there(planes):
    drawn = planes[Location(z=0)][1][:3] + planes[Location(z=2)][1][:6]
    plan = plan_fit(drawn)
    assert plan.fit_locations == [Location(z=0), Location(z=2)] and plan.n_learned == 9 and plan.warning is None
    reads = []

    def read(loc):
        reads.append(loc)
        return planes[loc][0]

    batch = segment_batch(SegmentConfig(), None, None, read, list(planes), plan=plan)
    assert sorted(reads, key=lambda loc: loc.z) == list(planes)  # each plane read once (fitted ones kept)
    assert len(batch.segmenter.profile.areas) == 9
    for loc, n in ((Location(z=0), 3), (Location(z=2), 6)):
        found = batch.at(loc).segmentation
        truth = [t.to_mask((160, 160)) for t in planes[loc][1]]
        assert not rediscovered(found.masks, truth[:n], (160, 160)).any()  # no example outlined again there
        assert found.n_rediscovered > 0 and rediscovered(found.masks, truth[n:], (160, 160)).sum() >= 10
    assert len(batch.at(Location(z=1)).segmentation.polygons) >= 10


def test_the_fit_reads_only_the_frames_holding_examples_or_negatives(planes):
    ex = planes[Location(z=2)][1][:4]
    negative = [Annotation(point=(5.0, 5.0), location=Location(z=0))]
    plan = plan_fit(ex, negatives=negative)
    assert plan.fit_locations == [Location(z=0), Location(z=2)] and plan.negatives_at == {Location(z=0): negative}
    read = []
    fitted = fit_plan(_Recorder(), plan.one_frame(), lambda loc: read.append(loc) or planes[loc][0])[1]
    assert read == [Location(z=2)] and list(fitted) == [Location(z=2)]


class _Recorder:
    """A method that learns from one frame (as the SAM methods do)."""

    config = SegmentConfig(method="seed")

    def fit(self, frame, examples):
        self.fitted = (frame, examples)
        return self


def test_a_method_learning_from_one_frame_is_refused_in_one_line(planes):
    drawn = planes[Location(z=0)][1][:3] + planes[Location(z=2)][1][:6]
    with pytest.raises(InputError) as err:
        fit_plan(_Recorder(), plan_fit(drawn), lambda loc: planes[loc][0])
    assert str(err.value) == ("--method: seed learns from one frame; the examples lie on 2 frames (XY 0, Z 0, Time 0; "
                              "XY 0, Z 2, Time 0; 0-based): use --method classic, or give the examples of one frame")
    assert "\n" not in str(err.value)


def test_too_many_examples_are_refused_in_one_line_before_each_is_checked(tmp_path):
    import json

    from fewseg.io.annotations import read_annotations

    square = [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]
    features = [{"type": "Feature", "properties": {"tags": ["a" if i < 2 else "b"]},
                 "geometry": {"type": "Polygon", "coordinates": [square]}} for i in range(5)]
    path = tmp_path / "many.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(InputError, match=r"many.geojson: 5 annotations: too many examples \(at most 4\)"):
        read_annotations(path, limit=4)
    with pytest.raises(InputError, match="3 annotations tagged 'b': too many"):
        read_annotations(path, tag="b", limit=2)
    assert len(read_annotations(path, tag="a", limit=2)) == 2


def test_examples_or_negatives_outside_the_file_are_named_with_the_files_sizes():
    from fewseg.cli.segment import check_locations

    class Stack:  # FileFrames' counts: 1 position of 3 planes
        def counts(self, location=None):
            return {"XY": 1, "Z": 3, "T": 1}

    check_locations("neg.json", {Location(z=2): [1]}, Stack(), image="s.tif", what="negative")
    with pytest.raises(InputError) as err:
        check_locations("neg.json", {Location(z=1): [1], Location(z=5): [1, 2]}, Stack(), image="s.tif", what="negative")
    assert str(err.value) == ("neg.json: location: 2 negatives lie at XY 0, Z 5, Time 0 (0-based), outside s.tif "
                              "(XY 1, Z 3, Time 1)")
    with pytest.raises(InputError, match="an example lies at XY 3, Z 0, Time 0 .0-based., outside s.tif .XY 1.$"):
        check_locations("ex.json", {Location(xy=3): [1]}, Stack(), image="s.tif")
