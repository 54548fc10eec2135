"""CPU seconds of the whole ``fewseg segment`` command on the busy demo frame, two (or
more) source trees alternated run by run.

    python benchmarks/bench_command.py --src before=/path/to/base/src --src after=src
                                       [--env NAME:KEY=VALUE] [--runs 10] [--out benchmarks/results]

Each run is a fresh process (``fewseg segment FRAME --examples 10 blobs -o OUT.geojson``:
start-up, imports, reading, fit, predict, writing) with ``PYTHONPATH`` set to that tree,
so the trees share this interpreter and its packages; its CPU time is user + system time
of the child (and its forked children), its wall-clock time beside (what the user waits
for: the frame's two levels are computed side by side where two cores are free,
:mod:`fewseg.classic.parallel`). ``--env serial:FEWSEG_PARALLEL=0`` sets a variable for
tree ``serial`` only (the same tree twice: one level after the other, and side by side). The trees take turns (before, after, before, after, ...), so the machine's
load, which moves CPU time too on a shared machine, falls on both alike. Prints the
median and the lowest of each tree, and whether every tree wrote the same GeoJSON bytes;
writes them to ``OUT/command.md`` and ``OUT/command.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", action="append", required=True, help="NAME=PATH of a tree's src folder (twice or more)")
    ap.add_argument("--env", action="append", default=[], help="NAME:KEY=VALUE, an environment variable for tree NAME")
    ap.add_argument("--runs", type=int, default=10, help="runs of each tree (default 10)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    trees = dict(s.split("=", 1) for s in args.src)
    extra: dict[str, dict[str, str]] = {name: {} for name in trees}
    for item in args.env:
        name, _, pair = item.partition(":")
        if name not in trees or "=" not in pair:
            ap.error(f"--env {item!r}: expected NAME:KEY=VALUE with NAME one of {', '.join(trees)}")
        key, value = pair.split("=", 1)
        extra[name][key] = value

    from fewseg.io.annotations import write_annotations
    from fewseg.demo import make_demo
    from fewseg.io.frames import write_frame

    frame, truth = make_demo(seed=0, busy=True)
    fewseg = Path(sys.executable).with_name("fewseg")
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    wall: dict[str, list[float]] = {name: [] for name in trees}
    digests: dict[str, set[str]] = {name: set() for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        image, examples = Path(tmp) / "frame.ome.tif", Path(tmp) / "examples.json"
        write_frame(image, frame)
        write_annotations(examples, truth[:10], shape=frame.shape)
        for k in range(args.runs):
            for name, src in trees.items():
                out = Path(tmp) / f"{name}{k}.geojson"
                env = {**os.environ, "PYTHONPATH": str(Path(src).resolve()), **extra[name]}
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([str(fewseg), "segment", str(image), "--examples", str(examples), "-o", str(out)],
                               check=True, capture_output=True, env=env)
                wall[name].append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                digests[name].add(hashlib.sha256(out.read_bytes()).hexdigest())
    same = len(set().union(*digests.values())) == 1
    lines = [f"| `fewseg segment`, busy frame ({args.runs} runs each, alternated) | CPU s median | CPU s lowest | "
             "wall s median | wall s lowest |", "|---|---|---|---|---|"]
    lines += [f"| {name} (`{trees[name]}`{''.join(f', {k}={v}' for k, v in extra[name].items())}) | "
              f"{statistics.median(t):.2f} | {min(t):.2f} | {statistics.median(wall[name]):.2f} | {min(wall[name]):.2f} |"
              for name, t in cpu.items()]
    lines += ["", f"Same GeoJSON bytes from every run of every tree: {'yes' if same else 'NO'}."]
    from report import publish

    publish(args.out, "command", lines, {"trees": trees, "env": extra, "cpu_s": cpu, "wall_s": wall, "geojson_sha256": {k: sorted(v) for k, v in
                                                                                         digests.items()},
                                         "same_geojson": same})


if __name__ == "__main__":
    main()
