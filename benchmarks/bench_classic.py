"""Benchmark of the weight-free method: quality on real and demo data, speed, memory.

    python benchmarks/bench_classic.py [--seeds 0,1,2,3,4] [--out benchmarks/results]
                                       [--clicks] [--only speed|quality]
                                       [--boundary level|learned] [--data stardist,demo,busy,stardist3d]

* stardist's img2d.tif / mask2d.tif (fetched and hash-checked by fetch_stardist.py),
  10 examples, the seed report's protocol, mean over the split seeds.
* Planes of stardist's 3-D nuclei stack laid side by side with their labels
  (``fetch_stardist3d.py``: 7 planes, 86 nuclei, a frame no constant was chosen on).
* The demo frame (1024 x 1022, Brightfield + YFP), same protocol; and the busy demo
  frame (``make_demo(busy=True)``: 540 blobs, many bright distractors).
* ``--clicks``: the same, with the 10 examples given as clicks (``evaluate``'s click mode)
  beside the outlines.
* ``--boundary learned``: the classic method with outlines redrawn by the per-pixel
  model learned from the examples (:mod:`fewseg.classic.boundary`); results go to
  ``OUT/classic_*_learned.*``. ``--data`` limits the quality half to some data sets.
* Speed: fit + predict on a 1024 x 1024 two-channel frame (the demo generator at that
  size) and on the busy frame, median of 3 runs in this process, and peak resident
  memory of this process; the whole ``fewseg segment`` command on the busy frame (a fresh
  process each time: start-up, imports, reading, fit, predict, writing), median of 3.

Prints a Markdown table and writes it with the raw records to
``OUT/classic.md`` and ``OUT/classic.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def quality(name, frame, annotations, seeds, config, *, clicks: bool = False):
    from fewseg.evaluate import run_evaluation

    runs = [run_evaluation(frame, annotations, config=config, num_train=10, seed=s, source=name, clicks=clicks).metrics
            for s in seeds]
    mean = {k: float(np.mean([r[k] for r in runs])) for k in ("precision", "recall", "f1", "mean_iou")}
    return {"data": name, "examples": "10 clicks" if clicks else "10 outlines", "seeds": list(seeds), "runs": runs,
            "mean": mean}


def fit_predict_seconds(frame, examples, config, runs: int = 3) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of fit + predict, ``runs`` times (CPU time is what the
    shared machine's load moves least)."""
    from fewseg.classic.model import WeightFreeSegmenter

    wall, cpu = [], []
    from report import cold

    for _ in range(runs):
        cold()  # each run as a fresh process would make it
        t0, c0 = time.perf_counter(), time.process_time()
        WeightFreeSegmenter(config).fit(frame, examples).predict(frame)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def command_seconds(frame, annotations, runs: int = 3) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of ``fewseg segment`` on ``frame`` with its
    first 10 annotations as examples, each in a fresh process."""
    from fewseg.io.annotations import write_annotations
    from fewseg.io.frames import write_frame

    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        image, examples = Path(tmp) / "frame.ome.tif", Path(tmp) / "examples.json"
        write_frame(image, frame)
        write_annotations(examples, annotations[:10], shape=frame.shape)
        fewseg = Path(sys.executable).with_name("fewseg")
        for k in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([str(fewseg), "segment", str(image), "--examples", str(examples),
                            "-o", str(Path(tmp) / f"found{k}.geojson")], check=True, capture_output=True)
            wall.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--only", choices=("quality", "speed"), default=None, help="run one half only")
    ap.add_argument("--clicks", action="store_true", help="also give the examples as clicks")
    ap.add_argument("--data", default="stardist,stardist3d,demo,busy", help="quality: the data sets, comma-separated")
    ap.add_argument("--boundary", default="level", choices=("level", "learned"),
                    help="the classic method's outlines (SegmentConfig.boundary; default level)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    from fetch_stardist import fetch

    from fewseg.io.annotations import read_annotations
    from fewseg.config import SegmentConfig
    from fewseg.demo import make_demo
    from fewseg.io.frames import read_frame

    # (the default left out, so this script also runs on trees from before the option)
    config = SegmentConfig(**({} if args.boundary == "level" else {"boundary": args.boundary}))
    busy_frame, busy_truth = make_demo(seed=0, busy=True)
    results = []
    if args.only != "speed":
        from fetch_stardist3d import fetch as fetch3d

        def stardist():
            paths = fetch(HERE.parent / "data" / "stardist")
            nuclei = read_frame(paths["img2d.tif"])
            return "stardist img2d/mask2d", nuclei, read_annotations(paths["mask2d.tif"], shape=nuclei.shape)

        def stardist3d():
            paths = fetch3d(HERE.parent / "data" / "stardist3d")
            planes = read_frame(paths["montage.tif"])
            return ("stardist img3d/mask3d, 7 planes", planes,
                    read_annotations(paths["montage_mask.tif"], shape=planes.shape))

        loaders = {"stardist": stardist, "stardist3d": stardist3d,
                   "demo": lambda: ("demo (seed 0)", *make_demo(seed=0)),
                   "busy": lambda: ("busy demo (seed 0)", busy_frame, busy_truth)}
        wanted = args.data.split(",")
        if set(wanted) - set(loaders):
            ap.error(f"--data: unknown {sorted(set(wanted) - set(loaders))}; expected some of {', '.join(loaders)}")
        data = [loaders[key]() for key in wanted]
        results = [quality(name, frame, truth, seeds, config, clicks=clicks)
                   for name, frame, truth in data for clicks in ((False, True) if args.clicks else (False,))]

    speed = {}
    if args.only != "quality":
        frame, truth = make_demo(seed=1, shape=(1024, 1024))
        times, cpu = fit_predict_seconds(frame, truth[:10], config)
        busy_times, busy_cpu = fit_predict_seconds(busy_frame, busy_truth[:10], config)
        command, command_cpu = command_seconds(busy_frame, busy_truth)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        med = statistics.median
        speed = {"frame": "1024 x 1024 x 2 channels", "fit_predict_s_median": med(times), "runs_s": times,
                 "cpu_s_median": med(cpu), "busy_fit_predict_s_median": med(busy_times), "busy_runs_s": busy_times,
                 "busy_cpu_s_median": med(busy_cpu), "busy_command_s_median": med(command),
                 "busy_command_runs_s": command, "busy_command_cpu_s_median": med(command_cpu),
                 "peak_rss_mb_process": peak_mb}

    lines = []
    if results:
        lines += ["| data | examples | seeds | precision | recall | F1 | mean IoU |", "|---|---|---|---|---|---|---|"]
        for r in results:
            m = r["mean"]
            lines.append(f"| {r['data']} | {r['examples']} | {args.seeds} | {m['precision']:.3f} | {m['recall']:.3f} "
                         f"| {m['f1']:.3f} | {m['mean_iou']:.3f} |")
        lines.append("")
    if speed:
        lines += ["| speed (median of 3) | wall s | CPU s |", "|---|---|---|",
                  f"| fit + predict, demo generator at {speed['frame']} | {speed['fit_predict_s_median']:.2f} "
                  f"| {speed['cpu_s_median']:.2f} |",
                  f"| fit + predict, busy demo frame (1024 x 1022 x 2) | {speed['busy_fit_predict_s_median']:.2f} "
                  f"| {speed['busy_cpu_s_median']:.2f} |",
                  f"| whole `fewseg segment` command, busy frame (fresh process) | {speed['busy_command_s_median']:.2f} "
                  f"| {speed['busy_command_cpu_s_median']:.2f} |", "",
                  f"Peak RSS of the benchmark process {speed['peak_rss_mb_process']:.0f} MB."]
    from report import publish

    name = "classic" if args.only is None else f"classic_{args.only}"
    name += "" if args.boundary == "level" else f"_{args.boundary}"
    publish(args.out, name, lines, {"quality": results, "speed": speed})


if __name__ == "__main__":
    main()
