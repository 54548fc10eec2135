"""``fewseg evaluate``: the seed report's evaluation (split the truth with ``--seed``, learn
from the first ``--num-train``, score the rest).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .options import (
    check_learns_negatives,
    check_outputs,
    check_suffix,
    frame_options,
    image_and_truth,
    make_config,
    method_options,
    negative_options,
    parse_seeds,
    read_input,
    read_negatives,
    render_config,
    write_json,
)


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="measure precision / recall / F1 the seed report's way",
                       description="Shuffle the truth annotations with --seed, learn from the first --num-train, "
                                   "predict, and match predictions to the rest greedily by IoU.")
    image_and_truth(p)
    p.add_argument("--num-train", type=int, default=10)
    p.add_argument("--seed", default="42", help="split seed; several: '0,1,2,3,4' (mean reported)")
    p.add_argument("--clicks", action="store_true",
                   help="give the examples as clicks (centroid + a seeded offset up to a quarter radius), "
                        "outlined from the frame")
    p.add_argument("--rounds", type=int, default=0,
                   help="the correction curve: after round 0, this many rounds of a simulated user who rejects "
                        "--corrections false objects (a click inside each, given as negatives where the method "
                        "takes them) and clicks --corrections missed ones (added to the examples; they leave the "
                        "truth); refit, predict and score each round (default 0: no corrections)")
    p.add_argument("--corrections", type=int, default=5,
                   help="false objects rejected and missed objects clicked per round (default 5)")
    p.add_argument("--json", default=None, help="write the metrics (and config) here")
    p.add_argument("--overlay", default=None, help="write the four-panel figure here (PNG; first seed)")
    negative_options(p)
    frame_options(p)
    method_options(p)
    p.set_defaults(func=run_evaluate)


def evaluate_and_report(frame, annotations, *, config, num_train, seeds, source, json_path=None, figure_path=None,
                        render=None, clicks: bool = False, negatives: list | None = None, rounds: int = 0,
                        corrections: int = 5) -> list[dict]:
    """Evaluate each seed (with ``rounds``: its correction curve, :func:`fewseg.evaluate.correction_curve`),
    print the table (and the mean over seeds), write the JSON and the figure (the first
    seed's last round). Returns the records (one per seed, or per seed and round)."""
    from ..evaluate import CURVE_METRICS, correction_curve, curve_table, metrics_table, run_evaluation
    from ..methods import make_segmenter

    rows, first = [], None
    for seed in seeds:
        segmenter = make_segmenter(config, render=render)
        check_learns_negatives(segmenter, negatives, config.method)
        if rounds:
            curve = correction_curve(frame, annotations, config=config, num_train=num_train, seed=seed,
                                     rounds=rounds, corrections=corrections, clicks=clicks, source=source,
                                     segmenter=segmenter, negatives=negatives)
        else:
            curve = [run_evaluation(frame, annotations, config=config, num_train=num_train, seed=seed, source=source,
                                    segmenter=segmenter, clicks=clicks, negatives=negatives)]
        rows += [ev.metrics for ev in curve]
        first = first or curve[-1]
    from .._atomic import committed_together

    if rounds:
        print(curve_table(rows))
        by_round = [[r for r in rows if r["round"] == k] for k in range(rounds + 1)]
        mean = [{"round": k, **{m: sum(r[m] for r in runs) / len(runs) for m in CURVE_METRICS}}
                for k, runs in enumerate(by_round)]
        if len(seeds) > 1:
            print("mean over seeds, by round:")
            for m in mean:
                print(f"  round {m['round']}: " + ", ".join(f"{k} {m[k]:.3f}" for k in CURVE_METRICS))
        record = {"rounds": rounds, "corrections": corrections, "runs": rows, "mean": mean}
    else:
        print(metrics_table(rows))
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in CURVE_METRICS}
        if len(rows) > 1:
            print("mean over seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
        record = rows[0] if len(rows) == 1 else {"runs": rows, "mean": mean}
    with committed_together():  # the metrics and the figure appear together or not at all
        if json_path:
            write_json(Path(json_path), record)
        if figure_path:
            from ..figure import evaluation_figure
            from ..render import to_rgb

            evaluation_figure(figure_path, to_rgb(frame, render), first.truth, first.predictions,
                              matched_truth=first.scores.matched_truth, matched_pred=first.scores.matched_pred,
                              title=f"{Path(frame.source).name}: {config.method}, seed {first.metrics['seed']}"
                                    + (f", round {rounds}" if rounds else ""))
    return rows


def run_evaluate(args) -> int:
    if args.overlay:
        check_suffix(Path(args.overlay), "--overlay", (".png",))
    check_outputs({"--json": args.json, "--overlay": args.overlay},
                  inputs=(args.image, args.truth, *([args.negatives] if args.negatives else [])))
    seeds = parse_seeds(args.seed)
    for name, value in (("--rounds", args.rounds), ("--corrections", args.corrections)):
        if value < 0:
            raise InputError(name, f"expected 0 or more, got {value}")
    config = make_config(args)
    frame, annotations = read_input(args, args.truth)
    negatives = read_negatives(args, frame)  # marked on the frame evaluated; not scored
    evaluate_and_report(frame, annotations, config=config, num_train=args.num_train, seeds=seeds,
                        source=args.truth or args.image, json_path=args.json, figure_path=args.overlay,
                        render=render_config(args), clicks=args.clicks, negatives=negatives, rounds=args.rounds,
                        corrections=args.corrections)
    return 0




def add_parser(sub) -> None:
    add_evaluate(sub)
