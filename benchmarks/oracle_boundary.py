"""How well can any iso-contour of the object signal outline stardist's nuclei?

    python benchmarks/oracle_boundary.py [--out benchmarks/results]

A diagnostic, not a method: for every truth nucleus it thresholds the object signal
(learned from 10 examples, lightly smoothed) in a window around the nucleus, takes the
connected piece containing the nucleus's most interior pixel (holes filled) and
reports

* the best IoU over levels chosen *per nucleus with the truth in hand* (an upper bound
  for any method that outlines a nucleus by one signal level), and
* the best IoU when one fraction of each nucleus's peak is used for all of them,

separately for nuclei that touch no other nucleus (within 2 px) and for those that do
(where the connected piece also spills into the neighbour, so the bound is low: there
the split matters more than the level). This is what limits the weight-free method's
mean IoU on this frame (README, "How well it does").

Prints a Markdown table and writes it with the raw numbers to OUT/oracle_boundary.md
and OUT/oracle_boundary.json.
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


def nucleus_ious(signal: np.ndarray, labels: np.ndarray, value: int) -> tuple[np.ndarray, bool]:
    """IoU with the truth of the piece cut at each fraction of the nucleus's peak, and
    whether the nucleus touches another."""
    box = ndi.find_objects((labels == value).astype(np.int32))[0]
    window = tuple(slice(max(b.start - 10, 0), min(b.stop + 10, n)) for b, n in zip(box, labels.shape))
    truth = labels[window] == value
    touches = bool((ndi.binary_dilation(truth, iterations=2) & (labels[window] > 0) & ~truth).any())
    w = signal[window]
    centre = np.unravel_index(int(np.argmax(ndi.distance_transform_edt(truth))), truth.shape)
    peak = float(w[truth].max())
    out = np.zeros(len(FRACTIONS))
    for k, f in enumerate(FRACTIONS):
        pieces, _ = ndi.label(w > f * peak)
        if pieces[centre] == 0:
            continue
        piece = ndi.binary_fill_holes(pieces == pieces[centre])
        out[k] = (piece & truth).sum() / (piece | truth).sum()
    return out, touches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    from fetch_stardist import fetch

    from fewseg.annotations import read_annotations
    from fewseg.examples import example_masks, learn_profile_and_signal
    from fewseg.load import read_frame
    from fewseg.objects import labels_from_masks

    paths = fetch(HERE.parent / "data" / "stardist")
    frame = read_frame(paths["img2d.tif"])
    masks = example_masks(read_annotations(paths["mask2d.tif"], shape=frame.shape), frame.shape)
    _, signal = learn_profile_and_signal(frame, masks[:10])
    signal = ndi.gaussian_filter(signal, 1.0)
    labels = labels_from_masks(masks, frame.shape)
    rows = [nucleus_ious(signal, labels, v) for v in range(1, len(masks) + 1)]
    ious = np.array([r[0] for r in rows])
    touching = np.array([r[1] for r in rows])

    report = {}
    lines = ["| nuclei | n | best level per nucleus (oracle) | best single fraction of peak |", "|---|---|---|---|"]
    for name, sel in (("touching no other", ~touching), ("touching another", touching)):
        sub = ious[sel]
        per_object = float(sub.max(axis=1).mean())
        best = int(sub.mean(axis=0).argmax())
        report[name] = {"n": int(sel.sum()), "oracle_per_object": per_object,
                        "single_fraction": float(FRACTIONS[best]), "single_fraction_iou": float(sub.mean(axis=0)[best])}
        lines.append(f"| {name} | {int(sel.sum())} | {per_object:.3f} | {sub.mean(axis=0)[best]:.3f} "
                     f"(fraction {FRACTIONS[best]:.3f}) |")
    from report import publish

    publish(args.out, "oracle_boundary", lines, report)


if __name__ == "__main__":
    main()
