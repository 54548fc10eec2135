"""``fewseg sweep``: the seed report's table over models x points per side."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import InputError

COLUMNS = ("model", "pts/side", "candidates", "precision", "recall", "F1", "mean IoU",
           "mask gen s", "encoding s", "total s")


def add_parser(sub) -> None:
    from .options import frame_options, image_and_truth, method_options

    p = sub.add_parser("sweep", help="the seed report's table: models x points per side",
                       description="Run the seed method (or --method fast) for every model and grid size, "
                                   "evaluate each the seed report's way, and write the table as Markdown and CSV.")
    image_and_truth(p)
    p.add_argument("--models", required=True, help="comma-separated checkpoint names, e.g. sam1_vit_h,sam2.1_base_plus")
    p.add_argument("--checkpoints", action="append", default=[], metavar="NAME=PATH",
                   help="local checkpoint file for a model (repeatable)")
    p.add_argument("--pts", "--points-per-side-list", dest="pts", default="64,128,256",
                   help="comma-separated grid sizes (default 64,128,256)")
    p.add_argument("--num-train", type=int, default=10)
    p.add_argument("--seed", default="42")
    p.add_argument("--out", default="sweep", help="writes OUT.md and OUT.csv (default ./sweep)")
    frame_options(p)
    method_options(p)
    p.set_defaults(func=run_sweep, method="seed")


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(option, f"expected integers separated by commas, got {text!r}") from None
    if not values:
        raise InputError(option, "expected at least one value")
    return values


def _checkpoints(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError("--checkpoints", f"expected NAME=PATH, got {item!r}")
        out[name] = path
    return out


def sweep_rows(frame, annotations, *, base_config, models, pts, checkpoints, num_train, seeds, source, render=None):
    """One evaluated row per (model, points per side); each model is loaded once."""
    from dataclasses import replace

    from ..evaluate import run_evaluation
    from ..methods import make_segmenter

    rows = []
    for name in models:
        config = replace(base_config, model=name, checkpoint=checkpoints.get(name, base_config.checkpoint))
        loaded = make_segmenter(config, render=render).model  # load (and verify) once per model
        for n in pts:
            cfg = replace(config, points_per_side=n)
            for seed in seeds:
                ev = run_evaluation(frame, annotations, config=cfg, num_train=num_train, seed=seed, source=source,
                                    segmenter=_with_model(make_segmenter(cfg, render=render), loaded))
                m, t = ev.metrics, ev.metrics["timings_s"]
                rows.append({
                    "model": name, "pts/side": n, "candidates": m["n_candidates"],
                    "precision": round(m["precision"], 3), "recall": round(m["recall"], 3), "F1": round(m["f1"], 3),
                    "mean IoU": round(m["mean_iou"], 3),
                    "mask gen s": round(t.get("mask_generation", t["propose"]), 2),
                    "encoding s": round(t.get("encoding", t["embed"]), 2), "total s": round(t["total"], 2),
                    "seed": seed,
                })
    return rows


def _with_model(segmenter, model):
    segmenter._model = model
    return segmenter


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS) + ["seed"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def run_sweep(args) -> int:
    from .._atomic import atomic_open, committed_together
    from .options import check_outputs, make_config, parse_seeds, read_input, render_config

    out = Path(args.out)
    check_outputs({"--out (.md)": out.with_suffix(".md"), "--out (.csv)": out.with_suffix(".csv")},
                   inputs=(args.image, args.truth))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise InputError("--models", f"expected checkpoint names separated by commas, got {args.models!r}")
    pts = _ints(args.pts, "--pts")
    seeds = parse_seeds(args.seed)
    base = make_config(args)
    frame, annotations = read_input(args, args.truth)
    rows = sweep_rows(frame, annotations, base_config=base, models=models, pts=pts,
                      checkpoints=_checkpoints(args.checkpoints), num_train=args.num_train,
                      seeds=seeds, source=args.truth or args.image, render=render_config(args))
    table = to_markdown(rows)
    print(table)
    with committed_together():
        with atomic_open(out.with_suffix(".md"), "w", encoding="utf-8") as f:
            f.write(table + "\n")
        with atomic_open(out.with_suffix(".csv"), "w", encoding="utf-8", newline="") as f:
            f.write(to_csv(rows))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.csv')}")
    return 0
