"""How the weight-free fit's cost grows with the number of examples.

    python benchmarks/bench_fit_examples.py [--counts 10,100,500] [--out benchmarks/results]

``WeightFreeSegmenter.fit`` on the busy demo frame (``make_demo(busy=True)``, 540 blobs)
with its first N blobs as examples, CPU seconds (one fit each), and the example-fit
score. The proposer's search segments around at most ``propose.FIT_EXAMPLES`` of them.

Prints a Markdown table and writes it with the raw records to ``OUT/fit_examples.md``
and ``OUT/fit_examples.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="10,100,500")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    from fewseg.demo import make_demo
    from fewseg.classic.model import WeightFreeSegmenter
    from fewseg.classic.clicks import as_masks

    frame, truth = make_demo(seed=0, busy=True)
    rows = []
    for n in (int(c) for c in args.counts.split(",")):
        masks = as_masks(truth[:n], frame)
        c0 = time.process_time()
        model = WeightFreeSegmenter().fit(frame, masks)
        rows.append({"examples": n, "fit_cpu_s": time.process_time() - c0, "example_fit": model.example_fit})
    lines = ["| examples | fit CPU s | example fit (mean best IoU) |", "|---|---|---|"]
    lines += [f"| {r['examples']} | {r['fit_cpu_s']:.2f} | {r['example_fit']:.3f} |" for r in rows]
    from report import publish

    publish(args.out, "fit_examples", lines, rows)


if __name__ == "__main__":
    main()
