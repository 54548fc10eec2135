"""How long a correction round takes on the busy demo frame: a cold fit + predict against
the same fit + predict one correction after the last (issue 18, item 4: <= 0.5 s of work).

    python benchmarks/bench_corrections_speed.py --out benchmarks/results/NEW [--repeats 5]

On ``make_demo(seed=0, busy=True)``, with 10 examples (its first 10 objects, as outlines;
and again as clicks near their centres, ``evaluate.as_clicks``), the user looks at the
result and makes one correction, as ``fewseg evaluate --rounds`` simulates it:

* **+1 negative click**: a click inside a false object (``evaluate.clicks_inside``) lying
  on no object of the kind (else, where every false object is a wrong outline of one, in the first);
* **+1 example click**: a click near the centre of a missed object;
* **+1 example outline**: the missed object's outline.

Each repeat measures both sides in turn: *cold* (nothing kept, :func:`report.cold`:
``make_segmenter(config).fit(frame, examples, negatives=...)`` then
``.predict(frame, exclude=examples)``, as a fresh process runs it) and *round* (the
previous fit + predict run first, untimed, then the same calls on a new segmenter with
the correction: what napari's live mode and the NimbusImage worker do). CPU seconds
(``time.process_time``) and wall seconds, median of ``--repeats``; the round's result
is checked equal to the cold one (the same outlines and scores). Prints a Markdown table
and writes it with the raw figures to ``OUT/corrections_speed.md`` and ``.json``; ``OUT``
must be new (or empty).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(frame, examples, negatives, exclude):
    """``make_segmenter(config).fit(...).predict(...)``: the result and (CPU s, wall s)."""
    from fewseg.config import SegmentConfig
    from fewseg.methods import make_segmenter

    c0, t0 = time.process_time(), time.perf_counter()
    model = make_segmenter(SegmentConfig()).fit(frame, examples, **({"negatives": negatives} if negatives else {}))
    result = model.predict(frame, exclude=exclude)
    return result, (time.process_time() - c0, time.perf_counter() - t0)


def same(a, b) -> bool:
    """Whether two results hold the same objects (outline, pixels, place) and scores."""
    return (len(a.masks) == len(b.masks) and np.array_equal(a.scores, b.scores)
            and all(np.array_equal(p, q) for p, q in zip(a.polygons, b.polygons))
            and all((x.row, x.col) == (y.row, y.col) and np.array_equal(x.mask, y.mask) for x, y in zip(a.masks, b.masks)))


def corrections(frame, truth, masks, examples, seed: int = 0) -> dict:
    """Each correction's state after the round: examples and negatives. ``truth``: the
    frame's objects as annotations (outlines), ``masks`` the same as masks; the first 10
    are the examples (``examples``: as outlines or clicks), the rest the truth scored."""
    from fewseg.evaluate import as_clicks, clicks_inside, score
    from fewseg.objects import Annotation, labels_from_masks

    first, _ = run(frame, examples, [], examples)
    scores = score(first.masks, masks[10:], frame.shape, iou=0.5)
    objects = labels_from_masks(masks, frame.shape)
    false = [first.masks[i] for i in np.flatnonzero(~scores.matched_pred)]
    inside = clicks_inside(false, seed=seed)
    # On no object of the kind where there is such a false object (else a wrong outline's).
    negative = next((p for p in inside if objects[int(round(p[0])), int(round(p[1]))] == 0), inside[0])
    k = 10 + int(np.flatnonzero(~scores.matched_truth)[0])
    missed = truth[k]
    click = as_clicks([masks[k]], seed=seed)[0]
    return {"+1 negative click": (examples, [Annotation(point=negative, origin="negative click")]),
            "+1 example click": (examples + [Annotation(point=click, origin="example click")], []),
            "+1 example outline": (examples + [missed], [])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="a new folder for corrections_speed.md / .json")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out}: exists and is not empty; give a new folder")

    from fewseg.classic.examples import example_masks
    from fewseg.demo import make_demo
    from fewseg.evaluate import as_clicks
    from fewseg.objects import Annotation
    from report import cold, publish

    frame, truth = make_demo(seed=0, busy=True)
    masks = example_masks(truth, frame.shape)
    rows, raw = [], {}
    starts = {"10 outlines": list(truth[:10]),
              "10 clicks": [Annotation(point=p, origin=f"click {k}") for k, p in enumerate(as_clicks(masks[:10], seed=0))]}
    for start, examples in starts.items():
        cold()
        for name, (after, negatives) in corrections(frame, truth, masks, examples).items():
            sides = {"cold": [], "round": []}
            equal = True
            for _ in range(args.repeats):
                cold()
                reference, seconds = run(frame, after, negatives, after)
                sides["cold"].append(seconds)
                cold()
                run(frame, examples, [], examples)  # the round before, untimed
                result, seconds = run(frame, after, negatives, after)
                sides["round"].append(seconds)
                equal &= same(result, reference)
            med = {side: [statistics.median(s[i] for s in times) for i in (0, 1)] for side, times in sides.items()}
            rows.append(f"| {start} | {name} | {med['cold'][0]:.2f} | {med['round'][0]:.2f} | "
                        f"{med['round'][0] / med['cold'][0]:.2f} | {med['cold'][1]:.2f} | {med['round'][1]:.2f} | "
                        f"{'yes' if equal else 'NO'} |")
            raw[f"{start}, {name}"] = {"cpu_s": {k: [t[0] for t in v] for k, v in sides.items()},
                                      "wall_s": {k: [t[1] for t in v] for k, v in sides.items()},
                                      "median_cpu_s": {k: v[0] for k, v in med.items()},
                                      "median_wall_s": {k: v[1] for k, v in med.items()}, "same_result": equal}
    import os

    lines = [f"Busy demo frame ({frame.shape[1]} x {frame.shape[0]} x {frame.data.shape[0]} channels), fit + predict, "
             f"median of {args.repeats} repeats; a shared, loaded {os.cpu_count()}-core machine (load average "
             f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} at the end): CPU time is the figure to compare.", "",
             "| examples before | correction | cold CPU s | round CPU s | round / cold | cold wall s | round wall s "
             "| same result |", "|---|---|---|---|---|---|---|---|", *rows]
    publish(out, "corrections_speed", lines, {"repeats": args.repeats, "cases": raw})


if __name__ == "__main__":
    main()
