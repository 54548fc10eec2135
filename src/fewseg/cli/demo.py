"""``fewseg demo``: write the synthetic frame and evaluate on it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .evaluate import evaluate_and_report
from .options import make_config, method_options, parse_seeds, render_config


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="make a synthetic frame like the seed's and evaluate on it",
                       description="Write a synthetic Brightfield + YFP frame with hundreds of blobs and bright "
                                   "non-blob distractors, then run 'fewseg evaluate' on it.")
    p.add_argument("--out", default="fewseg-demo", help="directory for the frame, truth, results and figure")
    p.add_argument("--demo-seed", type=int, default=0, help="seed of the synthetic frame")
    p.add_argument("--num-train", type=int, default=10)
    p.add_argument("--seed", default="42", help="split seed(s), as in evaluate")
    p.add_argument("--small", action="store_true", help="a 256 x 256 frame with 40 blobs (quick check)")
    p.add_argument("--busy", action="store_true",
                   help="the busy scene: 540 blobs, many fibres and aggregates, diffuse patches, strong cell outlines")
    method_options(p)
    p.set_defaults(func=run_demo, tag="YFP blob", z=None, t=None, xy=None, channels=None, level=0,
                   coordinates="pixel-corner")


def run_demo(args) -> int:
    from .._atomic import check_output_path
    from ..demo import write_demo
    from ..io.annotations import read_annotations
    from ..io.frames import read_frame

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "is a file; expected a folder for the demo's files", field="--out")
    for name in ("demo_frame.ome.tif", "demo_annotations.json", "metrics.json", "evaluation.png"):
        check_output_path(out / name, option="--out")
    seeds = parse_seeds(args.seed)
    size = dict(shape=(256, 256), n_blobs=40) if args.small else {}
    paths = write_demo(out, seed=args.demo_seed, busy=args.busy, **size)
    frame = read_frame(paths["frame"])
    truth = read_annotations(paths["annotations"], shape=frame.shape, tag="YFP blob")
    print(f"demo frame: {paths['frame']} ({frame.shape[1]} x {frame.shape[0]}, channels {', '.join(frame.channel_names)}); "
          f"{len(truth)} blobs in {paths['annotations']}")
    evaluate_and_report(frame, truth, config=make_config(args), num_train=args.num_train, seeds=seeds,
                        source=str(paths["annotations"]), json_path=out / "metrics.json",
                        figure_path=out / "evaluation.png", render=render_config(args))
    print(f"wrote {out / 'metrics.json'} and {out / 'evaluation.png'}")
    return 0




def add_parser(sub) -> None:
    add_demo(sub)
