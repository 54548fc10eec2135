"""How well can any iso-contour of the object signal outline stardist's nuclei?

    python benchmarks/oracle_boundary.py [--oracle-fit] [--out benchmarks/results]

A diagnostic, not a method. For every truth nucleus it thresholds the object signal
(learned from 10 examples, lightly smoothed) in a window around the nucleus, takes the
connected piece containing the nucleus's most interior pixel (holes filled) and
reports

* the best IoU over levels chosen *per nucleus with the truth in hand* (an upper bound
  for any method that outlines a nucleus by one signal level), and
* the best IoU when one fraction of each nucleus's peak is used for all of them,

separately for nuclei that touch no other nucleus (within 2 px) and for those that do,
and twice: as it is (the piece may spill into a touching neighbour, so there the split
matters more than the level) and *with the truth's partition*, each nucleus limited to
the pixels nearer to it than to any other nucleus (a perfect split between touching
nuclei; it also stops spills into unannotated neighbours, so it flatters free nuclei a
little).

``--oracle-fit`` also runs the weight-free method with its proposer settings fitted on
*all* 125 nuclei instead of the 10 examples (mean over split seeds 0-4, ~2 minutes):
whether more examples for the fit would raise mean IoU.

Prints Markdown tables and writes them with the raw numbers to OUT/oracle_boundary.md
and OUT/oracle_boundary.json. This is what limits the weight-free method's mean IoU on
this frame (docs/performance.md, "What bounds mean IoU on stardist").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FRACTIONS = np.linspace(0.1, 0.9, 33)


def nucleus_ious(signal: np.ndarray, labels: np.ndarray, value: int, zone: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """IoU with the truth of the piece cut at each fraction of the nucleus's peak (within
    ``zone == value`` when a partition is given), and whether the nucleus touches another."""
    box = ndi.find_objects((labels == value).astype(np.int32))[0]
    window = tuple(slice(max(b.start - 10, 0), min(b.stop + 10, n)) for b, n in zip(box, labels.shape))
    truth = labels[window] == value
    touches = bool((ndi.binary_dilation(truth, iterations=2) & (labels[window] > 0) & ~truth).any())
    allowed = np.ones(truth.shape, bool) if zone is None else zone[window] == value
    w = signal[window]
    centre = np.unravel_index(int(np.argmax(ndi.distance_transform_edt(truth))), truth.shape)
    peak = float(w[truth].max())
    out = np.zeros(len(FRACTIONS))
    for k, f in enumerate(FRACTIONS):
        pieces, _ = ndi.label(allowed & (w > f * peak))
        if pieces[centre] == 0:
            continue
        piece = ndi.binary_fill_holes(pieces == pieces[centre])
        out[k] = (piece & truth).sum() / (piece | truth).sum()
    return out, touches


def level_bounds(signal, labels, n, zone) -> tuple[list[str], dict]:
    rows = [nucleus_ious(signal, labels, v, zone) for v in range(1, n + 1)]
    ious = np.array([r[0] for r in rows])
    touching = np.array([r[1] for r in rows])
    lines, report = [], {}
    for name, sel in (("touching no other", ~touching), ("touching another", touching), ("all", np.ones_like(touching))):
        sub = ious[sel]
        per_object = float(sub.max(axis=1).mean())
        best = int(sub.mean(axis=0).argmax())
        report[name] = {"n": int(sel.sum()), "oracle_per_object": per_object,
                        "single_fraction": float(FRACTIONS[best]), "single_fraction_iou": float(sub.mean(axis=0)[best])}
        lines.append(f"| {name} | {int(sel.sum())} | {per_object:.3f} | {sub.mean(axis=0)[best]:.3f} "
                     f"(fraction {FRACTIONS[best]:.3f}) |")
    return lines, report


def oracle_fit(frame, annotations, masks, seeds=(0, 1, 2, 3, 4)) -> dict:
    """The weight-free method on the seed protocol, its proposer fitted on every nucleus."""
    import fewseg.classic.model as model
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import run_evaluation

    fit_proposer = model.fit_proposer

    def fit_on_all(signal, _examples, radius):
        return fit_proposer(signal, masks, radius)

    model.fit_proposer = fit_on_all
    try:
        runs = [run_evaluation(frame, annotations, config=SegmentConfig(), num_train=10, seed=s).metrics for s in seeds]
    finally:
        model.fit_proposer = fit_proposer
    return {k: float(np.mean([r[k] for r in runs])) for k in ("precision", "recall", "f1", "mean_iou")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oracle-fit", action="store_true", help="also fit the proposer on all nuclei (~2 min)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    from fetch_stardist import fetch

    from fewseg.io.annotations import read_annotations
    from fewseg.classic.examples import example_masks, learn_profile_and_signal
    from fewseg.io.frames import read_frame
    from fewseg.objects import labels_from_masks

    paths = fetch(HERE.parent / "data" / "stardist")
    frame = read_frame(paths["img2d.tif"])
    annotations = read_annotations(paths["mask2d.tif"], shape=frame.shape)
    masks = example_masks(annotations, frame.shape)
    _, signal = learn_profile_and_signal(frame, masks[:10])
    signal = ndi.gaussian_filter(signal, 1.0)
    labels = labels_from_masks(masks, frame.shape)
    _, (rr, cc) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    partition = labels[rr, cc]

    head = ["| nuclei | n | best level per nucleus (oracle) | best single fraction of peak |", "|---|---|---|---|"]
    free_lines, free = level_bounds(signal, labels, len(masks), None)
    part_lines, parted = level_bounds(signal, labels, len(masks), partition)
    lines = ["As cut (a piece may spill into a touching neighbour):", "", *head, *free_lines, "",
             "Within the truth's partition (a perfect split between touching nuclei):", "", *head, *part_lines]
    report = {"as_cut": free, "truth_partition": parted}
    if args.oracle_fit:
        m = oracle_fit(frame, annotations, masks)
        report["oracle_fit_seeds_0_4"] = m
        lines += ["", "The method with its proposer fitted on all nuclei (split seeds 0-4):", "",
                  "| precision | recall | F1 | mean IoU |", "|---|---|---|---|",
                  f"| {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mean_iou']:.3f} |"]
    from report import publish

    publish(args.out, "oracle_boundary", lines, report)


if __name__ == "__main__":
    main()
