"""CPU cost of the learned boundary (``--boundary learned``) on the busy demo frame.

    python benchmarks/bench_boundary.py [--runs 3] [--out benchmarks/results]

Fit + predict of the classic method on ``make_demo(busy=True)`` with its first 10 blobs
as examples, with outlines at the fitted level (the default) and learned
(:mod:`fewseg.classic.boundary`), the two alternated in this process, CPU seconds
(``time.process_time``), median of ``--runs`` each; and the learned boundary's own
stages (outlining the examples and fitting the model in ``fit``; redrawing in
``predict``). Prints a Markdown table and writes it with the raw figures to
``OUT/boundary_cost.md`` and ``OUT/boundary_cost.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def cpu(f, *args, **kwargs):
    from report import cold

    cold()  # as a fresh process would make it
    c0 = time.process_time()
    out = f(*args, **kwargs)
    return out, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    from fewseg.classic.boundary import fit_boundary, proposed_outlines
    from fewseg.config import SegmentConfig
    from fewseg.demo import make_demo
    from fewseg.classic.model import WeightFreeSegmenter

    frame, truth = make_demo(seed=0, busy=True)
    examples = truth[:10]
    runs: dict[str, list[float]] = {"level": [], "learned": []}
    for _ in range(args.runs):
        for name in ("level", "learned"):
            config = SegmentConfig(boundary=name)
            _, t = cpu(lambda: WeightFreeSegmenter(config).fit(frame, examples).predict(frame))
            runs[name].append(t)
    # The learned boundary's own stages, on a fitted model.
    model = WeightFreeSegmenter(SegmentConfig(boundary="learned")).fit(frame, examples)
    signal = model._signal(frame)[0]
    masks = model._example_masks[1]
    stages: dict[str, list[float]] = {"outline the examples (fit)": [], "fit the model (fit)": [], "redraw (predict)": []}
    found = WeightFreeSegmenter(SegmentConfig()).fit(frame, examples).predict(frame).masks
    for _ in range(args.runs):
        current, t = cpu(proposed_outlines, signal, masks, model.settings)
        stages["outline the examples (fit)"].append(t)
        _, t = cpu(fit_boundary, signal, masks, current, radius=model.profile.radius)
        stages["fit the model (fit)"].append(t)
        _, t = cpu(model.boundary.redraw, signal, found)
        stages["redraw (predict)"].append(t)
    med = statistics.median
    lines = ["| busy demo frame, 10 examples | CPU s (median) | runs |", "|---|---|---|"]
    for name, values in runs.items():
        lines.append(f"| fit + predict, boundary {name} | {med(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    lines.append(f"| learned / level | {med(runs['learned']) / med(runs['level']):.2f} | |")
    for name, values in stages.items():
        lines.append(f"| {name} | {med(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    lines += ["", f"({len(found)} objects redrawn.)"]
    from report import publish

    publish(args.out, "boundary_cost", lines, {"fit_predict_cpu_s": runs, "stages_cpu_s": stages, "n_objects": len(found)})


if __name__ == "__main__":
    main()
