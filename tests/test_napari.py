"""The napari plugin in a real napari (Qt, OpenGL under Xvfb), driven as a user would.

``scripts/setup`` installs napari, PyQt6, pytest-qt, pytest-xvfb and Xvfb itself, so
these run (not skip) on a fresh machine and in CI. pytest-xvfb starts the X server for
the session; viewers that are screenshotted are shown (a hidden one renders black).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

napari = pytest.importorskip("napari")

try:  # torch before any OpenGL context: triton's LLVM, loaded after Mesa's (llvmpipe, as under Xvfb), segfaults
    import torchvision  # noqa: F401
except ImportError:
    pass

import tifffile  # noqa: E402

from fewseg.io.annotations import read_annotations, write_annotations  # noqa: E402
from fewseg.config import SegmentConfig  # noqa: E402
from fewseg.demo import make_demo  # noqa: E402
from fewseg.evaluate import run_evaluation, split_examples  # noqa: E402
from fewseg.match import rediscovered  # noqa: E402
from fewseg.napari.widget import FindObjects  # noqa: E402
from fewseg.objects import Annotation, Location, masks_from_labels  # noqa: E402
from napari_session import WIDGET, open_widget  # noqa: E402



def click_and_wait(qtbot, widget: FindObjects, button, timeout=180_000):
    button.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def green_pixels(viewer) -> int:
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    return int(((shot[..., 1] > 180) & (shot[..., 0] < 90) & (shot[..., 2] < 90)).sum())


def result_layers(viewer):
    roles = {(layer.metadata.get("fewseg") or {}).get("role"): layer for layer in viewer.layers}
    return roles.get("found labels"), roles.get("found shapes")


# --------------------------------------------------------------------------- manifest


def test_manifest_is_valid_and_discovered():
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", "fewseg"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("fewseg")
    assert {w.display_name for w in manifest.contributions.widgets} == {WIDGET}
    assert {s.key for s in manifest.contributions.sample_data} == {"demo"}


def test_menus_name_what_the_readme_says(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    titles = {str(item.command.title) for _, items in get_app_model().menus for item in items
              if hasattr(item, "command") and item.command.id.startswith("fewseg.")}
    assert {"demo frame with 10 example outlines (fewseg)", f"{WIDGET} (fewseg)"} <= titles


# --------------------------------------------------------------------------- reader


def test_stack_opens_as_one_layer_per_channel(make_napari_viewer, tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, size=(2, 3, 2, 40, 50)).astype(np.uint16)  # T Z C Y X
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TZCYX", "Channel": {"Name": ["Brightfield", "YFP"]}})
    viewer = make_napari_viewer()
    layers = viewer.open(path, plugin="fewseg")
    assert [layer.name for layer in layers] == ["Brightfield", "YFP"]
    for k, layer in enumerate(layers):
        assert layer.data.shape == (2, 3, 40, 50)
        np.testing.assert_array_equal(layer.data, data[:, :, k].astype(np.float32))
        assert layer.metadata["fewseg"]["axes"] == ["time", "z"]
        lo, hi = layer.contrast_limits
        plane = data[0, 0, k]
        assert plane.min() <= lo < hi <= plane.max()
    # fewseg's colours: a transmitted-light channel half-bright gray, the fluorescence yellow.
    np.testing.assert_allclose(layers[0].colormap.colors[-1][:3], [128 / 255] * 3, atol=1e-3)
    np.testing.assert_allclose(layers[1].colormap.colors[-1][:3], [1, 1, 0], atol=1e-3)


def test_annotation_file_opens_as_shapes_with_tags(make_napari_viewer, tmp_path):
    square = np.array([[2.0, 3.0], [2.0, 9.0], [8.0, 9.0], [8.0, 3.0]])
    path = tmp_path / "examples.json"
    write_annotations(path, [Annotation(polygon=square, tags=("cell",)), Annotation(polygon=square + 10, tags=("dot", "x"))],
                      shape=(40, 40))
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="fewseg")
    assert type(layer).__name__ == "Shapes" and layer.name == "examples"
    assert list(layer.features["tag"]) == ["cell", "dot"]
    assert [json.loads(t) for t in layer.features["tags"]] == [["cell"], ["dot", "x"]]
    # (row, col) in, (row, col) out: napari shows the polygon where fewseg reads it.
    np.testing.assert_allclose(layer.data[0], read_annotations(path)[0].polygon)



def test_a_file_of_outlines_and_clicks_opens_as_shapes_and_points(tmp_path):
    from fewseg.napari.reader import get_reader

    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"tags": ["cell"]},
         "geometry": {"type": "Polygon", "coordinates": [[[3.5, 2.5], [9.5, 2.5], [9.5, 8.5], [3.5, 8.5], [3.5, 2.5]]]}},
        {"type": "Feature", "properties": {"tags": ["cell"]},
         "geometry": {"type": "MultiPoint", "coordinates": [[30.5, 20.5], [10.5, 5.5]]}}]}))
    (shapes, shape_kwargs, kind1), (points, point_kwargs, kind2) = get_reader(str(path))(str(path))
    assert (kind1, shape_kwargs["name"], kind2, point_kwargs["name"]) == ("shapes", "mixed", "points", "mixed clicks")
    np.testing.assert_allclose(shapes[0], [[2, 3], [2, 9], [8, 9], [8, 3]])
    np.testing.assert_allclose(points, [[20, 30], [5, 10]])  # (row, col), pixel centres at integers
    assert point_kwargs["features"]["tag"] == ["cell", "cell"]

# --------------------------------------------------------------------------- the whole loop


def test_demo_find_evaluate_save_reopen(make_napari_viewer, qtbot, tmp_path, messages):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("fewseg", "demo")
    assert [layer.name for layer in viewer.layers] == ["Brightfield", "YFP", "truth", "examples"]
    widget = open_widget(viewer)
    assert [layer.name for layer in widget.channels.value] == ["Brightfield", "YFP"]
    assert widget.examples.value.name == "examples" and widget.truth.value.name == "truth"
    before = green_pixels(viewer)

    click_and_wait(qtbot, widget, widget.find_button)
    assert not [m for s, m in messages if s == "error"], messages
    labels, shapes = result_layers(viewer)
    assert labels is not None and shapes is not None
    assert widget.status.value.startswith("found ") and " objects in " in widget.status.value
    n = len(shapes.data)
    assert int(widget.status.value.split()[1]) == n > 300
    assert len(np.unique(labels.data)) - 1 == n
    assert list(shapes.features["label"]) == sorted(set(labels.data.ravel()) - {0})
    assert set(shapes.features["tag"]) == {"YFP blob"}
    assert ((shapes.features["score"] > 0) & (shapes.features["score"] <= 1)).all()
    meta = labels.metadata["fewseg"]
    assert meta["config"]["method"] == "classic" and meta["learned"]["method"] == "classic"
    assert meta["examples"]["n"] == 10 and shapes.metadata["fewseg"]["learned"] == meta["learned"]
    # The examples are not returned as results.
    examples = [a.to_mask(labels.data.shape) for a in widget.example_annotations(
        viewer.layers["examples"], axes=(), here=Location(), shape=labels.data.shape)]
    assert not rediscovered(masks_from_labels(labels.data), examples, labels.data.shape).any()
    # What appears on screen: green outlines where there were none.
    assert green_pixels(viewer) > before + 2000

    # Evaluate against the demo's truth: the figures `fewseg evaluate` gives on this split.
    widget.evaluate_button.native.click()
    text = widget.metrics.value
    # The same fit / predict as the CLI: `fewseg evaluate` on this split gives the same figures.
    frame, blobs = make_demo(seed=0)
    cli = run_evaluation(frame, blobs, config=SegmentConfig(), num_train=10, seed=42).metrics
    assert text.startswith(f"precision {cli['precision']:.3f}, recall {cli['recall']:.3f}, F1 {cli['f1']:.3f}, "
                           f"mean IoU {cli['mean_iou']:.3f} ({cli['n_pred']} found, {cli['n_truth']} truth"), text
    assert cli["f1"] > 0.85
    evaluation = next(layer for layer in viewer.layers if layer.name == "evaluation")
    outcomes = list(evaluation.features["outcome"])
    assert set(outcomes) == {"matched", "matched truth", "missed", "false"}
    colours = {o: tuple(np.round(c[:3], 2)) for o, c in zip(outcomes, evaluation.edge_color)}
    assert colours["matched"] == (0, 1, 0) and colours["false"] == (1, 0, 0) and colours["missed"] == (1, 1, 0)
    # Saved and opened again (napari's writer, then its reader): the same outlines in the same colours.
    saved = _save(viewer, evaluation, tmp_path / "evaluation.geojson")
    [reopened] = viewer.open(str(saved), plugin="fewseg")
    assert len(reopened.data) == len(evaluation.data) and list(reopened.features["outcome"]) == outcomes
    np.testing.assert_allclose(reopened.edge_color, evaluation.edge_color)
    viewer.layers.remove(reopened)

    # Re-run: the same layers are updated in place.
    click_and_wait(qtbot, widget, widget.find_button)
    assert result_layers(viewer) == (labels, shapes) and len(shapes.data) == n
    assert sum(1 for layer in viewer.layers if layer.name.startswith("YFP blob")) == 2

    # Save through napari's writers and read the files back with fewseg.
    for suffix in (".geojson", ".json"):
        saved = _save(viewer, shapes, tmp_path / f"found{suffix}")
        back = read_annotations(saved, shape=labels.data.shape)
        assert len(back) == n and {a.tags for a in back} == {("YFP blob",)}
        if suffix == ".geojson":
            np.testing.assert_allclose([a.properties["score"] for a in back], shapes.features["score"])
        np.testing.assert_allclose(back[0].polygon, shapes.data[0], atol=1e-6)
        [again] = viewer.open(saved, plugin="fewseg")  # re-open through the plugin's reader
        assert len(again.data) == n and set(again.features["tag"]) == {"YFP blob"}
        if suffix == ".geojson":
            np.testing.assert_allclose(again.features["score"], shapes.features["score"])
    saved = _save(viewer, labels, tmp_path / "found.tif")
    back = read_annotations(saved, shape=labels.data.shape)
    assert len(back) == n
    reopened = viewer.open(saved, plugin="napari")[0]
    assert len(np.unique(reopened.data)) - 1 == n


def _save(viewer, layer, path):
    viewer.layers.selection = {layer}
    written = viewer.layers.save(str(path), selected=True, plugin="fewseg")
    assert written == [str(path)]
    return path


# --------------------------------------------------------------------------- stacks


@pytest.fixture
def stack(tmp_path):
    """A Z stack of 5 different demo frames (CZYX OME-TIFF) and 10 blobs of plane 2."""
    planes, blobs = [], None
    for z in range(5):
        frame, truth = make_demo(seed=30 + z, shape=(192, 192), n_blobs=30)
        planes.append(frame.data)
        if z == 2:
            blobs = truth
    path = tmp_path / "zstack.ome.tif"
    tifffile.imwrite(path, np.stack(planes, axis=1).astype(np.uint16), ome=True,
                     metadata={"axes": "CZYX", "Channel": {"Name": ["Brightfield", "YFP"]}})
    return path, blobs


def test_stack_examples_on_another_frame_and_cancel(make_napari_viewer, qtbot, stack, messages, tmp_path):
    path, blobs = stack
    viewer = make_napari_viewer()
    viewer.open(path, plugin="fewseg")
    # Examples drawn on plane 2 as 3-D shapes (z, row, col), while plane 0 is shown.
    viewer.add_shapes([np.column_stack([np.full(len(b.polygon), 2.0), b.polygon]) for b in blobs[:10]],
                      shape_type="polygon", name="examples")
    viewer.dims.set_current_step(0, 0)
    widget = open_widget(viewer)
    assert widget.frames.choices == ("current frame", "all along z")
    widget.frames.value = "all along z"
    click_and_wait(qtbot, widget, widget.find_button)
    labels, shapes = result_layers(viewer)
    assert labels.data.shape == (5, 192, 192)
    per_plane = [len(np.unique(p)) - 1 for p in labels.data]
    assert all(k > 5 for k in per_plane), per_plane
    assert sorted(set(shapes.features["z"])) == [0, 1, 2, 3, 4]
    assert all(int(v[0, 0]) == z for v, z in zip(shapes.data, shapes.features["z"]))
    # On plane 2, where the examples are, none of them comes back.
    examples = [b.to_mask((192, 192)) for b in blobs[:10]]
    assert not rediscovered(masks_from_labels(labels.data[2]), examples, (192, 192)).any()
    assert widget.status.value.startswith(f"found {len(shapes.data)} objects on 5 frames in ")
    before = labels.data.copy(), len(shapes.data)
    saved = _save(viewer, labels, tmp_path / "found_stack.tif")  # a stack keeps its ids and its Z axis
    with tifffile.TiffFile(saved) as tif:
        assert tif.series[0].axes == "ZYX"
        np.testing.assert_array_equal(tif.series[0].asarray(), labels.data)

    # Cancel mid-run: stop after the first frame is reported; the layers stay as they were.
    widget.find_button.native.click()
    widget.worker.yielded.connect(lambda r: r is not None and widget.cancel_button.native.click())
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert widget.status.value.startswith("cancelled after ") and "of 5 frame(s); layers unchanged" in widget.status.value
    assert int(widget.status.value.split()[2]) < 5
    np.testing.assert_array_equal(labels.data, before[0])
    assert len(shapes.data) == before[1]
    assert not [m for s, m in messages if s == "error"]


def test_painted_labels_are_examples(make_napari_viewer, qtbot):
    frame, truth = make_demo(seed=3, shape=(256, 256), n_blobs=40)
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    painted = np.zeros(frame.shape, np.int32)
    for k, a in enumerate(truth[:10], start=1):
        a.to_mask(frame.shape).paste(painted, k)
    viewer.add_labels(painted, name="examples")
    widget = open_widget(viewer)
    click_and_wait(qtbot, widget, widget.find_button)
    labels, shapes = result_layers(viewer)
    assert len(shapes.data) > 15
    assert not rediscovered(masks_from_labels(labels.data), [t.to_mask(frame.shape) for t in truth[:10]],
                            frame.shape).any()


# --------------------------------------------------------------------------- bad input


def _demo_viewer(make_napari_viewer, shape=(160, 160)):
    frame, truth = make_demo(seed=5, shape=shape, n_blobs=25)
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    return viewer, truth


def test_no_examples_is_one_notified_line(make_napari_viewer, messages):
    viewer, _ = _demo_viewer(make_napari_viewer)
    viewer.add_shapes(name="examples", ndim=2)
    widget = open_widget(viewer)
    widget.find_button.native.click()
    assert messages == [("error", "examples: holds no examples; outline a few objects like those to find")]
    assert widget.status.value == messages[0][1] and not widget.running
    assert result_layers(viewer) == (None, None)
    widget.evaluate_button.native.click()
    assert messages[-1] == ("error", "truth: nothing to evaluate yet: Find objects first")


def test_example_outside_the_frame_gives_the_cli_message(make_napari_viewer, messages, tmp_path):
    viewer, truth = _demo_viewer(make_napari_viewer)
    outside = truth[0].polygon + [0, 150]  # pushed past the right edge
    viewer.add_shapes([t.polygon for t in truth[1:5]] + [outside], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    widget.find_button.native.click()
    # The CLI reads the same polygon from a file in the same (napari's, pixel-centre)
    # coordinates and says the same thing about it.
    path = tmp_path / "examples.json"
    write_annotations(path, [Annotation(polygon=outside)], shape=(400, 400), coordinates="pixel-centre")
    with pytest.raises(Exception) as cli:
        read_annotations(path, shape=(160, 160), coordinates="pixel-centre")
    problem = str(cli.value).split(": ", 2)[-1]
    assert messages == [("error", f"examples: shapes[4]: {problem}")]
    assert result_layers(viewer) == (None, None)


def test_channel_mismatch_and_failed_run_leave_layers_alone(make_napari_viewer, qtbot, messages):
    viewer, truth = _demo_viewer(make_napari_viewer)
    viewer.add_shapes([t.polygon for t in truth[:10]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    click_and_wait(qtbot, widget, widget.find_button)
    labels, shapes = result_layers(viewer)
    before = labels.data.copy(), len(shapes.data)
    # Predict with what was learned from two channels on one channel: the library's check fails the run.
    widget.reuse.value = True
    widget.channels.value = [viewer.layers["YFP"]]
    click_and_wait(qtbot, widget, widget.find_button)
    assert messages == [("error", "layers YFP: has 1 channel(s); the model was fitted on 2")]
    assert widget.status.value == messages[0][1]
    np.testing.assert_array_equal(labels.data, before[0])
    assert len(shapes.data) == before[1]
    # napari keeps running: the next run works.
    widget.reuse.value = False
    widget.channels.value = [viewer.layers["Brightfield"], viewer.layers["YFP"]]
    click_and_wait(qtbot, widget, widget.find_button)
    assert widget.status.value.startswith("found ")



def test_similarity_rethresholds_without_refitting(make_napari_viewer, qtbot, messages):
    viewer, truth = _demo_viewer(make_napari_viewer)
    viewer.add_shapes([t.polygon for t in truth[:10]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    assert widget.similarity.value == 0 and widget.similarity_value is None  # shown as "auto"
    widget.similarity.value = 0.5  # nothing learned yet: it waits for Find
    widget.similarity.value = 0.0
    assert not widget.running
    click_and_wait(qtbot, widget, widget.find_button)
    labels, shapes = result_layers(viewer)
    n, learned = len(shapes.data), widget.segmenter.profile
    assert labels.metadata["fewseg"]["config"]["similarity"] is None

    widget.similarity.value = 0.99  # a stricter threshold: predicted again with what was learned
    assert widget.running
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.segmenter.profile is learned  # not refitted
    assert 0 < len(shapes.data) < n and (shapes.features["score"] >= 0.99).all()
    assert labels.metadata["fewseg"]["config"]["similarity"] == 0.99
    assert "(similarity 0.99, with what was learned before)" in widget.status.value
    # Changed again while that runs: applied when it ends (back to the method's own threshold).
    widget.similarity.value = 0.5
    widget.similarity.value = 0.0
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert len(shapes.data) == n and labels.metadata["fewseg"]["config"]["similarity"] is None
    assert widget.segmenter.profile is learned and not messages, messages

@pytest.mark.sam
def test_fast_method_with_a_checkpoint_file(make_napari_viewer, qtbot, tmp_path, messages):
    pytest.importorskip("segment_anything")
    from fewseg.sam.build import build_tiny_sam1, save_tiny

    tiny = build_tiny_sam1(0, image_size=256)  # the real SAM1 classes, tiny, random weights
    checkpoint = save_tiny(tmp_path / "tiny.pt", tiny.arch, tiny.module.state_dict(), half=False)
    viewer, truth = _demo_viewer(make_napari_viewer)
    viewer.add_shapes([t.polygon for t in truth[:10]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    assert widget.model.native.isHidden()
    widget.method.value = "fast"
    assert not widget.model.native.isHidden() and not widget.checkpoint.native.isHidden()
    widget.model.value = "sam1_vit_b"
    widget.checkpoint.value = checkpoint
    click_and_wait(qtbot, widget, widget.find_button)
    assert not messages, messages
    labels, shapes = result_layers(viewer)
    meta = labels.metadata["fewseg"]
    assert meta["config"]["method"] == "fast" and meta["config"]["checkpoint"] == str(checkpoint)
    assert meta["learned"]["method"] == "fast"
    assert len(shapes.data) > 5


def test_widget_opened_first_follows_the_layers(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    assert widget.channels.value == [] and widget.examples.value is None and widget.frames.choices == ("current frame",)
    viewer.open_sample("fewseg", "demo")
    assert [layer.name for layer in widget.channels.value] == ["Brightfield", "YFP"]
    assert widget.examples.value.name == "examples" and widget.truth.value.name == "truth"
    viewer.layers.remove("examples")
    assert widget.examples.value is None  # the truth layer is not taken for examples


def test_ellipses_and_rectangles_are_examples(make_napari_viewer, qtbot, messages):
    viewer, truth = _demo_viewer(make_napari_viewer, shape=(256, 256))
    boxes = []
    for t in truth[:10]:
        (r0, c0), (r1, c1) = t.polygon.min(axis=0), t.polygon.max(axis=0)
        boxes.append(np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]]))
    viewer.add_shapes(boxes, shape_type=["ellipse"] * 7 + ["rectangle"] * 3, name="examples")
    widget = open_widget(viewer)
    click_and_wait(qtbot, widget, widget.find_button)
    assert not messages, messages
    labels, shapes = result_layers(viewer)
    assert len(shapes.data) > 10 and labels.metadata["fewseg"]["examples"]["n"] == 10


def test_learned_boundary_is_a_classic_option(make_napari_viewer, qtbot, messages):
    viewer, truth = _demo_viewer(make_napari_viewer, shape=(256, 256))
    viewer.add_shapes([t.polygon for t in truth[:10]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    assert not widget.boundary.native.isHidden() and widget.plan().config.boundary == "level"
    widget.boundary.value = "learned"
    assert widget.plan().config.boundary == "learned"
    click_and_wait(qtbot, widget, widget.find_button)
    assert not messages, messages
    labels, shapes = result_layers(viewer)
    assert len(shapes.data) > 10 and widget.segmenter.boundary is not None
    widget.method.value = "fast"  # SAM outlines the objects: the boundary choice is the classic method's
    assert widget.boundary.native.isHidden() and not widget.model.native.isHidden()
    assert widget.plan().config.boundary == "level"


def test_examples_on_two_frames_are_all_learned_from(make_napari_viewer, qtbot, stack, messages):
    path, blobs = stack
    viewer = make_napari_viewer()
    viewer.open(path, plugin="fewseg")
    z_of = [2] * 8 + [4] * 2
    viewer.add_shapes([np.column_stack([np.full(len(b.polygon), float(z)), b.polygon])
                       for b, z in zip(blobs[:10], z_of)], shape_type="polygon", name="examples")
    viewer.dims.set_current_step(0, 4)  # the user is on Z 4 (2 examples); Z 2 holds 8
    widget = open_widget(viewer)
    widget.frames.value = "all along z"
    click_and_wait(qtbot, widget, widget.find_button)
    assert messages == []  # every example is learned from where it lies (issue 19), as the CLI does
    labels, shapes = result_layers(viewer)
    meta = labels.metadata["fewseg"]
    assert meta["examples"]["n"] == 10 and meta["examples"]["not_learned_from"] == 0
    assert meta["examples"]["frame"]["Z"] == 2 and [loc["Z"] for loc in meta["fit_locations"]] == [2, 4]
    assert all(len(np.unique(p)) > 5 for p in labels.data)
    # No example comes back on its own frame, whether it was learned from or not.
    for z in (2, 4):
        drawn = [b.to_mask((192, 192)) for b, zz in zip(blobs[:10], z_of) if zz == z]
        assert not rediscovered(masks_from_labels(labels.data[z]), drawn, (192, 192)).any()


def test_clicks_are_examples_and_csv_clicks_open_as_points(make_napari_viewer, qtbot, tmp_path, messages):
    viewer = make_napari_viewer()
    viewer.open_sample("fewseg", "demo")
    frame, blobs = make_demo(seed=0)
    shape = frame.shape
    # A click at the centre of each of the sample's 10 example objects, saved as the CSV a
    # user would write (x, y: pixel-corner origin) and opened through the plugin's reader.
    examples = split_examples(blobs, num_train=10, seed=42, source="demo")[0]
    np.testing.assert_allclose(viewer.layers["examples"].data[0], examples[0].polygon)  # the sample's split
    masks = [a.to_mask(shape) for a in examples]
    centres = np.array([np.argwhere(m.mask).mean(axis=0) + (m.row, m.col) for m in masks])
    path = tmp_path / "clicks.csv"
    path.write_text("x,y\n" + "".join(f"{c + 0.5},{r + 0.5}\n" for r, c in centres))
    [points] = viewer.open(path, plugin="fewseg")
    assert type(points).__name__ == "Points" and points.name == "clicks"
    np.testing.assert_allclose(points.data, centres)
    # Saved through napari's File > Save (the plugin's writer), the clicks come back as they were.
    for suffix in (".csv", ".json", ".geojson"):
        back = read_annotations(_save(viewer, points, tmp_path / f"saved{suffix}"))
        np.testing.assert_allclose([a.point for a in back], centres)

    widget = open_widget(viewer)
    widget.examples.value = points
    click_and_wait(qtbot, widget, widget.find_button)
    assert not messages, messages
    labels, shapes = result_layers(viewer)
    assert labels.metadata["fewseg"]["examples"] == {"layer": "clicks", "n": 10, "frame": {"XY": 0, "Z": 0, "Time": 0},
                                                     "not_learned_from": 0}
    assert not rediscovered(masks_from_labels(labels.data), masks, shape).any()  # the clicked objects
    from_clicks = widget._evaluate()
    # The outlines of these 10 objects give F1 0.925 (`fewseg evaluate`'s figure, which
    # test_demo_find_evaluate_save_reopen checks the widget gives): clicks do about as well.
    assert from_clicks.n_pred > 300 and from_clicks.f1 > 0.925 - 0.05, from_clicks

    # Mixed: 5 outlines and clicks on the 5 other objects (the outlines teach how to outline them).
    viewer.add_shapes([a.polygon for a in examples[:5]], shape_type="polygon", name="five outlines")
    viewer.add_points(centres[5:], name="five clicks")
    assert widget.clicks.value is None  # a new Points layer is not taken without the user choosing it
    widget.examples.value, widget.clicks.value = viewer.layers["five outlines"], viewer.layers["five clicks"]
    click_and_wait(qtbot, widget, widget.find_button)
    assert not messages, messages
    assert labels.metadata["fewseg"]["examples"]["layer"] == "five outlines + five clicks"
    assert labels.metadata["fewseg"]["examples"]["n"] == 10
    assert not rediscovered(masks_from_labels(labels.data), masks, shape).any()
    mixed = widget._evaluate()
    assert mixed.n_pred > 300 and mixed.f1 > 0.925 - 0.05, mixed


def test_malformed_inputs_are_one_notification_each_and_napari_goes_on(make_napari_viewer, qtbot, messages):
    """Degenerate shapes, an example outside, a frame of NaN (issue 13): each Find gives one
    error notification, no results layer is made or half-written, and the next good run works."""
    viewer, truth = _demo_viewer(make_napari_viewer)
    good = [t.polygon for t in truth[:8]]
    layer = viewer.add_shapes(good + [np.array([[10.0, 10], [20, 20], [30, 30]])], shape_type="polygon",
                              name="examples")
    widget = open_widget(viewer)
    widget.find_button.native.click()
    assert messages == [("error", "examples: shapes[8]: polygon has zero area (all vertices on one line)")]
    layer.data = good + [np.array([[0.0, 0], [10, 10], [0, 12], [12, 0]])]  # crossing itself
    widget.find_button.native.click()
    assert len(messages) == 2 and messages[1][1].startswith("examples: shapes[8]: polygon is not simple")
    layer.data = good
    nan = viewer.add_image(np.full((160, 160), np.nan, np.float32), name="NaN")
    widget.channels.value = [viewer.layers["Brightfield"], nan]
    click_and_wait(qtbot, widget, widget.find_button)
    assert messages[2:] == [("error", "layers Brightfield, NaN: 25600 pixel(s) are NaN or infinite (25600 in channel "
                                      "NaN); expected finite intensities")]
    assert result_layers(viewer) == (None, None) and not widget.running
    widget.channels.value = [viewer.layers["Brightfield"], viewer.layers["YFP"]]
    click_and_wait(qtbot, widget, widget.find_button)
    assert widget.status.value.startswith("found ") and len(messages) == 3
