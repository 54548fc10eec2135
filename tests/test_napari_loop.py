"""The correction loop in a real napari (Qt, OpenGL under Xvfb): reject, keep, delete,
"not these", painted background, undo of a Find, live mode, and a scripted session that
replays the engine's correction curve (``fewseg evaluate --rounds``) click for click.

Run as tests/test_napari.py is (pytest-xvfb starts the X server; ``xvfb-run -a`` by hand).
"""

import numpy as np
import pytest

napari = pytest.importorskip("napari")

try:  # torch before any OpenGL context (see tests/test_napari.py)
    import torchvision  # noqa: F401
except ImportError:
    pass

from fewseg.config import SegmentConfig  # noqa: E402
from fewseg.demo import make_demo  # noqa: E402
from fewseg.evaluate import correction_curve  # noqa: E402
from fewseg.napari.corrections import NOT_THESE  # noqa: E402
from fewseg.objects import masks_from_labels  # noqa: E402
from napari_session import open_widget  # noqa: E402



def find(qtbot, widget, timeout=180_000):
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def results(viewer):
    roles = {(layer.metadata.get("fewseg") or {}).get("role"): layer for layer in viewer.layers}
    return roles.get("found labels"), roles.get("found shapes")


def press(viewer, key: str):
    """The viewer's binding of ``key`` (what pressing it over the canvas calls)."""
    [action] = [f for k, f in viewer.keymap.items() if str(k) == key]
    action(viewer)


def painted(masks, shape) -> np.ndarray:
    out = np.zeros(shape, np.int32)
    for k, m in enumerate(masks, start=1):
        m.paste(out, k)
    return out


def demo_viewer(make_napari_viewer, *, seed=1, shape=(256, 256), n_blobs=45):
    frame, truth = make_demo(seed=seed, shape=shape, n_blobs=n_blobs)
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    return viewer, frame, truth


# --------------------------------------------------------------------------- the engine's curve, replayed


def test_a_scripted_session_reproduces_the_correction_curve(make_napari_viewer, qtbot, messages):
    """``fewseg evaluate --rounds 2 --corrections 4`` on a small busy demo frame, then the same
    session through the widget: round 0 with the same 10 outlines, then each round's
    rejections as clicks on the false results (Reject at those points) and the clicks on
    missed objects added to the clicks layer; the widget's Evaluate gives the curve's F1
    (and precision, recall) in every round."""
    frame, blobs = make_demo(seed=2, shape=(256, 256), n_blobs=45, busy=True)  # with aggregates and fibres
    curve = correction_curve(frame, blobs, config=SegmentConfig(), num_train=10, seed=3, rounds=2, corrections=4)
    # The session has rejections and clicks to replay (3 and 6 of them: since the clusters of
    # flat contacts the curve misses fewer objects than the 8 it could click).
    assert sum(len(ev.metrics["rejected"]) for ev in curve) >= 2 and sum(len(ev.metrics["clicked"]) for ev in curve) >= 4
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, frame.data):
        viewer.add_image(channel, name=name)
    viewer.add_labels(painted(curve[0].truth, frame.shape), name="truth")  # the objects not split off as examples
    viewer.add_labels(painted(curve[0].examples, frame.shape), name="examples")  # round 0: 10 outlines, one label each
    clicks = viewer.add_points(np.zeros((0, 2)), name="clicks")
    widget = open_widget(viewer)
    widget.clicks.value = clicks
    assert widget.examples.value.name == "examples" and widget.truth.value.name == "truth"
    seen = []
    for k, ev in enumerate(curve):
        if k:
            rejected, clicked = ev.metrics["rejected"], ev.metrics["clicked"]
            # each rejection lies on one false result; the clicks go to the clicks layer
            assert widget.loop.correct(rejected=rejected, clicked=clicked) == (len(rejected), len(clicked))
            if rejected:
                assert len(viewer.layers[NOT_THESE].data) == sum(len(e.metrics["rejected"]) for e in curve[1:k + 1])
            assert len(clicks.data) == sum(len(e.metrics["clicked"]) for e in curve[1:k + 1])
        find(qtbot, widget)
        s = widget._evaluate()
        seen.append((s.f1, ev.scores.f1))
        assert (s.precision, s.recall, s.f1) == pytest.approx(
            (ev.scores.precision, ev.scores.recall, ev.scores.f1), abs=1e-12), (k, seen)
        # what was rejected does not come back
        labels, _ = results(viewer)
        for r, c in (p for e in curve[1:k + 1] for p in e.metrics["rejected"]):
            assert labels.data[int(round(r)), int(round(c))] == 0
    assert not [m for s, m in messages if s == "error"], messages


# --------------------------------------------------------------------------- reject, keep, delete, undo


def test_reject_keep_delete_and_undo(make_napari_viewer, qtbot, messages):
    viewer, frame, truth = demo_viewer(make_napari_viewer)
    viewer.add_shapes([t.polygon for t in truth[:8]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    assert widget.loop.undo_button.enabled is False
    find(qtbot, widget)
    labels, shapes = results(viewer)
    n0 = len(shapes.data)
    assert n0 > 15 and set(widget.loop.proposals) == set(np.unique(labels.data).tolist()) - {0}

    # Reject with the key, the mouse over a result: a point inside it goes to "not these".
    target = widget.loop.proposals[int(shapes.features["label"].iloc[0])]
    viewer.cursor.position = tuple(target.point)
    press(viewer, "N")
    assert NOT_THESE in viewer.layers and widget.loop.not_these.value is viewer.layers[NOT_THESE]
    np.testing.assert_allclose(viewer.layers[NOT_THESE].data, [target.point])
    assert target.label not in labels.data and target.label not in list(shapes.features["label"])
    assert len(shapes.data) == n0 - 1

    # Reject the selected results (the button).
    shapes.selected_data = {0, 1}
    chosen = [int(shapes.features["label"].iloc[i]) for i in (0, 1)]
    widget.loop.reject_button.native.click()
    assert len(viewer.layers[NOT_THESE].data) == 3 and not set(chosen) & set(np.unique(labels.data).tolist())

    # Delete a result with napari's delete: it is rejected too.
    deleted = int(shapes.features["label"].iloc[0])
    shapes.selected_data = {0}
    shapes.remove_selected()
    assert len(viewer.layers[NOT_THESE].data) == 4 and deleted not in labels.data
    # Erase a whole object from the labels layer (fill with 0): rejected too.
    erased = int(shapes.features["label"].iloc[0])
    rows, cols = np.nonzero(labels.data == erased)
    labels.fill((rows[0], cols[0]), 0)
    qtbot.wait(50)
    assert len(viewer.layers[NOT_THESE].data) == 5 and erased not in list(shapes.features["label"])

    # Keep a result as an example (key, mouse over it): the examples layer grows.
    kept = widget.loop.proposals[int(shapes.features["label"].iloc[0])]
    viewer.cursor.position = tuple(kept.point)
    press(viewer, "K")
    assert len(viewer.layers["examples"].data) == 9 and kept.label not in labels.data

    # My own edit, then Find: the 5 rejected do not come back, the kept one is an example now.
    negatives = viewer.layers[NOT_THESE].data.copy()
    find(qtbot, widget)
    assert not [m for s, m in messages if s == "error"], messages
    for r, c in negatives:
        assert labels.data[int(round(r)), int(round(c))] == 0
    assert labels.data[tuple(int(v) for v in kept.point)] == 0  # an example is not a result
    meta = labels.metadata["fewseg"]
    assert meta["learned"]["n_negatives"] == 5 and meta["examples"]["n"] == 9
    after = labels.data.copy()

    # Undo Find: the results before it are back, with the edits made to them.
    before = after.copy()
    widget.loop.undo_button.native.click()
    assert not (labels.data == before).all()
    assert erased not in labels.data and target.label not in labels.data and kept.label not in labels.data
    assert len(shapes.data) == n0 - 6 and len(np.unique(labels.data)) - 1 == n0 - 6
    assert widget.loop.undo_button.enabled  # the first Find can be undone too: the layers go
    widget.loop.undo_button.native.click()
    assert results(viewer) == (None, None) and not widget.loop.undo_button.enabled


def test_similarity_change_is_undone_and_keeps_rejections_out(make_napari_viewer, qtbot):
    viewer, frame, truth = demo_viewer(make_napari_viewer, seed=4)
    viewer.add_shapes([t.polygon for t in truth[:8]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    find(qtbot, widget)
    labels, shapes = results(viewer)
    rejected = widget.loop.proposals[int(shapes.features["label"].iloc[0])].point
    widget.loop.reject(points=[rejected])
    n = len(shapes.data)
    widget.similarity.value = 0.3  # re-thresholded with what was learned before the rejection
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert labels.data[tuple(int(v) for v in rejected)] == 0  # it does not come back
    widget.loop.undo()
    assert len(shapes.data) == n


# --------------------------------------------------------------------------- painted examples, stacks, live


def test_painted_objects_and_background_are_read_as_ilastik_users_paint(make_napari_viewer, qtbot, messages):
    viewer, frame, truth = demo_viewer(make_napari_viewer, seed=2)
    paint = np.zeros(frame.shape, np.int32)
    for t in truth[:10]:
        t.to_mask(frame.shape).paste(paint, 1)  # every object label 1, napari's default
    occupied = painted([t.to_mask(frame.shape) for t in truth], frame.shape) > 0
    corner = np.zeros(frame.shape, bool)
    corner[:24, :24] = True
    paint[corner & ~occupied] = 2  # a background patch, label 2
    viewer.add_labels(paint, name="examples")
    widget = open_widget(viewer)
    find(qtbot, widget)
    warnings = [m for s, m in messages if s == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("examples: read label 1 as ") and "label 2 as background" in warnings[0]
    labels, _ = results(viewer)
    meta = labels.metadata["fewseg"]
    from scipy.ndimage import label

    assert meta["examples"]["n"] == label(paint == 1)[1] >= 8  # each separate piece of label 1 one example
    assert meta["learned"]["n_negatives"] == label(paint == 2)[1] >= 1
    found = masks_from_labels(labels.data)
    assert len(found) > 20  # not 2 giant examples


def test_negatives_on_another_plane_keep_their_place(make_napari_viewer, qtbot):
    planes, blobs = [], None
    for z in range(3):
        frame, truth = make_demo(seed=40 + z, shape=(160, 160), n_blobs=22)
        planes.append(frame.data)
        blobs = truth if z == 1 else blobs
    stack = np.stack(planes, axis=1)  # C Z Y X
    viewer = make_napari_viewer()
    for name, channel in zip(frame.channel_names, stack):
        viewer.add_image(channel, name=name)
    viewer.add_shapes([np.column_stack([np.full(len(b.polygon), 1.0), b.polygon]) for b in blobs[:8]],
                      shape_type="polygon", name="examples")
    viewer.dims.set_current_step(0, 1)
    widget = open_widget(viewer)
    find(qtbot, widget)
    labels, shapes = results(viewer)
    label = int(shapes.features["label"].iloc[0])
    point = widget.loop.proposals[label].point
    widget.loop.reject(points=[point])
    np.testing.assert_allclose(viewer.layers[NOT_THESE].data, [[1.0, *point]])  # Z kept
    viewer.dims.set_current_step(0, 0)  # the user moves on; the negative stays on Z 1
    plan = widget.plan()
    assert [n.location.z for n in plan.fit.negatives] == [1] and list(plan.fit.negatives_at)[0].z == 1


def test_live_mode_refreshes_the_plane_after_each_correction(make_napari_viewer, qtbot, messages):
    viewer, frame, truth = demo_viewer(make_napari_viewer, seed=6)
    viewer.add_shapes([t.polygon for t in truth[:8]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    find(qtbot, widget)
    labels, shapes = results(viewer)
    widget.loop.live.value = True
    first, second = (widget.loop.proposals[int(shapes.features["label"].iloc[i])].point for i in (0, 1))
    widget.loop.reject(points=[first])
    assert widget.running  # a Find on the plane shown started by itself
    widget.loop.reject(points=[second])  # while it runs: it is cancelled, a new one follows
    assert widget.loop.live_pending
    qtbot.waitUntil(lambda: not widget.running and not widget.loop.live_pending, timeout=120_000)
    qtbot.waitUntil(lambda: labels.metadata["fewseg"]["learned"].get("n_negatives") == 2, timeout=120_000)
    for p in (first, second):
        assert labels.data[tuple(int(v) for v in p)] == 0
    assert not [m for s, m in messages if s == "error"], messages


def test_a_drawn_not_these_outline_and_keep_into_painted_examples(make_napari_viewer, qtbot, messages):
    viewer, frame, truth = demo_viewer(make_napari_viewer, seed=7)
    viewer.add_labels(painted([t.to_mask(frame.shape) for t in truth[:8]], frame.shape), name="examples")
    widget = open_widget(viewer)
    find(qtbot, widget)
    labels, shapes = results(viewer)
    unwanted, wanted = (widget.loop.proposals[int(shapes.features["label"].iloc[i])] for i in (0, 1))
    # The user outlines something unwanted in a Shapes layer of their own and chooses it as "not these".
    from fewseg.napari.layers import outline_of

    mine = viewer.add_shapes([outline_of(unwanted.mask)], shape_type="polygon", name="distractors")
    widget.loop.not_these.value = mine
    viewer.cursor.position = tuple(wanted.point)
    press(viewer, "K")  # keep: painted into the examples layer as a new label
    assert int(viewer.layers["examples"].data.max()) == 9
    find(qtbot, widget)
    meta = labels.metadata["fewseg"]
    assert meta["examples"]["n"] == 9 and meta["learned"]["n_negatives"] == 1
    for p in (unwanted.point, wanted.point):
        assert labels.data[tuple(int(v) for v in p)] == 0
    assert NOT_THESE not in viewer.layers  # nothing was rejected through the widget
    assert not [m for s, m in messages if s in ("error", "warning")], messages


def test_saved_rejections_reopen_as_red_crosses_and_as_not_these_under_any_name(make_napari_viewer, qtbot, tmp_path):
    viewer, frame, truth = demo_viewer(make_napari_viewer)
    viewer.add_shapes([t.polygon for t in truth[:8]], shape_type="polygon", name="examples")
    widget = open_widget(viewer)
    find(qtbot, widget)
    labels, shapes = results(viewer)
    rejected = [widget.loop.proposals[int(shapes.features["label"].iloc[i])] for i in (0, 1)]
    widget.loop.correct(rejected=[r.point for r in rejected])
    marks = viewer.layers[NOT_THESE]
    assert list(marks.features["tag"]) == [NOT_THESE, NOT_THESE]  # each mark is tagged as it is made
    # Saved under a name of the user's own, removed, reopened: the loop's marks again.
    viewer.layers.selection = {marks}
    path = tmp_path / "rejected monday.geojson"
    assert viewer.layers.save(str(path), selected=True, plugin="fewseg") == [str(path)]
    viewer.layers.remove(marks)
    assert widget.loop.not_these.value is None
    [reopened] = viewer.open(str(path), plugin="fewseg")
    assert reopened.name == "rejected monday" and widget.loop.not_these.value is reopened
    assert reopened.symbol[0].value == "x" and tuple(reopened.face_color[0]) == pytest.approx((1.0, 48 / 255, 48 / 255, 1.0))
    np.testing.assert_allclose(reopened.data, [r.point for r in rejected], atol=1e-6)
    # A mark the user adds to it is tagged too, and Find learns from all of them.
    reopened.add(np.array([widget.loop.proposals[int(shapes.features["label"].iloc[2])].point]))
    assert list(reopened.features["tag"]) == [NOT_THESE] * 3
    find(qtbot, widget)
    assert labels.metadata["fewseg"]["learned"]["n_negatives"] == 3
    for r in rejected:
        assert labels.data[tuple(int(v) for v in r.point)] == 0
    # A file of clicks that are not rejections keeps the clicks' look and is not taken.
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("x,y\n10.5,12.5\n")
    [other] = viewer.open(str(clicks), plugin="fewseg")
    assert other.symbol[0].value != "x" and widget.loop.not_these.value is reopened
