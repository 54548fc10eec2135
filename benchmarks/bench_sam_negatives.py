"""Negatives for the SAM methods (seed, fast): which rule scores candidates down best.

    python benchmarks/bench_sam_negatives.py [--methods fast seed] [--seeds 0 1 2 3 4]
        [--shape 384 384] [--k 5] [--tiny tests/data/tiny_sam1.pt] [--out benchmarks/results]

On demo frames with distractors (``make_demo_scene(seed=s, shape, n_blobs, n_aggregates=2,
n_fibres=3)``), with the project's trained tiny SAM1 (``--tiny``), per split seed ``s``:

1. Round 0: fit on 10 truth blobs chosen at random (seeded), predict frame A (the one
   fitted on, the examples excluded) and frame B (another demo frame, seed ``s + 100``).
2. A simulated user rejects ``--k`` of A's false objects (no truth blob at IoU >= 0.3)
   chosen at random (seeded): a click at each one's most interior pixel, the negatives.
3. Refit with the same examples and those negatives under each rule and predict A (the
   examples and negatives excluded there, as :func:`fewseg.plan.plan_fit` does) and B.
   Rules (:mod:`fewseg.sam.contrast`): ``masked out only`` (penalty weight 0: nothing
   learned, the objects at the negatives dropped on A), ``penalty 0.5`` and
   ``penalty 1.0`` (cos to the prototype minus the weight times the largest cos to a
   negative, NimbusImage's rule), ``nearest`` (a candidate nearer a negative than every
   example is scored down by 1).

Scores: F1, precision, recall (IoU >= 0.3) on A against the truth less the examples, and
on B against all its truth; B shows what is *learned* (nothing is masked out there).
Seed method: the grid generator without IoU / stability thresholds (the tiny model's
predictions would not pass the official ones), ``points_per_side`` 16.

Prints a Markdown table and writes it with the raw numbers to OUT/sam_negatives.md and
OUT/sam_negatives.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CACHE = None  # a temporary folder for the fast method's embeddings (main)
RULES = {"none (round 0)": None, "masked out only": ("penalty", 0.0), "penalty 0.5": ("penalty", 0.5),
         "penalty 1.0": ("penalty", 1.0), "nearest": ("nearest", 0.5)}


def make_segmenter(method: str, tiny: str, rule):
    from fewseg.config import SegmentConfig
    from fewseg.sam.fast_method import FastSegmenter
    from fewseg.sam.seed_method import SeedSegmenter

    cfg = SegmentConfig(method=method, model="sam1_vit_b", checkpoint=tiny, device="cpu", points_per_side=16,
                        pred_iou_thresh=0.0, stability_score_thresh=0.0, min_area=20)
    kind, weight = rule or ("nearest", 0.5)
    if method == "fast":  # frames encoded once, shared by every refit through the disk cache
        return FastSegmenter(cfg, cache_dir=CACHE, negative_rule=kind, negative_weight=weight)
    return SeedSegmenter(cfg, negative_rule=kind, negative_weight=weight)


def scores(result, truth, shape) -> dict:
    from fewseg.evaluate import score

    s = score(result.masks, truth, shape)
    return {"f1": s.f1, "precision": s.precision, "recall": s.recall, "n": len(result.masks)}


def one_seed(method: str, seed: int, shape, k: int, tiny: str) -> dict:
    from fewseg.demo import make_demo_scene
    from fewseg.objects import Annotation
    from fewseg.sam.fast_method import interior_point

    n_blobs = max(20, round(500 * shape[0] * shape[1] / (1022 * 1024)))
    a = make_demo_scene(seed=seed, shape=shape, n_blobs=n_blobs, n_aggregates=2, n_fibres=3)
    b = make_demo_scene(seed=seed + 100, shape=shape, n_blobs=n_blobs, n_aggregates=2, n_fibres=3)
    rng = np.random.default_rng(seed)
    train = sorted(rng.choice(len(a.blobs), size=10, replace=False).tolist())
    examples = [a.annotations[i] for i in train]
    rest = [m for i, m in enumerate(a.blobs) if i not in set(train)]
    # One segmenter per frame, so each keeps its own frame's candidates between refits.
    fit_a, fit_b = make_segmenter(method, tiny, None), make_segmenter(method, tiny, None)
    t0 = time.perf_counter()
    first = fit_a.fit(a.frame, examples).predict(a.frame, exclude=examples)
    out = {"round 0 s": time.perf_counter() - t0}
    false = [m for m in first.masks if max((m.iou(t) for t in a.blobs), default=0.0) < 0.3]
    on_distractors = [any(m.iou(d) > 0 or _touches(m, d) for d in a.distractors) for m in false]
    picked = rng.choice(len(false), size=min(k, len(false)), replace=False) if false else []
    negatives = [Annotation(point=np.array(interior_point(false[i]))) for i in picked]
    out.update(n_false=len(false), n_false_on_distractors=int(np.sum(on_distractors)), n_negatives=len(negatives))
    rows = {}
    for label, rule in RULES.items():
        seg_a, seg_b = make_segmenter(method, tiny, rule), make_segmenter(method, tiny, rule)
        seg_a._model = seg_b._model = fit_a.model
        if method == "seed":  # the frames' candidates and vectors do not depend on the fit
            seg_a._seen, seg_b._seen = fit_a._seen, fit_b._seen
        neg = negatives if rule is not None else None
        t0 = time.perf_counter()
        seg_a.fit(a.frame, examples, negatives=neg)
        ra = seg_a.predict(a.frame, exclude=[*examples, *(neg or [])])
        t_a = time.perf_counter() - t0
        seg_b.fit(a.frame, examples, negatives=neg)
        rb = seg_b.predict(b.frame)
        if method == "seed":
            fit_b._seen = seg_b._seen
        rows[label] = {"A": scores(ra, rest, a.frame.shape), "B": scores(rb, b.blobs, b.frame.shape),
                       "refit_predict_A_s": t_a, "n_under_negatives": ra.extra.get("n_under_negatives", 0)}
    out["rules"] = rows
    return out


def _touches(m, d) -> bool:
    from fewseg.sam.contrast import under_negatives

    return bool(under_negatives([m], [d], share=0.0)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=["fast", "seed"], choices=["fast", "seed"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--shape", nargs=2, type=int, default=[384, 384])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--tiny", default=str(HERE.parent / "tests" / "data" / "tiny_sam1.pt"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--name", default="sam_negatives")
    args = ap.parse_args()

    import torch

    from report import publish

    import tempfile

    global CACHE
    torch.set_num_threads(2)
    CACHE = tempfile.mkdtemp(prefix="fewseg-bench-")
    data = {"shape": args.shape, "k": args.k, "seeds": args.seeds, "methods": {}}
    lines = [f"Demo frames {args.shape[0]} x {args.shape[1]} with 2 aggregates and 3 fibres, trained tiny SAM1, "
             f"10 examples, {args.k} negatives (clicks on false objects of round 0), split seeds "
             f"{', '.join(map(str, args.seeds))}: mean F1 / precision / recall (IoU >= 0.3). A: the frame fitted "
             "on (negatives masked out there); B: another frame (only what is learned).", "",
             "| method | rule | A: F1 | A: precision | A: recall | B: F1 | B: precision | B: recall |",
             "|---|---|---|---|---|---|---|---|"]
    for method in args.methods:
        per_seed = {}
        for seed in args.seeds:
            per_seed[seed] = one_seed(method, seed, tuple(args.shape), args.k, args.tiny)
            print(method, seed, {r: (round(v["A"]["f1"], 3), round(v["B"]["f1"], 3))
                                 for r, v in per_seed[seed]["rules"].items()}, flush=True)
        data["methods"][method] = per_seed
        for label in RULES:
            mean = {f: {m: float(np.mean([per_seed[s]["rules"][label][f][m] for s in args.seeds]))
                        for m in ("f1", "precision", "recall")} for f in ("A", "B")}
            lines.append(f"| {method} | {label} | " + " | ".join(f"{mean[f][m]:.3f}" for f in ("A", "B")
                                                                  for m in ("f1", "precision", "recall")) + " |")
        n_false = [per_seed[s]["n_false"] for s in args.seeds]
        on_d = [per_seed[s]["n_false_on_distractors"] for s in args.seeds]
        lines.append(f"| {method} | (false objects of round 0 on A: {sum(n_false)}, of which {sum(on_d)} touch a "
                     "distractor) | | | | | | |")
    publish(args.out, args.name, lines, data)


if __name__ == "__main__":
    main()
