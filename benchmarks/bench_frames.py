"""Examples on two planes: learning from both (``fit_frames``) against learning from the
plane holding the most (before issue 18), on stardist's img3d planes.

    PYTHONPATH=src python benchmarks/bench_frames.py [--out benchmarks/results/issue18]

The 7 planes of ``fetch_stardist3d.PLANES`` (10-14 nuclei each). Per split seed: two
planes drawn at random; 5 truth nuclei of the first and 3 of the second are the examples
(drawn with ``evaluate.split_examples``, the protocol's shuffle). "one plane" fits on the
first plane's 5 (what ``fewseg segment`` did before: the location holding the most);
"both planes" fits on all 8 with ``WeightFreeSegmenter.fit_frames``. Both are scored on
the other 5 planes (held out: no example there), IoU 0.3 as ``fewseg evaluate``: the mean
F1, precision and recall over those planes, averaged over seeds 0-4, with seeds 5-14
beside (nothing chosen on them). Fit seconds are wall time on a shared, loaded machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "issue18"))
    args = ap.parse_args()

    import tifffile
    from fetch_stardist3d import PLANES
    from report import publish

    from fewseg.classic.model import WeightFreeSegmenter
    from fewseg.evaluate import score, split_examples
    from fewseg.objects import Frame, masks_from_labels

    data = HERE.parent / "data" / "stardist3d"
    image, labels = tifffile.imread(data / "img3d.tif"), tifffile.imread(data / "mask3d.tif")
    planes = {z: (Frame.from_array(image[z].astype(np.float32), source=f"img3d.tif Z {z}"),
                  masks_from_labels(labels[z])) for z in PLANES}
    rows = []
    for seed in range(15):
        a, b = random.Random(seed).sample(list(PLANES), 2)
        ex_a = split_examples(planes[a][1], num_train=5, seed=seed)[0]
        ex_b = split_examples(planes[b][1], num_train=3, seed=seed)[0]
        row = {"seed": seed, "planes": [a, b]}
        for name, fit in (("one plane", lambda m: m.fit(planes[a][0], ex_a)),
                          ("both planes", lambda m: m.fit_frames([(planes[a][0], ex_a, None),
                                                                  (planes[b][0], ex_b, None)]))):
            t0 = time.perf_counter()
            model = fit(WeightFreeSegmenter())
            fit_s = time.perf_counter() - t0
            scores = [score(model.predict(frame).masks, truth, frame.shape)
                      for z, (frame, truth) in planes.items() if z not in (a, b)]
            row[name] = {"f1": float(np.mean([s.f1 for s in scores])),
                         "precision": float(np.mean([s.precision for s in scores])),
                         "recall": float(np.mean([s.recall for s in scores])), "fit_s": fit_s}
        rows.append(row)
        print(seed, row["planes"], {k: round(row[k]["f1"], 3) for k in ("one plane", "both planes")}, flush=True)

    def mean(seeds, name, key):
        return float(np.mean([r[name][key] for r in rows if r["seed"] in seeds]))

    lines = ["| fit on | seeds | F1 | precision | recall | fit s (loaded machine) |", "|---|---|---|---|---|---|"]
    summary = {}
    for seeds, label in ((range(5), "0-4"), (range(5, 15), "5-14")):
        for name in ("one plane", "both planes"):
            values = {k: mean(seeds, name, k) for k in ("f1", "precision", "recall", "fit_s")}
            summary[f"{name}, seeds {label}"] = values
            lines.append(f"| {name} | {label} | {values['f1']:.3f} | {values['precision']:.3f} | "
                         f"{values['recall']:.3f} | {values['fit_s']:.2f} |")
    publish(args.out, "bench_frames", lines, {"rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
