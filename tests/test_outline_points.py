"""Examples given as clicks: reading them from every format, outlining them, using them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fewseg.io.annotations import read_annotations
from fewseg.cli import main
from fewseg.classic.clicks import click_or_outline_masks, outline_clicks
from fewseg.config import SegmentConfig
from fewseg.demo import make_demo_scene, write_demo
from fewseg.errors import InputError
from fewseg.evaluate import as_clicks, run_evaluation
from fewseg.classic.examples import example_masks
from fewseg.classic.model import WeightFreeSegmenter
from fewseg.objects import Annotation

SHAPE = (40, 50)


@pytest.fixture(scope="module")
def scene():
    return make_demo_scene(seed=3, shape=(256, 256), n_blobs=35)


def _centroids(masks):
    return np.array([np.argwhere(m.mask).mean(axis=0) + (m.row, m.col) for m in masks])


# --------------------------------------------------------------------------- reading


def test_nimbus_points_read_as_clicks_beside_polygons(tmp_path):
    items = [
        {"shape": "point", "tags": ["cell"], "location": {"XY": 0, "Z": 1, "Time": 0}, "coordinates": [{"x": 7, "y": 3}],
         "_id": "a"},
        {"shape": "polygon", "tags": ["cell"], "coordinates": [{"x": 1, "y": 1}, {"x": 5, "y": 1}, {"x": 5, "y": 4}]},
    ]
    path = tmp_path / "clicks.json"
    path.write_text(json.dumps(items))
    click, outline = read_annotations(path, shape=SHAPE, tag="cell")
    # The same x/y placement as the polygon reader's: pixel-corner origin, so x 7, y 3 is
    # the centre of pixel (row 2, col 6).
    assert click.point.tolist() == [2.5, 6.5] and click.polygon is None and click.properties == {"_id": "a"}
    assert click.location.z == 1 and outline.polygon is not None and outline.point is None
    with pytest.raises(ValueError, match="is a click"):
        click.to_mask(SHAPE)


def test_nimbus_point_needs_one_point(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"shape": "point", "coordinates": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}]))
    with pytest.raises(InputError, match=r"bad\.json: annotations\[0\]\.coordinates: expected one point, got 2"):
        read_annotations(path)


def test_geojson_point_and_multipoint(tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7, 3]}, "properties": {"tags": ["cell"]}},
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[1, 2], [10.5, 20.25]]},
         "properties": {"classification": {"name": "cell"}}},
    ]}
    path = tmp_path / "clicks.geojson"
    path.write_text(json.dumps(doc))
    clicks = read_annotations(path, shape=SHAPE, tag="cell")
    assert [c.point.tolist() for c in clicks] == [[2.5, 6.5], [1.5, 0.5], [19.75, 10.0]]  # pixel-corner origin
    assert clicks[2].origin.endswith("features[1].geometry.coordinates[1]")
    doc["features"][0]["geometry"]["coordinates"] = [7]
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"features\[0\]\.geometry\.coordinates\[0\]: expected a position"):
        read_annotations(path)


@pytest.mark.parametrize("header, rows, expected", [
    ("x,y", ["7,3", "1.5,2"], [[2.5, 6.5], [1.5, 1.0]]),  # x, y as in the JSON formats: pixel-corner origin
    ("y,x,label", ["3,7,a", "2,1.5,b"], [[2.5, 6.5], [1.5, 1.0]]),
    ("row,col", ["3,7", "2,1.5"], [[3, 7], [2, 1.5]]),
    ("index,axis-0,axis-1", ["0,3,7", "1,2,1.5"], [[3, 7], [2, 1.5]]),
])
def test_csv_clicks_by_header(tmp_path, header, rows, expected):
    path = tmp_path / "clicks.csv"
    path.write_text("\n".join([header, *rows, ""]))
    clicks = read_annotations(path, shape=SHAPE)
    assert [c.point.tolist() for c in clicks] == expected
    assert clicks[1].origin == f"{path}: line 3"


@pytest.mark.parametrize("text, match", [
    ("a,b\n1,2\n", r"expected a header naming x and y"),
    ("x,y\n1,oops\n", r"line 2: expected numbers in columns 'x' and 'y'"),
    ("", r"empty table"),
    ("x,y\n1,99\n", r"line 2: click lies wholly outside the 40 x 50"),
    ("index,axis-0,axis-1,axis-2\n0,2,3,4\n", r"line 1: has 3 axis columns .*clicks saved from a stack"),
])
def test_bad_csv_is_one_clear_error(tmp_path, text, match):
    path = tmp_path / "clicks.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_annotations(path, shape=SHAPE)


# --------------------------------------------------------------------------- outlining


def test_clicks_near_the_centre_give_the_objects_outlines(scene):
    truth = scene.blobs[:10]
    masks = outline_clicks(scene.frame, as_clicks(truth, seed=1))
    ious = [a.iou(b) for a, b in zip(masks, truth)]
    assert len(masks) == 10 and np.median(ious) > 0.75 and np.mean(ious) > 0.6


def test_clicks_mixed_with_outlines_keep_their_order(scene):
    truth = scene.blobs[:8]
    clicks = as_clicks(truth[4:], seed=2)
    examples = list(scene.annotations[:4]) + [Annotation(point=p) for p in clicks]
    masks = click_or_outline_masks(examples, scene.frame)
    assert [m.area for m in masks[:4]] == [t.area for t in truth[:4]]
    assert np.mean([a.iou(b) for a, b in zip(masks[4:], truth[4:])]) > 0.6
    with pytest.raises(InputError, match="needs the frame"):
        example_masks(examples, scene.frame.shape)


def test_as_clicks_stay_within_a_quarter_radius(scene):
    clicks = as_clicks(scene.blobs, seed=0)
    radius = np.sqrt([m.area / np.pi for m in scene.blobs])
    offset = np.hypot(*(clicks - _centroids(scene.blobs)).T)
    assert (offset <= 0.25 * radius + 1e-9).all() and offset.max() > 0.1 * radius.max()
    assert np.array_equal(clicks, as_clicks(scene.blobs, seed=0)) and not np.array_equal(clicks, as_clicks(scene.blobs, seed=1))


def test_fit_on_clicks_finds_the_other_objects(scene):
    frame, truth = scene.frame, scene.annotations
    outlines = run_evaluation(frame, truth, config=SegmentConfig(), num_train=10, seed=0).metrics
    clicks = run_evaluation(frame, truth, config=SegmentConfig(), num_train=10, seed=0, clicks=True).metrics
    assert clicks["examples_as"] == "clicks" and outlines["examples_as"] == "outlines"
    assert clicks["f1"] > 0.8 and clicks["f1"] > outlines["f1"] - 0.1
    model = WeightFreeSegmenter().fit(frame, [Annotation(point=p) for p in as_clicks(scene.blobs[:10], seed=0)])
    assert model.profile.weights[1] > 0.5  # YFP shows the blobs, brighter than around them


# --------------------------------------------------------------------------- command line


def test_segment_from_a_csv_of_clicks_and_evaluate_in_click_mode(tmp_path, capsys, scene):
    paths = write_demo(tmp_path, seed=3, shape=(256, 256), n_blobs=35)
    truth = read_annotations(paths["annotations"], shape=scene.frame.shape)
    clicks = as_clicks([t.to_mask(scene.frame.shape) for t in truth[:10]], seed=0)
    table = tmp_path / "clicks.csv"
    table.write_text("row,col\n" + "".join(f"{r},{c}\n" for r, c in clicks))
    out = tmp_path / "found.geojson"
    assert main(["segment", str(paths["frame"]), "--examples", str(table), "-o", str(out)]) == 0
    assert int(capsys.readouterr().out.split()[0]) >= 15
    assert main(["evaluate", str(paths["frame"]), "--truth", str(paths["annotations"]), "--clicks", "--seed", "0",
                 "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["examples_as"] == "clicks"


def test_predict_excluding_the_fitted_clicks_reuses_their_outlines(scene):
    examples = [Annotation(point=p) for p in as_clicks(scene.blobs[:10], seed=3)]
    model = WeightFreeSegmenter().fit(scene.frame, examples)
    assert model._exclude_masks(examples, scene.frame) is model._example_masks[1]
    again = model._exclude_masks(list(examples[:9]) + [Annotation(point=examples[9].point)], scene.frame)
    assert [m.bbox for m in again] == [m.bbox for m in model._example_masks[1]]  # outlined anew, the same


def _lobed_nuclei(seed: int = 0):
    """A 160 x 160 frame of 16 nuclei (discs of radius 12 on a dark, noisy background),
    every fourth one with its chromatin in two bright lobes either side of its centre
    (as many of stardist's nuclei have; their frames are not shipped with the tests).
    Returns the frame, the discs and their centres."""
    from scipy import ndimage as ndi

    from fewseg.objects import Frame, ObjectMask

    rng = np.random.default_rng(seed)
    shape = (160, 160)
    rows, cols = np.indices(shape)
    image = np.zeros(shape, np.float32)
    centres = np.array([(20 + 40 * i, 20 + 40 * j) for i in range(4) for j in range(4)], float)
    discs = []
    for k, (r, c) in enumerate(centres):
        disc = (rows - r) ** 2 + (cols - c) ** 2 <= 12**2
        image[disc] += 1.0
        if k % 4 == 0:
            for side in (-1, 1):
                image += 1.5 * np.exp(-((rows - r) ** 2 + (cols - c - 7 * side) ** 2) / (2 * 3.0**2)) * disc
        discs.append(ObjectMask.from_full(disc))
    image = ndi.gaussian_filter(image, 1.0) + rng.normal(0, 0.08, shape).astype(np.float32)
    return Frame(image[None].astype(np.float32)), discs, centres


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_a_nucleus_with_two_bright_lobes_is_outlined_whole(angle):
    # The proposer's default cut gives each lobe its own seed; the click lies near the
    # centre of the nucleus, not of a lobe, so the whole nucleus is the example wherever
    # within a quarter radius of the centre the click lands (before, at two of these four
    # the lobe under the click: IoU 0.4 with the nucleus).
    frame, discs, centres = _lobed_nuclei()
    step = 0.25 * 12 * np.array([np.sin(np.radians(angle)), np.cos(np.radians(angle))])
    masks = outline_clicks(frame, centres + step)
    ious = np.array([m.iou(d) for m, d in zip(masks, discs)])
    lobed = np.arange(len(discs)) % 4 == 0
    assert ious[lobed].min() > 0.7 and ious[~lobed].min() > 0.95  # lobed ones whole; plain ones as before


def test_clicks_a_quarter_radius_off_centre_give_the_same_outline(scene):
    # Each demo blob clicked a quarter of its radius above, right of, below and left of
    # its centroid: the four outlines agree (before: one blob's outlines had nothing in
    # common, 94 % agreed at IoU > 0.9).
    truth = scene.blobs
    centres, radii = _centroids(truth), np.sqrt([m.area / np.pi for m in truth])
    outlines = [outline_clicks(scene.frame, centres + 0.25 * radii[:, None] * np.array([np.sin(a), np.cos(a)]))
                for a in np.radians([0, 90, 180, 270])]
    agree = np.array([[o[i].iou(outlines[0][i]) for o in outlines[1:]] for i in range(len(truth))]).min(axis=1)
    assert agree.min() > 0.4 and (agree > 0.9).mean() > 0.95


# --------------------------------------------------------------------------- clicks made disjoint


def _disc_mask(shape, centre, radius):
    rows, cols = np.indices(shape)
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_two_clicks_given_one_merged_outline_divide_it_at_the_neck():
    from fewseg.classic.clicks import separate_clicks
    from fewseg.objects import ObjectMask

    shape = (40, 60)
    left, right = _disc_mask(shape, (20, 18), 9), _disc_mask(shape, (20, 34), 8)
    merged = ObjectMask.from_full(left | right)
    a, b = separate_clicks([merged, merged], np.array([[21, 17], [19, 35]]))
    assert a.to_full(shape).sum() + b.to_full(shape).sum() == merged.area
    assert not (a.to_full(shape) & b.to_full(shape)).any()
    assert a.iou(ObjectMask.from_full(left)) > 0.85 and b.iou(ObjectMask.from_full(right)) > 0.85


def test_a_click_outline_leaves_an_outlined_example_its_pixels_and_a_click_on_one_keeps_its_own():
    from fewseg.classic.clicks import separate_clicks
    from fewseg.objects import ObjectMask

    shape = (40, 60)
    drawn = ObjectMask.from_full(_disc_mask(shape, (20, 18), 9))
    merged = ObjectMask.from_full(_disc_mask(shape, (20, 18), 9) | _disc_mask(shape, (20, 34), 8))
    alone = ObjectMask.from_full(_disc_mask(shape, (8, 50), 5))
    beside, on_it, other = separate_clicks([merged, merged, alone], np.array([[20, 34], [20, 18], [8, 50]]),
                                           outlined=[drawn])
    assert not (beside.to_full(shape) & drawn.to_full(shape)).any() and beside.holds(20, 34)
    assert beside.area == merged.area - drawn.area
    assert on_it is merged and other is alone  # a click on the outline marks it again; a lone click is untouched


def test_fit_on_clicks_whose_outlines_merged_describes_each_object_once(scene):
    """The correction curve's failure (stardist seed 10, round 3): a click on an object
    that an earlier click's outline had taken got the same outline, and the second,
    hidden copy was described as a 1-pixel object of signal 0."""
    from fewseg.classic.clicks import separate_clicks
    from fewseg.classic.describe import describe, channel_levels
    from fewseg.classic.examples import learn_profile_and_signal
    from fewseg.objects import ObjectMask

    frame = scene.frame
    a, b = scene.blobs[0], scene.blobs[1]
    merged = ObjectMask.from_full(a.to_full(frame.shape) | b.to_full(frame.shape))
    clicks = np.rint(_centroids([a, b])).astype(int)
    profile, signal = learn_profile_and_signal(frame, list(scene.blobs[2:10]))
    apart = separate_clicks([merged, merged], clicks)
    vectors = describe(frame, signal, apart, profile, base=channel_levels(frame))
    assert np.all(vectors[:, 0] > np.log(0.5 * min(a.area, b.area)))  # log area: each one a whole object
