"""Rounds of clicks on missed objects: do they help? (issue 18, item 2)

    PYTHONPATH=<checkout>/src python benchmarks/bench_clicks_rounds.py [--seeds 0-4] [--cases busy,demo,stardist]
        [--rounds 3] [--clicks 5] [--out benchmarks/results/clicks_rounds] [--name NAME]

A user's correction rounds, simulated on one frame: split the truth with the seed
(``fewseg.evaluate.split_examples``), fit the classic method on the first 10 as outlines
(round 0); then each round click ``--clicks`` truth objects the last prediction missed
(chosen at random, seeded by split seed and round; each click at its centroid moved by
up to a quarter radius, ``fewseg.evaluate.as_clicks``), add the clicks to the examples
(outlines and clicks mixed, as one examples file holds them), fit again, predict, and
score on the truth not yet given as an example. Precision, recall, F1 and mean IoU per
round, averaged over the seeds. Run it under two trees (``PYTHONPATH``) to compare them;
``--name`` names the output files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from report import publish  # noqa: E402


def cases(names: list[str]):
    from fewseg.demo import make_demo

    out = {}
    for name in names:
        if name == "busy":
            out["busy demo"] = make_demo(seed=0, busy=True)
        elif name == "demo":
            out["demo"] = make_demo(seed=0)
        elif name == "stardist":
            from fewseg.io.annotations import read_annotations
            from fewseg.io.frames import read_frame

            root = HERE.parent / "data" / "stardist"
            frame = read_frame(root / "img2d.tif")
            out["stardist img2d"] = (frame, read_annotations(root / "mask2d.tif", shape=frame.shape))
        else:
            raise SystemExit(f"unknown case {name!r}: busy, demo, stardist")
    return out


def rounds(frame, annotations, *, seed: int, n_rounds: int, n_clicks: int, num_train: int = 10,
           n_reject: int = 0) -> list[dict]:
    """One split's rounds: the scores of round 0 (outlines) and of each round of clicks
    (and, with ``n_reject``, as many false objects rejected by a click inside each,
    given as negatives: ``fit(..., negatives=...)``)."""
    from fewseg.classic.examples import example_masks
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import as_clicks, score, split_examples
    from fewseg.methods import make_segmenter
    from fewseg.objects import Annotation

    config = SegmentConfig()
    train, rest = split_examples(annotations, num_train=num_train, seed=seed)
    examples: list = example_masks(train, frame.shape)
    truth = example_masks(rest, frame.shape)
    rng = np.random.default_rng([seed, 18])
    negatives: list = []
    out = []
    for r in range(n_rounds + 1):
        t0 = time.perf_counter()
        model = make_segmenter(config).fit(frame, examples, **({"negatives": negatives} if negatives else {}))
        result = model.predict(frame, exclude=examples)
        seconds = time.perf_counter() - t0
        s = score(result.masks, truth, frame.shape, iou=config.iou)
        out.append({"round": r, "precision": s.precision, "recall": s.recall, "f1": s.f1, "mean_iou": s.mean_iou,
                    "n_examples": len(examples), "n_pred": s.n_pred, "n_truth": s.n_truth, "seconds": seconds})
        if r == n_rounds:
            break
        missed = np.flatnonzero(~s.matched_truth)
        chosen = sorted(rng.choice(missed, size=min(n_clicks, len(missed)), replace=False).tolist())
        points = as_clicks([truth[k] for k in chosen], seed=seed * 100 + r)
        examples = examples + [Annotation(point=p, origin=f"round {r + 1} click {k}") for k, p in enumerate(points)]
        false = np.flatnonzero(~s.matched_pred)
        for k in sorted(rng.choice(false, size=min(n_reject, len(false)), replace=False).tolist()):
            m = result.masks[k]  # a click on the pixel of the false object nearest its centroid
            inside = np.argwhere(m.mask)
            pixel = inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))] + (m.row, m.col)
            negatives.append(Annotation(point=pixel.astype(float), origin=f"round {r + 1} negative {k}"))
        truth = [m for k, m in enumerate(truth) if k not in set(chosen)]
    return out


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--cases", default="busy,demo,stardist")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--reject", type=int, default=0, help="also reject this many false objects a round (negatives)")
    ap.add_argument("--out", default=str(HERE / "results" / "clicks_rounds"))
    ap.add_argument("--name", default="clicks_rounds")
    args = ap.parse_args()
    import fewseg

    seeds = parse_seeds(args.seeds)
    data = {"fewseg": str(Path(fewseg.__file__).parent), "seeds": seeds, "rounds": args.rounds,
            "clicks": args.clicks, "reject": args.reject, "cases": {}}
    rejects = f", {args.reject} false objects rejected (negatives)" if args.reject else ""
    lines = [f"Rounds of {args.clicks} clicks on missed objects{rejects} after 10 outlines; mean over split seeds "
             f"{args.seeds} ({data['fewseg']}).", "",
             "| frame | round | examples | precision | recall | F1 | mean IoU | F1 per seed |", "|---|---|---|---|---|---|---|---|"]
    for name, (frame, annotations) in cases(args.cases.split(",")).items():
        runs = [rounds(frame, annotations, seed=s, n_rounds=args.rounds, n_clicks=args.clicks, n_reject=args.reject) for s in seeds]
        data["cases"][name] = runs
        for r in range(args.rounds + 1):
            rows = [run[r] for run in runs]
            mean = {k: float(np.mean([row[k] for row in rows])) for k in ("precision", "recall", "f1", "mean_iou")}
            per_seed = " ".join(f"{row['f1']:.3f}" for row in rows)
            lines.append(f"| {name} | {r} | {rows[0]['n_examples']} | {mean['precision']:.3f} | {mean['recall']:.3f} | "
                         f"{mean['f1']:.3f} | {mean['mean_iou']:.3f} | {per_seed} |")
        print(f"{name} done", file=sys.stderr, flush=True)
    publish(args.out, args.name, lines, data)


if __name__ == "__main__":
    main()
