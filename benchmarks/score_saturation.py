"""Can the similarity box separate the classic method's false results from its true ones?

    python benchmarks/score_saturation.py --out benchmarks/results/score_saturation_<date>
                                          [--seeds 0,1,2,3,4] [--beside 5,...,14] [--data stardist,demo,busy]

A diagnostic for issue 19 ("27 of 29 false results score 1.0, so the similarity box
barely bites"). On stardist's 2-D nuclei and the demo / busy demo frames, 10 examples,
the seed report's protocol (split, fit, predict with the examples excluded, score at IoU
0.3), per data set and split seed, of the results the method keeps at its own threshold:

* ``false >=0.995``: share of the false results whose score shows as "1.00" in two decimals
  (the box's old precision), and ``true >=0.995`` the same of the true ones;
* ``false ==1``: share of false results whose score is exactly 1.0 in floating point (ties:
  no threshold below 1 can drop them);
* ``AUC score``: the chance a true result outscores a false one (0.5: the score cannot tell
  them apart; a threshold on it drops true and false alike);
* ``AUC typicality``: the same for the candidate's log density under the examples'
  component (``Selection.typicality``, which the engine computes and uses only to choose
  between alternative outlines);
* ``F1 auto`` and ``best F1 by score``: F1 at the method's own threshold, and the best F1 any
  higher threshold on the score could reach (chosen on the truth, so an upper bound of what
  the box can do), and ``best F1 by typicality`` the same for a threshold on typicality.

Means over the split seeds ``--seeds`` (0-4), with ``--beside`` (5-14) reported beside and
nothing chosen on them. Prints a Markdown table and writes ``OUT/score_saturation.md`` /
``.json`` (OUT must be a new folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DATA = {"stardist": "stardist img2d/mask2d", "demo": "demo (seed 0)", "busy": "busy demo (seed 0)"}


def auc(true_values: np.ndarray, false_values: np.ndarray) -> float:
    """P(a true value > a false one), ties counting half (Mann-Whitney)."""
    if len(true_values) == 0 or len(false_values) == 0:
        return float("nan")
    t, f = np.asarray(true_values)[:, None], np.asarray(false_values)[None, :]
    return float(((t > f).sum() + 0.5 * (t == f).sum()) / t.size / f.size)


def best_f1(values: np.ndarray, matched: np.ndarray, n_truth: int) -> float:
    """Best F1 keeping only results with value >= some threshold (results already kept)."""
    order = np.argsort(-values, kind="stable")
    hits = np.cumsum(matched[order])
    kept = np.arange(1, len(values) + 1)
    f1 = 2 * hits / (kept + n_truth)
    return float(max(f1.max(initial=0.0), 0.0))


def typicality_of_results(result) -> np.ndarray:
    """Each kept result's typicality: that of the kept candidate it overlaps most (IoU)."""
    cands = result.candidates.masks
    sel = result.selection
    boxes = np.array([m.bbox for m in cands])  # (row0, col0, row1, col1)
    out = np.full(len(result.masks), np.nan)
    for i, m in enumerate(result.masks):
        r0, c0, r1, c1 = m.bbox
        near = np.nonzero(sel.keep & (boxes[:, 0] < r1) & (boxes[:, 2] > r0) & (boxes[:, 1] < c1) & (boxes[:, 3] > c0))[0]
        best, best_iou = None, 0.0
        for j in near:
            c = cands[j]
            rr0, cc0 = max(r0, c.row), max(c0, c.col)
            rr1, cc1 = min(r1, c.row + c.mask.shape[0]), min(c1, c.col + c.mask.shape[1])
            if rr1 <= rr0 or cc1 <= cc0:
                continue
            a = m.mask[rr0 - m.row:rr1 - m.row, cc0 - m.col:cc1 - m.col]
            b = c.mask[rr0 - c.row:rr1 - c.row, cc0 - c.col:cc1 - c.col]
            inter = int((a & b).sum())
            iou = inter / (m.area + c.area - inter)
            if iou > best_iou:
                best, best_iou = j, iou
        if best is not None:
            out[i] = sel.typicality[best]
    return out


def one_split(frame, annotations, seed: int) -> dict:
    from fewseg.classic.examples import example_masks
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import score, split_examples
    from fewseg.methods import make_segmenter

    config = SegmentConfig()
    train, truth_ann = split_examples(annotations, num_train=10, seed=seed, source="truth")
    examples = example_masks(train, frame.shape, source="truth")
    truth = example_masks(truth_ann, frame.shape, source="truth")
    result = make_segmenter(config).fit(frame, examples).predict(frame, exclude=examples)
    s = score(result.masks, truth, frame.shape, iou=config.iou)
    matched = np.asarray(s.matched_pred, dtype=bool)
    scores = np.asarray(result.scores, dtype=np.float64)
    typ = typicality_of_results(result)
    typ_filled = np.where(np.isfinite(typ), typ, -np.inf)
    share = (lambda a: float(a.mean()) if len(a) else float("nan"))
    return {
        "seed": seed, "n_kept": int(len(scores)), "n_false": int((~matched).sum()),
        "false >=0.995": share(scores[~matched] >= 0.995), "true >=0.995": share(scores[matched] >= 0.995),
        "false ==1": share(scores[~matched] == 1.0),
        "AUC score": auc(scores[matched], scores[~matched]),
        "AUC typicality": auc(typ_filled[matched], typ_filled[~matched]),
        "F1 auto": float(s.f1),
        "best F1 by score": best_f1(scores, matched, len(truth)),
        "best F1 by typicality": best_f1(typ_filled, matched, len(truth)),
    }


COLUMNS = ("n_kept", "n_false", "false >=0.995", "true >=0.995", "false ==1", "AUC score", "AUC typicality", "F1 auto",
           "best F1 by score", "best F1 by typicality")


def mean_row(rows: list[dict]) -> dict:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in COLUMNS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="a new folder for the figures")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--beside", default="5,6,7,8,9,10,11,12,13,14")
    ap.add_argument("--data", default=",".join(DATA))
    args = ap.parse_args()
    if Path(args.out).exists():
        ap.error(f"--out: {args.out} exists; give a new folder")
    seeds = [int(s) for s in args.seeds.split(",")]
    beside = [int(s) for s in args.beside.split(",")] if args.beside else []

    from fewseg.demo import make_demo
    from fewseg.io.annotations import read_annotations
    from fewseg.io.frames import read_frame

    records, lines = {}, []
    for key in args.data.split(","):
        if key == "stardist":
            from fetch_stardist import fetch

            paths = fetch(HERE.parent / "data" / "stardist")
            frame = read_frame(paths["img2d.tif"])
            annotations = read_annotations(paths["mask2d.tif"], shape=frame.shape)
        else:
            frame, annotations = make_demo(seed=0, busy=key == "busy")
        main_rows = [one_split(frame, annotations, s) for s in seeds]
        beside_rows = [one_split(frame, annotations, s) for s in beside]
        records[key] = {"seeds": main_rows, "beside": beside_rows}
        for which, rows, ss in (("", main_rows, args.seeds), (" (beside)", beside_rows, args.beside)):
            if rows:
                m = mean_row(rows)
                lines.append(f"| {DATA[key]}{which} | {ss} | " + " | ".join(
                    f"{m[k]:.1f}" if k.startswith("n_") else f"{m[k]:.3f}" for k in COLUMNS) + " |")
    head = ["Means over split seeds; 10 examples; the method's own threshold; results kept only.", "",
            "| data | split seeds | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    from report import publish

    publish(args.out, "score_saturation", head + lines, records)


if __name__ == "__main__":
    main()
