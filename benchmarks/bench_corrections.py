"""The correction curve, round by round: 10 examples, then rounds of a simulated user's corrections.

    python benchmarks/bench_corrections.py [--seeds 0,1,2,3,4] [--beside 5,...,14] [--rounds 3]
                                           [--corrections 5] [--data stardist,stardist3d,demo,busy]
                                           [--out benchmarks/results]

For each data set (stardist's img2d / mask2d, the img3d planes side by side as
``bench_classic.py`` builds them, the demo frame, the busy demo frame) and each way of
giving round 0's 10 examples (outlines, clicks): :func:`fewseg.evaluate.correction_curve`
with ``--rounds`` rounds of ``--corrections`` rejected false objects (negatives, learned
when the method takes them) and as many clicked missed objects (added to the examples,
removed from the truth), per split seed. Reports the mean over ``--seeds`` (the figures
the targets are read on) with the mean over ``--beside`` next to it (reported, nothing
chosen on them), and whether issue 18's targets are met: F1 after the last round >= 0.97
on the busy demo and stardist img2d, >= 0.95 on the img3d planes, no round's F1 lower than
the one before by more than 0.005.

Also the figures that stand beside published ones: round 0's AP50, F1@0.5 and mSA on
stardist img2d (a DSB 2018 frame), for docs/comparison.md.

Prints Markdown tables and writes them with the raw records to ``OUT/corrections.md`` and
``OUT/corrections.json``, rewritten after each data set and way of giving examples; the
seeds of ``--seeds`` run first for every data set, then those of ``--beside``. Each curve
is kept in ``OUT/corrections_curves.jsonl`` as it ends, and a run started again with the
same choices takes the curves found there instead of running them again. The machine's
load moves only the printed seconds, never the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Issue 18's targets: F1 after the last round, per data set; the largest fall between rounds.
TARGETS = {"stardist": 0.97, "busy": 0.97, "stardist3d": 0.95}
MAX_FALL = 0.005
METRICS = ("precision", "recall", "f1", "mean_iou", "ap50", "f1_50", "msa")


def curves(frame, truth, seeds, config, *, rounds, corrections, clicks, name, done: Path):
    """Per seed, the correction curve's records (config and what was learned left out: once per file).
    Each curve is appended to ``done`` (JSON lines) as it ends, and one found there is not
    run again: a cut-short run resumes where it stopped."""
    import json

    from fewseg.evaluate import correction_curve

    key = lambda seed: json.dumps([name, clicks, seed, rounds, corrections, config.to_dict()])  # noqa: E731
    found = {}
    if done.exists():
        for line in done.read_text().splitlines():
            item = json.loads(line)
            found[item["key"]] = item["rounds"]
    out = []
    for seed in seeds:
        if key(seed) in found:
            out.append(found[key(seed)])
            continue
        t0 = time.perf_counter()
        curve = correction_curve(frame, truth, config=config, num_train=10, seed=seed, rounds=rounds,
                                 corrections=corrections, clicks=clicks, source=name)
        out.append([{k: v for k, v in ev.metrics.items() if k not in ("config", "learned")} for ev in curve])
        with done.open("a") as f:
            f.write(json.dumps({"key": key(seed), "rounds": out[-1]}, default=float) + "\n")
        print(f"  {name}, {'clicks' if clicks else 'outlines'}, seed {seed}: F1 "
              + " -> ".join(f"{ev.metrics['f1']:.3f}" for ev in curve) + f" ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    return out


def mean_by_round(runs: list[list[dict]]) -> list[dict]:
    return [{k: float(np.mean([run[r][k] for run in runs])) for k in METRICS} for r in range(len(runs[0]))]


def verdict(key: str, mean: list[dict]) -> str:
    f1 = [m["f1"] for m in mean]
    fall = max([a - b for a, b in zip(f1, f1[1:])], default=0.0)
    steady = "yes" if fall <= MAX_FALL else f"no (falls {fall:.3f})"
    target = TARGETS.get(key)
    reached = "-" if target is None else ("yes" if f1[-1] >= target else "no") + f" (>= {target})"
    return f"{reached} | {steady}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--beside", default="5,6,7,8,9,10,11,12,13,14", help="split seeds reported beside ('' for none)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--corrections", type=int, default=5)
    ap.add_argument("--data", default="stardist,busy,stardist3d,demo")
    ap.add_argument("--examples", default="outlines,clicks", help="round 0's examples: outlines, clicks or both")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    beside = [int(s) for s in args.beside.split(",") if s.strip()]

    from fetch_stardist import fetch
    from fetch_stardist3d import fetch as fetch3d
    from report import publish

    from fewseg.config import SegmentConfig
    from fewseg.demo import make_demo
    from fewseg.evaluate import learns_negatives
    from fewseg.io.annotations import read_annotations
    from fewseg.io.frames import read_frame
    from fewseg.methods import make_segmenter

    # (name, how to fetch, folder under data/, image, labels): the planes of img3d side by side as bench_classic.py lays them.
    real = {"stardist": ("stardist img2d/mask2d", fetch, "stardist", "img2d.tif", "mask2d.tif"),
            "stardist3d": ("stardist img3d/mask3d, 7 planes", fetch3d, "stardist3d", "montage.tif", "montage_mask.tif")}

    def fetched(key):
        name, fetcher, folder, image, labels = real[key]
        paths = fetcher(HERE.parent / "data" / folder)
        frame = read_frame(paths[image])
        return name, frame, read_annotations(paths[labels], shape=frame.shape)

    loaders = {"stardist": lambda: fetched("stardist"), "stardist3d": lambda: fetched("stardist3d"),
               "demo": lambda: ("demo (seed 0)", *make_demo(seed=0)),
               "busy": lambda: ("busy demo (seed 0)", *make_demo(seed=0, busy=True))}
    wanted = args.data.split(",")
    if set(wanted) - set(loaders):
        ap.error(f"--data: unknown {sorted(set(wanted) - set(loaders))}; expected some of {', '.join(loaders)}")
    config = SegmentConfig()
    negatives = learns_negatives(make_segmenter(config))
    modes = [m for m in args.examples.split(",") if m]
    done = Path(args.out) / "corrections_curves.jsonl"
    done.parent.mkdir(parents=True, exist_ok=True)
    data = {key: loaders[key]() for key in wanted}
    results = {}
    # The seeds the targets are read on first, for every data set; then the seeds beside.
    for phase, phase_seeds in (("mean", seeds), ("mean_beside", beside)):
        for key, (name, frame, truth) in data.items():
            for mode in modes if phase_seeds else ():
                runs = curves(frame, truth, phase_seeds, config, rounds=args.rounds, corrections=args.corrections,
                              clicks=mode == "clicks", name=name, done=done)
                r = results.setdefault((key, mode), {"key": key, "data": name, "examples": f"10 {mode}", "seeds": seeds,
                                                     "beside": beside, "mean_beside": None})
                r[phase] = mean_by_round(runs)
                r["runs" if phase == "mean" else "runs_beside"] = runs
                publish(args.out, "corrections", report(list(results.values()), args, negatives),
                        {"rounds": args.rounds, "corrections": args.corrections, "negatives_learned": negatives,
                         "config": config.to_dict(), "results": list(results.values())})


def report(results: list[dict], args, negatives: bool) -> list[str]:
    """The Markdown: the curve (F1, precision, recall, mean IoU, AP50, mSA by round), the
    targets, and round 0 on stardist img2d beside published figures."""
    seeds, beside = args.seeds, args.beside or "none"
    lines = [f"{args.rounds} rounds of {args.corrections} rejected false objects and {args.corrections} clicked "
             f"missed objects; negatives {'learned' if negatives else 'NOT learned (the method takes no negatives)'}; "
             f"mean over split seeds {seeds} (seeds {beside}: F1 beside).", "",
             "| data | round 0 | round | precision | recall | F1 | mean IoU | AP50 | mSA | F1, seeds beside |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for k, m in enumerate(r["mean"]):
            b = f"{r['mean_beside'][k]['f1']:.3f}" if r["mean_beside"] else "-"
            lines.append(f"| {r['data']} | {r['examples']} | {k} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} | {m['mean_iou']:.3f} | {m['ap50']:.3f} | {m['msa']:.3f} | {b} |")
    lines += ["", f"| data | round 0 | F1 after round {args.rounds}: target met | no round lower by > {MAX_FALL} "
                  f"| same, seeds beside |", "|---|---|---|---|---|"]
    for r in results:
        beside_steady = verdict(r["key"], r["mean_beside"]).split(" | ")[1] if r["mean_beside"] else "-"
        lines.append(f"| {r['data']} | {r['examples']} | {verdict(r['key'], r['mean'])} | {beside_steady} |")
    published = [r for r in results if r["key"] == "stardist"]
    if published:
        lines += ["", "Round 0 on stardist img2d (a DSB 2018 frame), examples excluded from the truth:", "",
                  "| examples | seeds | AP50 | F1@0.5 | mSA | F1 at IoU 0.3 |", "|---|---|---|---|---|---|"]
        for r in published:
            for label, mean in ((seeds, r["mean"]), (beside, r["mean_beside"])):
                if mean:
                    m = mean[0]
                    lines.append(f"| {r['examples']} | {label} | {m['ap50']:.3f} | {m['f1_50']:.3f} | {m['msa']:.3f} "
                                 f"| {m['f1']:.3f} |")
    return lines


if __name__ == "__main__":
    main()
