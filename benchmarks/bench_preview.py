"""Seconds of the NimbusImage worker's preview on a 1024 x 1024 frame, process start included.

    python benchmarks/bench_preview.py --out benchmarks/results/issue20/preview [--runs 5]

Starts the NimbusImage test server (``tests/nimbus_server``: a real Girder 3.2 with the
platform's endpoints, in ``.venv-girder``) holding the demo frame (1022 x 1024, two
channels) and 10 of its blobs as example polygons; then, run after run, the worker as the
platform starts it (a fresh ``python -m fewseg.nimbus`` process each time):

* ``preview``: ``--request preview`` (fit, predict the current tile, post the RGBA overlay),
  the frame's two outline levels side by side, the second in a forked process
  (:mod:`fewseg.classic.parallel`);
* ``preview, serial``: the same with ``FEWSEG_PARALLEL=0`` (one level after the other:
  what one core gives);
* ``compute``: ``--request compute`` for the same tile (fit, predict, upload the outlines),
  what the preview stands beside;
* ``start``: a fresh interpreter importing what the preview imports (the worker, the
  classic method, ``girder_client``, ``nimbusimage``): the process start alone.

The four take turns run by run, so the machine's load falls on each alike. Wall-clock
seconds of each process (what the user waits for) and its CPU seconds (user + system,
with its forked child's; on a shared, loaded machine wall-clock moves with the load) are
printed (median and lowest) with the ratios preview / compute and whether the
preview's median is within issue 20's 5 s; they are written to ``OUT/preview.md`` and
``OUT/preview.json``. ``OUT`` must be a new folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_S = 5.0
IMAGE = "fewseg/nimbus:bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server(folder: Path, frame) -> tuple[subprocess.Popen, dict]:
    import numpy as np
    import tifffile

    image = folder / "frame.ome.tif"
    tifffile.imwrite(image, np.stack([frame.data]).astype(np.uint16), ome=True,
                     metadata={"axes": "ZCYX", "Channel": {"Name": list(frame.channel_names)}})
    ready = folder / "ready.json"
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([str(ROOT / ".venv-girder" / "bin" / "python"), str(ROOT / "tests" / "nimbus_server" / "serve.py"),
                             "--port", str(_free_port()), "--data", str(folder / "data"), "--image", str(image),
                             "--ready", str(ready)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit(f"the test server did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    return proc, json.loads(ready.read_text())


def _timed(args: list[str], **env: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall-clock and CPU (user + system) seconds of one child process (``env``: added to its environment)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, done


def _worker(info: dict, request: str, params: dict, **env: str) -> tuple[float, float]:
    args = [sys.executable, "-m", "fewseg.nimbus", "--apiUrl", info["apiUrl"], "--token", info["token"],
            "--request", request, "--parameters", json.dumps(params), "--datasetId", info["datasetId"]]
    wall, cpu, done = _timed(args, **env)
    if done.returncode:
        raise SystemExit(f"the worker's {request} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return wall, cpu


def _start() -> tuple[float, float]:
    wall, cpu, done = _timed([sys.executable, "-c", "import fewseg.nimbus.worker, fewseg.nimbus.preview, "
                                                    "fewseg.classic.model, girder_client, nimbusimage"])
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    ap.add_argument("--out", required=True, help="a new folder for preview.md and preview.json")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"--out {out} exists; name a new folder (results are never overwritten)")
    sys.path.insert(0, str(ROOT / "src"))
    import girder_client

    from fewseg.demo import make_demo
    from fewseg.io.annotations import to_nimbus

    frame, truth = make_demo(seed=0)
    seconds: dict[str, list[float]] = {"preview": [], "preview, serial": [], "compute": [], "start": []}
    cpu: dict[str, list[float]] = {name: [] for name in seconds}
    with tempfile.TemporaryDirectory() as tmp:
        proc, info = _server(Path(tmp), frame)
        try:
            gc = girder_client.GirderClient(apiUrl=info["apiUrl"])
            gc.setToken(info["token"])
            gc.post("upenn_annotation/multiple", json=[
                {**to_nimbus(a), "tags": ["bench example"], "channel": 1, "location": {"XY": 0, "Z": 0, "Time": 0},
                 "datasetId": info["datasetId"]} for a in truth[:10]])
            params = {"datasetId": info["datasetId"], "type": "segmentation", "id": "tool", "name": "fewseg",
                      "image": IMAGE, "channel": 1, "assignment": {"XY": 0, "Z": 0, "Time": 0},
                      "tile": {"XY": 0, "Z": 0, "Time": 0}, "connectTo": {"tags": [], "channel": 0},
                      "workerInterface": {"Training tags": ["bench example"]}, "scales": {}}
            for k in range(args.runs):
                for name, (wall, used) in (("preview", _worker(info, "preview", {**params, "tags": ["bench preview"]})),
                                           ("preview, serial", _worker(info, "preview", {**params, "tags": ["bench preview"]},
                                                                         FEWSEG_PARALLEL="0")),
                                           ("compute", _worker(info, "compute", {**params, "tags": [f"bench run {k}"]})),
                                           ("start", _start())):
                    seconds[name].append(wall)
                    cpu[name].append(used)
                print(f"run {k + 1}/{args.runs}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s ({cpu[n][-1]:.2f} s CPU)"
                                                                for n in seconds), flush=True)
            preview = gc.get("worker_preview", parameters={"image": IMAGE})["preview"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    median = {n: statistics.median(v) for n, v in seconds.items()}
    median_cpu = {n: statistics.median(v) for n, v in cpu.items()}
    record = {
        "frame": list(frame.shape), "examples": 10, "runs": args.runs, "seconds": seconds,
        "median_s": median, "lowest_s": {n: min(v) for n, v in seconds.items()},
        "cpu_s": cpu, "median_cpu_s": median_cpu,
        "ratio_preview_to_compute": median["preview"] / median["compute"],
        "ratio_preview_to_compute_cpu": median_cpu["preview"] / median_cpu["compute"], "target_s": TARGET_S,
        "within_target": median["preview"] <= TARGET_S, "within_target_cpu": median_cpu["preview"] <= TARGET_S,
        "ratio_parallel_to_serial": median["preview"] / median["preview, serial"],
        "within_target_serial": median["preview, serial"] <= TARGET_S,
        "preview_text": preview.get("text"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s) as seen by Python; a shared machine, loaded by "
                   "other work while this ran (timings move with that load)",
        "python": platform.python_version(),
    }
    rows = "\n".join(f"| {n} | {median[n]:.2f} | {min(seconds[n]):.2f} | {median_cpu[n]:.2f} | {min(cpu[n]):.2f} |"
                     for n in seconds)
    text = (f"# The worker's preview on a {frame.shape[0]} x {frame.shape[1]} frame (CPU, process start included)\n\n"
            f"`python benchmarks/bench_preview.py --runs {args.runs} --out {args.out}`\n\n"
            f"Wall-clock seconds of a fresh worker process, {args.runs} runs each, taking turns; "
            f"{record['machine']}.\n\n"
            "| request | median s | lowest s | median CPU s | lowest CPU s |\n|---|---|---|---|---|\n" + rows + "\n\n"
            f"preview / compute (medians): {record['ratio_preview_to_compute']:.2f} wall-clock, "
            f"{record['ratio_preview_to_compute_cpu']:.2f} CPU. The preview's median is "
            f"{'within' if record['within_target'] else 'NOT within'} the {TARGET_S:g} s target wall-clock; one "
            f"level after the other (what one core gives) its median is {median['preview, serial']:.2f} s, "
            f"{'within' if record['within_target_serial'] else 'NOT within'} it (side by side / serial: "
            f"{record['ratio_parallel_to_serial']:.2f}). CPU seconds are user + system of the worker's process "
            f"and its forked child. The preview showed: {preview.get('text')}.\n")
    print(text)
    out.mkdir(parents=True)
    (out / "preview.md").write_text(text)
    (out / "preview.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
