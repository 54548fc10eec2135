"""Tests for fewseg.io.annotations: NimbusImage JSON, GeoJSON and label images, in and out."""

from __future__ import annotations

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from fewseg.io.annotations import available_tags, read_annotations, repairs, write_annotations
from fewseg.errors import InputError
from fewseg.objects import Annotation, Location, ObjectMask, labels_from_masks
from fewseg.polygons import rasterize
from shapely.geometry import Polygon

SHAPE = (40, 50)


# --------------------------------------------------------------------------- helpers


def square(row: float, col: float, size: float = 4.0) -> np.ndarray:
    """An open ``(4, 2)`` ``(row, col)`` square with its top-left corner at (row, col)."""
    return np.array([[row, col], [row, col + size], [row + size, col + size], [row + size, col]], dtype=float)


def triangle(row: float, col: float) -> np.ndarray:
    return np.array([[row, col], [row + 0.25, col + 5.5], [row + 6.125, col + 1.75]])


def nimbus_item(polygon, *, tags=("cell",), location=(0, 0, 0), **extra) -> dict:
    """A NimbusImage polygon for fewseg's ``(row, col)`` ``polygon`` (pixel-corner x / y)."""
    xy, z, time = location
    return {
        "shape": "polygon",
        "tags": list(tags),
        "channel": 0,
        "location": {"XY": xy, "Z": z, "Time": time},
        "coordinates": [{"x": float(c) + 0.5, "y": float(r) + 0.5, "z": 0} for r, c in polygon],
        **extra,
    }


def feature(polygon, *, geometry_type="Polygon", **properties) -> dict:
    """A GeoJSON Feature for fewseg's ``(row, col)`` ``polygon`` (pixel-corner x / y, as QuPath)."""
    ring = [[float(c) + 0.5, float(r) + 0.5] for r, c in polygon]
    coordinates = [ring + ring[:1]]
    if geometry_type == "MultiPolygon":
        coordinates = [coordinates]
    return {"type": "Feature", "geometry": {"type": geometry_type, "coordinates": coordinates}, "properties": properties}


def write_json(path, document):
    path.write_text(json.dumps(document))
    return path


def label_image(shape=SHAPE, dtype=np.uint16) -> np.ndarray:
    """Labels 3, 17 (two separate pieces) and 40: sparse values, one split object."""
    labels = np.zeros(shape, dtype=dtype)
    labels[2:6, 3:9] = 3
    labels[10:14, 10:13] = 17
    labels[20:22, 30:35] = 17
    labels[30:37, 40:42] = 40
    return labels


def full_masks(annotations, shape=SHAPE) -> list[np.ndarray]:
    return [a.to_mask(shape).to_full(shape) for a in annotations]


def error_text(path, **kwargs) -> str:
    with pytest.raises(InputError) as excinfo:
        read_annotations(path, **kwargs)
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- round trips


def test_nimbus_round_trip(tmp_path):
    annotations = [
        Annotation(polygon=square(1.5, 2.25), tags=("YFP blob",), location=Location(xy=1, z=2, time=3), channel=1),
        Annotation(polygon=triangle(10, 20), tags=("YFP blob", "seed")),
    ]
    path = tmp_path / "out.json"

    write_annotations(path, annotations, shape=SHAPE)
    back = read_annotations(path, shape=SHAPE)

    assert len(back) == 2
    for before, after in zip(annotations, back):
        np.testing.assert_allclose(after.polygon, before.polygon, atol=1e-6)
        assert (after.tags, after.location, after.channel) == (before.tags, before.location, before.channel)
    document = json.loads(path.read_text())
    assert document[0]["shape"] == "polygon"
    assert document[0]["coordinates"][0] == {"x": 2.75, "y": 2.0}  # pixel corners: centre + 0.5
    assert document[0]["location"] == {"XY": 1, "Z": 2, "Time": 3}
    assert back[1].origin == f"{path}: annotations[1]"


def test_geojson_round_trip_keeps_serialisable_properties(tmp_path):
    annotations = [
        Annotation(polygon=triangle(3, 4), tags=("found",), properties={"score": np.float32(0.75), "model": "sam2", "embedding": object()}),
        Annotation(polygon=square(20, 30, 5), location=Location(z=4), properties={"area": np.int64(25), "bad": float("nan")}),
    ]
    path = tmp_path / "out.geojson"

    write_annotations(path, annotations, shape=SHAPE)
    back = read_annotations(path, shape=SHAPE)

    for before, after in zip(annotations, back):
        np.testing.assert_allclose(after.polygon, before.polygon, atol=1e-6)
        assert (after.tags, after.location) == (before.tags, before.location)
    assert back[0].properties == {"score": 0.75, "model": "sam2"}
    assert back[1].properties == {"area": 25}
    document = json.loads(path.read_text())
    assert document["type"] == "FeatureCollection"
    ring = document["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 4  # closed
    assert ring[0] == [4.5, 3.5]  # x = col + 0.5, y = row + 0.5


@pytest.mark.parametrize("suffix, dtype", [(".tif", np.uint16), (".tiff", np.int32), (".png", np.uint16), (".png", np.uint8)])
def test_label_image_round_trip(tmp_path, suffix, dtype):
    source = tmp_path / f"truth{suffix}"
    labels = label_image(dtype=dtype)
    if suffix == ".png":
        iio.imwrite(source, labels)
    else:
        tifffile.imwrite(source, labels)

    first = read_annotations(source, shape=SHAPE)
    write_annotations(tmp_path / f"copy{suffix}", first, shape=SHAPE)
    second = read_annotations(tmp_path / f"copy{suffix}", shape=SHAPE)

    assert [a.properties["label"] for a in first] == [3, 17, 40]
    assert [a.properties["label"] for a in second] == [1, 2, 3]
    assert first[1].origin == f"{source}: label 17"
    for a, b, value in zip(full_masks(first), full_masks(second), [3, 17, 40]):
        np.testing.assert_array_equal(a, labels == value)
        np.testing.assert_array_equal(a, b)
    assert all(a.polygon is None and a.tags == () for a in first)


def test_polygons_to_label_image_first_claim_wins(tmp_path):
    first, second = square(5, 5, 8), square(9, 9, 8)  # overlapping
    write_annotations(tmp_path / "labels.tif", [Annotation(polygon=first), Annotation(polygon=second)], shape=SHAPE)
    labels = tifffile.imread(tmp_path / "labels.tif")
    assert labels.dtype == np.uint16 and labels.shape == SHAPE
    np.testing.assert_array_equal(labels == 1, rasterize(first, SHAPE).to_full(SHAPE))
    np.testing.assert_array_equal(labels == 2, rasterize(second, SHAPE).to_full(SHAPE) & (labels != 1))


def test_mask_annotations_are_outlined_for_polygon_formats(tmp_path):
    masks = read_annotations(_write_labels(tmp_path / "truth.tif"))
    for suffix in (".json", ".geojson"):
        write_annotations(tmp_path / f"outlined{suffix}", masks, shape=SHAPE, tags="truth")
        back = read_annotations(tmp_path / f"outlined{suffix}", shape=SHAPE, tag="truth")
        # a label made of two pieces is outlined by its largest piece
        for a, b in zip(full_masks(masks), full_masks(back)):
            assert (b & ~a).sum() == 0 and b.sum() >= a.sum() // 2


def _write_labels(path, labels=None):
    tifffile.imwrite(path, label_image() if labels is None else labels)
    return path


def test_many_objects_need_uint32_tiff_and_do_not_fit_png(tmp_path):
    shape = (256, 257)
    annotations = [Annotation(mask=ObjectMask(i // 256, i % 256, np.ones((1, 1), bool))) for i in range(65536)]
    write_annotations(tmp_path / "many.tif", annotations, shape=shape)
    labels = tifffile.imread(tmp_path / "many.tif")
    assert labels.dtype == np.uint32 and labels.max() == 65536
    with pytest.raises(InputError, match=r"many\.png: a PNG label image holds at most 65535 objects, got 65536"):
        write_annotations(tmp_path / "many.png", annotations, shape=shape)
    assert not (tmp_path / "many.png").exists()


def test_write_overrides_tags_and_location(tmp_path):
    annotations = [Annotation(polygon=square(1, 1), tags=("old",), location=Location(z=5))]
    write_annotations(tmp_path / "o.json", annotations, shape=SHAPE, tags=["new", "found"], location=Location(xy=2))
    [back] = read_annotations(tmp_path / "o.json")
    assert back.tags == ("new", "found") and back.location == Location(xy=2)


def test_write_empty_list(tmp_path):
    for suffix in (".json", ".geojson", ".tif", ".png"):
        write_annotations(tmp_path / f"none{suffix}", [], shape=SHAPE)
        assert read_annotations(tmp_path / f"none{suffix}") == []


def test_write_leaves_no_temporary_files(tmp_path):
    out = tmp_path / "results"
    for suffix in (".json", ".geojson", ".tif", ".png"):
        write_annotations(out / f"found{suffix}", [Annotation(polygon=square(1, 1))], shape=SHAPE)
    assert sorted(os.listdir(out)) == ["found.geojson", "found.json", "found.png", "found.tif"]


def test_write_rejects_annotation_without_outline(tmp_path):
    with pytest.raises(ValueError, match="has neither polygon nor mask"):
        write_annotations(tmp_path / "x.json", [Annotation(origin="mine")], shape=SHAPE)
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("name", ["found.txt", "found", "found.jpg"])
def test_write_unknown_suffix_lists_supported(tmp_path, name):
    with pytest.raises(InputError) as excinfo:
        write_annotations(tmp_path / name, [Annotation(polygon=square(1, 1))], shape=SHAPE)
    text = str(excinfo.value)
    assert text.startswith(f"{tmp_path / name}: cannot write annotations as")
    assert ".json" in text and ".geojson" in text and ".tif" in text and ".png" in text


# --------------------------------------------------------------------------- reading variants


def test_nimbus_wrapper_object_skips_other_shapes_and_keeps_extra_keys(tmp_path):
    point = {"shape": "point", "tags": ["cell"], "coordinates": [{"x": 1, "y": 2}]}
    line = {"shape": "line", "tags": ["cell"], "coordinates": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}
    item = nimbus_item(square(1, 1), _id="65ab", datasetId="d1")
    path = write_json(tmp_path / "nimbus.json", {"annotations": [point, item, line]})

    click, a = read_annotations(path)  # points are clicks (tests/test_outline_points.py); lines are skipped

    # x = 1, y = 2 in pixel-corner coordinates: the centre of pixel (row 1, col 0) is (1.5, 0.5).
    assert click.point.tolist() == [1.5, 0.5] and click.polygon is None

    assert a.properties == {"_id": "65ab", "datasetId": "d1"}
    assert a.origin == f"{path}: annotations[1]"
    np.testing.assert_array_equal(a.polygon, square(1, 1))


def test_nimbus_closed_ring_and_missing_optional_keys(tmp_path):
    ring = [{"x": 1, "y": 1}, {"x": 5, "y": 1}, {"x": 5, "y": 4}, {"x": 1, "y": 1}]
    [a] = read_annotations(write_json(tmp_path / "a.json", [{"coordinates": ring}]))
    assert a.polygon.shape == (3, 2) and a.tags == () and a.location == Location() and a.channel == 0


def test_geojson_variants(tmp_path):
    hole = [[12.0, 12.0], [13.0, 12.0], [13.0, 13.0], [12.0, 12.0]]
    with_hole = feature(square(10, 10, 6), tags=["a"])
    with_hole["geometry"]["coordinates"].append(hole)
    multi = feature(square(1, 1), geometry_type="MultiPolygon", classification={"name": "Tumor", "color": [255, 0, 0]})
    multi["geometry"]["coordinates"].append(feature(square(20, 20))["geometry"]["coordinates"])
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}
    empty = {"type": "Feature", "geometry": None, "properties": {}}
    located = feature(square(30, 30), location={"XY": 1, "Z": 2, "Time": 0}, channel=2)
    located["id"] = "abc"
    path = write_json(tmp_path / "qupath.geojson", {"type": "FeatureCollection", "features": [with_hole, multi, point, empty, located]})

    annotations = read_annotations(path, shape=SHAPE)
    assert annotations.pop(3).point.tolist() == [1.5, 0.5]  # a click at x 1, y 2 (pixel-corner origin)

    assert [a.tags for a in annotations] == [("a",), ("Tumor",), ("Tumor",), ()]
    np.testing.assert_array_equal(annotations[0].polygon, square(10, 10, 6))  # hole ignored
    np.testing.assert_array_equal(annotations[2].polygon, square(20, 20))
    assert annotations[2].origin == f"{path}: features[1].geometry.coordinates[1]"
    assert annotations[3].location == Location(xy=1, z=2) and annotations[3].channel == 2
    assert annotations[3].properties == {"id": "abc"}


@pytest.mark.parametrize("document", ["list", "feature"])
def test_json_suffix_holding_geojson(tmp_path, document):
    features = [feature(square(2, 3), tags=["x"])]
    path = write_json(tmp_path / "export.json", features if document == "list" else features[0])
    [a] = read_annotations(path)
    np.testing.assert_array_equal(a.polygon, square(2, 3))
    assert a.origin == f"{path}: features[0].geometry.coordinates"


def test_vertices_on_the_border_are_inside(tmp_path):
    rows, cols = SHAPE
    border = np.array([[-0.5, -0.5], [-0.5, cols - 0.5], [rows - 0.5, cols - 0.5], [rows - 0.5, -0.5]])
    [a] = read_annotations(write_json(tmp_path / "b.json", [nimbus_item(border)]), shape=SHAPE)
    np.testing.assert_array_equal(a.polygon, border)


# --------------------------------------------------------------------------- filters


def _tagged_file(tmp_path):
    items = [
        nimbus_item(square(1, 1), tags=["YFP blob"]),
        nimbus_item(square(10, 10), tags=["YFP blob", "seed"], location=(0, 1, 0)),
        nimbus_item(square(20, 20), tags=["cell"], location=(2, 0, 3)),
        {key: value for key, value in nimbus_item(square(30, 30), tags=["YFP blob"]).items() if key != "location"},
    ]
    return write_json(tmp_path / "tagged.json", items)


def test_tag_filter(tmp_path):
    path = _tagged_file(tmp_path)
    assert len(read_annotations(path, tag="YFP blob")) == 3
    assert [a.origin for a in read_annotations(path, tag="seed")] == [f"{path}: annotations[1]"]


def test_unknown_tag_lists_existing_tags_with_counts(tmp_path):
    path = _tagged_file(tmp_path)
    assert error_text(path, tag="nucleus") == (
        f"{path}: tags: no annotation has the tag 'nucleus'; tags present: 'YFP blob' (3), 'cell' (1), 'seed' (1)"
    )


def test_location_filter_missing_location_counts_as_origin(tmp_path):
    path = _tagged_file(tmp_path)
    at_origin = read_annotations(path, location=Location())
    assert [a.origin.rsplit(": ", 1)[1] for a in at_origin] == ["annotations[0]", "annotations[3]"]
    assert len(read_annotations(path, tag="YFP blob", location=Location(z=1))) == 1


def test_empty_location_lists_existing_locations(tmp_path):
    path = _tagged_file(tmp_path)
    text = error_text(path, location=Location(xy=5))
    assert text.startswith(f"{path}: location: no annotation at XY=5, Z=0, Time=0; annotations are at: ")
    assert "XY=0, Z=0, Time=0 (2)" in text and "XY=0, Z=1, Time=0 (1)" in text and "XY=2, Z=0, Time=3 (1)" in text


def test_label_image_ignores_tag_and_takes_location(tmp_path):
    path = _write_labels(tmp_path / "truth.tif")
    annotations = read_annotations(path, tag="anything", location=Location(xy=3, z=1))
    assert len(annotations) == 3 and all(a.location == Location(xy=3, z=1) for a in annotations)


def test_a_click_table_like_a_label_image_ignores_tag_and_takes_location(tmp_path):
    # A .csv of clicks holds one frame's objects and no tags: --tag / --negative-tag cannot
    # empty it (it said "no polygon annotation has the tag ...; tags present: none"), and a
    # location places its clicks there, as it places a label image's objects.
    path = tmp_path / "clicks.csv"
    path.write_text("x,y\n7.5,5.5\n3.5,2.5\n")
    clicks = read_annotations(path, shape=(20, 20), tag="YFP blob", location=Location(xy=2, z=1))
    assert len(clicks) == 2 and all(a.location == Location(xy=2, z=1) for a in clicks)
    np.testing.assert_allclose([a.point for a in clicks], [[5.0, 7.0], [2.0, 3.0]])
    assert "outside" in error_text(path, shape=(4, 4))


def test_a_file_without_tags_says_so_when_a_tag_is_asked_for(tmp_path):
    path = write_json(tmp_path / "untagged.json", [nimbus_item(square(1, 1), tags=[])])
    assert error_text(path, tag="YFP blob") == (
        f"{path}: tags: no annotation has the tag 'YFP blob'; its annotations carry no tags: leave the tag out "
        "to take them all")


def test_available_tags():
    annotations = [Annotation(tags=("b", "a")), Annotation(tags=("a",)), Annotation()]
    assert available_tags(annotations) == {"a": 2, "b": 1}
    assert list(available_tags([Annotation(tags=("z",)), Annotation(tags=("y",))])) == ["y", "z"]


# --------------------------------------------------------------------------- errors

GOOD = [{"x": 1, "y": 1}, {"x": 5, "y": 1}, {"x": 5, "y": 4}]
TOP_LEVEL = "expected a list of NimbusImage annotations, an object with an 'annotations' list, or a GeoJSON FeatureCollection"


def _with(**changes) -> list:
    """A valid two-annotation NimbusImage list whose second item has ``changes``."""
    second = {"shape": "polygon", "tags": ["cell"], "coordinates": GOOD, **changes}
    return [nimbus_item(square(1, 1)), {k: v for k, v in second.items() if v is not None}]


NIMBUS_ERRORS = [
    ("missing coordinates", _with(coordinates=None), "annotations[1].coordinates: missing"),
    ("coordinates not a list", _with(coordinates={"x": 1}), "annotations[1].coordinates: expected a list of"),
    ("point without y", _with(coordinates=[{"x": 1}, *GOOD]), "annotations[1].coordinates[0]: expected a point"),
    ("non-numeric x", _with(coordinates=[*GOOD, {"x": "3", "y": 2}]), "annotations[1].coordinates[3].x: expected a number, got a string"),
    ("boolean y", _with(coordinates=[*GOOD, {"x": 3, "y": True}]), "annotations[1].coordinates[3].y: expected a number"),
    ("two points", _with(coordinates=GOOD[:2]), "annotations[1].coordinates: a polygon needs at least 3 distinct vertices"),
    ("collinear", _with(coordinates=[{"x": 0, "y": 0}, {"x": 1, "y": 1}, {"x": 2, "y": 2}]), "annotations[1].coordinates: polygon has zero area"),
    (
        "bow tie",
        _with(coordinates=[{"x": 0, "y": 0}, {"x": 4, "y": 4}, {"x": 4, "y": 0}, {"x": 0, "y": 6}]),
        "annotations[1].coordinates: polygon is not simple",
    ),
    ("infinite", _with(coordinates=[*GOOD, {"x": float("inf"), "y": 1}]), "annotations[1].coordinates: vertex coordinates must be finite"),
    ("tags not a list", _with(tags="cell"), "annotations[1].tags: expected a list of tag strings, got a string"),
    ("negative Z", _with(location={"XY": 0, "Z": -1, "Time": 0}), "annotations[1].location.Z: expected a non-negative integer, got -1"),
    ("location not an object", _with(location=[0, 0, 0]), "annotations[1].location: expected an object"),
    ("channel not an int", _with(channel="YFP"), "annotations[1].channel: expected a non-negative integer, got a string"),
    ("item not an object", [nimbus_item(square(1, 1)), [1, 2]], "annotations[1]: expected an annotation object, got a list"),
    ("wrapper holds no list", {"annotations": {"a": 1}}, "annotations: expected a list of annotations, got an object"),
    ("number", 42, f"{TOP_LEVEL}; got a number"),
    ("other object", {"images": []}, f"{TOP_LEVEL}; got an object with keys 'images'"),
]


@pytest.mark.parametrize("document, expected", [case[1:] for case in NIMBUS_ERRORS], ids=[case[0] for case in NIMBUS_ERRORS])
def test_nimbus_errors_name_file_and_field(tmp_path, document, expected):
    path = write_json(tmp_path / "examples.json", document)
    assert error_text(path).startswith(f"{path}: {expected}")


def _feature_with(**geometry) -> dict:
    return {"type": "Feature", "geometry": {"type": "Polygon", **geometry}, "properties": {}}


GEOJSON_ERRORS = [
    ("no features", {"type": "FeatureCollection"}, "features: expected the list of GeoJSON features, got null"),
    ("feature not an object", {"type": "FeatureCollection", "features": ["x"]}, "features[0]: expected a GeoJSON Feature object, got a string"),
    ("missing geometry", [feature(square(1, 1)), {"type": "Feature", "properties": {}}], "features[1].geometry: missing"),
    ("geometry not an object", [{"type": "Feature", "geometry": [1, 2]}], "features[0].geometry: expected a GeoJSON geometry object"),
    ("no coordinates", [_feature_with()], "features[0].geometry.coordinates: missing: a Polygon needs coordinates"),
    ("no rings", [_feature_with(coordinates=[])], "features[0].geometry.coordinates: expected a list of linear rings"),
    ("ring not a list", [_feature_with(coordinates=[5])], "features[0].geometry.coordinates[0]: expected a linear ring"),
    ("short position", [_feature_with(coordinates=[[[1, 1], [2], [3, 1]]])], "features[0].geometry.coordinates[0][1]: expected a position [x, y]"),
    ("string y", [_feature_with(coordinates=[[[1, 1], [2, "a"], [3, 1]]])], "features[0].geometry.coordinates[0][1][1]: expected a number"),
    ("degenerate", [_feature_with(coordinates=[[[1, 1], [2, 2], [1, 1]]])], "features[0].geometry.coordinates[0]: a polygon needs at least 3"),
    (
        "bad multipolygon part",
        [{"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 0], [0, 4], [4, 4]]], [[[0, 0], [1, 1], [2, 2]]]]}}],
        "features[0].geometry.coordinates[1][0]: polygon has zero area",
    ),
    ("properties not an object", [{**feature(square(1, 1)), "properties": [1]}], "features[0].properties: expected an object, got a list"),
    ("tags not strings", [feature(square(1, 1), tags=[1, 2])], "features[0].properties.tags: expected a list of tag strings"),
    ("bad classification", [feature(square(1, 1), classification="Tumor")], "features[0].properties.classification: expected an object like"),
    ("bad location", [feature(square(1, 1), location={"Time": 1.5})], "features[0].properties.location.Time: expected a non-negative integer, got 1.5"),
]


@pytest.mark.parametrize("document, expected", [case[1:] for case in GEOJSON_ERRORS], ids=[case[0] for case in GEOJSON_ERRORS])
def test_geojson_errors_name_file_and_field(tmp_path, document, expected):
    path = write_json(tmp_path / "truth.geojson", document)
    assert error_text(path).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[{"shape": "polygon", "coordinates": [', "line 1:39: not valid JSON (Expecting value)"),
        ('[\n  {"shape": "polygon"\n  "tags": []}\n]', "line 3:3: not valid JSON (Expecting ',' delimiter)"),
        ("<xml/>", "line 1:1: not valid JSON"),
        ("", "the file is empty"),
        ("   \n", "the file is empty"),
    ],
)
def test_invalid_json_gives_line_and_column(tmp_path, text, expected):
    path = tmp_path / "broken.json"
    path.write_text(text)
    assert error_text(path).startswith(f"{path}: {expected}")


def test_binary_json_file(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert error_text(path).startswith(f"{path}: not a JSON text file (not UTF-8")


@pytest.mark.parametrize(
    "polygon, how, vertex",
    [
        (square(37, 10, 8), "mostly", "x 18.5, y 45.5"),
        (square(-20, -30, 5), "wholly", "x -29.5, y -19.5"),
        (square(10, 49.4, 0.5), "mostly", "x 50.4, y 10.5"),
    ],
)
def test_polygons_outside_the_frame(tmp_path, polygon, how, vertex):
    path = write_json(tmp_path / "examples.json", [nimbus_item(square(1, 1)), nimbus_item(polygon)])
    text = error_text(path, shape=SHAPE)
    assert text.startswith(f"{path}: annotations[1]: polygon lies {how} outside the 40 x 50 (rows x cols) frame: vertex at {vertex}")
    assert "vertices must be within x 0..50 and y 0..40 (pixel-corner coordinates)" in text
    assert len(read_annotations(path)) == 2  # no shape, no check


def test_a_polygon_mostly_inside_is_clipped_with_one_note(tmp_path):
    path = write_json(tmp_path / "examples.json", [nimbus_item(square(1, 1)), nimbus_item(square(36, 10, 5))])
    first, clipped = read_annotations(path, shape=SHAPE)
    assert "repaired" not in first.properties
    assert clipped.polygon[:, 0].max() == SHAPE[0] - 0.5  # the frame's bottom edge
    assert repairs([first, clipped], coordinates="pixel-corner") == [
        f"{path}: annotations[1]: repaired (centre x 13, y 38.25): reached 1.5 px outside the 40 x 50 frame: clipped to it"]


def test_a_slightly_self_crossing_outline_is_made_simple(tmp_path):
    loop = [[10, 10], [10, 30], [30, 30], [30, 10], [11, 10], [9, 11]]  # the pen crossed the first edge again
    figure_eight = [[0, 0], [4, 4], [0, 4], [4, 0]]
    path = write_json(tmp_path / "examples.json", [nimbus_item(np.array(loop, float))])
    [a] = read_annotations(path, shape=SHAPE)
    assert Polygon(a.polygon).is_valid and abs(Polygon(a.polygon).area - 400) < 2
    assert repairs([a])[0].startswith(f"{path}: annotations[0]: repaired (centre x ")
    assert repairs([a])[0].endswith("crossed itself: made simple, 100% of its area kept")
    write_json(path, [nimbus_item(np.array(figure_eight, float))])
    assert error_text(path, shape=SHAPE).startswith(f"{path}: annotations[0].coordinates: polygon is not simple "
                                                    "(Self-intersection[2.5 2.5]): its largest simple part holds only 50%")


def test_outside_check_applies_after_filtering(tmp_path):
    path = write_json(tmp_path / "examples.json", [nimbus_item(square(1, 1)), nimbus_item(square(100, 100), tags=["other"])])
    assert len(read_annotations(path, shape=SHAPE, tag="cell")) == 1


def test_geojson_outside_names_the_feature(tmp_path):
    path = write_json(tmp_path / "t.geojson", [feature(square(1, 1)), feature(square(1, 60))])
    assert error_text(path, shape=SHAPE).startswith(f"{path}: features[1].geometry.coordinates: polygon lies wholly outside")


@pytest.mark.parametrize(
    "labels, expected",
    [
        (label_image().astype(np.float32), "dtype: a label image must hold integers; got float32 pixels"),
        (np.stack([label_image()] * 2), "axes: expected a 2-D label image (one integer per pixel); got axes"),
        (label_image((30, 50)), "shape: label image is 30 x 50 (rows x cols) but the frame is 40 x 50"),
        (label_image(dtype=np.int16) - 1, "dtype: a label image must not hold negative values; found -1"),
    ],
)
def test_bad_label_images(tmp_path, labels, expected):
    path = tmp_path / "truth.tif"
    tifffile.imwrite(path, labels, photometric="minisblack")
    assert error_text(path, shape=SHAPE).startswith(f"{path}: {expected}")


def test_rgb_png_is_not_a_label_image(tmp_path):
    path = tmp_path / "truth.png"
    iio.imwrite(path, np.zeros(SHAPE + (3,), np.uint8))
    assert error_text(path).startswith(f"{path}: axes: expected a 2-D label image")


def test_palette_png_label_image_gives_indices(tmp_path):
    from PIL import Image

    path = tmp_path / "palette.png"
    image = Image.fromarray(label_image(dtype=np.uint8)).convert("P")  # keeps values as palette indices
    image.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, 255 - i)])
    image.save(path)
    annotations = read_annotations(path, shape=SHAPE)
    assert [a.properties["label"] for a in annotations] == [3, 17, 40]
    np.testing.assert_array_equal(full_masks(annotations)[1], label_image() == 17)


def test_boolean_label_image_is_one_object(tmp_path):
    path = tmp_path / "mask.tif"
    tifffile.imwrite(path, label_image() > 0)
    [a] = read_annotations(path, shape=SHAPE)
    np.testing.assert_array_equal(a.to_mask(SHAPE).to_full(SHAPE), label_image() > 0)


def test_huge_label_values(tmp_path):
    labels = label_image(dtype=np.uint32)
    labels[labels == 40] = 4_000_000_000
    annotations = read_annotations(_write_labels(tmp_path / "big.tif", labels))
    assert [a.properties["label"] for a in annotations] == [3, 17, 4_000_000_000]
    np.testing.assert_array_equal(labels_from_masks([a.mask for a in annotations], SHAPE) > 0, labels > 0)


@pytest.mark.parametrize(
    "name, make, expected",
    [
        ("missing.json", lambda p: None, "no such file"),
        ("folder.geojson", lambda p: p.mkdir(), "is a directory"),
        ("missing.tif", lambda p: None, "no such file"),
        ("corrupt.tif", lambda p: p.write_bytes(b"II*\x00garbage"), "cannot read it as TIFF"),
        ("corrupt.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\nnope"), "cannot read it as an image"),
        ("notes.txt", lambda p: p.write_text("[]"), "cannot read annotations from a .txt file; expected one of .json, .geojson, .tif, .tiff, .png"),
    ],
)
def test_unreadable_annotation_files(tmp_path, name, make, expected):
    path = tmp_path / name
    make(path)
    assert error_text(path).startswith(f"{path}: {expected}")


# --------------------------------------------------------------------------- the platform's coordinates


def _one_pixel(row: int, col: int) -> list[list[float]]:
    """The outline of pixel (row, col) as ``[x, y]`` pixel corners: (col, row)..(col + 1, row + 1)."""
    return [[col, row], [col + 1, row], [col + 1, row + 1], [col, row + 1]]


@pytest.mark.parametrize("suffix", [".json", ".geojson"])
@pytest.mark.parametrize("row, col", [(0, 0), (7, 3), (SHAPE[0] - 1, SHAPE[1] - 1)])
def test_one_pixel_square_is_that_pixel(tmp_path, suffix, row, col):
    corners = _one_pixel(row, col)
    if suffix == ".json":
        document = [{"shape": "polygon", "tags": ["px"], "coordinates": [{"x": x, "y": y} for x, y in corners]}]
    else:
        document = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [corners + corners[:1]]}, "properties": {}}]}
    path = write_json(tmp_path / f"px{suffix}", document)

    [a] = read_annotations(path, shape=SHAPE)

    expected = np.zeros(SHAPE, bool)
    expected[row, col] = True
    np.testing.assert_array_equal(a.to_mask(SHAPE).to_full(SHAPE), expected)


def _box_file(path, box, suffix):
    """A file of one polygon with ``box``'s ``[x, y]`` vertices (pixel-corner), NimbusImage or GeoJSON."""
    if suffix == ".json":
        document = [{"shape": "polygon", "coordinates": [{"x": x, "y": y} for x, y in box]}]
    else:
        document = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [box + box[:1]]}, "properties": {}}]
    return write_json(path, document)


@pytest.mark.parametrize("suffix", [".json", ".geojson"])
def test_polygon_touching_the_bottom_right_edge_is_inside(tmp_path, suffix):
    rows, cols = SHAPE
    # the last 3 rows and 4 columns: vertices on y = height and x = width
    box = [[cols - 4, rows - 3], [cols, rows - 3], [cols, rows], [cols - 4, rows]]
    path = _box_file(tmp_path / f"edge{suffix}", box, suffix)

    [a] = read_annotations(path, shape=SHAPE)

    expected = np.zeros(SHAPE, bool)
    expected[rows - 3 :, cols - 4 :] = True
    np.testing.assert_array_equal(a.to_mask(SHAPE).to_full(SHAPE), expected)
    # half a pixel further, as a hand-drawn outline goes: clipped to the frame, and said so
    box[1][0] = box[2][0] = cols + 0.5
    [a] = read_annotations(_box_file(path, box, suffix), shape=SHAPE)
    np.testing.assert_array_equal(a.to_mask(SHAPE).to_full(SHAPE), expected)
    assert a.polygon[:, 1].max() == cols - 0.5
    assert repairs([a], coordinates="pixel-corner") == [
        f"{a.origin}: repaired (centre x {cols - 2:g}, y {rows - 1.5:g}): reached 0.5 px outside the {rows} x {cols} "
        "frame: clipped to it"]
    # further still, mostly outside: refused, in the file's own terms
    box[1][0] = box[2][0] = cols + 8
    assert f"polygon lies mostly outside the {rows} x {cols} (rows x cols) frame: vertex at x {cols + 8:g}, y {rows - 3}" \
        in error_text(_box_file(path, box, suffix), shape=SHAPE)


@pytest.mark.parametrize("suffix", [".json", ".geojson"])
def test_written_pixels_are_read_back_as_the_same_pixels(tmp_path, suffix):
    """Masks -> pixel outlines (on the pixels' edges: the frame's grid lines in the file) -> the same masks."""
    labels = label_image()
    masks = [m for m in read_annotations(_write_labels(tmp_path / "truth.tif", labels))]
    path = tmp_path / f"out{suffix}"

    write_annotations(path, masks, shape=SHAPE)
    back = read_annotations(path, shape=SHAPE)

    text = path.read_text()
    document = json.loads(text)
    first = document[0]["coordinates"] if suffix == ".json" else [
        {"x": x, "y": y} for x, y in document["features"][0]["geometry"]["coordinates"][0]]
    xs, ys = [p["x"] for p in first], [p["y"] for p in first]
    assert (min(xs), min(ys), max(xs), max(ys)) == (3, 2, 9, 6)  # label 3 covers rows 2-5, cols 3-8
    for k in (0, 2):  # labels 3 and 40 (17 is in two pieces: a polygon keeps the larger)
        np.testing.assert_array_equal(back[k].to_mask(SHAPE).to_full(SHAPE), masks[k].mask.to_full(SHAPE))


def test_pixel_centre_option_reads_and_writes_the_old_convention(tmp_path):
    polygon = square(1.5, 2.25)
    path = tmp_path / "old.json"

    write_annotations(path, [Annotation(polygon=polygon)], shape=SHAPE, coordinates="pixel-centre")
    assert json.loads(path.read_text())[0]["coordinates"][0] == {"x": 2.25, "y": 1.5}
    [centre] = read_annotations(path, shape=SHAPE, coordinates="pixel-centre")
    [corner] = read_annotations(path, shape=SHAPE)

    np.testing.assert_allclose(centre.polygon, polygon)
    np.testing.assert_allclose(corner.polygon, polygon - 0.5)
    with pytest.raises(ValueError, match="coordinates must be one of pixel-corner, pixel-centre"):
        read_annotations(path, coordinates="centre")


def test_clicks_are_written_as_points_and_read_back(tmp_path):
    clicks = [Annotation(point=np.array([5.0, 7.0]), tags=("cell",), location=Location(z=1)),
              Annotation(point=np.array([0.0, 19.0]), tags=("cell",), location=Location(z=1))]
    square = Annotation(polygon=np.array([[1.0, 1.0], [1.0, 4.0], [4.0, 4.0], [4.0, 1.0]]), tags=("cell",))
    for suffix in (".json", ".geojson"):
        path = tmp_path / f"mixed{suffix}"
        write_annotations(path, [*clicks, square], shape=(20, 20))
        back = read_annotations(path, shape=(20, 20))
        assert [a.point is not None for a in back] == [True, True, False]
        np.testing.assert_allclose([a.point for a in back[:2]], [[5.0, 7.0], [0.0, 19.0]])
        assert back[0].location == Location(z=1) and back[0].tags == ("cell",)
    first = json.loads((tmp_path / "mixed.json").read_text())[0]
    assert first["shape"] == "point" and first["coordinates"] == [{"x": 7.5, "y": 5.5}]
    feature = json.loads((tmp_path / "mixed.geojson").read_text())["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [7.5, 5.5]}
    path = tmp_path / "clicks.csv"
    write_annotations(path, clicks, shape=(20, 20), coordinates="pixel-centre")
    assert path.read_text() == "x,y\n7.0,5.0\n19.0,0.0\n"
    np.testing.assert_allclose([a.point for a in read_annotations(path, coordinates="pixel-centre")],
                               [[5.0, 7.0], [0.0, 19.0]])


def test_a_click_table_refuses_outlines_and_a_label_image_refuses_clicks(tmp_path):
    click = Annotation(point=np.array([5.0, 7.0]))
    square = Annotation(polygon=np.array([[1.0, 1.0], [1.0, 4.0], [4.0, 4.0], [4.0, 1.0]]), origin="ex.json: annotations[3]")
    with pytest.raises(InputError, match=r"holds clicks only; 1 annotation\(s\) are outlines \(first: ex.json: annotations\[3\]\)"):
        write_annotations(tmp_path / "x.csv", [click, square], shape=(20, 20))
    with pytest.raises(ValueError, match="a click is written to .json, .geojson or .csv"):
        write_annotations(tmp_path / "x.tif", [click], shape=(20, 20))
    assert not list(tmp_path.iterdir())
