"""Where the weight-free method's errors lie: false pieces, merges, splits, dim misses.

    python benchmarks/false_pieces.py [--seeds 0,1,2,3,4] [--out benchmarks/results]
                                      [--data stardist,demo,busy,stardist3d]

On the demo and the busy demo frame (whose drawing is known: distractors by kind, dim
blobs), on stardist's 2-D nuclei and on planes of stardist's 3-D nuclei stack laid side by
side (``fetch_stardist3d.py``), 10 examples, the seed report's protocol. Per data set, the
mean F1 and mean IoU over the split seeds (as ``bench_classic.py`` reports them) and,
summed over the split seeds:

* false positives lying on a distractor (more than 30 % of the piece within 3 px of it),
  by kind: ``aggregate``, ``fibre``, ``diffuse`` (demo frames only);
* false positives on objects of the truth: a *merge* overlaps two or more true objects by
  at least 20 % of their area each; others there count as *poor outline* (a split piece or
  a boundary off by enough to miss IoU 0.3);
* false positives on nothing (background);
* misses, and how many of them were drawn dim (SNR 3-4; demo frames only), are *split*
  (two or more predictions each cover at least 20 % of them) or *merged* (half of them
  or more lies in one prediction matched to another true object).

Prints a Markdown table and writes it with the raw records to ``OUT/false_pieces.md``
and ``OUT/false_pieces.json`` (with ``--data``, ``OUT/false_pieces_<data>.md``).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


#: ``--data`` keys and the rows they name.
DATA = {"stardist": "stardist img2d/mask2d", "demo": "demo (seed 0)", "busy": "busy demo (seed 0)",
        "stardist3d": "stardist img3d/mask3d, 7 planes"}


def breakdown(frame, annotations, seeds, *, scene=None) -> dict:
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import run_evaluation
    from fewseg.objects import labels_from_masks

    shape = frame.shape
    near = None
    if scene is not None:
        near = ndi.grey_dilation(labels_from_masks(scene.distractors, shape), size=(7, 7))
        blob_of = labels_from_masks(scene.blobs, shape)
    counts = collections.Counter()
    for seed in seeds:
        ev = run_evaluation(frame, annotations, config=SegmentConfig(), num_train=10, seed=seed)
        truth = labels_from_masks(ev.truth, shape)
        preds = labels_from_masks(ev.predictions, shape)
        area = np.bincount(truth.ravel(), minlength=len(ev.truth) + 1)
        for k, p in enumerate(ev.predictions):
            if ev.scores.matched_pred[k]:
                continue
            under = truth[p.slices][p.mask]
            if near is not None:
                d = near[p.slices][p.mask]
                if (d > 0).mean() > 0.3:
                    counts["fp_" + scene.distractor_kinds[np.bincount(d[d > 0]).argmax() - 1]] += 1
                    continue
            covered = np.bincount(under, minlength=len(ev.truth) + 1)[1:] / np.maximum(area[1:], 1)
            if (covered >= 0.2).sum() >= 2:
                counts["fp_merge"] += 1
            elif (under > 0).mean() > 0.3:
                counts["fp_poor_outline"] += 1
            else:
                counts["fp_background"] += 1
        for k, t in enumerate(ev.truth):
            if ev.scores.matched_truth[k]:
                continue
            counts["missed"] += 1
            over = preds[t.slices][t.mask]
            share = np.bincount(over, minlength=len(ev.predictions) + 1)[1:]
            if (share >= 0.2 * t.area).sum() >= 2:
                counts["missed_split"] += 1
            elif share.size and share.max() >= 0.5 * t.area and ev.scores.matched_pred[int(np.argmax(share))]:
                counts["missed_merged"] += 1
            if scene is not None:
                b = blob_of[t.slices][t.mask]
                counts["missed_dim"] += int(scene.dim[np.bincount(b[b > 0]).argmax() - 1])
        counts["predictions"] += len(ev.predictions)
        counts["truth"] += len(ev.truth)
        counts["f1_sum"] += ev.metrics["f1"]
        counts["iou_sum"] += ev.metrics["mean_iou"]
    out = dict(counts)
    out["f1"], out["mean_iou"] = out.pop("f1_sum") / len(seeds), out.pop("iou_sum") / len(seeds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--data", default=",".join(DATA), help=f"data sets, comma-separated, of {', '.join(DATA)}")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = args.data.split(",")
    if set(wanted) - set(DATA):
        ap.error(f"--data: unknown {sorted(set(wanted) - set(DATA))}; expected some of {', '.join(DATA)}")

    from fewseg.io.annotations import read_annotations
    from fewseg.demo import make_demo_scene
    from fewseg.io.frames import read_frame

    rows = {}
    for key in wanted:
        if key == "stardist":
            from fetch_stardist import fetch

            paths = fetch(HERE.parent / "data" / "stardist")
            nuclei = read_frame(paths["img2d.tif"])
            rows[DATA[key]] = breakdown(nuclei, read_annotations(paths["mask2d.tif"], shape=nuclei.shape), seeds)
        elif key == "stardist3d":
            from fetch_stardist3d import fetch as fetch3d

            paths = fetch3d(HERE.parent / "data" / "stardist3d")
            planes = read_frame(paths["montage.tif"])
            rows[DATA[key]] = breakdown(planes, read_annotations(paths["montage_mask.tif"], shape=planes.shape), seeds)
        else:
            scene = make_demo_scene(seed=0, busy=key == "busy")
            rows[DATA[key]] = breakdown(scene.frame, scene.annotations, seeds, scene=scene)
    keys = ("f1", "mean_iou", "predictions", "fp_aggregate", "fp_fibre", "fp_diffuse", "fp_merge", "fp_poor_outline", "fp_background",
            "truth", "missed", "missed_dim", "missed_split", "missed_merged")
    lines = [f"Summed over split seeds {args.seeds}.", "",
             "| data | " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, c in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{c[k]:.3f}" if isinstance(c.get(k), float) else str(c.get(k, 0))
                                                  for k in keys) + " |")
    from report import publish

    name = "false_pieces" if wanted == list(DATA) else "false_pieces_" + "_".join(wanted)
    publish(args.out, name, lines, {"seeds": seeds, "counts": rows})


if __name__ == "__main__":
    main()
