"""fewseg's napari reader and writer in a real napari (Qt under Xvfb): label images open as
Labels and round-trip, plain stacks say how they were read (and the file's name says
otherwise), outlines drawn on a time-lapse are saved at their time point."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")

try:  # torch before any OpenGL context, as tests/test_napari.py does (triton's LLVM after Mesa's segfaults)
    import torchvision  # noqa: F401
except ImportError:
    pass

import tifffile  # noqa: E402

from fewseg.cli import main  # noqa: E402
from fewseg.demo import make_demo  # noqa: E402
from fewseg.io.annotations import read_annotations, write_annotations  # noqa: E402
from fewseg.objects import Location, labels_from_masks  # noqa: E402
from napari_session import WIDGET  # noqa: E402

STARDIST_MASK = Path(__file__).resolve().parents[1] / "data" / "stardist" / "mask2d.tif"


def _save(viewer, layer, path, plugin="fewseg"):
    viewer.layers.selection = {layer}
    written = viewer.layers.save(str(path), selected=True, plugin=plugin)
    assert written == [str(path)]
    return path


def _demo_labels(shape=(120, 140)) -> np.ndarray:
    _, truth = make_demo(seed=5, shape=shape, n_blobs=12)
    return labels_from_masks([t.to_mask(shape) for t in truth], shape).astype(np.uint16)


def _same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label images hold the same objects, whatever their ids."""
    pairs = {(int(x), int(y)) for x, y in zip(a.ravel(), b.ravel())}
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs}) and (0, 0) in pairs


# --------------------------------------------------------------------------- label images


def _stardist_or_demo(path):
    if STARDIST_MASK.exists():
        shutil.copy(STARDIST_MASK, path)  # stardist's own truth file, as a user opens it
    else:
        tifffile.imwrite(path, _demo_labels())
    return tifffile.imread(path)


def _unnamed(path):  # no name hint, no mark: flat whole numbers on 0
    labels = _demo_labels()
    tifffile.imwrite(path, labels)
    return labels


def _fewseg_written(path):  # marked by fewseg's label writer
    _, truth = make_demo(seed=5, shape=(120, 140), n_blobs=12)
    write_annotations(path, truth, shape=(120, 140))
    return tifffile.imread(path)


@pytest.mark.parametrize("name, make, why", [
    ("mask2d.tif", _stardist_or_demo, "its name says labels"),
    ("untitled.tif", _unnamed, "its pixels are whole numbers in flat areas on a background of 0"),
    ("found.tif", _fewseg_written, "fewseg saved it as labels"),
])
def test_a_truth_label_tiff_opens_as_labels_never_as_a_channel(make_napari_viewer, tmp_path, name, make, why):
    path = tmp_path / name
    labels = make(path)
    frame, _ = make_demo(seed=5, shape=labels.shape, n_blobs=12)
    image = tmp_path / "frame.ome.tif"
    tifffile.imwrite(image, frame.data.astype(np.uint16), metadata={"axes": "CYX", "Channel": {"Name": ["BF", "YFP"]}})
    viewer = make_napari_viewer()
    viewer.open(image, plugin="fewseg")
    [layer] = viewer.open(path, plugin="fewseg")
    assert type(layer).__name__ == "Labels"
    np.testing.assert_array_equal(layer.data, labels)
    assert layer.metadata["fewseg"]["why"] == why
    _, widget = viewer.window.add_plugin_dock_widget("fewseg", WIDGET)
    assert [c.name for c in widget.channels.value] == ["BF", "YFP"]  # the truth is no input channel
    assert layer not in widget.channels.choices


def test_images_of_whole_numbers_stay_images(make_napari_viewer, tmp_path):
    noisy = np.random.default_rng(0).integers(90, 4000, (60, 70)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", noisy)
    dark = np.zeros((60, 70), np.uint8)
    dark[10:30, 10:40] = np.random.default_rng(1).integers(1, 255, (20, 30))  # 0 most common, not flat
    tifffile.imwrite(tmp_path / "dark.tif", dark)
    viewer = make_napari_viewer()
    for name in ("cells.tif", "dark.tif"):
        [layer] = viewer.open(tmp_path / name, plugin="fewseg")
        assert type(layer).__name__ == "Image", name


def test_labels_saved_by_fewseg_or_napari_reopen_as_labels(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    painted = np.zeros((50, 60), np.int32)
    painted[5:15, 5:20], painted[30:45, 30:40] = 7, 3
    layer = viewer.add_labels(painted, name="painted")
    for plugin, path in (("fewseg", tmp_path / "painted.tif"), ("napari", tmp_path / "untitled.tif")):
        _save(viewer, layer, path, plugin=plugin)
        [again] = viewer.open(path, plugin="fewseg")
        assert type(again).__name__ == "Labels", plugin
        assert _same_objects(np.asarray(again.data), painted), plugin
    # A stack keeps its ids and its axis: time, as the layer's axis labels name it.
    stack = np.zeros((3, 50, 60), np.uint16)
    stack[1, 5:15, 5:20], stack[2, 30:45, 30:40] = 4, 9
    movie = viewer.add_labels(stack, name="movie", axis_labels=("time", "y", "x"))
    saved = _save(viewer, movie, tmp_path / "movie_labels.tif")
    [again] = viewer.open(saved, plugin="fewseg")
    assert type(again).__name__ == "Labels" and again.metadata["fewseg"]["axes"] == ["time"]
    assert tuple(again.axis_labels) == ("time", "y", "x")
    np.testing.assert_array_equal(again.data, stack)


# --------------------------------------------------------------------------- plain stacks


def _movie(path) -> tuple[np.ndarray, list]:
    """A time-lapse saved as a plain 3-D TIFF: 5 demo frames (YFP), no axis names."""
    planes, truths = [], []
    for t in range(5):
        frame, truth = make_demo(seed=60 + t, shape=(128, 128), n_blobs=16)
        planes.append(frame.data[frame.channel_names.index("YFP")])
        truths.append(truth)
    data = np.stack(planes).astype(np.uint16)
    tifffile.imwrite(path, data)
    return data, truths


def test_a_plain_stack_says_how_it_was_read(make_napari_viewer, tmp_path, messages):
    data, _ = _movie(tmp_path / "movie.tif")
    viewer = make_napari_viewer()
    [layer] = viewer.open(tmp_path / "movie.tif", plugin="fewseg")  # one channel of 5 planes, not 5 channels
    assert layer.data.shape == (5, 128, 128) and tuple(layer.axis_labels) == ("z", "y", "x")
    note = ("read movie.tif as ZYX (5 x 128 x 128): 5 Z planes; name the file movie.TYX.tif if they are time points, "
            "movie.CYX.tif if channels")
    assert note in [m for _, m in messages]
    assert layer.metadata["fewseg"]["axes_note"] == note
    # Renamed as the note says: time points, and napari's slider is named so.
    shutil.copy(tmp_path / "movie.tif", tmp_path / "movie.TYX.tif")
    [timed] = viewer.open(tmp_path / "movie.TYX.tif", plugin="fewseg")
    assert timed.metadata["fewseg"]["axes"] == ["time"] and tuple(timed.axis_labels) == ("time", "y", "x")
    assert "read movie.TYX.tif as TYX (5 x 128 x 128), as its name says" in [m for _, m in messages]
    np.testing.assert_array_equal(timed.data, data.astype(np.float32))
    shutil.copy(tmp_path / "movie.tif", tmp_path / "movie.CYX.tif")
    assert len(viewer.open(tmp_path / "movie.CYX.tif", plugin="fewseg")) == 5


# --------------------------------------------------------------------------- the writer: Time saved as Time


def test_outlines_drawn_at_t1_are_saved_at_time_1_and_the_cli_reads_them(make_napari_viewer, tmp_path, capsys):
    _, truths = _movie(tmp_path / "movie.TYX.tif")
    viewer = make_napari_viewer()
    [image] = viewer.open(tmp_path / "movie.TYX.tif", plugin="fewseg")
    viewer.dims.set_current_step(0, 1)  # the user moves to t = 1
    viewer.layers.selection.active = image
    viewer.window._qt_viewer.layerButtons.newShapesButton.click()  # napari's "new shapes layer" button
    shapes = viewer.layers[-1]
    assert type(shapes).__name__ == "Shapes" and tuple(shapes.axis_labels) == ("time", "y", "x")
    shapes.add_polygons([np.column_stack([np.full(len(t.polygon), 1.0), t.polygon]) for t in truths[1][:10]])
    saved = _save(viewer, shapes, tmp_path / "examples.json")
    assert {(a["location"]["Time"], a["location"]["Z"]) for a in json.loads(saved.read_text())} == {(1, 0)}
    assert {a.location for a in read_annotations(saved)} == {Location(time=1)}
    out = tmp_path / "found.json"
    code = main(["segment", str(tmp_path / "movie.TYX.tif"), "--examples", str(saved), "--batch-t", "all",
                 "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out.with_name("found.json.fewseg.json").read_text())
    assert record["fit_location"] == {"XY": 0, "Z": 0, "Time": 1} and record["n_examples"] == 10
    assert [f["time"] for f in record["frames"]] == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- small outline mistakes


def test_small_outline_mistakes_are_repaired_named_and_selected(make_napari_viewer, qtbot, messages):
    frame, truth = make_demo(seed=5, shape=(160, 160), n_blobs=25)
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    past_edge = np.array([[20.0, -1.0], [20, 8], [28, 8], [28, -1]])  # half a pixel past the left edge (-0.5)
    loop = np.array([[100.0, 100], [100, 112], [112, 112], [112, 100], [101, 100], [99, 101]])  # crosses itself a little
    layer = viewer.add_shapes([t.polygon for t in truth[:8]] + [past_edge, loop], shape_type="polygon", name="examples")
    _, widget = viewer.window.add_plugin_dock_widget("fewseg", WIDGET)
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=180_000)
    warnings = [m for s, m in messages if s == "warning" and "repaired" in m]
    assert warnings == [
        "examples: shapes[8]: repaired at row 24, col 4 (selected): reached 0.5 px outside the 160 x 160 frame: "
        "clipped to it",
        "examples: shapes[9]: repaired at row 106, col 106 (selected): crossed itself: made simple, 100% of its area kept"]
    assert layer.selected_data == {8, 9}
    assert not [m for s, m in messages if s == "error"]
    assert widget.status.value.startswith("found ")  # the run went on
    # A figure of eight is still refused, in one line naming the shape.
    layer.data = [t.polygon for t in truth[:8]] + [np.array([[40.0, 40], [60, 60], [40, 60], [60, 40]])]
    widget.find_button.native.click()
    assert [m for s, m in messages if s == "error"] == [
        "examples: shapes[8]: polygon is not simple (Self-intersection[50 50]): its largest simple part holds only 50% "
        "of its area; expected a non-self-intersecting outline"]


def test_a_segment_stack_output_reopens_as_labels_along_its_frames(tmp_path, capsys):
    from fewseg.napari.reader import get_reader

    _, truths = _movie(tmp_path / "movie.TYX.tif")
    write_annotations(tmp_path / "ex.json", truths[0][:10], shape=(128, 128), location=Location())
    out = tmp_path / "found.tif"
    assert main(["segment", str(tmp_path / "movie.TYX.tif"), "--examples", str(tmp_path / "ex.json"), "--t", "0",
                 "--batch-t", "0-2", "-o", str(out)]) == 0, capsys.readouterr().err
    [(data, kwargs, kind)] = get_reader(str(out))(str(out))
    assert kind == "labels" and data.shape == (3, 128, 128)  # three frames, not three channels
    assert kwargs["metadata"]["fewseg"]["why"] == "fewseg saved it as labels"
    np.testing.assert_array_equal(data, tifffile.imread(out))


def test_results_reopen_green_and_examples_cyan(tmp_path, capsys):
    """Results fewseg wrote (every outline scored) reopen outlined as the widget outlines
    results; examples keep the examples' colour, so the two are not taken for each other."""
    from fewseg.napari.layers import FOUND_EDGE
    from fewseg.napari.reader import get_reader

    frame, truth = make_demo(seed=5, shape=(160, 160), n_blobs=25)
    from fewseg.io.frames import write_frame

    write_frame(tmp_path / "frame.ome.tif", frame)
    write_annotations(tmp_path / "examples.geojson", truth[:8], shape=frame.shape)
    out = tmp_path / "found.geojson"
    assert main(["segment", str(tmp_path / "frame.ome.tif"), "--examples", str(tmp_path / "examples.geojson"),
                 "-o", str(out)]) == 0, capsys.readouterr().err
    [(found, found_kwargs, kind)] = get_reader(str(out))(str(out))
    assert kind == "shapes" and len(found) > 8 and found_kwargs["edge_color"] == FOUND_EDGE
    [(_, example_kwargs, _)] = get_reader(str(tmp_path / "examples.geojson"))(str(tmp_path / "examples.geojson"))
    assert example_kwargs["edge_color"] == "#00ffff"
