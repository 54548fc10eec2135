"""A new user's correction loop on napari's sample, in a real napari: F1 round by round.

    xvfb-run -a .venv/bin/python benchmarks/napari_loop.py --out benchmarks/results/issue19/loop
        [--rounds 3] [--corrections 5] [--seed 42]

Opens **File > Open Sample > demo frame with 10 example outlines**, docks "find objects
like these", clicks Find and Evaluate, then ``--rounds`` rounds of a user's corrections:
reject ``--corrections`` false results (a click inside each, through the widget's Reject)
and click as many missed objects (points added to the clicks layer), Find, Evaluate.

Which results are rejected and which objects clicked is what the engine's correction curve
chooses for the same split (:func:`fewseg.evaluate.correction_curve`, the sample's split:
``fewseg evaluate`` on the demo frame with ``--num-train 10 --seed 42 --rounds R
--corrections K``), run in the same process: both sides are measured in the same run, so
the widget's F1 is printed beside the curve's (see the summary line for why they may
differ by an object) and the seconds of
each Find beside the engine's fit + predict (the ratio is the GUI's overhead). The figures
are the sample's own truth (the 490 objects that are not examples), not the examples.

Writes ``OUT/napari_loop.md`` and ``OUT/napari_loop.json`` into a NEW folder ``--out``
(refused if it exists). Seconds depend on the machine's load (a shared 2-core box here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="a new folder, e.g. benchmarks/results/issue19/loop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corrections", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42, help="the split seed (the sample's: 42)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        parser.error(f"--out {out} exists; give a new folder (results are never overwritten)")

    import napari
    from qtpy.QtWidgets import QApplication

    from fewseg._atomic import atomic_path
    from fewseg.config import SegmentConfig
    from fewseg.demo import make_demo
    from fewseg.evaluate import correction_curve

    frame, blobs = make_demo(seed=0)
    t0 = time.perf_counter()
    curve = correction_curve(frame, blobs, config=SegmentConfig(), num_train=10, seed=args.seed, rounds=args.rounds,
                             corrections=args.corrections)
    engine_seconds = time.perf_counter() - t0

    viewer = napari.Viewer(show=True, title="fewseg: a correction loop")
    viewer.open_sample("fewseg", "demo")
    _, widget = viewer.window.add_plugin_dock_widget("fewseg", "find objects like these")
    app = QApplication.instance()
    rows = []
    for k, ev in enumerate(curve):
        rejected, clicked = ev.metrics["rejected"], ev.metrics["clicked"]
        if k:
            widget.loop.correct(rejected=rejected, clicked=clicked)
        t = time.perf_counter()
        widget.find_button.native.click()
        while widget.running:
            app.processEvents()
            time.sleep(0.02)
        seconds = time.perf_counter() - t
        s = widget._evaluate()
        rows.append({"round": k, "rejected": len(rejected), "clicked": len(clicked),
                     "precision": s.precision, "recall": s.recall, "f1": s.f1, "n_pred": s.n_pred, "n_truth": s.n_truth,
                     "engine_f1": ev.scores.f1, "find_s": round(seconds, 3),
                     "engine_fit_predict_s": ev.metrics["timings_s"]["total"], "status": widget.status.value})
    viewer.close()

    head = ("| round | rejected | clicked | precision | recall | F1 (napari) | F1 (engine's curve) | found | truth left "
            "| Find s (napari) | fit+predict s (engine) | ratio |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ratio = r["find_s"] / r["engine_fit_predict_s"] if r["engine_fit_predict_s"] else float("nan")
        lines.append(f"| {r['round']} | {r['rejected']} | {r['clicked']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['f1']:.3f} | {r['engine_f1']:.3f} | {r['n_pred']} | {r['n_truth']} | {r['find_s']:.2f} | "
                     f"{r['engine_fit_predict_s']:.2f} | {ratio:.2f} |")
    diff = max(abs(r["f1"] - r["engine_f1"]) for r in rows)
    gain = rows[-1]["f1"] - rows[0]["f1"]
    summary = (f"F1 {rows[0]['f1']:.3f} -> {rows[-1]['f1']:.3f} after {args.rounds} rounds of rejecting "
               f"{args.corrections} false and clicking {args.corrections} missed objects (gain {gain:+.3f}); "
               f"largest |napari F1 - engine's curve F1| over the rounds: {diff:.4f}. napari, like `fewseg segment`, "
               "and the engine's curve both predict with the fit plan's exclude (examples and negatives: an "
               "object matching a negative's outline is not returned either)")
    command = (f"xvfb-run -a .venv/bin/python benchmarks/napari_loop.py --out {args.out} --rounds {args.rounds} "
               f"--corrections {args.corrections} --seed {args.seed}")
    text = "\n".join([f"# A correction loop on napari's sample (demo frame, split seed {args.seed})", "",
                      f"`{command}`", "", *lines, "", summary, "",
                      f"Engine's curve, all rounds: {engine_seconds:.1f} s. Seconds on a shared, loaded 2-core machine."])
    print(text)
    out.mkdir(parents=True)
    with atomic_path(out / "napari_loop.md") as tmp:
        Path(tmp).write_text(text + "\n")
    with atomic_path(out / "napari_loop.json") as tmp:
        Path(tmp).write_text(json.dumps({"command": command, "rounds": rows, "largest_f1_difference_to_curve": diff,
                                         "gain": gain}, indent=2) + "\n")
    return 0 if gain > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
