"""What the napari user sees of a run, in a real napari (Qt, OpenGL under Xvfb): each
object's score and tag on hover, stale figures cleared, the colour legend, the
similarity box's precision, and a SAM run in a napari drawn by software OpenGL."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from fewseg.demo import make_demo  # noqa: E402
from fewseg.napari.display import OUTCOME_WORDS, STALE, format_score  # noqa: E402
from fewseg.napari.layers import OUTCOME_COLORS  # noqa: E402
from napari_session import open_widget  # noqa: E402



def found_viewer(make_napari_viewer, qtbot, shape=(160, 160)):
    """A viewer with the demo's channels, 10 example outlines and the rest as truth, after one Find."""
    frame, blobs = make_demo(seed=5, shape=shape, n_blobs=25)
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    viewer.add_shapes([t.polygon for t in blobs[10:]], shape_type="polygon", name="truth", visible=False)
    viewer.add_shapes([t.polygon for t in blobs[:10]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    press(qtbot, widget, widget.find_button)
    assert widget.status.value.startswith("found "), widget.status.value
    return viewer, widget


def press(qtbot, widget, button):
    button.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=180_000)


def roles(viewer):
    return {(layer.metadata.get("fewseg") or {}).get("role"): layer for layer in viewer.layers}


def inside(labels_layer, label):
    """A pixel of object ``label`` (its most interior one), as (row, col)."""
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(np.asarray(labels_layer.data) == label)
    return np.unravel_index(np.argmax(distance), distance.shape)


def test_hover_says_the_objects_score_rank_and_tag(make_napari_viewer, qtbot, messages):
    viewer, widget = found_viewer(make_napari_viewer, qtbot)
    found = roles(viewer)
    labels, shapes = found["found labels"], found["found shapes"]
    scores = dict(zip(shapes.features["label"], shapes.features["score"]))
    best, worst = max(scores, key=scores.get), min(scores, key=scores.get)
    n = len(scores)

    # Whatever layer is selected (here the outlines, the last one added), the widget's line says it.
    assert viewer.layers.selection.active is shapes
    viewer.cursor.position = inside(labels, worst)
    line = widget.view.hover.value
    tag = shapes.features["tag"][0]
    assert tag == "fewseg"  # untagged examples: results get fewseg's tag
    assert line.startswith(f"object {worst} ({tag}): score {format_score(scores[worst])}"), line
    assert f"rank {n} of {n} on this frame" in line and "log-odds" in line
    viewer.cursor.position = inside(labels, best)
    assert f"object {best} " in widget.view.hover.value and f"rank 1 of {n}" in widget.view.hover.value
    viewer.cursor.position = (0.0, 0.0) if labels.data[0, 0] == 0 else (159.0, 0.0)
    assert widget.view.hover.value == ""  # nothing under the pointer, nothing said

    # napari's own status bar, with the found labels selected, shows the same features.
    status = labels.get_status(inside(labels, worst), world=True)["value"]
    assert f"score: {format_score(scores[worst])}" in status and f"tag: {tag}" in status
    assert f"rank: {n} of {n}" in status
    # After Evaluate the hover line says whether the object matched a truth object.
    press(qtbot, widget, widget.evaluate_button)
    viewer.cursor.position = inside(labels, best)
    assert widget.view.hover.value.endswith(("evaluated: found, true", "evaluated: found, false"))
    assert not messages, messages


def test_new_results_make_the_last_scores_and_evaluation_stale(make_napari_viewer, qtbot, messages):
    viewer, widget = found_viewer(make_napari_viewer, qtbot)
    press(qtbot, widget, widget.evaluate_button)
    evaluation = roles(viewer)["evaluation"]
    assert widget.metrics.value.startswith("precision ") and len(evaluation.data) > 0
    assert evaluation.metadata["fewseg"]["scores"]["f1"] > 0

    # A new similarity changes the results: the figures of the old ones go.
    widget.similarity.value = 0.9
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.metrics.value == STALE
    assert len(evaluation.data) == 0 and evaluation.metadata["fewseg"]["stale"]
    assert evaluation.metadata["fewseg"]["scores"] is None

    # Evaluate again: current figures; then a new Find makes them stale again.
    press(qtbot, widget, widget.evaluate_button)
    assert widget.metrics.value.startswith("precision ") and len(evaluation.data) > 0
    press(qtbot, widget, widget.find_button)
    assert widget.metrics.value == STALE and len(evaluation.data) == 0

    # So does an edit of the results: painting over a found object.
    press(qtbot, widget, widget.evaluate_button)
    labels = roles(viewer)["found labels"]
    labels.paint(inside(labels, int(labels.data.max())), 0)
    assert widget.metrics.value == STALE and len(evaluation.data) == 0
    # ... or deleting a found outline.
    press(qtbot, widget, widget.evaluate_button)
    shapes = roles(viewer)["found shapes"]
    shapes.selected_data = {0}
    shapes.remove_selected()
    assert widget.metrics.value == STALE and len(evaluation.data) == 0
    assert not messages, messages


def test_the_legend_on_the_widget_says_what_each_colour_means(make_napari_viewer, qtbot, tmp_path):
    viewer, widget = found_viewer(make_napari_viewer, qtbot)
    viewer.window._qt_window.show()
    legend = widget.view.legend
    assert legend.visible and not legend.native.isHidden()
    text = legend.native.text()
    for outcome, words in OUTCOME_WORDS.items():
        assert "#{:02x}{:02x}{:02x}".format(*OUTCOME_COLORS[outcome]) in text
        assert words.replace(" ", "&nbsp;") in text
    assert roles(viewer)["found shapes"].edge_color[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert "#00ff00" in text and "outline" in text
    # The swatches are drawn: each colour of the evaluation appears on the legend's pixels.
    qtbot.waitUntil(lambda: legend.native.grab().width() > 100)
    image = legend.native.grab().toImage()
    path = str(tmp_path / "legend.png")
    assert image.save(path)
    from imageio.v3 import imread

    pixels = imread(path)[..., :3].astype(int)
    for color in OUTCOME_COLORS.values():
        assert (np.abs(pixels - np.array(color)).sum(axis=-1) < 40).sum() > 10, color


def test_similarity_box_takes_eight_decimals_and_says_what_it_kept(make_napari_viewer, qtbot, messages):
    viewer, widget = found_viewer(make_napari_viewer, qtbot)
    shapes = roles(viewer)["found shapes"]
    n = len(shapes.data)
    scores = np.sort(np.asarray(shapes.features["score"]))
    # A threshold between two scores that round to 1.00 in two decimals: it keeps exactly those above.
    high = scores[scores > 0.99]
    assert len(high) >= 2
    between = float(format_score(high[len(high) // 2]))
    widget.similarity.value = between
    assert widget.similarity.native.text() == format_score(between)  # shown as set, not as "1.00"
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    kept = len(shapes.data)
    assert 0 < kept < n and (shapes.features["score"] >= between).all()
    assert kept == (scores >= between).sum()
    assert widget.status.value.endswith(f"; kept {kept} of the {n} objects shown before"), widget.status.value
    assert f"(similarity {between:.10g}, with what was learned before)" in widget.status.value
    widget.similarity.value = 0.0  # back to the method's own: more again, and said so
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.status.value.endswith(f"; kept {n}, {n - kept} more than the {kept} shown before")
    assert not messages, messages


SAM_IN_NAPARI = textwrap.dedent("""
    import sys, time
    import napari
    from qtpy.QtWidgets import QApplication
    from fewseg.demo import make_demo
    from fewseg.napari.opengl_llvm import foreign_llvm

    frame, blobs = make_demo(seed=5, shape=(160, 160), n_blobs=25)
    viewer = napari.Viewer(show=True)
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    viewer.add_shapes([t.polygon for t in blobs[:10]], shape_type="polygon", name="examples")
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    print("llvm:", foreign_llvm(), "triton loaded:", "triton" in sys.modules, flush=True)
    if sys.argv[1] == "import-triton":  # what a SAM run did before prepare_sam
        import triton
    _, widget = viewer.window.add_plugin_dock_widget("fewseg", "find objects like these")
    widget.method.value = "fast"
    widget.model.value = "sam1_vit_b"
    widget.checkpoint.value = sys.argv[2]
    widget.find_button.native.click()
    start = time.time()
    while widget.running and time.time() - start < 240:
        app.processEvents()
        time.sleep(0.05)
    print("status:", widget.status.value, flush=True)
    print("triton kept out:", "triton" in sys.modules and sys.modules["triton"] is None, flush=True)
""")


@pytest.mark.sam
@pytest.mark.slow
def test_sam_run_in_a_napari_drawn_by_software_opengl(tmp_path):
    """A fresh process (nothing imported before napari, as a user starts it): a SAM run
    completes. Where the canvas maps Mesa's LLVM, importing triton there crashes the
    process, which is what a SAM run did before (:mod:`fewseg.napari.opengl_llvm`)."""
    # Nothing of torchvision / segment_anything imported here: this process has a canvas already.
    for module in ("segment_anything", "torchvision"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    checkpoint = Path(__file__).parent / "data" / "tiny_sam1.pt"  # the tiny trained SAM1 (docs/developing.md)
    script = tmp_path / "sam_in_napari.py"
    script.write_text(SAM_IN_NAPARI)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    def run(mode):
        return subprocess.run([sys.executable, str(script), mode, str(checkpoint)], capture_output=True, text=True,
                              timeout=300, env=env)

    out = run("run")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "status: found " in out.stdout, out.stdout + out.stderr[-3000:]
    if "libLLVM" in out.stdout and "triton loaded: False" in out.stdout:
        assert importlib.util.find_spec("triton") is not None
        assert "triton kept out: True" in out.stdout  # the guard acted (a GPU-OpenGL machine skips this part)
        crashed = run("import-triton")
        assert crashed.returncode == -11, crashed.stdout + crashed.stderr[-2000:]  # SIGSEGV: the cause, shown
