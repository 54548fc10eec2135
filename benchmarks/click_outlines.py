"""How close the outlines fewseg draws from clicks are to the true outlines, and what
the wrong ones cost (issue 12, part 1).

    python benchmarks/click_outlines.py [--seeds 0,1,2,3,4] [--data stardist,demo,busy]
                                        [--out benchmarks/results] [--swap] [--no-fit]

Per data set and split seed: each example's click (``evaluate.as_clicks``), the outline
drawn from it (``outline_points.outline_clicks``; its CPU seconds, median of 3) against
the true outline it came from (IoU, area ratio, how many true objects it overlaps by
over 20 % of theirs: > 1 is a merge; the click's offset in radii); then (unless
``--no-fit``) F1 / mean IoU fitted on the true outlines, on the click outlines and
(``--swap``) on the click outlines with the worst one replaced by its true outline.
Prints the figures, writes ``OUT/click_outlines.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def load(which):
    from fewseg.io.annotations import read_annotations
    from fewseg.demo import make_demo
    from fewseg.io.frames import read_frame

    if which == "stardist":
        from fetch_stardist import fetch

        paths = fetch(HERE.parent / "data" / "stardist")
        frame = read_frame(paths["img2d.tif"])
        return frame, read_annotations(paths["mask2d.tif"], shape=frame.shape)
    return make_demo(seed=0, busy=which == "busy")


def fit_score(frame, train, truth, config):
    from fewseg.evaluate import score
    from fewseg.methods import make_segmenter

    seg = make_segmenter(config).fit(frame, train)
    result = seg.predict(frame, exclude=train)
    s = score(result.masks, truth, frame.shape, iou=config.iou).as_dict()
    return {"f1": s["f1"], "mean_iou": s["mean_iou"], "n_pred": s["n_pred"],
            "radius": seg.profile.radius, "fit_iou": seg.example_fit}


def main() -> None:
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import as_clicks, split_examples
    from fewseg.classic.examples import example_masks
    from fewseg.classic.clicks import outline_clicks
    from report import cold

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--data", default="stardist")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--swap", action="store_true")
    ap.add_argument("--no-fit", action="store_true", help="outline comparison only")
    args = ap.parse_args()
    config = SegmentConfig()
    records, lines = [], []
    for which in args.data.split(","):
        frame, annotations = load(which)
        all_masks = example_masks(annotations, frame.shape)
        for seed in [int(s) for s in args.seeds.split(",")]:
            train, rest = split_examples(annotations, num_train=10, seed=seed)
            true = example_masks(train, frame.shape)
            truth = example_masks(rest, frame.shape)
            clicks = as_clicks(true, seed=seed)
            cpu = []
            for _ in range(3):
                cold()  # each run as a fresh process would make it
                c0 = time.process_time()
                drawn = outline_clicks(frame, clicks)
                cpu.append(time.process_time() - c0)
            per = []
            for t, d, c in zip(true, drawn, clicks):
                centroid = np.argwhere(t.mask).mean(axis=0) + (t.row, t.col)
                overlaps = sum(1 for o in all_masks if o.area and d.iou(o) > 0 and _inter(d, o) > 0.2 * o.area)
                per.append({"iou": round(d.iou(t), 3), "area_ratio": round(d.area / t.area, 2), "objects": overlaps,
                            "offset_r": round(float(np.hypot(*(c - centroid)) / np.sqrt(t.area / np.pi)), 2),
                            "area": int(t.area)})
            rec = {"data": which, "seed": seed, "examples": per, "outline_cpu_s": float(np.median(cpu)),
                   "mean_example_iou": round(float(np.mean([p["iou"] for p in per])), 3)}
            if not args.no_fit:
                rec["outlines"] = fit_score(frame, true, truth, config)
                rec["clicks"] = fit_score(frame, drawn, truth, config)
                if args.swap:
                    worst = int(np.argmin([p["iou"] for p in per]))
                    swapped = list(drawn)
                    swapped[worst] = true[worst]
                    rec["swap_worst"] = fit_score(frame, swapped, truth, config)
            records.append(rec)
            line = (f"{which} seed {seed}: outlining the clicks {rec['outline_cpu_s']:.3f} CPU s, "
                    f"example IoU mean {rec['mean_example_iou']:.3f} "
                    '[' + ' '.join(f"{p['iou']:.2f}/{p['area_ratio']:.2f}/{p['objects']}" for p in per) + ']')
            for k in ("outlines", "clicks", "swap_worst"):
                if k in rec:
                    r = rec[k]
                    line += f"\n    {k}: F1 {r['f1']:.3f} IoU {r['mean_iou']:.3f} n {r['n_pred']} radius {r['radius']:.2f} fit {r['fit_iou']}"
            print(line, flush=True)
            lines.append(line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "click_outlines.json").write_text(json.dumps(records, indent=1, default=float))
    (out / "click_outlines.md").write_text("```\n" + "\n".join(lines) + "\n```\n")


def _inter(a, b) -> int:
    r0, c0 = max(a.row, b.row), max(a.col, b.col)
    r1 = min(a.row + a.mask.shape[0], b.row + b.mask.shape[0])
    c1 = min(a.col + a.mask.shape[1], b.col + b.mask.shape[1])
    if r1 <= r0 or c1 <= c0:
        return 0
    sa = a.mask[r0 - a.row : r1 - a.row, c0 - a.col : c1 - a.col]
    sb = b.mask[r0 - b.row : r1 - b.row, c0 - b.col : c1 - b.col]
    return int((sa & sb).sum())


if __name__ == "__main__":
    main()
