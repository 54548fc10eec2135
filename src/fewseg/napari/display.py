"""What the napari user sees of a run: each object's score on hover, a colour legend,
scores with the precision the similarity box takes, and no figure shown as current
once the results it scored have changed.

- **Hover**: the found Labels layer carries one row of ``features`` per object
  (``index`` = its label, ``score``, ``log-odds``, ``rank``, ``tag``), which napari's
  status bar (and its layer tooltip, where turned on) shows when that layer is selected;
  whatever layer is selected, the widget's "under the pointer" line says the same of the
  object under the pointer (and, after Evaluate, whether it matched a truth object).
- **Scores**: the classic method's score is a mixture posterior, most of whose values
  lie between 0.9999 and 1 (the mixture is sure of most candidates, false pieces
  included: ``docs/napari.md``). Scores are shown rounded *down* to the similarity
  box's 8 decimals, so a box set to the value shown keeps that object, with the
  log-odds ``log(s / (1 - s))``, which spreads them (0.99 is 4.6, 0.99999999 is 18.4).
- **Stale figures**: once the results change (a new Find, a new similarity, an edit
  of the found labels), the evaluation layer is emptied and the scores line says the
  last figures were of earlier results.
- **Legend**: what the colours of the found layers and of the evaluation layer mean.

Nothing here runs a method or changes a result.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal

import numpy as np
from magicgui.widgets import Label

from .layers import CLICKS_COLOR, FOUND_EDGE, NOT_THESE_COLOR, OUTCOME_COLORS

#: Decimals of the similarity box and of every score shown (a posterior of 1 - 1e-8 still reads as below 1).
SCORE_DECIMALS = 8

#: What each evaluation colour says, in the legend's words.
OUTCOME_WORDS = {"matched": "found, true", "false": "found, false", "matched truth": "truth, found",
                 "missed": "truth, missed"}

STALE = "the last scores were of earlier results: press Evaluate to score these"


def format_score(score: float, decimals: int = SCORE_DECIMALS) -> str:
    """``score`` rounded down to ``decimals`` (so a threshold set to it keeps the object).

    Examples
    --------
    >>> format_score(0.9999999947), format_score(0.99), format_score(1 - 1e-15), format_score(1.0)
    ('0.99999999', '0.99000000', '0.99999999', '1.00000000')
    """
    return str(Decimal(repr(float(score))).quantize(Decimal(10) ** -decimals, rounding=ROUND_FLOOR))


def log_odds(score: float) -> float:
    """``log(s / (1 - s))``: the posterior's evidence, spread where the score is near 1
    (inf at 1).

    Examples
    --------
    >>> round(log_odds(0.5), 3), round(log_odds(0.99), 2), log_odds(1.0)
    (0.0, 4.6, inf)
    """
    s = float(score)
    if s >= 1.0:
        return math.inf
    if s <= 0.0:
        return -math.inf
    return math.log(s) - math.log1p(-s)


def format_log_odds(score: float) -> str:
    """The log-odds shown: one decimal; "> 36" where the posterior is 1 in floating point
    (the largest double below 1 has log-odds 36.7, so past that scores tie).

    Examples
    --------
    >>> format_log_odds(0.99), format_log_odds(1.0), format_log_odds(0.0)
    ('4.6', '> 36', '< -36')
    """
    value = log_odds(score)
    return "> 36" if value > 36.7 else "< -36" if value < -36.7 else f"{value:.1f}"


def object_rows(features) -> dict[int, dict]:
    """One row per found object, by its label: score, log-odds, rank on its frame, tag.

    ``features``: the found Shapes layer's (``score``, ``tag``, ``label``, ``z``, ``time``).

    Examples
    --------
    >>> rows = object_rows({"score": [0.9, 0.999], "tag": ["a", "a"], "label": [1, 2], "z": [0, 0], "time": [0, 0]})
    >>> rows[2]["rank"], rows[1]["rank"], rows[1]["score"]
    ('1 of 2', '2 of 2', '0.90000000')
    """
    score, tag, label = (list(features[k]) for k in ("score", "tag", "label"))
    frame = list(zip(features["time"], features["z"]))
    rows = {}
    for where in set(frame):
        mine = sorted((i for i, f in enumerate(frame) if f == where), key=lambda i: -score[i])
        for rank, i in enumerate(mine, 1):
            rows[int(label[i])] = {"score": format_score(score[i]), "log-odds": format_log_odds(score[i]),
                                   "rank": f"{rank} of {len(mine)}", "tag": str(tag[i])}
    return rows


def describe(label: int, row: dict, outcome: str | None = None) -> str:
    """The hover line for one object.

    Examples
    --------
    >>> describe(7, {"score": "0.99990000", "log-odds": "9.2", "rank": "3 of 40", "tag": "cell"}, "false")
    'object 7 (cell): score 0.99990000, log-odds 9.2, rank 3 of 40 on this frame; evaluated: found, false'
    """
    said = f"; evaluated: {OUTCOME_WORDS[outcome]}" if outcome else ""
    return (f"object {label} ({row['tag']}): score {row['score']}, log-odds {row['log-odds']}, "
            f"rank {row['rank']} on this frame{said}")


def _swatch(color) -> str:
    hexa = color if isinstance(color, str) else "#{:02x}{:02x}{:02x}".format(*color)
    return f'<span style="color:{hexa}">&#9632;</span>'


def legend_html() -> str:
    """The legend's text (Qt rich text): the found layers' colours, then the evaluation's,
    each swatch kept on one line with its words."""
    def item(color, words):
        return f"{_swatch(color)}&nbsp;{words.replace(' ', '&nbsp;')}"

    pairs = [" &nbsp; ".join(item(OUTCOME_COLORS[o], OUTCOME_WORDS[o]) for o in pair)
             for pair in (("matched", "false"), ("matched truth", "missed"))]
    return (f"<b>found</b>: {item(FOUND_EDGE, 'outline')} of each object; the fill colours only tell "
            f"neighbours apart; examples keep their own layer's colour<br>"
            f"<b>evaluation</b> (after Evaluate, drawn on top):<br>{pairs[0]}<br>{pairs[1]}<br>"
            f"<b>corrections</b>: <span style=\"color:{NOT_THESE_COLOR}\">&#10006;</span>&nbsp;not&nbsp;these "
            f"(rejected) &nbsp; <span style=\"color:{CLICKS_COLOR}\">&#9679;</span>&nbsp;clicks&nbsp;on&nbsp;missed")


def kept_line(before: int, after: int) -> str:
    """What a new similarity did to the objects shown (the status line's end).

    Examples
    --------
    >>> kept_line(40, 31)
    '; kept 31 of the 40 objects shown before'
    >>> kept_line(31, 40)
    '; kept 40, 9 more than the 31 shown before'
    """
    if after > before:
        return f"; kept {after}, {after - before} more than the {before} shown before"
    return f"; kept {after} of the {before} objects shown before"


class ResultsView:
    """The widget's display of results: a legend, the hover line, stale figures.

    ``widget``: the :class:`~fewseg.napari.widget.FindObjects` (its ``metrics`` label
    and its role layers); ``viewer``: the napari viewer.
    """

    def __init__(self, widget, viewer):
        self._widget, self._viewer = widget, viewer
        self.legend = Label(label="colours", value="")
        self.legend.native.setTextFormat(_rich_text())
        self.legend.native.setText(legend_html())
        self.legend.native.setWordWrap(True)
        self.hover = Label(label="pointer", value="")
        self.hover.native.setWordWrap(True)
        self.hover.tooltip = "the found object under the mouse pointer (napari's status bar shows it too)"
        self._rows: dict[int, dict] = {}
        self._outcomes: dict[int, str] = {}
        self._watched: set[int] = set()
        viewer.cursor.events.position.connect(self.on_pointer)
        # The dock closed: stop following the pointer (its labels are gone).
        self.hover.native.destroyed.connect(lambda *_: viewer.cursor.events.position.disconnect(self.on_pointer))

    @property
    def widgets(self) -> list:
        return [self.legend, self.hover]

    # ---- results and evaluation

    def results_shown(self, labels_layer, shapes_layer):
        """New results are in the layers: their features for hover; older figures stale."""
        import pandas as pd

        self._rows = object_rows(shapes_layer.features)
        self._outcomes = {}
        rows = [{"index": label, **row} for label, row in sorted(self._rows.items())]
        labels_layer.features = pd.DataFrame(rows, columns=["index", "score", "log-odds", "rank", "tag"])
        if id(labels_layer) not in self._watched:  # an edit of the found labels makes the scores stale too
            self._watched.add(id(labels_layer))
            labels_layer.events.paint.connect(lambda _e: self.mark_stale())
            labels_layer.events.data.connect(lambda _e: self.mark_stale())
        if id(shapes_layer) not in self._watched:  # so does deleting or redrawing a found outline
            self._watched.add(id(shapes_layer))
            shapes_layer.events.data.connect(self._shapes_edited)
        self.mark_stale()
        self.on_pointer()

    def evaluated(self, plane: np.ndarray, matched_pred):
        """After Evaluate: which found objects on the plane matched (for the hover line)."""
        ids = [int(i) for i in np.unique(plane) if i != 0]
        if len(ids) == len(matched_pred):
            self._outcomes = {i: "matched" if hit else "false" for i, hit in zip(ids, matched_pred)}

    def _shapes_edited(self, event):
        if getattr(event, "action", None) in ("added", "removed", "changed"):
            self.mark_stale()

    def mark_stale(self):
        """The results changed: empty the evaluation layer, say the scores were of earlier results."""
        widget = self._widget
        self._outcomes = {}
        layer = widget._role_layer("evaluation")
        if layer is not None and len(layer.data):
            layer.data = []
            layer.metadata["fewseg"] = {**layer.metadata["fewseg"], "scores": None, "stale": True}
        if widget.metrics.value:
            widget.metrics.value = STALE

    # ---- hover

    def on_pointer(self, _event=None):
        """Say which found object is under the pointer (the cursor's position, any layer selected)."""
        layer = self._widget._role_layer("found labels")
        text = ""
        if layer is not None and layer.visible and self._rows:
            value = layer.get_value(self._viewer.cursor.position, world=True,
                                    dims_displayed=list(self._viewer.dims.displayed))
            label = int(value) if value is not None and np.isscalar(value) else 0
            if label in self._rows:
                text = describe(label, self._rows[label], self._outcomes.get(label))
        if self.hover.value != text:
            self.hover.value = text


def _rich_text():
    from qtpy.QtCore import Qt

    return Qt.TextFormat.RichText
