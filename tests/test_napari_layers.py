"""fewseg objects <-> napari layer data (plain numpy: runs without napari installed)."""

import json

import numpy as np
import pytest

from fewseg.batch import FrameResult
from fewseg.errors import InputError
from fewseg.napari.layers import (annotation_shapes, labels_annotations, lead_axes, paint_results, result_shapes,
                                  shape_polygon, shapes_annotations)
from fewseg.objects import Annotation, Location, ObjectMask, rasterize
from fewseg.result import Segmentation


def test_shapes_round_trip_keeps_polygons_tags_locations_and_scores():
    square = np.array([[2.0, 3.0], [2.0, 9.0], [8.0, 9.0], [8.0, 3.0]])
    items = [Annotation(polygon=square, tags=("cell", "big"), location=Location(z=1), properties={"score": 0.5}),
             Annotation(polygon=square + 5, tags=(), location=Location(z=4, time=2), channel=1)]
    data, kwargs, kind = annotation_shapes(items, name="found")
    assert kind == "shapes" and kwargs["metadata"]["fewseg"]["axes"] == ["time", "z"]
    assert data[1][0].tolist() == [2.0, 4.0, 7.0, 8.0]  # (time, z, row, col)
    features = kwargs["features"]
    assert features["tag"] == ["cell", ""] and json.loads(features["tags"][0]) == ["cell", "big"]
    back = shapes_annotations(data, ["polygon"] * 2, features, source="found", axes=("time", "z"))
    for a, b in zip(items, back):
        np.testing.assert_array_equal(a.polygon, b.polygon)
        assert (a.tags, a.location, a.channel) == (b.tags, b.location, b.channel)
    assert back[0].properties["score"] == 0.5 and np.isnan(features["score"][1])


def test_a_2d_shape_lies_on_the_frame_shown_and_a_3d_one_where_it_is():
    square = np.array([[2.0, 3.0], [2.0, 9.0], [8.0, 9.0], [8.0, 3.0]])
    here = Location(z=3)
    [flat] = shapes_annotations([square], ["polygon"], None, source="ex", axes=("z",), here=here)
    [deep] = shapes_annotations([np.column_stack([np.full(4, 1.0), square])], ["rectangle"], None, source="ex",
                                axes=("z",), here=here)
    assert flat.location == here and deep.location == Location(z=1)


def test_ellipse_becomes_its_outline():
    box = np.array([[10.0, 10.0], [10.0, 30.0], [20.0, 30.0], [20.0, 10.0]])
    polygon = shape_polygon(box, "ellipse")
    mask = rasterize(polygon, (40, 40))
    assert abs(mask.area - np.pi * 5 * 10) < 0.08 * np.pi * 50
    np.testing.assert_allclose(polygon.mean(axis=0), [15, 20], atol=1e-9)


def test_lines_are_not_examples():
    with pytest.raises(InputError, match=r"^ex: shapes\[0\]: is a path; examples and results are areas"):
        shapes_annotations([np.zeros((3, 2))], ["path"], None, source="ex")


def test_labels_per_frame_and_results_painted_with_unique_ids():
    labels = np.zeros((3, 12, 12), np.int32)
    labels[0, 1:4, 1:4] = 5
    labels[2, 5:9, 5:9] = 9
    found = labels_annotations(labels, source="painted", axes=("z",))
    assert [(a.location.z, a.mask.area) for a in found] == [(0, 9), (2, 16)]

    masks = [ObjectMask(0, 0, np.ones((2, 2), bool)), ObjectMask(6, 6, np.ones((3, 3), bool))]
    polygons = [np.array([[-0.5, -0.5], [-0.5, 1.5], [1.5, 1.5], [1.5, -0.5]]),
                np.array([[5.5, 5.5], [5.5, 8.5], [8.5, 8.5], [8.5, 5.5]])]
    result = FrameResult(Location(z=2), Segmentation(polygons, masks, np.array([0.9, 0.6]), 2, 0, {}), 0.1)
    painted, ids = paint_results(labels, [result], axes=("z",))
    assert ids == [[6, 7]] and set(np.unique(painted[2])) == {0, 6, 7}  # ids above the 5 kept on plane 0
    np.testing.assert_array_equal(painted[0], labels[0])
    data, features = result_shapes([result], ids, axes=("z",), tag="blob")
    assert features["label"] == [6, 7] and features["z"] == [2, 2] and features["score"] == [0.9, 0.6]
    assert data[1].tolist() == [[2.0, 5.5, 5.5], [2.0, 5.5, 8.5], [2.0, 8.5, 8.5], [2.0, 8.5, 5.5]]


def test_more_than_time_and_z_is_refused():
    assert lead_axes(2, {"fewseg": {"axes": ["time", "z"]}}) == ("time", "z")
    with pytest.raises(InputError, match="at most two"):
        lead_axes(3, source="big")


@pytest.mark.parametrize("name, vertices, kind, expected", [
    ("two vertices", [[10, 10], [20, 20]], "polygon", "at least 3 distinct vertices"),
    ("collinear", [[10, 10], [20, 20], [30, 30]], "polygon", "zero area"),
    ("one point", [[10, 10], [10, 10], [10, 10]], "polygon", "at least 3 distinct vertices"),
    ("bow tie", [[0, 0], [10, 10], [0, 10], [10, 0]], "polygon", "zero area|not simple"),
    ("crossed", [[0, 0], [10, 10], [0, 12], [12, 0]], "polygon", "not simple"),
    ("flat rectangle", [[10, 10], [10, 20], [10, 20], [10, 10]], "rectangle", "distinct vertices"),
    ("point ellipse", [[10, 10], [10, 10], [10, 10], [10, 10]], "ellipse", "distinct vertices"),
    ("NaN vertex", [[10, np.nan], [20, 20], [30, 10]], "polygon", "finite numbers"),
    ("NaN frame index", [[np.nan, 10, 10], [0, 20, 20], [0, 30, 10]], "polygon", "finite numbers"),
])
def test_degenerate_shapes_are_refused_as_a_file_would_be(name, vertices, kind, expected):
    """A degenerate or non-finite shape: one InputError naming the layer and shape (issue 13), as the CLI's reader."""
    good = np.array([[5.0, 5], [5, 15], [15, 15], [15, 5]])
    data = [good, np.asarray(vertices, dtype=float)] if len(vertices[0]) == 2 else [np.asarray(vertices, dtype=float)]
    kinds = ["polygon", kind][-len(data):]
    with pytest.raises(InputError, match=expected) as info:
        shapes_annotations(data, kinds, None, source="examples", axes=("z",) if len(vertices[0]) == 3 else ())
    assert str(info.value).startswith(f"examples: shapes[{len(data) - 1}]: ")


def test_a_location_feature_that_is_no_number_is_refused():
    import pandas as pd

    data = [np.array([[5.0, 5], [5, 15], [15, 15]])]
    with pytest.raises(InputError, match="shapes\\[0\\]: expected whole numbers"):
        shapes_annotations(data, ["polygon"], pd.DataFrame({"z": ["third"]}), source="examples")


def test_points_are_saved_as_clicks_the_cli_reads_back(tmp_path):
    from fewseg.io.annotations import read_annotations
    from fewseg.napari.writer import write_points

    clicks = np.array([[10.0, 12.5], [40.25, 3.0]])
    features = {"tag": ["cell", "cell"]}
    meta = {"name": "clicks", "features": features}
    csv_path, = write_points(str(tmp_path / "c.csv"), clicks, meta)
    from pathlib import Path

    assert Path(csv_path).read_text().splitlines()[:2] == ["x,y", "13.0,10.5"]  # pixel-corner origin, as the JSON formats
    np.testing.assert_allclose([a.point for a in read_annotations(csv_path)], clicks)
    # A stack's clicks keep their planes in the JSON formats; a .csv holds one plane's.
    on_stack = np.array([[2.0, 10.0, 12.5], [0.0, 40.25, 3.0]])
    meta3 = {"name": "clicks", "features": features, "metadata": {"fewseg": {"axes": ["z"]}}}
    for suffix in (".json", ".geojson"):
        path, = write_points(str(tmp_path / f"c{suffix}"), on_stack, meta3)
        back = read_annotations(path)
        assert [a.location.z for a in back] == [2, 0] and [a.tags for a in back] == [("cell",), ("cell",)]
        np.testing.assert_allclose([a.point for a in back], clicks)
    with pytest.raises(InputError, match="holds the clicks of one frame; these lie at 2 locations"):
        write_points(str(tmp_path / "stack.csv"), on_stack, meta3)
    assert not (tmp_path / "stack.csv").exists()
    with pytest.raises(InputError, match="saved as .json .NimbusImage., .geojson or .csv"):
        write_points(str(tmp_path / "c.png"), clicks, meta)
