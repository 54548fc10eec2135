"""Where stardist's truth outlines lie relative to the signal, and what bounds the learned boundary.

    python benchmarks/boundary_study.py [--seeds 0,1,2,3,4] [--out benchmarks/results]

A diagnostic, not a method (docs/performance.md, "Learned boundary"):

* **Profile**: the object signal (learned from split seed 0's 10 examples) smoothed at 1 px,
  divided by each nucleus's peak, on the nucleus's outermost pixels (distance 0) and on
  the rings 1-3 px inside and outside; the gradient magnitude and the scale-normalised
  Laplacian at 2 px likewise (medians over all 125 nuclei). Then the first ring inside
  and outside by quartile of peak brightness and for nuclei touching another (within
  2 px) or not.
* **Bound**: on the evaluation protocol (mean over ``--seeds``), the method with
  ``--boundary learned`` as it is, and with its boundary model fitted on *all* nuclei
  (examples and truth, an oracle) instead of the 10 examples; for each, the share of
  matches with IoU below 0.7 and the mean IoU of the others.

Prints Markdown tables and writes them with the raw numbers to OUT/boundary_study.md and
OUT/boundary_study.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def profile(signal: np.ndarray, labels: np.ndarray) -> tuple[list[str], dict]:
    from fewseg.classic.boundary import outline_geometry

    signed, owner = outline_geometry(labels)
    n = int(labels.max())
    idx = np.arange(1, n + 1)
    g1 = ndi.gaussian_filter(signal, 1.0)
    peak = np.zeros(n + 1)
    peak[1:] = ndi.maximum(g1, labels, idx)
    maps = {"signal / peak": g1, "gradient magnitude (2 px) / peak": 2 * ndi.gaussian_gradient_magnitude(signal, 2.0),
            "Laplacian (2 px) / peak": 4 * ndi.gaussian_laplace(signal, 2.0)}
    distances = (-3, -2, -1, 0, 1, 2, 3)
    # Rings: the pixels at that rounded signed distance from the outline; outside, the owner
    # is the nearest nucleus.
    ring = np.rint(signed).astype(int)
    report = {}
    lines = ["| signed distance to the truth's outline (px) | " + " | ".join(str(d) for d in distances) + " |",
             "|---|" + "---|" * len(distances)]
    for name, m in maps.items():
        values = []
        for d in distances:
            sel = (ring == d) & (owner > 0)
            values.append(float(np.median(m[sel] / peak[owner[sel]])))
        report[name] = dict(zip(map(str, distances), values))
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    # The first ring inside (the outermost pixels) and outside, per nucleus.
    inside = np.array([np.mean(g1[(ring == 0) & (owner == v)]) for v in idx]) / peak[1:]
    outside = np.array([np.mean(g1[(ring == 1) & (owner == v)]) for v in idx]) / peak[1:]
    others = ndi.grey_dilation(labels, size=5)
    touches = np.zeros(n + 1, bool)
    near = (labels > 0) & (others != labels) & (others > 0)
    touches[labels[near]] = True
    touches[others[near]] = True
    groups = {}
    order = np.argsort(peak[1:])
    for q, part in enumerate(np.array_split(order, 4), start=1):
        groups[f"peak quartile {q} (mean peak {peak[1:][part].mean():.2f})"] = part
    groups["touching another"] = np.flatnonzero(touches[1:])
    groups["touching no other"] = np.flatnonzero(~touches[1:])
    lines += ["", "| nuclei | n | signal / peak, outermost pixels | first pixels outside | half-way |", "|---|---|---|---|---|"]
    for name, part in groups.items():
        a, b = float(np.mean(inside[part])), float(np.mean(outside[part]))
        report[name] = {"n": int(part.size), "inside": a, "outside": b}
        lines.append(f"| {name} | {part.size} | {a:.3f} | {b:.3f} | {(a + b) / 2:.3f} |")
    return lines, report


def bound(frame, annotations, seeds) -> tuple[list[str], dict]:
    from fewseg.classic.boundary import fit_boundary, proposed_outlines
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import run_evaluation
    from fewseg.classic.examples import example_masks
    from fewseg.match import greedy_match, iou_pairs
    from fewseg.classic.model import WeightFreeSegmenter

    every = example_masks(annotations, frame.shape)

    class OracleBoundary(WeightFreeSegmenter):
        def fit(self, frame, examples):
            super().fit(frame, examples)
            signal = self._signal(frame)[0]
            self.boundary = fit_boundary(signal, every, proposed_outlines(signal, every, self.settings),
                                         radius=self.profile.radius)
            return self

    config = SegmentConfig(boundary="learned")
    report, lines = {}, ["| boundary model fitted on | F1 | mean IoU | matches with IoU < 0.7 | mean IoU of the others |",
                         "|---|---|---|---|---|"]
    for name, make in (("the 10 examples", WeightFreeSegmenter), ("all 125 nuclei (oracle)", OracleBoundary)):
        runs = []
        for s in seeds:
            ev = run_evaluation(frame, annotations, config=config, num_train=10, seed=s, segmenter=make(config))
            ious = np.array([m[2] for m in greedy_match(iou_pairs(ev.predictions, ev.truth, frame.shape), iou=0.3)])
            runs.append({"f1": ev.metrics["f1"], "mean_iou": ev.metrics["mean_iou"], "poor": float(np.mean(ious < 0.7)),
                         "others": float(ious[ious >= 0.7].mean())})
        mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        report[name] = {"runs": runs, "mean": mean}
        lines.append(f"| {name} | {mean['f1']:.3f} | {mean['mean_iou']:.3f} | {100 * mean['poor']:.1f} % "
                     f"| {mean['others']:.3f} |")
    return lines, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    from fetch_stardist import fetch

    from fewseg.io.annotations import read_annotations
    from fewseg.evaluate import split_examples
    from fewseg.classic.examples import example_masks, learn_profile_and_signal
    from fewseg.io.frames import read_frame
    from fewseg.objects import labels_from_masks

    paths = fetch(HERE.parent / "data" / "stardist")
    frame = read_frame(paths["img2d.tif"])
    annotations = read_annotations(paths["mask2d.tif"], shape=frame.shape)
    masks = example_masks(annotations, frame.shape)
    train, _ = split_examples(masks, num_train=10, seed=0)
    _, signal = learn_profile_and_signal(frame, train)
    profile_lines, profile_report = profile(signal, labels_from_masks(masks, frame.shape))
    bound_lines, bound_report = bound(frame, annotations, seeds)
    lines = ["Where the truth's outline lies (all nuclei, seed 0's signal; medians):", "", *profile_lines, "",
             f"What bounds the learned boundary (split seeds {args.seeds}):", "", *bound_lines]
    from report import publish

    publish(args.out, "boundary_study", lines, {"profile": profile_report, "bound": bound_report, "seeds": seeds})


if __name__ == "__main__":
    main()
