"""The fit plan: which examples are learned from where, what is excluded where, what to warn.

Examples and negatives may lie on several frames of a stack or a dataset (positions,
planes, time points); every one of them is learned from, and only the frames holding
them are read for the fit. Every way in (the CLI, the NimbusImage worker, the napari
plugin) asks :func:`plan_fit` once and follows the :class:`FitPlan` it returns; the
batch loop fits on it (:func:`fewseg.batch.fit_plan`). None of them groups, chooses or
warns itself::

    plan = plan_fit(examples, current=where_the_user_is, negatives=negatives)
    segmenter, fitted = fit_plan(make_segmenter(config), plan, read)   # reads plan.fit_locations
    segment_frames(segmenter, read, locations, examples=plan.exclude, frames=fitted)
    if plan.warning: warn(plan.warning)

A way in that still fits on one frame (``segmenter.fit(read(plan.fit_location),
plan.examples)``) follows :meth:`FitPlan.one_frame` instead, which warns what it leaves out.
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
        The location holding the most examples (the frame a one-frame fit learns on,
        the run record's ``fit_location``).
    examples : list
        The examples at ``fit_location``, in the given order.
    exclude : mapping Location -> list
        What is not outlined again at each location (:func:`fewseg.batch.segment_frames`'
        ``examples``): every example where it lies, and every negative where it lies.
    warning : str or None
        One line naming what is not learned from (None: everything is).
    examples_at : mapping Location -> list
        Every example, by where it lies (the napari plugin's Evaluate leaves these out
        of the truth).
    negatives : tuple
        The negatives given, as they are.
    learn : mapping Location -> list
        The examples learned from, by where they lie (every example; only those at
        ``fit_location`` for :meth:`one_frame`).
    negatives_at : mapping Location -> list
        The negatives learned from, by where they lie.
    """

    fit_location: Location
    examples: list
    exclude: Mapping[Location, list]
    warning: str | None = None
    examples_at: Mapping[Location, list] = field(default_factory=dict)
    negatives: tuple = ()
    learn: Mapping[Location, list] = field(default_factory=dict)
    negatives_at: Mapping[Location, list] = field(default_factory=dict)

    @property
    def n_learned(self) -> int:
        """How many examples are learned from."""
        return sum(len(items) for items in self.learn.values())

    @property
    def n_not_learned_from(self) -> int:
        """How many examples are not learned from (0 unless :meth:`one_frame`)."""
        return sum(len(items) for items in self.examples_at.values()) - self.n_learned

    @property
    def locations(self) -> list[Location]:
        """Every location holding an example or a negative, in time, Z, XY order."""
        return _in_order(self.exclude)

    @property
    def fit_locations(self) -> list[Location]:
        """The locations a fit reads: those holding an example or a negative learned
        from, in time, Z, XY order."""
        return _in_order({**{loc: 0 for loc, v in self.learn.items() if len(v)},
                          **{loc: 0 for loc, v in self.negatives_at.items() if len(v)}})

    def with_negatives(self, negatives: Sequence, *, at: Location) -> "FitPlan":
        """This plan with ``negatives`` marked at ``at`` (the command line's ``--negatives``,
        on the frame learned from): learned from there and excluded there.

        Examples
        --------
        >>> from fewseg.objects import Annotation
        >>> plan = plan_fit([Annotation()]).with_negatives([Annotation(), Annotation()], at=Location())
        >>> len(plan.negatives), len(plan.negatives_at[Location()]), len(plan.exclude[Location()])
        (2, 2, 3)
        """
        from dataclasses import replace

        negatives = list(negatives)
        if not negatives:
            return self
        return replace(self, negatives=(*self.negatives, *negatives),
                       negatives_at={**self.negatives_at, at: [*self.negatives_at.get(at, ()), *negatives]},
                       exclude={**self.exclude, at: [*self.exclude.get(at, ()), *negatives]})

    def one_frame(self) -> "FitPlan":
        """This plan for a fit on ``fit_location`` alone (a way in or a method that learns
        from one frame): what lies elsewhere is excluded where it lies, not learned from,
        and ``warning`` says so (:func:`not_learned_from`).

        Examples
        --------
        >>> from fewseg.objects import Annotation
        >>> plan = plan_fit([Annotation(location=Location(z=z)) for z in (1, 1, 4)]).one_frame()
        >>> plan.fit_locations, plan.n_learned, plan.n_not_learned_from, plan.warning[:40]
        ([Location(xy=0, z=1, time=0)], 2, 1, 'learning from the 2 examples at XY 1, Z ')
        """
        here = self.fit_location
        negatives = {here: self.negatives_at[here]} if len(self.negatives_at.get(here, ())) else {}
        return FitPlan(here, self.examples, self.exclude, warning=not_learned_from(self.examples_at, here),
                       examples_at=self.examples_at, negatives=self.negatives, learn={here: self.examples},
                       negatives_at=negatives)


def plan_fit(examples: Sequence, *, current: Location | None = None, negatives: Sequence = (),
             at: Location | None = None) -> FitPlan:
    """The fit plan for ``examples`` (annotations, each with its ``location``).

    Every example and negative is learned from where it lies (``learn``,
    ``negatives_at``) and excluded there (``exclude``). ``fit_location`` is the
    location holding the most examples (:func:`fit_location`; ties: ``current``, the
    frame the user is on, else the first in time, Z, XY order).

    Parameters
    ----------
    examples : sequence of Annotation
        Not empty.
    current : Location, optional
        Where the user is (wins a tie).
    negatives : sequence of Annotation, optional
        Objects the user marked as not wanted: learned from and excluded where they lie.
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
    >>> [loc.z for loc in plan.fit_locations], plan.n_learned, plan.warning
    ([1, 4], 4, None)
    >>> one = plan_fit(drawn, at=Location(z=7))  # one frame: every example is on it
    >>> one.fit_location.z, len(one.examples), one.fit_locations
    (7, 4, [Location(xy=0, z=7, time=0)])
    """
    if at is not None:
        examples_at = {at: list(examples)}
        negatives_at = {at: list(negatives)} if len(negatives) else {}
    else:
        examples_at = group_by_location(examples)
        negatives_at = group_by_location(negatives)
    where = at if at is not None else fit_location(examples_at, current=current)
    exclude = {loc: [*examples_at.get(loc, ()), *negatives_at.get(loc, ())] for loc in {**examples_at, **negatives_at}}
    return FitPlan(where, examples_at[where], exclude, examples_at=examples_at, negatives=tuple(negatives),
                   learn=examples_at, negatives_at=negatives_at)


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
    """The location holding the most examples (:attr:`FitPlan.fit_location`: where a
    fit on one frame learns, :meth:`FitPlan.one_frame`). Ties: ``current`` (the frame
    the user is on) when it is among them, else the first in time, Z, XY order.

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
