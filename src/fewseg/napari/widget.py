"""The dock widget "find objects like these": outline a few, find the rest, look at them.

One :class:`FindObjects` container (magicgui widgets, so it needs no Qt binding of its
own): channels (Image layers), examples (a Shapes layer of polygons / rectangles /
ellipses, a painted Labels layer, or a Points layer of clicks, which the library
outlines when it fits: :mod:`fewseg.classic.clicks`), "and clicks" (a Points layer added
to outlined examples), tag, method, boundary (classic: each object's own level or the
learned boundary, :mod:`fewseg.classic.boundary`), frames (the one shown, or all along Z / T),
similarity, Find and Cancel, a progress bar and a status line; then a
truth layer and Evaluate.

``similarity`` is the keep threshold on each object's score ("auto": the method's own);
changed after a run, it keeps more or fewer of that run's objects: each frame's result
is re-thresholded by the method (``rethreshold``: nothing refitted, proposed or scored
again; :func:`rethreshold_outcome`).

Examples and negatives may lie on several frames of a stack: every one is learned from
where it lies (:func:`fewseg.plan.plan_fit` and :func:`fewseg.batch.fit_plan`, as the
CLI does; a SAM method learns from the frame holding the most, and a warning
notification names the examples it leaves out), and no example or negative is returned as
a result on its own frame. The correction loop (Reject, Keep, the ``not these`` layer,
Undo Find, live) is :mod:`fewseg.napari.corrections`.

Find fits and predicts with the library's own loop (:func:`fewseg.methods.make_segmenter`,
``fit``, :func:`fewseg.batch.segment_frames`) in a napari ``thread_worker``, one frame
at a time, cancellable between frames. Results land in two layers, written only when a
run completes (a cancelled or failed run leaves every layer as it was) and reused on the
next run: a Labels layer (``(*lead, Y, X)``, editable) and a Shapes layer whose features
hold each object's ``score``, ``tag`` and ``label``. Both carry the run's record
(:func:`fewseg.batch.run_record`: config, what was learned, where, counts, timings) and
the layers and axes used in ``metadata["fewseg"]``. Bad input and failed runs become a
napari notification with the one-line message the CLI prints.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
from magicgui.widgets import (CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, Label, LineEdit, ProgressBar,
                              PushButton, Select)

from ..io.annotations import available_tags, fit_inside
from ..batch import FrameResult, fit_plan, run_record, segment_frames
from ..config import BOUNDARIES, METHODS, SegmentConfig
from ..errors import FewsegError, InputError
from ..evaluate import score
from ..methods import make_segmenter
from ..objects import Annotation, Frame, Location, ObjectMask, masks_from_labels
from ..classic.clicks import as_masks
from ..plan import FitPlan, plan_fit
from .corrections import ROLE_LABELS, ROLE_SHAPES, CorrectionLoop, leave_out_examples, painted_annotations
from .layers import (
    FOUND_EDGE,
    index_of,
    lead_axes,
    location_at,
    outcome_edges,
    outline_of,
    paint_results,
    points_annotations,
    result_shapes,
    shapes_annotations,
)

CURRENT = "current frame"
ROLE_EVALUATION = "evaluation"


def sam_available() -> bool:
    """Whether the SAM extra is installed (torch and the official packages)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "segment_anything"))


def sam_models() -> list[str]:
    """SAM checkpoint names, those already in fewseg's cache first (the GUI downloads nothing)."""
    from ..sam.registry import CHECKPOINTS, cache_status

    return sorted(CHECKPOINTS, key=lambda name: cache_status(name) == "missing")


@dataclass
class Plan:
    """Everything one run needs, gathered on the GUI thread before the worker starts."""

    config: SegmentConfig
    channels: list  # Image layers, one per channel
    axes: tuple[str, ...]
    fit: FitPlan  # what is learned from where (fit.examples: every example on fit_frame), excluded where
    fit_frame: Frame
    locations: list[Location]
    tag: str
    examples_from: str = ""  # the examples' layer names
    segmenter: object = None  # a fitted one to reuse (predict only)
    cancel: threading.Event = field(default_factory=threading.Event)

    def read(self, location: Location) -> Frame:
        """The frame at ``location``, from the channel layers' data."""
        return frame_at(self.channels, index_of(location, self.axes), location)


@dataclass
class Outcome:
    """What a run gave: the fitted segmenter, one result per frame done, the seconds, or the error."""

    segmenter: object = None
    results: list[FrameResult] = field(default_factory=list)
    fit_seconds: float = 0.0
    seconds: float = 0.0
    cancelled: bool = False
    error: Exception | None = None
    example_masks: dict[Location, list[ObjectMask]] = field(default_factory=dict)  # for Evaluate


def frame_at(channels, index: tuple[int, ...], location: Location) -> Frame:
    """A :class:`~fewseg.objects.Frame` of the channel layers' planes at ``index``."""
    data = np.stack([np.asarray(layer.data[index], dtype=np.float32) for layer in channels])
    names = tuple(layer.name for layer in channels)
    return Frame(data, channel_names=names, source=f"layers {', '.join(names)}", location=location)


def run_plan(plan: Plan):
    """The worker: fit (unless reusing a model), then yield each frame's result.

    A generator, so napari's ``thread_worker`` reports progress; its return value is an
    :class:`Outcome`. Stops between frames once ``plan.cancel`` is set. An error (bad
    input found by the library, or a failed run) ends the run and comes back in the
    outcome, for the GUI thread to show: nothing is raised across the thread.
    """
    t0 = time.perf_counter()
    results: list[FrameResult] = []
    try:
        where = plan.fit_frame.location
        fitted = {where: plan.fit_frame}
        segmenter = plan.segmenter
        if segmenter is None:  # every example and negative learned from where it lies (the frames holding them)
            segmenter, fitted = fit_plan(make_segmenter(plan.config), plan.fit, plan.read, frames=fitted)
            fitted = {where: plan.fit_frame, **fitted}
        fit_seconds = time.perf_counter() - t0
        yield None
        for result in segment_frames(segmenter, plan.read, plan.locations, examples=plan.fit.exclude,
                                     frames=fitted, cancelled=plan.cancel.is_set,
                                     similarity=plan.config.similarity):
            results.append(result)
            yield result
        cancelled = len(results) < len(plan.locations)
        # Evaluate leaves the examples out of the truth: their masks (clicks outlined as fit outlines them).
        masks = {} if cancelled else {loc: as_masks(ex, fitted[loc] if loc in fitted else plan.read(loc))
                                      for loc, ex in plan.fit.examples_at.items()}
    except Exception as exc:  # the GUI's boundary: any failure becomes a notification
        return Outcome(results=results, error=exc)
    return Outcome(segmenter, results, fit_seconds, time.perf_counter() - t0, cancelled=cancelled,
                   example_masks=masks)


def rethreshold_outcome(segmenter, outcome: Outcome, similarity: float | None):
    """The worker of a similarity change: each frame of ``outcome`` re-thresholded
    (``segmenter.rethreshold``), yielded as it is done, in an :class:`Outcome` like
    :func:`run_plan`'s (its fit seconds 0: nothing is learned)."""
    t0 = time.perf_counter()
    results: list[FrameResult] = []
    try:
        yield None
        for result in outcome.results:
            t = time.perf_counter()
            segmentation = segmenter.rethreshold(result.segmentation, similarity=similarity)
            results.append(replace(result, segmentation=segmentation, seconds=time.perf_counter() - t))
            yield results[-1]
    except Exception as exc:  # the GUI's boundary: any failure becomes a notification
        return Outcome(results=results, error=exc)
    return Outcome(segmenter, results, 0.0, time.perf_counter() - t0, example_masks=outcome.example_masks)


def warn_repairs(layer, annotations) -> None:
    """One warning per shape repaired as it was read (clipped to the frame, made simple):
    its index and centre (row, col) on the canvas; the repaired shapes are selected."""
    from napari.utils.notifications import show_warning
    from shapely.geometry import Polygon

    repaired = [a for a in annotations if a.properties.get("repaired") and a.polygon is not None]
    for a in repaired:
        row, col = Polygon(a.polygon).centroid.coords[0]
        show_warning(f"{a.origin}: repaired at row {row:.0f}, col {col:.0f} (selected): {a.properties['repaired']}")
    if repaired and hasattr(layer, "selected_data"):
        layer.selected_data = {int(a.origin.rsplit("[", 1)[1].rstrip("]")) for a in repaired}


class FindObjects(Container):
    """Find objects like the examples (the plugin's dock widget).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.channels = Select(label="channels", choices=self._image_choices)
        self.channels.max_height = 90
        self.examples = ComboBox(label="examples", choices=self._example_choices, nullable=True)
        self.clicks = ComboBox(label="and clicks", choices=self._points_choices, nullable=True, value=None)
        self.clicks.tooltip = ("a Points layer of clicks on more objects, learned from with the examples "
                               "(the outlines teach how to outline the clicked objects)")
        self.channels.changed.connect(lambda _: self.frames.reset_choices())
        self.tag = LineEdit(label="tag", value="")
        self.tag.tooltip = "only examples with this tag count, and results get it (empty: every example)"
        self.method = ComboBox(label="method", choices=self._method_choices)
        self.model = ComboBox(label="SAM model", choices=lambda _: sam_models() if sam_available() else [],
                              nullable=True, visible=False)
        self.checkpoint = FileEdit(label="checkpoint", mode="r", filter="*.pt *.pth", nullable=True, visible=False)
        self.checkpoint.tooltip = "a local checkpoint file for the SAM model (else fewseg's cache)"
        self.boundary = ComboBox(label="boundary", choices=list(BOUNDARIES), value="level")
        self.boundary.tooltip = ("classic: outlines at each object's own signal level, or redrawn by a per-pixel "
                                 "model learned from the examples (closer outlines, ~0.3 s more per frame)")
        self.frames = ComboBox(label="frames", choices=self._frame_choices)
        self.similarity = FloatSpinBox(label="similarity", min=0.0, max=1.0, step=0.01, value=0.0)
        self.similarity.native.setSpecialValueText("auto")  # at its minimum: the method's own threshold
        self.similarity.tooltip = ("keep objects scoring at least this like the examples (auto: the method's own "
                                   "threshold); changed after a run, it re-predicts with what was learned, no refit")
        self.reuse = CheckBox(text="reuse what was learned (predict only)", value=False)
        self.find_button = PushButton(text="Find")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = Label(label="status", value="draw a few examples, then Find")
        self.truth = ComboBox(label="truth", choices=self._truth_choices, nullable=True)
        self.evaluate_button = PushButton(text="Evaluate")
        self.metrics = Label(label="scores", value="")
        self.loop = CorrectionLoop(self)  # Reject, Keep, Undo Find, live, "not these" (fewseg.napari.corrections)
        self.extend([self.channels, self.examples, self.clicks, self.tag, self.method, self.model, self.checkpoint, self.boundary, self.frames,
                     self.similarity, self.reuse, self.find_button, self.cancel_button, self.progress, self.status,
                     *self.loop.controls, self.truth, self.evaluate_button, self.metrics])
        for label, lines in ((self.status, 2), (self.metrics, 4)):
            label.native.setWordWrap(True)
            # A crowded dock squeezes rows: keep room for the wrapped text (the scores take 4 lines at 420 px).
            label.native.setMinimumHeight(lines * label.native.fontMetrics().lineSpacing() + 4)
        self.max_width = 420
        self._setup_display()
        self.find_button.changed.connect(self.find)
        self.cancel_button.changed.connect(self.cancel)
        self.evaluate_button.changed.connect(self.evaluate)
        self.method.changed.connect(self._show_sam_options)
        self.similarity.changed.connect(self.rethreshold)
        self._rethreshold_pending = False
        events = napari_viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self._refresh)
        self.worker = None
        self.segmenter = None  # the last fitted segmenter (for "reuse")
        self.last_run: tuple[Plan, Outcome] | None = None  # the last completed run (for the similarity box)
        self.last_examples: dict[Location, list[ObjectMask]] = {}
        self.last_example_annotations: dict[Location, list] = {}  # what those masks outline (clicks stay clicks)
        self.last_config: SegmentConfig | None = None
        self._refresh()

    def _setup_display(self):
        """The legend, the hover line and scores to the similarity box's precision (:mod:`.display`)."""
        from .display import SCORE_DECIMALS, ResultsView

        self.similarity.native.setDecimals(SCORE_DECIMALS)
        self.similarity.tooltip += ("; hover a found object for its score (to the same 8 decimals: the box set to it "
                                    "keeps that object), log-odds and rank")
        self.view = ResultsView(self, self._viewer)
        self.extend(self.view.widgets)

    # ---- choices

    def _layers(self, *kinds: str) -> list:
        return [layer for layer in self._viewer.layers if type(layer).__name__.lower() in kinds
                and (layer.metadata.get("fewseg") or {}).get("role") is None]

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._layers("image") if not layer.rgb]

    def _example_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._layers("shapes", "labels", "points")]

    def _points_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._layers("points")]

    def _truth_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._layers("shapes", "labels")]

    def _method_choices(self, _widget=None):
        return list(METHODS) if sam_available() else ["classic"]

    def _show_sam_options(self, method: str):
        self.model.visible = self.checkpoint.visible = method != "classic"
        self.boundary.visible = method == "classic"

    def _frame_choices(self, _widget=None):
        layers = self.channels.value if hasattr(self, "channels") and self.channels.value else \
            [v for _, v in self._image_choices()]
        if not layers or layers[0].ndim <= 2:
            return [CURRENT]
        try:
            axes = lead_axes(layers[0].ndim - 2, layers[0].metadata)
        except FewsegError:  # more than T and Z: Find will say so
            return [CURRENT]
        return [CURRENT] + [f"all along {a}" for a in axes] + (["all frames"] if len(axes) > 1 else [])

    def _refresh(self, _event=None):
        before, known = list(self.channels.value or []), list(getattr(self, "_known_images", []))
        clicks, not_these = self.clicks.value, self.loop.not_these.value
        self.reset_choices()
        self.loop.refresh(not_these)
        # "and clicks" stays as the user chose it (nothing, unless its layer went).
        self.clicks.value = clicks if clicks in [v for _, v in self._points_choices()] else None
        images = [v for _, v in self._image_choices()]
        kept = [layer for layer in before if layer in images]
        # A new image layer joins the channels when it is the same size as those chosen (a file's channels).
        shape = kept[0].data.shape if kept else None
        new = [layer for layer in images if layer not in known and (shape is None or layer.data.shape == shape)]
        self.channels.value = kept + [layer for layer in new if layer not in kept] if kept or new else images
        self._known_images = images
        if self.examples.value is None or self.examples.value not in [v for _, v in self._example_choices()]:
            named = [layer for _, layer in self._example_choices() if layer.name == "examples"]
            choices = [v for _, v in self._example_choices() if v.name != "truth"]
            self.examples.value = (named or choices or [None])[0]
        if self.truth.value is None:
            named = [layer for _, layer in self._truth_choices() if layer.name == "truth"]
            self.truth.value = named[0] if named else None
        self.frames.reset_choices()

    # ---- running

    @property
    def running(self) -> bool:
        return self.worker is not None

    def current_index(self, layer) -> tuple[int, ...]:
        """The leading index of ``layer`` at the viewer's current position."""
        n_lead = layer.ndim - 2
        if n_lead <= 0:
            return ()
        step = self._viewer.dims.current_step[-layer.ndim:-2]
        return tuple(int(np.clip(s, 0, n - 1)) for s, n in zip(step, layer.data.shape[:n_lead]))

    @property
    def similarity_value(self) -> float | None:
        """The similarity box's threshold; None at its lowest ("auto": the method's own)."""
        value = float(self.similarity.value)
        return None if value <= self.similarity.min else value

    def plan(self, *, reuse: bool | None = None, current_only: bool = False) -> Plan:
        """Gather and check the inputs; :class:`~fewseg.errors.InputError` on bad ones.

        ``reuse``: predict with the last fitted segmenter (default: the "reuse" box);
        ``current_only``: the plane shown only, whatever ``frames`` says (live mode).
        """
        channels = list(self.channels.value or [])
        if not channels:
            raise InputError("channels", "choose at least one image layer (open a frame first)")
        shapes = {layer.data.shape for layer in channels}
        if len(shapes) > 1:
            described = ", ".join(f"{layer.name} {tuple(layer.data.shape)}" for layer in channels)
            raise InputError("channels", f"the channel layers differ in shape: {described}; choose layers of one frame")
        first = channels[0]
        axes = lead_axes(first.ndim - 2, first.metadata, source=first.name)
        here = location_at(self.current_index(first), axes)
        yx = first.data.shape[-2:]
        tag = self.tag.value.strip()
        examples = self.example_annotations(self.examples.value, axes=axes, here=here, shape=yx, tag=tag)
        layers = [self.examples.value]
        if self.clicks.value is not None and self.clicks.value is not self.examples.value and len(self.clicks.value.data):
            examples += self.example_annotations(self.clicks.value, axes=axes, here=here, shape=yx, tag=tag)
            layers.append(self.clicks.value)
        negatives = self.loop.negatives(axes=axes, here=here, shape=yx)
        fit = self._fit_plan(examples, negatives, here)
        fit_frame = frame_at(channels, index_of(fit.fit_location, axes), fit.fit_location)
        sam = {}
        if self.method.value != "classic":
            checkpoint = self.checkpoint.value
            sam = {"model": self.model.value or "sam1_vit_h",
                   "checkpoint": str(checkpoint) if checkpoint not in (None, "") and str(checkpoint) != "." else None}
        similarity = self.similarity_value
        boundary = self.boundary.value if self.method.value == "classic" else "level"  # SAM draws the others
        config = SegmentConfig(method=self.method.value, similarity=similarity, boundary=boundary, **sam)
        segmenter = None
        if (self.reuse.value if reuse is None else reuse) and self.segmenter is not None:
            segmenter = self.segmenter  # what was learned, not refitted: predicts at config.similarity
            config = replace(self.last_config, similarity=similarity)
        locations = [here] if current_only else self.locations(first, axes, here)
        return Plan(config, channels, axes, fit, fit_frame, locations, tag or "",
                    examples_from=" + ".join(layer.name for layer in layers),
                    segmenter=segmenter)

    def _fit_plan(self, examples, negatives, here: Location) -> FitPlan:
        """The fit plan (:func:`fewseg.plan.plan_fit`, as the CLI asks it): every example and
        negative learned from where it lies; a SAM method, which learns from one frame,
        follows :meth:`~fewseg.plan.FitPlan.one_frame` (a warning names what is left out)."""
        fit = plan_fit(examples, current=here, negatives=negatives)
        if self.method.value != "classic" and len(fit.fit_locations) > 1:
            fit = fit.one_frame()
        return fit

    def example_annotations(self, layer, *, axes, here: Location, shape, tag: str = "",
                            empty: str = "holds no examples; outline a few objects like those to find") -> list[Annotation]:
        """The objects drawn in ``layer``, each on its frame, checked like the CLI checks a file."""
        if layer is None:
            raise InputError("examples", "choose a Shapes, Labels or Points layer holding a few outlined or "
                                         "clicked objects")
        kind = type(layer).__name__.lower()
        if kind == "labels":  # painted: one label per object, or objects / background (corrections.painted_annotations)
            read = painted_annotations(layer.data, source=layer.name, axes=axes, features=getattr(layer, "features", None))
            if read.note and layer is self.examples.value:
                from napari.utils.notifications import show_warning

                show_warning(read.note)
            found = [a if layer.data.ndim > 2 else Annotation(mask=a.mask, location=here, origin=a.origin,
                                                               properties=a.properties) for a in read.examples]
        else:
            if kind == "points":
                found = points_annotations(layer.data, layer.features, source=layer.name, axes=axes, here=here)
            else:
                found = shapes_annotations(layer.data, layer.shape_type, layer.features, source=layer.name, axes=axes,
                                           here=here)
            if tag:
                kept = [a for a in found if tag in a.tags]
                if not kept:
                    present = ", ".join(f"{t!r} ({n})" for t, n in available_tags(found).items()) or "none"
                    raise InputError(layer.name, f"no example has the tag {tag!r}; tags present: {present}",
                                     field="tags")
                found = kept
            found = [fit_inside(layer.name, a, tuple(shape)) for a in found]  # small mistakes repaired
            warn_repairs(layer, found)
        if not found:
            raise InputError(layer.name, empty)
        return found

    def locations(self, layer, axes, here: Location) -> list[Location]:
        choice = self.frames.value or CURRENT
        if choice == CURRENT or not axes:
            return [here]
        sizes = dict(zip(axes, layer.data.shape[: len(axes)]))
        along = axes if choice == "all frames" else (choice.removeprefix("all along "),)
        index = dict(zip(axes, index_of(here, axes)))
        grids = [range(sizes[a]) if a in along else [index[a]] for a in axes]
        return [location_at(ix, axes) for ix in np.ndindex(*[len(g) for g in grids])
                for ix in [tuple(g[i] for g, i in zip(grids, ix))]]

    def find(self, _value=None, *, reuse: bool | None = None, current_only: bool = False):
        """Start a run (the Find button; ``reuse``: predict only, ``current_only``: the plane
        shown, as :meth:`plan` says)."""
        if self.running:
            return
        try:
            plan = self.plan(reuse=reuse, current_only=current_only)
        except Exception as exc:  # the GUI's boundary: bad input (or a bug) is one notification, no traceback
            self._report(exc)
            return
        if plan.fit.warning and plan.segmenter is None:
            from napari.utils.notifications import show_warning

            show_warning(plan.fit.warning)
        self.status.value = "learning from the examples..." if plan.segmenter is None else "predicting..."
        if plan.config.method != "classic":
            self._prepare_sam()
        self._start(plan, run_plan, plan)

    def _prepare_sam(self):
        """Keep torch's triton from crashing a napari drawn by software OpenGL (:mod:`.opengl_llvm`)."""
        from .opengl_llvm import prepare_sam

        if note := prepare_sam():
            self.status.value += f" ({note})"

    def _start(self, plan: Plan, function, *args):
        """Run ``function(*args)`` (a generator yielding each frame's result, returning an
        :class:`Outcome`) in a napari worker; :meth:`_on_done` shows what it returns."""
        from napari.qt.threading import create_worker

        self._plan = plan
        self.progress.max = len(plan.locations) + 1
        self.progress.value = 0
        worker = create_worker(function, *args, _start_thread=False)
        worker.yielded.connect(self._on_frame)
        worker.returned.connect(self._on_done)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.find_button.enabled, self.cancel_button.enabled = False, True
        worker.start()

    def cancel(self, _value=None):
        """Stop after the frame being segmented (the Cancel button); layers stay as they were."""
        if self.running:
            self._plan.cancel.set()
            self.status.value = "cancelling after this frame..."

    def _on_frame(self, result):
        self.progress.value = self.progress.value + 1
        done = self.progress.value - 1
        self.status.value = f"segmented {done} of {len(self._plan.locations)} frame(s)"

    def _on_finished(self):
        self.worker = None
        self.find_button.enabled, self.cancel_button.enabled = True, False
        if self._rethreshold_pending:
            self.rethreshold()
        else:
            self.loop.finished()

    def rethreshold(self, _value=None):
        """Keep more or fewer of the last run's objects at the similarity box's threshold
        (the box's ``changed``): each frame's result re-thresholded by the method, nothing
        refitted or predicted again (:func:`rethreshold_outcome`); after a running run ends
        if one is running."""
        self._rethreshold_pending = self.running
        if self.running or self.last_run is None:
            return
        last_plan, last_outcome = self.last_run
        similarity = self.similarity_value
        plan = replace(last_plan, config=replace(last_plan.config, similarity=similarity),
                       locations=[r.location for r in last_outcome.results], segmenter=last_outcome.segmenter,
                       cancel=threading.Event())
        self.status.value = "re-thresholding..."
        self._start(plan, rethreshold_outcome, last_outcome.segmenter, last_outcome, similarity)

    def _report(self, exc: BaseException):
        from napari.utils.notifications import show_error

        message = str(exc) if isinstance(exc, FewsegError) else f"fewseg failed: {type(exc).__name__}: {exc}"
        self.status.value = message
        show_error(message)

    def _on_done(self, outcome: Outcome):
        plan = self._plan
        if outcome.error is not None:
            self._report(outcome.error)
            return
        if outcome.cancelled:
            self.status.value = (f"cancelled after {len(outcome.results)} of {len(plan.locations)} frame(s); "
                                 "layers unchanged")
            return
        outcome = replace(outcome, results=self.loop.filter_results(plan, outcome.results))
        self.loop.before_results()  # for Undo Find
        self.segmenter, self.last_config = outcome.segmenter, plan.config
        self.last_examples = outcome.example_masks
        self.last_example_annotations = dict(plan.fit.examples_at)
        try:
            with self.loop.writing():
                self.show_results(plan, outcome)
        except Exception as exc:  # the GUI's boundary: a notification, and the layers as they were
            self.loop.cancel_before()
            self._report(exc)
            return
        self.view.results_shown(self._role_layer(ROLE_LABELS), self._role_layer(ROLE_SHAPES))
        before, self.last_run = self.last_run, (plan, outcome)
        n = sum(len(r.segmentation.polygons) for r in outcome.results)
        frames = f" on {len(outcome.results)} frames" if len(outcome.results) > 1 else ""
        how = ""
        if plan.segmenter is not None:
            threshold = "auto" if plan.config.similarity is None else f"{plan.config.similarity:.10g}"  # never "1"
            how = f" (similarity {threshold}, with what was learned before)"
        self.status.value = f"found {n} objects{frames} in {outcome.seconds:.1f} s{how}" + self._kept(before, plan, n)

    @staticmethod
    def _kept(before, plan: Plan, n: int) -> str:
        """After a similarity change: how many of the objects shown before it kept."""
        from .display import kept_line

        if (before is None or plan.segmenter is None or before[1].segmenter is not plan.segmenter
                or [r.location for r in before[1].results] != plan.locations):
            return ""
        return kept_line(sum(len(r.segmentation.polygons) for r in before[1].results), n)

    # ---- results

    def _role_layer(self, role: str):
        return next((layer for layer in self._viewer.layers if (layer.metadata.get("fewseg") or {}).get("role") == role),
                    None)

    def show_results(self, plan: Plan, outcome: Outcome):
        """Write the run's results into the results layers (made on the first run, reused after)."""
        shape = plan.channels[0].data.shape
        tag = plan.tag or next((t for a in plan.fit.examples for t in a.tags), "") or "fewseg"
        labels_layer, shapes_layer = self._role_layer(ROLE_LABELS), self._role_layer(ROLE_SHAPES)
        same_image = labels_layer is not None and labels_layer.data.shape == shape
        old = labels_layer.data if same_image else np.zeros(shape, np.int32)
        labels, ids = paint_results(old, outcome.results, axes=plan.axes)
        data, features = result_shapes(outcome.results, ids, axes=plan.axes, tag=tag)
        if same_image and shapes_layer is not None and shapes_layer.ndim == len(shape):
            done = {index_of(r.location, plan.axes) for r in outcome.results}
            keep = [i for i, v in enumerate(shapes_layer.data) if tuple(int(round(c)) for c in v[0, :-2]) not in done]
            old_features = shapes_layer.features
            data = [shapes_layer.data[i] for i in keep] + data
            features = {k: list(old_features[k].iloc[keep]) + v for k, v in features.items()}
        record = run_record(plan.fit, outcome.segmenter, [r.summary() for r in outcome.results], config=plan.config,
                            fit_seconds=outcome.fit_seconds, total_seconds=outcome.seconds)
        record.update(examples={"layer": plan.examples_from, "n": record["n_examples"], "frame": record["fit_location"],
                                "not_learned_from": record["n_examples_not_learned_from"]},
                      channels=[layer.name for layer in plan.channels], axes=list(plan.axes))
        if shapes_layer is not None and shapes_layer.ndim != len(shape):
            shapes_layer.metadata["fewseg"] = {}  # another image's results: leave that layer, make a new one
            shapes_layer = None
        # Everything is computed; now the layers change, both or (on an error) neither.
        before = (labels_layer.data, dict(labels_layer.metadata)) if labels_layer is not None else None
        try:
            if labels_layer is None:
                labels_layer = self._viewer.add_labels(labels, name=f"{tag} found", opacity=0.5)
            else:
                labels_layer.data = labels
            labels_layer.metadata["fewseg"] = {"role": ROLE_LABELS, **record}
            if shapes_layer is None:
                shapes_layer = self._viewer.add_shapes(ndim=len(shape), name=f"{tag} outlines",
                                                       edge_color=FOUND_EDGE, face_color="transparent", edge_width=1.5)
            self._set_shapes(shapes_layer, data, features, edge=FOUND_EDGE)
            shapes_layer.metadata["fewseg"] = {"role": ROLE_SHAPES, **record}
            self.loop.shown(outcome.results, ids, plan.axes)
        except Exception:
            if before is None:
                if labels_layer is not None and labels_layer in self._viewer.layers:
                    self._viewer.layers.remove(labels_layer)
            else:
                labels_layer.data, labels_layer.metadata = before
            raise

    @staticmethod
    def _set_shapes(layer, data, features, *, edge):
        """Replace every shape of ``layer`` (in place) and its features."""
        layer.data = []
        if data:
            layer.add_polygons(data, edge_color=edge, face_color="transparent", edge_width=1.5)
        import pandas as pd

        layer.features = pd.DataFrame(features)

    # ---- evaluation

    def evaluate(self, _value=None):
        """Score the results on the frame shown against the truth layer (the Evaluate button)."""
        try:
            self._evaluate()
        except FewsegError as exc:
            self._report(exc)

    def _evaluate(self):
        labels_layer = self._role_layer(ROLE_LABELS)
        if labels_layer is None:
            raise InputError("truth", "nothing to evaluate yet: Find objects first")
        truth_layer = self.truth.value
        if truth_layer is None:
            raise InputError("truth", "choose the layer holding every object (Shapes or Labels) to evaluate against")
        axes = tuple(labels_layer.metadata["fewseg"]["axes"])
        index = self.current_index(labels_layer)
        here = location_at(index, axes)
        plane = np.asarray(labels_layer.data[index])
        shape = plane.shape
        pred = masks_from_labels(np.unique(plane, return_inverse=True)[1].reshape(shape))
        truth_all = self.example_annotations(truth_layer, axes=axes, here=here, shape=shape,
                                             empty="holds no objects to evaluate against")
        truth = [a.to_mask(shape) for a in truth_all if a.location == here]
        config = self.last_config or SegmentConfig()
        examples = self.last_examples.get(here, [])
        n_examples = 0
        if examples and config.exclude_examples:  # an example's truth object is not scored (a click: the one it is in)
            truth, n_examples = leave_out_examples(truth, self.last_example_annotations.get(here, examples), examples,
                                                   shape, iou=config.iou)
        s = score(pred, truth, shape, iou=config.iou)
        left_out = f"; {n_examples} example{'s' * (n_examples != 1)} left out of the truth" if n_examples else ""
        self.metrics.value = (f"precision {s.precision:.3f}, recall {s.recall:.3f}, F1 {s.f1:.3f}, "
                              f"mean IoU {s.mean_iou:.3f} ({s.n_pred} found, {s.n_truth} truth{left_out})")
        self.show_evaluation(truth, pred, s, here, axes, ndim=labels_layer.ndim)
        self.view.evaluated(plane, s.matched_pred)
        return s

    def show_evaluation(self, truth, pred, s, here, axes, *, ndim: int):
        """Outlines coloured like ``fewseg evaluate``'s figure, in one reused Shapes layer."""
        data, outcome = [], []
        lead = np.array(index_of(here, axes), dtype=float)
        for masks, matched, yes, no in ((truth, s.matched_truth, "matched truth", "missed"),
                                        (pred, s.matched_pred, "matched", "false")):
            for mask, hit in zip(masks, matched):
                polygon = outline_of(mask)
                if polygon is None:
                    continue
                data.append(np.column_stack([np.broadcast_to(lead, (len(polygon), len(lead))), polygon]))
                outcome.append(yes if hit else no)
        layer = self._role_layer(ROLE_EVALUATION)
        if layer is None:
            layer = self._viewer.add_shapes(ndim=ndim, name="evaluation", face_color="transparent")
        layer.metadata["fewseg"] = {"role": ROLE_EVALUATION, "scores": s.as_dict(), "frame": here.as_nimbus()}
        self._set_shapes(layer, data, {"outcome": outcome}, edge="#ffffff")
        if data:
            layer.edge_color = outcome_edges(outcome)
