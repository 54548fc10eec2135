"""``fewseg evaluate``: the seed report's evaluation (split the truth with ``--seed``, learn
from the first ``--num-train``, score the rest).
"""

from __future__ import annotations

from pathlib import Path

from .options import (
    check_outputs,
    check_suffix,
    frame_options,
    image_and_truth,
    make_config,
    method_options,
    parse_seeds,
    read_input,
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
    p.add_argument("--json", default=None, help="write the metrics (and config) here")
    p.add_argument("--overlay", default=None, help="write the four-panel figure here (PNG; first seed)")
    frame_options(p)
    method_options(p)
    p.set_defaults(func=run_evaluate)


def evaluate_and_report(frame, annotations, *, config, num_train, seeds, source, json_path=None, figure_path=None,
                        render=None, clicks: bool = False) -> list[dict]:
    from ..evaluate import metrics_table, run_evaluation
    from ..methods import make_segmenter

    rows, first = [], None
    for seed in seeds:
        ev = run_evaluation(frame, annotations, config=config, num_train=num_train, seed=seed, source=source,
                            segmenter=make_segmenter(config, render=render), clicks=clicks)
        rows.append(ev.metrics)
        first = first or ev
    from .._atomic import committed_together

    print(metrics_table(rows))
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("precision", "recall", "f1", "mean_iou")}
    if len(rows) > 1:
        print("mean over seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    with committed_together():  # the metrics and the figure appear together or not at all
        if json_path:
            write_json(Path(json_path), rows[0] if len(rows) == 1 else {"runs": rows, "mean": mean})
        if figure_path:
            from ..figure import evaluation_figure
            from ..render import to_rgb

            evaluation_figure(figure_path, to_rgb(frame, render), first.truth, first.predictions,
                              matched_truth=first.scores.matched_truth, matched_pred=first.scores.matched_pred,
                              title=f"{Path(frame.source).name}: {config.method}, seed {first.metrics['seed']}")
    return rows


def run_evaluate(args) -> int:
    if args.overlay:
        check_suffix(Path(args.overlay), "--overlay", (".png",))
    check_outputs({"--json": args.json, "--overlay": args.overlay}, inputs=(args.image, args.truth))
    seeds = parse_seeds(args.seed)
    config = make_config(args)
    frame, annotations = read_input(args, args.truth)
    evaluate_and_report(frame, annotations, config=config, num_train=args.num_train, seeds=seeds,
                        source=args.truth or args.image, json_path=args.json, figure_path=args.overlay,
                        render=render_config(args), clicks=args.clicks)
    return 0




def add_parser(sub) -> None:
    add_evaluate(sub)
