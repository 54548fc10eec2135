"""Benchmark of the weight-free method: quality on real and demo data, speed, memory.

    python benchmarks/bench_classic.py [--seeds 0,1,2,3,4] [--out benchmarks/results]

* stardist's img2d.tif / mask2d.tif (fetched and hash-checked by fetch_stardist.py),
  10 examples, the seed report's protocol, mean over the split seeds.
* The demo frame (1024 x 1022, Brightfield + YFP), same protocol.
* Speed: fit + predict on a 1024 x 1024 two-channel frame (the demo generator at that
  size), median of 3 runs in this process, and peak resident memory of this process.

Prints a Markdown table and writes it with the raw records to
``OUT/classic.md`` and ``OUT/classic.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def quality(name, frame, annotations, seeds, config):
    from fewseg.evaluate import run_evaluation

    runs = [run_evaluation(frame, annotations, config=config, num_train=10, seed=s, source=name).metrics for s in seeds]
    mean = {k: float(np.mean([r[k] for r in runs])) for k in ("precision", "recall", "f1", "mean_iou")}
    return {"data": name, "seeds": list(seeds), "runs": runs, "mean": mean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    from fetch_stardist import fetch

    from fewseg.annotations import read_annotations
    from fewseg.config import SegmentConfig
    from fewseg.demo import make_demo
    from fewseg.load import read_frame
    from fewseg.model import WeightFreeSegmenter

    config = SegmentConfig()
    paths = fetch(HERE.parent / "data" / "stardist")
    nuclei = read_frame(paths["img2d.tif"])
    nuclei_truth = read_annotations(paths["mask2d.tif"], shape=nuclei.shape)
    demo_frame, demo_truth = make_demo(seed=0)
    results = [
        quality("stardist img2d/mask2d", nuclei, nuclei_truth, seeds, config),
        quality("demo (seed 0)", demo_frame, demo_truth, seeds, config),
    ]

    frame, truth = make_demo(seed=1, shape=(1024, 1024))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        WeightFreeSegmenter(config).fit(frame, truth[:10]).predict(frame)
        times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    speed = {"frame": "1024 x 1024 x 2 channels", "fit_predict_s_median": statistics.median(times),
             "runs_s": times, "peak_rss_mb_process": peak_mb}

    lines = ["| data | seeds | precision | recall | F1 | mean IoU |", "|---|---|---|---|---|---|"]
    for r in results:
        m = r["mean"]
        lines.append(f"| {r['data']} | {args.seeds} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mean_iou']:.3f} |")
    lines.append("")
    lines.append(f"Speed: fit + predict on a {speed['frame']} frame: {speed['fit_predict_s_median']:.2f} s (median of 3); "
                 f"peak RSS of the benchmark process {peak_mb:.0f} MB.")
    from report import publish

    publish(args.out, "classic", lines, {"quality": results, "speed": speed})


if __name__ == "__main__":
    main()
