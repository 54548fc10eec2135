"""Scale-out benchmark: frames per second on dask workers, and a mosaic in blocks.

    python benchmarks/bench_scale.py [--frames 12] [--size 512] [--mosaic 4096] [--block 1024]
                                     [--out benchmarks/results]

1. **Many frames.** ``--frames`` demo frames of ``--size``^2 (different seeds) in an
   OME-Zarr (one time point each). One fit; then the frames predicted (a) by the
   sequential batch loop (``fewseg.batch.segment_batch``), (b) on a LocalCluster of 1 and
   (c) of 2 worker processes (``fewseg.scale.frames.segment_distributed``, results dir
   fresh each time). Frames per second of the prediction phase (cluster start-up and
   the workers' imports reported apart); the outputs are compared object for object.
2. **One mosaic.** 4 x 4 demo frames of ``--mosaic / 4``^2 stitched into one
   ``--mosaic``^2 frame, stored as OME-Zarr (512^2 chunks). In two fresh processes, the
   same model (fitted on the examples' region) predicts it (a) whole, read into memory,
   and (b) block by block (``fewseg.scale.mosaic.predict_blockwise``, ``--block``),
   reading each block from the Zarr. Time and peak resident memory of each process
   (``ru_maxrss``; the imports alone are reported too), and the objects compared.

Prints Markdown and writes ``OUT/scale.md`` / ``OUT/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _status_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process from /proc, in MB.

    (``ru_maxrss`` is not used: Linux carries the parent's peak into a child process.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    return _status_mb("VmHWM")


def _reset_peak() -> None:
    """Start a new peak: ``echo 5 > /proc/self/clear_refs`` resets VmHWM to VmRSS."""
    Path("/proc/self/clear_refs").write_text("5")


# ----------------------------------------------------------------------------- many frames


def make_frames(root: Path, n: int, size: int):
    from fewseg.io.annotations import write_annotations
    from fewseg.demo import make_demo
    from fewseg.io.formats.omezarr import write_image
    from fewseg.objects import Location

    data = []
    for seed in range(n):
        frame, truth = make_demo(seed=seed, shape=(size, size), n_blobs=max(20, int(400 * size * size / 1024**2)))
        data.append(frame.data)
        if seed == 0:
            write_annotations(root / "examples.json", truth[:10], shape=frame.shape, tags=["blob"], location=Location())
    write_image(root / "frames.ome.zarr", np.stack(data), axes="tcyx", channel_names=frame.channel_names, version="0.5",
                chunks=(1, 1, 256, 256), scale_factors=())


def _warm():
    import fewseg.classic.model  # noqa: F401
    import fewseg.scale.frames  # noqa: F401


def bench_frames(root: Path, n: int) -> dict:
    from distributed import Client, LocalCluster

    from fewseg.io.annotations import read_annotations
    from fewseg.batch import segment_frames
    from fewseg.config import SegmentConfig
    from fewseg.io.dataset import FileFrames
    from fewseg.methods import make_segmenter
    from fewseg.objects import Location
    from fewseg.scale.frames import segment_distributed

    frames = FileFrames.open(root / "frames.ome.zarr")
    frame = frames.read(Location())
    examples = read_annotations(root / "examples.json", shape=frame.shape, tag="blob")
    t0 = time.perf_counter()
    segmenter = make_segmenter(SegmentConfig()).fit(frame, examples)
    fit_s = time.perf_counter() - t0
    locations = [Location(time=t) for t in range(n)]
    t0 = time.perf_counter()
    sequential = list(segment_frames(segmenter, frames.read, locations, examples={frame.location: examples}))
    seq_s = time.perf_counter() - t0
    rows = [{"run": "sequential (one process)", "workers": 0, "start_s": 0.0, "seconds": seq_s, "frames_per_s": n / seq_s,
             "same": True}]
    for workers in (1, 2):
        t0 = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            # Warm the workers (imports), as a long run's first frames would: start-up cost.
            client.run(_warm)
            start = time.perf_counter() - t0
            t1 = time.perf_counter()
            run = segment_distributed(client, segmenter, frames, locations, results_dir=root / f"results-{workers}",
                                      signature=f"bench-{workers}", examples={frame.location: examples},
                                      resume=False, show_progress=False)
            seconds = time.perf_counter() - t1
        same = all(len(a.segmentation.polygons) == len(b.segmentation.polygons)
                   and all(np.array_equal(p, q) for p, q in zip(a.segmentation.polygons, b.segmentation.polygons))
                   for a, b in zip(run.frames, sequential))
        rows.append({"run": f"dask LocalCluster, {workers} worker process{'es' if workers > 1 else ''}",
                     "workers": workers, "start_s": start, "seconds": seconds, "frames_per_s": n / seconds,
                     "same": same})
    return {"fit_s": fit_s, "n_frames": n, "shape": list(frame.shape),
            "n_objects": sum(len(r.segmentation.polygons) for r in sequential), "rows": rows}


# ----------------------------------------------------------------------------- mosaic


def make_mosaic(root: Path, size: int):
    from fewseg.io.annotations import write_annotations
    from fewseg.demo import make_demo
    from fewseg.io.formats.omezarr import write_image
    from fewseg.objects import Location

    tile = size // 4
    rows = []
    for r in range(4):
        row = []
        for c in range(4):
            frame, truth = make_demo(seed=100 + 4 * r + c, shape=(tile, tile), n_blobs=int(400 * tile * tile / 1024**2))
            row.append(frame.data)
            if r == c == 0:
                write_annotations(root / "mosaic_examples.json", truth[:10], shape=(size, size), tags=["blob"],
                                  location=Location())
        rows.append(np.concatenate(row, axis=2))
    write_image(root / "mosaic.ome.zarr", np.concatenate(rows, axis=1), axes="cyx", channel_names=frame.channel_names,
                version="0.5", chunks=(1, 512, 512), scale_factors=())


def mosaic_child(root: Path, mode: str, block: int) -> dict:
    """In a fresh process: fit on the examples' tile region, predict whole or in blocks."""
    import_mb = _peak_mb()
    from fewseg.io.annotations import read_annotations
    from fewseg.io.dataset import FilePlane
    from fewseg.classic.model import WeightFreeSegmenter
    from fewseg.scale.mosaic import predict_blockwise

    plane = FilePlane(str(root / "mosaic.ome.zarr"))
    shape = plane.shape
    examples = read_annotations(root / "mosaic_examples.json", shape=shape, tag="blob")
    fit_region = (slice(0, min(1024, shape[0])), slice(0, min(1024, shape[1])))
    model = WeightFreeSegmenter().fit(plane(*fit_region), examples)
    fit_mb = _peak_mb()
    before_mb = _status_mb("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    if mode == "whole":
        frame = plane(slice(0, shape[0]), slice(0, shape[1]))
        seg = model.predict(frame, exclude=examples)
    else:
        seg = predict_blockwise(model, plane, shape, block=block, exclude=examples)
    seconds = time.perf_counter() - t0
    return {"mode": mode, "block": block, "seconds": seconds, "peak_mb": _peak_mb(), "import_mb": import_mb,
            "fit_peak_mb": fit_mb, "before_mb": before_mb,
            "n_objects": len(seg.polygons), "n_candidates": seg.n_candidates, "extra": seg.extra,
            "polygons": [p.tolist() for p in seg.polygons], "scores": seg.scores.tolist()}


def _child(root: Path, mode: str, block: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--root", str(root), "--block", str(block)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_mosaic(root: Path, blocks_: list[int]) -> dict:
    whole = _child(root, "whole", 0)
    runs = [_child(root, "blocks", b) for b in blocks_]
    compared = [compare(whole, r) for r in runs]
    for r in [whole, *runs]:
        del r["polygons"], r["scores"]
    return {"whole": whole, "blocks": runs, "compared": compared}


def compare(whole: dict, blocks: dict) -> dict:
    key = lambda p: np.asarray(p).round(6).tobytes()  # noqa: E731
    w = {key(p): i for i, p in enumerate(whole["polygons"])}
    b = {key(p): i for i, p in enumerate(blocks["polygons"])}
    only_whole = [whole["polygons"][i] for k, i in w.items() if k not in b]
    only_blocks = [blocks["polygons"][i] for k, i in b.items() if k not in w]
    common = [k for k in w if k in b]
    score_diff = max((abs(whole["scores"][w[k]] - blocks["scores"][b[k]]) for k in common), default=0.0)
    centre = lambda p: np.asarray(p).mean(axis=0).round(1).tolist()  # noqa: E731
    return {"block": blocks["block"], "same_objects": len(common), "only_whole": [centre(p) for p in only_whole],
            "only_blocks": [centre(p) for p in only_blocks], "same_order": list(w) == list(b),
            "max_score_difference": score_diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--mosaic", type=int, default=4096)
    ap.add_argument("--block", default="512,1024", help="block sizes to run, comma-separated")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(mosaic_child(Path(args.root), args.child, int(args.block))))
        return
    from report import publish

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_frames(root, args.frames, args.size)
        frames = bench_frames(root, args.frames)
        make_mosaic(root, args.mosaic)
        mosaic = bench_mosaic(root, [int(b) for b in str(args.block).split(",")])
    cores = os.cpu_count()
    lines = [f"Machine: {cores} CPU cores (shared with other work while measured).", "",
             f"Many frames: {frames['n_frames']} demo frames of {frames['shape'][0]} x {frames['shape'][1]} x 2 channels "
             f"in an OME-Zarr, {frames['n_objects']} objects; fit once ({frames['fit_s']:.2f} s, not counted).", "",
             "| run | cluster start s | predict s | frames / s | vs sequential | same output |", "|---|---|---|---|---|---|"]
    seq = frames["rows"][0]["seconds"]
    for r in frames["rows"]:
        lines.append(f"| {r['run']} | {r['start_s']:.1f} | {r['seconds']:.1f} | {r['frames_per_s']:.2f} | "
                     f"{seq / r['seconds']:.2f}x | {'yes' if r['same'] else 'NO'} |")
    w = mosaic["whole"]
    lines += ["", f"One mosaic: {args.mosaic} x {args.mosaic} x 2 channels (4 x 4 demo frames, {w['n_objects']} objects "
              "found), OME-Zarr with 512^2 chunks. Each row a fresh process; the same model, fitted on the examples' "
              "1024 x 1024 region, in every row. Memory: the process's resident set before predict and its peak "
              "during predict (VmHWM, reset after the fit).", "",
              "| predict | blocks (core + halo) | seconds | RSS before MB | peak during predict MB | objects | candidates |",
              "|---|---|---|---|---|---|---|"]
    lines.append(f"| whole frame (read into memory) | - | {w['seconds']:.1f} | {w['before_mb']:.0f} | {w['peak_mb']:.0f} | "
                 f"{w['n_objects']} | {w['n_candidates']} |")
    for r in mosaic["blocks"]:
        e = r["extra"]["blocks"]
        lines.append(f"| block by block (read from the Zarr) | {e['count']} x ({e['block']} + 2 x {e['halo']}) px | "
                     f"{r['seconds']:.1f} | {r['before_mb']:.0f} | {r['peak_mb']:.0f} | {r['n_objects']} | "
                     f"{r['n_candidates']} |")
    lines.append("")
    for c in mosaic["compared"]:
        lines.append(f"Blocks of {c['block']} vs whole frame: identical polygons {c['same_objects']}; only whole-frame "
                     f"{len(c['only_whole'])} {c['only_whole'][:10]}; only blockwise {len(c['only_blocks'])} "
                     f"{c['only_blocks'][:10]}; same order {c['same_order']}; largest score difference "
                     f"{c['max_score_difference']:.2g}.")
    publish(args.out, "scale", lines, {"frames": frames, "mosaic": mosaic, "cores": cores, "args": vars(args)})


if __name__ == "__main__":
    main()
