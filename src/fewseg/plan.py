"""The fit plan: which examples are learned from where, what is excluded where, what to warn.

fewseg's methods learn from one frame. Examples (and, after the next issue, negatives)
may lie on several frames of a stack or a dataset: every way in (the CLI, the
NimbusImage worker, the napari plugin) asks :func:`plan_fit` once and follows the
:class:`FitPlan` it returns. None of them groups, chooses or warns itself::

    plan = plan_fit(examples, current=where_the_user_is)
    segmenter = make_segmenter(config).fit(read(plan.fit_location), plan.examples)
    segment_frames(segmenter, read, locations, examples=plan.exclude)
    if plan.warning: warn(plan.warning)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .objects import Location

__all__ = ["FitPlan", "plan_fit", "group_by_location", "fit_location", "not_learned_from"]


def _in_order(locations: Iterable[Location]) -> list[Location]:
    """Locations in time, Z, XY order."""
    return sorted(locations, key=lambda loc: (loc.time, loc.z, loc.xy))


@dataclass(frozen=True)
class FitPlan:
    """What a fit learns from and where, what each frame excludes, what to warn about.

    Attributes
    ----------
    fit_location : Location
        The frame the method learns on.
    examples : list
        The examples learned from: those at ``fit_location``, in the given order.
    exclude : mapping Location -> list
        What is not outlined again at each location (:func:`fewseg.batch.segment_frames`'
        ``examples``): every example where it lies, learned from or not, and every
        negative where it lies.
    warning : str or None
        One line naming the examples not learned from (None: all are learned from).
    examples_at : mapping Location -> list
        Every example, by where it lies (what "not learned from" counts; the napari
        plugin's Evaluate leaves these out of the truth).
    negatives : tuple
        The negatives given, carried as they are (excluded where they lie; not learned
        from yet).
    """

    fit_location: Location
    examples: list
    exclude: Mapping[Location, list]
    warning: str | None = None
    examples_at: Mapping[Location, list] = field(default_factory=dict)
    negatives: tuple = ()

    @property
    def n_not_learned_from(self) -> int:
        """How many examples lie on other frames than ``fit_location``."""
        return sum(len(items) for loc, items in self.examples_at.items() if loc != self.fit_location)

    @property
    def locations(self) -> list[Location]:
        """Every location holding an example or a negative, in time, Z, XY order."""
        return _in_order(self.exclude)


def plan_fit(examples: Sequence, *, current: Location | None = None, negatives: Sequence = (),
             at: Location | None = None) -> FitPlan:
    """The fit plan for ``examples`` (annotations, each with its ``location``).

    Learn on the location holding the most examples (:func:`fit_location`; ties:
    ``current``, the frame the user is on, else the first in time, Z, XY order), warn
    which examples that leaves out (:func:`not_learned_from`), and exclude every
    example (and negative) at its own location.

    Parameters
    ----------
    examples : sequence of Annotation
        Not empty.
    current : Location, optional
        Where the user is (wins a tie).
    negatives : sequence of Annotation, optional
        Objects the user marked as not wanted: excluded where they lie (and carried in
        the plan); not learned from yet.
    at : Location, optional
        The one frame every example and negative was drawn on, whatever location they
        carry (a file or layer of one frame, or a frame the user placed): all are
        learned from there.

    Returns
    -------
    FitPlan

    Examples
    --------
    >>> from fewseg.objects import Annotation
    >>> drawn = [Annotation(location=Location(z=z)) for z in (1, 1, 1, 4)]
    >>> plan = plan_fit(drawn, current=Location(z=4))
    >>> plan.fit_location, len(plan.examples), {loc.z: len(v) for loc, v in plan.exclude.items()}
    (Location(xy=0, z=1, time=0), 3, {1: 3, 4: 1})
    >>> plan.n_not_learned_from, plan.warning[:40]
    (1, 'learning from the 3 examples at XY 1, Z ')
    >>> one = plan_fit(drawn, at=Location(z=7))  # one frame: every example is on it
    >>> one.fit_location.z, len(one.examples), one.warning
    (7, 4, None)
    """
    if at is not None:
        examples_at = {at: list(examples)}
        negatives_at = {at: list(negatives)} if len(negatives) else {}
    else:
        examples_at = group_by_location(examples)
        negatives_at = group_by_location(negatives)
    where = at if at is not None else fit_location(examples_at, current=current)
    exclude = {loc: [*examples_at.get(loc, ()), *negatives_at.get(loc, ())] for loc in {**examples_at, **negatives_at}}
    return FitPlan(where, examples_at[where], exclude, warning=not_learned_from(examples_at, where),
                   examples_at=examples_at, negatives=tuple(negatives))


def group_by_location(annotations: Iterable) -> dict[Location, list]:
    """``annotations`` by their ``location``, each list in the given order: what
    :func:`fit_location` and :func:`not_learned_from` take (:func:`plan_fit`
    groups the examples with it).

    Examples
    --------
    >>> from fewseg.objects import Annotation
    >>> groups = group_by_location([Annotation(location=Location(z=1)), Annotation(), Annotation(location=Location(z=1))])
    >>> {loc.z: len(items) for loc, items in groups.items()}
    {1: 2, 0: 1}
    """
    out: dict[Location, list] = {}
    for a in annotations:
        out.setdefault(a.location, []).append(a)
    return out


def fit_location(examples_by_location: Mapping[Location, Sequence], *, current: Location | None = None) -> Location:
    """Where to fit when examples lie on several frames: the location holding the most.

    fewseg's methods learn from one frame: :func:`plan_fit` fits on this one, warns
    that the others are not learned from, and still excludes every example at its own
    location. Ties: ``current`` (the frame the user is on) when it is among them, else
    the first in time, Z, XY order.

    Examples
    --------
    >>> a, b, c = Location(z=0), Location(z=1), Location(z=2)
    >>> fit_location({a: [1, 2, 3], b: [1, 2, 3, 4, 5]})
    Location(xy=0, z=1, time=0)
    >>> fit_location({a: [1, 2], b: [1, 2]}, current=b), fit_location({b: [1, 2], a: [1, 2]}, current=c)
    (Location(xy=0, z=1, time=0), Location(xy=0, z=0, time=0))
    """
    counts = {loc: len(items) for loc, items in examples_by_location.items() if len(items)}
    if not counts:
        raise ValueError("no examples at any location")
    best = max(counts.values())
    tied = _in_order(loc for loc, n in counts.items() if n == best)
    return current if current in tied else tied[0]


def not_learned_from(examples_by_location: Mapping[Location, Sequence], where: Location) -> str | None:
    """One line saying which examples a fit on ``where`` does not learn from (None: all
    are learned from), positions 1-based as NimbusImage shows them.

    Examples
    --------
    >>> not_learned_from({Location(z=1): [1, 2, 3], Location(z=4): [1]}, Location(z=1))
    'learning from the 3 examples at XY 1, Z 2, Time 1; 1 example(s) at other locations (XY 1, Z 5, Time 1) are not learned from (but are not outlined again)'
    """
    others = {loc: items for loc, items in examples_by_location.items() if loc != where and len(items)}
    if not others:
        return None
    n = sum(len(v) for v in others.values())
    places = "; ".join(f"XY {loc.xy + 1}, Z {loc.z + 1}, Time {loc.time + 1}" for loc in _in_order(others))
    return (f"learning from the {len(examples_by_location[where])} examples at XY {where.xy + 1}, Z {where.z + 1}, "
            f"Time {where.time + 1}; {n} example(s) at other locations ({places}) are not learned from "
            "(but are not outlined again)")
