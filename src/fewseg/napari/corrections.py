"""The correction loop in the dock widget: results are proposals until kept.

Mark a few, Find, look, correct, Find again. A correction is one of

* **Reject** (the button, or the key ``N`` with the mouse over a result): the selected
  results (outlines layer, select mode) or the one under the mouse become negatives:
  a point inside each is added to the ``not these`` layer (made on the first rejection)
  and the result leaves the results layers. Deleting results (napari's delete in the
  outlines layer, or erasing a whole object from the labels layer) counts as rejecting
  them.
* **Keep** (the button, or the key ``K``): the selected results, or the one under the
  mouse, become examples (added to the examples layer: an outline to a Shapes layer, a
  click to a Points layer, a painted object to a Labels layer) and leave the results.
* drawing into the ``not these`` layer (Points, Shapes or Labels; any layer chosen as
  ``not these``), the examples or the clicks layer, on any plane (Z / T kept).

The next Find learns from every example and negative where it lies
(:func:`fewseg.plan.plan_fit`, as the command line does), so what was rejected does not
come back. **Undo Find** puts the results layers back as they were before the last Find
(or re-threshold): their objects, scores and the user's edits. **live** finds again on
the plane shown after each correction, in a napari worker (the run before it, if still
going, is cancelled and its result dropped).

Painted Labels as examples are read as ilastik and napari-convpaint users paint
(:func:`painted_annotations`): one label per object is one example each; a layer painted
with one or two labels, label 1 on several separate objects, is read as objects (each
separate piece of label 1 an example) and background (label 2, each piece a negative),
with one warning line saying so. A label the layer's features name ``background`` is
background whatever its number.

Nothing of the method lives here: plain numpy helpers, and :class:`CorrectionLoop`, the
widget's controls, which edit layers and call back the widget's Find.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from ..classic.examples import is_click
from ..match import drop_rediscovered
from ..objects import Annotation, Location, ObjectMask
from .layers import CLICKS_COLOR, FOUND_EDGE, NOT_THESE, NOT_THESE_POINTS, index_of, labels_annotations, location_at


#: The results layers' roles (``metadata["fewseg"]["role"]``), as the widget writes them.
ROLE_LABELS, ROLE_SHAPES = "found labels", "found shapes"

#: Keys (viewer-wide) acting on the result under the mouse.
REJECT_KEY, KEEP_KEY = "n", "k"


# --------------------------------------------------------------------------- plain helpers


def interior_point(mask: ObjectMask) -> np.ndarray:
    """The ``(row, col)`` of ``mask``'s pixel farthest from its edge (a click that lies in it).

    Examples
    --------
    >>> m = np.zeros((5, 9), bool); m[1:4, 1:8] = True
    >>> interior_point(ObjectMask(10, 20, m)).tolist()
    [12.0, 24.0]
    """
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(np.pad(mask.mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(depth + 1e-6 * _centredness(mask.mask.shape))), depth.shape)
    return np.array([r + mask.row, c + mask.col], dtype=float)


def _centredness(shape) -> np.ndarray:
    """Larger towards the centre of a box (breaks ties between equally deep pixels)."""
    r, c = np.indices(shape, dtype=float)
    return -np.hypot(r - (shape[0] - 1) / 2, c - (shape[1] - 1) / 2)


@dataclass
class Painted:
    """A painted Labels layer read as examples: objects, background pieces, and what was read."""

    examples: list = field(default_factory=list)
    negatives: list = field(default_factory=list)
    note: str | None = None  # one line when the painting was not read one label per object


def background_labels(features) -> set[int]:
    """Label values a Labels layer's features name as background (a ``name`` / ``class``
    column holding "background" or "not these"; the value from an ``index`` / ``label`` column
    or the row's index)."""
    if features is None or not len(features):
        return set()
    out = set()
    for column in ("name", "class", "label_name"):
        if column in features:
            for i, name in enumerate(features[column]):
                if isinstance(name, str) and name.strip().lower() in ("background", NOT_THESE, "not this"):
                    value = (features["label"].iloc[i] if "label" in features else
                             features["index"].iloc[i] if "index" in features else features.index[i])
                    out.add(int(value))
    return out


def painted_annotations(labels: np.ndarray, *, source: str, axes=(), features=None) -> Painted:
    """A painted ``(*lead, Y, X)`` label image as examples and negatives.

    The rule: a label the features name background (:func:`background_labels`) is
    background. A layer holding only labels 1 and 2 (or 1 alone) where label 1 covers
    several separate pieces on a plane was painted as ilastik / convpaint users paint:
    label 1 is "objects" (each separate piece one example) and label 2 is background.
    Otherwise each label is one object (napari's usual one label per object). Each
    separate piece of background is one negative. ``note`` says in one line what was read
    whenever it is not one label per object.

    Examples
    --------
    >>> painted = np.zeros((20, 30), np.int32)
    >>> painted[2:5, 2:5] = painted[10:14, 20:24] = painted[15:18, 3:6] = 1; painted[0:3, 25:30] = 2
    >>> read = painted_annotations(painted, source="examples")
    >>> len(read.examples), len(read.negatives)
    (3, 1)
    >>> print(read.note)
    examples: read label 1 as 3 objects (each separate piece one example) and label 2 as background (1 piece, learned as 'not these'); paint one label per object to give touching objects apart
    >>> one_each = painted.copy(); one_each[10:14, 20:24] = 3; one_each[15:18, 3:6] = 4
    >>> read = painted_annotations(one_each, source="examples")
    >>> len(read.examples), len(read.negatives), read.note
    (4, 0, None)
    """
    from scipy.ndimage import label as connected

    labels = np.asarray(labels)
    n_lead = labels.ndim - 2
    values = set(np.unique(labels).tolist()) - {0}
    background = background_labels(features) & values
    pieces = 0
    semantic = False
    if values - background <= {1, 2} and 1 in values:
        for index in np.ndindex(*labels.shape[:n_lead]):
            if connected(labels[index] == 1)[1] > 1:
                semantic = True
                break
    if semantic and 2 in values and 2 not in background:
        background.add(2)
    if not semantic and not background:
        return Painted(labels_annotations(labels, source=source, axes=axes))
    axes = tuple(axes)[-n_lead:] if n_lead else ()
    objects, negatives = [], []
    for index in np.ndindex(*labels.shape[:n_lead]):
        plane = labels[index]
        location = location_at(index, axes)
        kept = np.where(np.isin(plane, list(background)), 0, plane)
        if semantic:
            pieces_plane, _ = connected(kept == 1)
            kept = pieces_plane
        objects += [replace(a, location=location, origin=f"{source}: {'piece' if semantic else 'label'} "
                                                          f"{a.properties['label']}")
                    for a in labels_annotations(kept, source=source)]
        back, n = connected(np.isin(plane, list(background)))
        pieces += n
        negatives += [replace(a, location=location, origin=f"{source}: background piece {a.properties['label']}")
                      for a in labels_annotations(back, source=source)]
    what = (f"read label 1 as {len(objects)} objects (each separate piece one example)" if semantic
            else f"read {len(objects)} labels as objects")
    named = ", ".join(str(v) for v in sorted(background)) or "none"
    note = (f"{source}: {what} and label {named} as background ({pieces} piece{'s' if pieces != 1 else ''}, "
            "learned as 'not these'); paint one label per object to give touching objects apart")
    return Painted(objects, negatives, note)


def leave_out_examples(truth: list[ObjectMask], examples: list, masks: list[ObjectMask], shape, *,
                       iou: float) -> tuple[list[ObjectMask], int]:
    """``truth`` without the objects that are examples (Evaluate scores the others, as
    ``fewseg evaluate`` and its correction curve do): a clicked example is the truth
    object holding its click (else the one its outline matches); an outlined example is
    the object it matches at ``iou`` (:func:`fewseg.match.drop_rediscovered`).
    ``examples`` and ``masks`` (their outlines) are aligned. Returns the truth left and
    how many were left out.

    Examples
    --------
    >>> sq = lambda r, c: ObjectMask(r, c, np.ones((4, 4), bool))
    >>> truth = [sq(0, 0), sq(10, 10), sq(20, 20)]
    >>> left, n = leave_out_examples(truth, [Annotation(point=np.array([11.0, 12.0])), sq(20, 21)],
    ...                              [sq(11, 11), sq(20, 21)], (30, 30), iou=0.3)
    >>> [m.bbox for m in left], n
    ([(0, 0, 4, 4)], 2)
    """
    held: set[int] = set()
    rest = []
    for example, mask in zip(examples, masks):
        if is_click(example):
            r, c = (int(v) for v in np.rint(example.point))
            j = next((j for j, t in enumerate(truth) if j not in held and t.holds(r, c)), None)
            if j is not None:
                held.add(j)
                continue
        rest.append(mask)
    left = [t for j, t in enumerate(truth) if j not in held]
    if rest:
        left, n = drop_rediscovered(left, rest, shape, iou=iou)
    else:
        n = 0
    return left, n + len(held)


def without_rejected(segmentation, negatives: list[Annotation], shape):
    """``segmentation`` without the objects a negative marks (one holding a negative's
    click, or lying mostly under a negative's outline): a re-threshold with what was
    learned before the rejection must not bring a rejected result back."""
    if not negatives or not len(segmentation.masks):
        return segmentation
    points = [tuple(int(v) for v in np.rint(n.point)) for n in negatives if is_click(n)]
    areas = [n.to_mask(shape) for n in negatives if not is_click(n)]
    canvas = np.zeros(shape, bool)
    for m in areas:
        m.paste(canvas)
    keep = []
    for k, mask in enumerate(segmentation.masks):
        if any(mask.holds(r, c) for r, c in points):
            continue
        if areas and canvas[mask.slices][mask.mask].mean() > 0.5:
            continue
        keep.append(k)
    if len(keep) == len(segmentation.masks):
        return segmentation
    return replace(segmentation, polygons=[segmentation.polygons[k] for k in keep],
                   masks=[segmentation.masks[k] for k in keep], scores=np.asarray(segmentation.scores)[keep])


@dataclass
class Proposal:
    """One result shown: its label id, the frame it lies on (the layer's leading index) and a point in it."""

    label: int
    index: tuple[int, ...]
    point: np.ndarray
    mask: ObjectMask


@dataclass
class Snapshot:
    """The results layers and the widget's run state before a Find replaced them (for Undo Find)."""

    labels: object  # the layer, or None when the Find made it
    labels_data: np.ndarray | None
    labels_metadata: dict
    shapes: object
    shapes_data: list
    shapes_types: list
    shapes_features: object
    shapes_metadata: dict
    state: dict  # the widget's attributes (last_run, segmenter, ...)
    proposals: dict


# --------------------------------------------------------------------------- the widget's controls


class CorrectionLoop:
    """Reject, Keep, Undo Find, live and the ``not these`` layer of one :class:`FindObjects`.

    Built by the widget (``widget.loop``), which places :attr:`controls` and calls
    :meth:`negatives`, :meth:`before_results`, :meth:`shown`, :meth:`filter_results`
    and :meth:`finished` from its own methods.
    """

    STATE = ("last_run", "segmenter", "last_config", "last_examples", "last_example_annotations")

    def __init__(self, widget):
        from magicgui.widgets import CheckBox, ComboBox, Container, PushButton

        self.widget = widget
        self.viewer = widget._viewer
        self.not_these = ComboBox(label="not these", choices=self._negative_choices, nullable=True, value=None)
        self.not_these.tooltip = ("rejected results and what you mark as not wanted (a Points, Shapes or Labels "
                                  f"layer, any plane); the first Reject makes '{NOT_THESE}'")
        self.reject_button = PushButton(text=f"Reject ({REJECT_KEY.upper()})")
        self.reject_button.tooltip = ("the selected results (outlines layer) or, with the key, the one under the mouse "
                                      "become 'not these': learned from, never returned again")
        self.keep_button = PushButton(text=f"Keep as examples ({KEEP_KEY.upper()})")
        self.keep_button.tooltip = "the selected results or, with the key, the one under the mouse become examples"
        self.undo_button = PushButton(text="Undo Find", enabled=False)
        self.undo_button.tooltip = "put the results back as they were before the last Find, with your edits"
        self.live = CheckBox(text="live: find again on this plane after each correction", value=False)
        buttons = Container(layout="horizontal", widgets=[self.reject_button, self.keep_button, self.undo_button],
                            labels=False)
        buttons.margins = (0, 0, 0, 0)
        self.controls = [self.not_these, buttons, self.live]
        self.reject_button.changed.connect(lambda _=None: self.reject())
        self.keep_button.changed.connect(lambda _=None: self.keep())
        self.undo_button.changed.connect(lambda _=None: self.undo())
        self.proposals: dict[int, Proposal] = {}
        self.undo_stack: list[Snapshot] = []
        self.live_pending = False
        self._editing = False
        self._removing: list[int] = []
        self._watched: set[int] = set()  # input layers listened to (live mode)
        self._watched_results: set[int] = set()  # results layers listened to (deleting is rejecting)
        self._watch_inputs()
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._layers_changed)
        self.viewer.bind_key(REJECT_KEY, self._reject_key, overwrite=True)
        self.viewer.bind_key(KEEP_KEY, self._keep_key, overwrite=True)

    # ---- layers

    def _negative_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.widget._layers("points", "shapes", "labels")]

    def refresh(self, before=None):
        """``not these`` after the layers changed: as the user chose it while its layer is
        there, else a layer named ``not these`` or reopened from a file of the loop's marks
        (:func:`~fewseg.napari.layers.is_not_these`), else nothing."""
        self.not_these.reset_choices()
        layers = [layer for _, layer in self._negative_choices()]
        named = [layer for layer in layers
                 if layer.name == NOT_THESE or (layer.metadata.get("fewseg") or {}).get("marks") == NOT_THESE]
        self.not_these.value = before if before is not None and before in layers else (named or [None])[0]
        self._watch_inputs()

    def _layers_changed(self, _event=None):
        self._watch_inputs()  # the widget's own refresh calls refresh()

    def _watch_inputs(self):
        """A live refresh after each point, shape or stroke added to the examples, clicks or not-these layers."""
        for layer in self.viewer.layers:
            if id(layer) in self._watched or (layer.metadata.get("fewseg") or {}).get("role"):
                continue
            kind = _kind(layer)
            if kind in ("points", "shapes"):
                layer.events.data.connect(self._input_changed)
            elif kind == "labels":
                layer.events.paint.connect(self._input_changed)
            else:
                continue
            self._watched.add(id(layer))

    def _input_changed(self, event=None):
        layer = getattr(event, "source", None)
        chosen = (self.widget.examples.value, self.widget.clicks.value, self.not_these.value)
        if self._editing or layer is None or not any(layer is c for c in chosen):
            return
        action = str(getattr(event, "action", "added"))
        if "ing" in action.lower():  # adding / removing / changing: wait for the -ed event
            return
        self.changed()

    def _results(self):
        return self.widget._role_layer(ROLE_LABELS), self.widget._role_layer(ROLE_SHAPES)

    def negatives(self, *, axes, here: Location, shape) -> list[Annotation]:
        """Every negative the user gave: the ``not these`` layer's (each on its plane) and the
        background of a painted examples layer (:func:`painted_annotations`)."""
        self.sync(live=False)  # a Find is being planned: it is the refresh
        out = []
        layer = self.not_these.value
        if layer is not None:
            kind = _kind(layer)
            if kind == "labels":
                read = painted_annotations(layer.data, source=layer.name, axes=axes, features=layer.features)
                found = read.examples + read.negatives
                if layer.data.ndim == 2:
                    found = [replace(a, location=here) for a in found]
                out += found
            elif len(layer.data):
                out += self.widget.example_annotations(layer, axes=axes, here=here, shape=shape)
        examples = self.widget.examples.value
        if examples is not None and _kind(examples) == "labels":
            read = painted_annotations(examples.data, source=examples.name, axes=axes, features=examples.features)
            out += [replace(a, location=here) for a in read.negatives] if examples.data.ndim == 2 else read.negatives
        return out

    # ---- what Find shows

    def before_results(self):
        """Remember the results layers and the run state (a Find or re-threshold is about to replace them)."""
        labels, shapes = self._results()
        state = {k: getattr(self.widget, k, None) for k in self.STATE}
        self.undo_stack.append(Snapshot(
            labels, None if labels is None else np.array(labels.data, copy=True), dict(labels.metadata) if labels else {},
            shapes, [] if shapes is None else [np.array(v) for v in shapes.data],
            [] if shapes is None else list(shapes.shape_type),
            None if shapes is None else shapes.features.copy(), dict(shapes.metadata) if shapes else {},
            state, dict(self.proposals)))
        del self.undo_stack[:-10]
        self.undo_button.enabled = True

    @contextmanager
    def writing(self):
        """The widget writes its results layers: their edit events are not the user's."""
        self._editing = True
        try:
            yield
        finally:
            self._editing = False

    def cancel_before(self):
        """The results were not replaced after all (a failure while writing them)."""
        if self.undo_stack:
            self.undo_stack.pop()
        self.undo_button.enabled = bool(self.undo_stack)

    def filter_results(self, plan, results):
        """Each frame's result without what the user rejected there (a re-threshold or
        a reused model does not bring it back; a refit never returns it anyway)."""
        shape = plan.channels[0].data.shape[-2:]
        negatives = list(plan.fit.negatives)
        try:  # and those marked since the plan was made (a re-threshold of an older run)
            here = location_at(self.widget.current_index(plan.channels[0]), plan.axes)
            negatives += self.negatives(axes=plan.axes, here=here, shape=shape)
        except Exception:  # noqa: BLE001 - bad input there is Find's to report; the plan's own still apply
            pass
        by_place: dict[Location, list] = {}
        for n in negatives:
            by_place.setdefault(n.location, []).append(n)
        return [replace(r, segmentation=without_rejected(r.segmentation, by_place.get(r.location, []), shape))
                for r in results]

    def shown(self, results, ids, axes):
        """Record the results just written (their ids, frames and a point in each) and
        listen for their deletion."""
        labels, shapes = self._results()
        self.proposals = {}
        for result, frame_ids in zip(results, ids):
            index = index_of(result.location, axes)
            for mask, label in zip(result.segmentation.masks, frame_ids):
                self.proposals[label] = Proposal(label, index, interior_point(mask), mask)
        for layer, event in ((shapes, "data"), (labels, "paint")):
            if layer is not None and id(layer) not in self._watched_results:
                getattr(layer.events, event).connect(self._results_edited)
                self._watched_results.add(id(layer))

    # ---- deleting a result is rejecting it

    def _results_edited(self, event=None):
        if self._editing:
            return
        labels, shapes = self._results()
        layer = getattr(event, "source", None)
        action = str(getattr(event, "action", ""))
        if layer is shapes and shapes is not None:
            if action.endswith("removing") or action == "ActionType.REMOVING":
                self._removing = [int(shapes.features["label"].iloc[i]) for i in event.data_indices
                                  if i < len(shapes.features)]
                return
            if not (action.endswith("removed") or action == "ActionType.REMOVED"):
                return
            gone, self._removing = self._removing, []
        elif layer is labels and labels is not None:
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self.sync)  # napari emits paint before writing the data
            return
        else:
            return
        gone = [k for k in gone if k in self.proposals]
        if gone:
            self._reject_labels(gone, deleted=True)

    def sync(self, *, live: bool = True):
        """Reject the results erased whole from the labels layer since the last look
        (a fill with 0, the eraser): called after each paint and before each Find."""
        if self._editing or not self.proposals:
            return
        labels, _ = self._results()
        if labels is None:
            return
        present = {index: set(np.unique(labels.data[index]).tolist()) for index in {p.index for p in self.proposals.values()}}
        gone = [k for k, p in self.proposals.items() if k not in present[p.index]]
        if gone:
            self._reject_labels(gone, deleted=True, live=live)

    # ---- reject / keep

    def _at(self, points) -> dict[int, np.ndarray]:
        """The result ids under ``points`` (``(row, col)`` on the plane shown), each with its point."""
        labels, _ = self._results()
        if labels is None:
            return {}
        plane = labels.data[self.widget.current_index(labels)]
        out: dict[int, np.ndarray] = {}
        for point in points:
            r, c = (int(round(v)) for v in point)
            if 0 <= r < plane.shape[0] and 0 <= c < plane.shape[1] and plane[r, c]:
                out.setdefault(int(plane[r, c]), np.array(point, dtype=float))
        return out

    def _chosen(self, points, verb: str, key: str) -> dict[int, np.ndarray | None]:
        """The results a Reject or Keep acts on: those under ``points``, else the selected
        ones (each with the point given, None for the selected); says so when there are none."""
        chosen = self._at(points) if points is not None else dict.fromkeys(self._selected())
        if not chosen:
            self._say(f"nothing to {verb}: select results in the outlines layer (select mode), or press "
                      f"{key.upper()} with the mouse over one")
        return chosen

    def _selected(self) -> list[int]:
        _, shapes = self._results()
        if shapes is None or not shapes.selected_data:
            return []
        return [int(shapes.features["label"].iloc[i]) for i in sorted(shapes.selected_data)]

    def _under_mouse(self) -> list[tuple[float, float]]:
        labels, _ = self._results()
        if labels is None:
            return []
        position = labels.world_to_data(self.viewer.cursor.position)
        return [(float(position[-2]), float(position[-1]))]

    def _reject_key(self, _viewer=None):
        self.reject(points=self._under_mouse())

    def _keep_key(self, _viewer=None):
        self.keep(points=self._under_mouse())

    def reject(self, points=None) -> int:
        """Reject the results under ``points`` (``(row, col)`` on the plane shown: a click
        inside each is the negative), else the selected ones. Returns how many."""
        chosen = self._chosen(points, "reject", REJECT_KEY)
        if chosen:
            self._reject_labels(list(chosen), clicks=chosen)
        return len(chosen)

    def _reject_labels(self, ids, *, clicks=None, deleted=False, live=True):
        clicks = clicks or {}
        layer = self._negatives_layer()
        self._editing = True
        try:
            for k in ids:
                p = self.proposals.get(k)
                if p is not None:
                    self._add_to(layer, p, _or(clicks.get(k), p.point), tag=NOT_THESE)
            self._remove_results(ids)
        finally:
            self._editing = False
        how = "deleted" if deleted else "rejected"
        self._say(f"{how} {len(ids)} result(s): now in '{layer.name}', learned from by the next Find")
        if live:
            self.changed()

    def keep(self, points=None) -> int:
        """Make the results under ``points`` (else the selected ones) examples. Returns how many."""
        clicks = self._chosen(points, "keep", KEEP_KEY)
        ids = list(clicks)
        if not ids:
            return 0
        layer = self.widget.examples.value
        if layer is None:
            layer = self.viewer.add_shapes(ndim=self._ndim(), name="examples", edge_color="#00ffff",
                                           face_color="transparent", edge_width=1.5)
            self.widget.examples.value = layer
        self._editing = True
        try:
            tag = self.widget.tag.value.strip()
            for k in ids:
                if k in self.proposals:
                    self._add_to(layer, self.proposals[k], _or(clicks[k], self.proposals[k].point), tag=tag)
            self._remove_results(ids)
        finally:
            self._editing = False
        self._say(f"kept {len(ids)} result(s) as examples (in {layer.name}); Find again to learn from them")
        self.changed()
        return len(ids)

    def correct(self, *, rejected=(), clicked=()) -> tuple[int, int]:
        """One round of a user's corrections on the plane shown, as a script gives them:
        reject the results under the ``rejected`` points and add the ``clicked`` points
        (``(row, col)``, on missed objects) to the clicks layer (``and clicks``; made as
        ``clicks`` when none is chosen). What ``fewseg evaluate --rounds`` records for a
        round (``rejected``, ``clicked``) replays through it. Returns how many of each."""
        n = self.reject(points=[tuple(p) for p in rejected]) if len(rejected) else 0
        clicked = np.asarray(clicked, dtype=float).reshape(-1, 2)
        if len(clicked):
            layer = self.widget.clicks.value
            if layer is None or layer is self.widget.examples.value and _kind(layer) != "points":
                layer = self.viewer.add_points(np.zeros((0, self._ndim())), ndim=self._ndim(), name="clicks",
                                               face_color=CLICKS_COLOR, size=7)
                self.widget.clicks.value = layer
            labels, _ = self._results()
            lead = list(self.widget.current_index(labels)) if labels is not None else []
            layer.add(np.column_stack([np.broadcast_to(np.array(lead, float), (len(clicked), len(lead))), clicked])
                      [:, -layer.ndim:])
        return n, len(clicked)

    def _ndim(self) -> int:
        labels, _ = self._results()
        return labels.ndim if labels is not None else 2

    def _negatives_layer(self):
        layer = self.not_these.value
        if layer is None:
            # Each mark carries the tag "not these": a saved file of them is known again when reopened.
            layer = self.viewer.add_points(np.zeros((0, self._ndim())), ndim=self._ndim(), name=NOT_THESE,
                                           features={"tag": np.array([], dtype=object)},
                                           feature_defaults={"tag": NOT_THESE}, **NOT_THESE_POINTS)
            self._layers_changed()
            self.not_these.value = layer
        return layer

    def _add_to(self, layer, proposal: Proposal, point, *, tag: str):
        """Add ``proposal`` to ``layer``: its outline (Shapes), a point in it (Points) or its pixels (Labels)."""
        kind = _kind(layer)
        lead = list(proposal.index)[-(layer.ndim - 2):] if layer.ndim > 2 else []
        if kind == "points":
            layer.add(np.array([[*lead, *point]], dtype=float)[:, -layer.ndim:])
            self._tag_last(layer, tag)
        elif kind == "shapes":
            from .layers import outline_of

            polygon = outline_of(proposal.mask)
            if polygon is None:
                return
            lead_cols = np.broadcast_to(np.array(lead, dtype=float), (len(polygon), len(lead)))
            layer.add_polygons([np.column_stack([lead_cols, polygon])])
            self._tag_last(layer, tag)
        else:
            data = layer.data
            plane = data[tuple(lead)] if lead else data
            # A layer painted as objects / background gets label 1 (an object), else a new label.
            painted = painted_annotations(data, source=layer.name, features=layer.features).note is not None
            value = 1 if painted and kind == "labels" and layer is not self.not_these.value else int(data.max(initial=0)) + 1
            region = plane[proposal.mask.slices]
            region[proposal.mask.mask & (region == 0)] = value
            layer.refresh()

    @staticmethod
    def _tag_last(layer, tag: str):
        if not tag or "tag" not in layer.features:
            return
        features = layer.features.copy()
        features.loc[features.index[-1], "tag"] = tag
        if "tags" in features:
            import json

            features.loc[features.index[-1], "tags"] = json.dumps([tag])
        layer.features = features

    def _remove_results(self, ids):
        labels, shapes = self._results()
        ids = [k for k in ids if k in self.proposals]
        if labels is not None:
            for k in ids:
                p = self.proposals[k]
                plane = labels.data[p.index] if p.index else labels.data
                plane[plane == k] = 0
            labels.refresh()
        if shapes is not None and len(shapes.data):
            at = [i for i, v in enumerate(shapes.features["label"]) if int(v) in ids]
            if at:
                shapes.selected_data = set()
                shapes.remove(at)
        for k in ids:
            self.proposals.pop(k, None)

    # ---- undo

    def undo(self) -> bool:
        """Put the results layers and the run state back as they were before the last Find."""
        if self.widget.running or not self.undo_stack:
            return False
        snap = self.undo_stack.pop()
        labels, shapes = self._results()
        self._editing = True
        try:
            if snap.labels is None:
                for layer in (labels, shapes):
                    if layer is not None and layer in self.viewer.layers:
                        self.viewer.layers.remove(layer)
            else:
                snap.labels.data = snap.labels_data
                snap.labels.metadata = snap.labels_metadata
                if snap.shapes is not None:
                    snap.shapes.data = []
                    if snap.shapes_data:
                        snap.shapes.add(snap.shapes_data, shape_type=snap.shapes_types, edge_color=FOUND_EDGE,
                                        face_color="transparent", edge_width=1.5)
                    snap.shapes.features = snap.shapes_features
                    snap.shapes.metadata = snap.shapes_metadata
        finally:
            self._editing = False
        for k, v in snap.state.items():
            setattr(self.widget, k, v)
        self.proposals = snap.proposals
        self.undo_button.enabled = bool(self.undo_stack)
        self._say("undid the last Find: the results before it are back")
        return True

    # ---- live

    def changed(self):
        """A correction was made: in live mode, find again on the plane shown (the run
        going, if any, is cancelled and its result dropped; this one starts when it ends)."""
        if not self.live.value:
            return
        if self.widget.running:
            self.live_pending = True
            plan = getattr(self.widget, "_plan", None)
            if plan is not None:
                plan.cancel.set()
            return
        self.widget.find(current_only=True)

    def finished(self):
        """The widget's run ended: start the live refresh a correction asked for meanwhile."""
        if self.live_pending:
            self.live_pending = False
            self.changed()

    def _say(self, message: str):
        self.widget.status.value = message


def _or(point, default):
    return default if point is None else point


def _kind(layer) -> str:
    """"points", "shapes", "labels"...: a layer's type (``__class__``: napari hands plugins proxies of its layers)."""
    return layer.__class__.__name__.lower()
