"""Many frames on a real 2-worker dask LocalCluster (processes), shared by this module.

The frames are demo-like, stored as an OME-Zarr (written by ome-zarr) so each task reads
its own plane lazily. Results must equal the sequential batch loop's exactly; a re-run
redoes only missing or stale frames; a worker killed mid-run costs only its frames.
"""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")

from fewseg.batch import segment_batch  # noqa: E402
from fewseg.config import SegmentConfig  # noqa: E402
from fewseg.io.dataset import FileFrames  # noqa: E402
from fewseg.methods import make_segmenter  # noqa: E402
from fewseg.objects import Location  # noqa: E402
from fewseg.classic.clicks import as_masks  # noqa: E402
from fewseg.scale.frames import segment_distributed  # noqa: E402
from fewseg.scale.store import masks_digest, result_path, run_signature  # noqa: E402

N_T = 6


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from fewseg.io.annotations import write_annotations
    from fewseg.demo import make_demo
    from fewseg.io.formats.omezarr import write_image

    root = tmp_path_factory.mktemp("dataset")
    frames, examples = [], None
    for seed in range(N_T):
        frame, truth = make_demo(seed=seed, shape=(256, 256), n_blobs=40)
        frames.append(frame.data)
        if examples is None:
            examples = truth[:10]
            write_annotations(root / "examples.json", examples, shape=frame.shape, tags=["blob"], location=Location())
    write_image(root / "movie.ome.zarr", np.stack(frames), axes="tcyx", channel_names=frame.channel_names, version="0.5",
                chunks=(1, 1, 128, 128), scale_factors=())
    return root


def _fitted(dataset):
    from fewseg.io.annotations import read_annotations

    frames = FileFrames.open(dataset / "movie.ome.zarr")
    frame = frames.read(Location())
    examples = read_annotations(dataset / "examples.json", shape=frame.shape, tag="blob")
    config = SegmentConfig()
    segmenter = make_segmenter(config).fit(frame, examples)
    sig = run_signature(config=config.to_dict(), learned=segmenter.describe_fit(),
                        examples_digest=masks_digest(as_masks(examples, frame)), version="test")
    return frames, frame, examples, config, segmenter, sig


def _same(results_a, results_b):
    assert [r.location for r in results_a] == [r.location for r in results_b]
    for a, b in zip(results_a, results_b):
        assert len(a.segmentation.polygons) == len(b.segmentation.polygons) > 0
        for p, q in zip(a.segmentation.polygons, b.segmentation.polygons):
            np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(a.segmentation.scores, b.segmentation.scores)
        for m, n in zip(a.segmentation.masks, b.segmentation.masks):
            assert (m.row, m.col) == (n.row, n.col) and np.array_equal(m.mask, n.mask)


@pytest.fixture(scope="module")
def sequential(dataset):
    frames, frame, examples, config, _, _ = _fitted(dataset)
    locations = [Location(time=t) for t in range(N_T)]
    return segment_batch(config, frame, examples, frames.read, locations, show_progress=False)


def test_distributed_equals_sequential(client, dataset, sequential, tmp_path):
    frames, frame, examples, _, segmenter, sig = _fitted(dataset)
    locations = [Location(time=t) for t in range(N_T)]
    run = segment_distributed(client, segmenter, frames, locations, results_dir=tmp_path / "r", signature=sig,
                              examples={frame.location: examples}, show_progress=False)
    assert run.n_done == N_T and run.n_kept == 0
    _same(run.frames, sequential.frames)
    assert sequential.frames[0].segmentation.n_rediscovered > 0  # the examples' frame dropped re-discoveries
    assert run.frames[0].segmentation.n_rediscovered == sequential.frames[0].segmentation.n_rediscovered


def test_resume_redoes_only_missing_and_stale_frames(client, dataset, sequential, tmp_path):
    frames, frame, examples, _, segmenter, sig = _fitted(dataset)
    locations = [Location(time=t) for t in range(N_T)]
    kw = dict(results_dir=tmp_path / "r", signature=sig, examples={frame.location: examples}, show_progress=False)
    segment_distributed(client, segmenter, frames, locations, **kw)
    os.remove(result_path(tmp_path / "r", Location(time=2)))          # lost
    stale = result_path(tmp_path / "r", Location(time=4))              # from another run's settings
    record = json.loads(stale.read_text())
    record["signature"] = "0" * 64
    stale.write_text(json.dumps(record))
    torn = result_path(tmp_path / "r", Location(time=5))               # unreadable
    torn.write_text(torn.read_text()[:100])
    stamps = {t: result_path(tmp_path / "r", Location(time=t)).stat().st_mtime_ns for t in (0, 1, 3)}
    run = segment_distributed(client, segmenter, frames, locations, **kw)
    assert (run.n_done, run.n_kept) == (3, 3)
    assert all(result_path(tmp_path / "r", Location(time=t)).stat().st_mtime_ns == s for t, s in stamps.items())
    _same(run.frames, sequential.frames)
    # Other settings: a new signature, every frame redone.
    run = segment_distributed(client, segmenter, frames, locations, **{**kw, "signature": "1" * 64})
    assert (run.n_done, run.n_kept) == (N_T, 0)


def test_cli_on_a_scheduler_and_labels_into_the_zarr(client, dataset, tmp_path):
    """``fewseg segment --scheduler`` writes the sequential run's GeoJSON; labels go into
    the OME-Zarr's labels/ group; a second run keeps every frame."""
    import shutil

    from fewseg.cli import main

    movie = tmp_path / "movie.ome.zarr"
    shutil.copytree(dataset / "movie.ome.zarr", movie)
    common = [str(movie), "--examples", str(dataset / "examples.json"), "--tag", "blob", "--t", "0", "--batch-t", "0-3"]
    assert main(["segment", *common, "-o", str(tmp_path / "seq.geojson")]) == 0
    address = client.scheduler.address
    assert main(["segment", *common, "-o", str(tmp_path / "dist.geojson"), "--scheduler", address]) == 0
    assert (tmp_path / "seq.geojson").read_text() == (tmp_path / "dist.geojson").read_text()
    assert main(["segment", *common, "-o", str(movie / "labels" / "fewseg"), "--scheduler", address]) == 0
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    [label] = [n for n in Reader(parse_url(str(movie)))() if any(isinstance(s, Label) for s in n.specs)]
    stack = np.asarray(label.data[0])
    assert stack.shape == (N_T, 256, 256)
    found = json.loads((tmp_path / "seq.geojson").read_text())["features"]
    per_t = [sum(f["properties"]["location"]["Time"] == t for f in found) for t in range(N_T)]
    assert [len(np.unique(stack[t])) - 1 for t in range(N_T)] == per_t  # frames 4, 5 not asked: empty
    record = json.loads((tmp_path / "movie.ome.zarr.fewseg.fewseg.json").read_text())
    assert record["distributed"]["frames_predicted"] == 4
    assert main(["segment", *common, "-o", str(movie / "labels" / "fewseg"), "--scheduler", address]) == 0
    record = json.loads((tmp_path / "movie.ome.zarr.fewseg.fewseg.json").read_text())
    assert (record["distributed"]["frames_predicted"], record["distributed"]["frames_kept"]) == (0, 4)


def test_mosaic_blocks_as_tasks_read_their_own_region(client, dataset):
    """Blocks of one frame as dask tasks (each reads its region of the OME-Zarr through a
    FilePlane) give the same objects as the blocks run here and as whole-frame predict."""
    from fewseg.io.dataset import FilePlane
    from fewseg.scale.mosaic import dask_map_blocks, predict_blockwise

    frames, frame, examples, _, segmenter, _ = _fitted(dataset)
    plane = FilePlane(str(dataset / "movie.ome.zarr"), t=0)
    here = predict_blockwise(segmenter, plane, plane.shape, block=96, exclude=examples)
    there = predict_blockwise(segmenter, plane, plane.shape, block=96, exclude=examples,
                              map_blocks=dask_map_blocks(client))
    whole = segmenter.predict(frame, exclude=examples)
    assert here.extra["blocks"]["count"] == there.extra["blocks"]["count"] == 9
    for seg in (there, whole):
        assert len(seg.polygons) == len(here.polygons) > 20
        for p, q in zip(seg.polygons, here.polygons):
            np.testing.assert_array_equal(p, q)


def test_bad_input_in_a_task_is_one_line_on_the_client(client, dataset, tmp_path):
    from fewseg.errors import InputError

    frames, frame, examples, _, segmenter, sig = _fitted(dataset)
    with pytest.raises(InputError, match=r"movie.ome.zarr: T: --t 99 is out of range") as info:
        segment_distributed(client, segmenter, frames, [Location(time=0), Location(time=99)], results_dir=tmp_path / "r",
                            signature=sig, show_progress=False)
    assert info.value.field == "T"


def test_cli_a_glob_of_files_is_the_xy_positions(client, tmp_path):
    """Files matched by a glob are XY 0, 1, 2; the distributed run writes what the
    sequential one writes; a .tif output of several frames is a label stack; the
    sequential run (no --workers / --scheduler) leaves no results directory."""
    import tifffile

    from fewseg.io.annotations import write_annotations
    from fewseg.cli import main
    from fewseg.demo import make_demo
    from fewseg.io.frames import write_frame

    for seed in range(3):
        frame, truth = make_demo(seed=10 + seed, shape=(200, 220), n_blobs=30)
        write_frame(tmp_path / f"well_{seed}.ome.tif", frame)
        if seed == 0:
            write_annotations(tmp_path / "ex.json", truth[:8], shape=frame.shape, tags=["blob"], location=Location())
    common = [str(tmp_path / "well_*.ome.tif"), "--examples", str(tmp_path / "ex.json"), "--batch-xy", "all"]
    assert main(["segment", *common, "-o", str(tmp_path / "seq.json")]) == 0
    assert not (tmp_path / "seq.json.fewseg-frames").exists()
    address = client.scheduler.address
    assert main(["segment", *common, "-o", str(tmp_path / "dist.json"), "--scheduler", address]) == 0
    assert (tmp_path / "seq.json").read_text() == (tmp_path / "dist.json").read_text()
    found = json.loads((tmp_path / "seq.json").read_text())
    per_xy = [sum(a["location"]["XY"] == xy for a in found) for xy in range(3)]
    assert all(n > 5 for n in per_xy)
    assert main(["segment", *common, "-o", str(tmp_path / "stack.tif"), "--scheduler", address]) == 0
    stack = tifffile.imread(tmp_path / "stack.tif")
    assert stack.shape == (3, 200, 220)
    assert [len(np.unique(plane)) - 1 for plane in stack] == per_xy


def test_a_worker_killed_mid_run_costs_only_its_frames(client, dataset, sequential, tmp_path):
    """SIGKILL one worker process while frames run; the run completes with the sequential
    output (dask re-runs the lost frames; the nanny restarts the worker)."""
    frames, frame, examples, _, segmenter, sig = _fitted(dataset)
    locations = [Location(time=t) for t in range(N_T)]
    out, errors = {}, []

    def run():
        try:
            out["run"] = segment_distributed(client, segmenter, frames, locations, results_dir=tmp_path / "r",
                                             signature=sig, examples={frame.location: examples}, show_progress=False)
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    pids = list(client.run(os.getpid).values())
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not any((tmp_path / "r").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    done_at_kill = len(list((tmp_path / "r").glob("*.json")))
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=300)
    assert not errors, errors
    assert 0 < done_at_kill < N_T  # the kill came mid-run
    _same(out["run"].frames, sequential.frames)
    assert len(client.run(os.getpid)) >= 1


def test_cli_a_corrupt_frame_in_a_task_is_one_line(dataset, tmp_path):
    """``fewseg segment --workers 2`` where one frame's chunk is garbage: that task's read is
    refused as bad input (not retried as a lost worker), the run exits 2 with one line naming
    the image, and no output appears (issue 13). Run as a user runs it, in a new process,
    so the workers' own log lines would show if any escaped."""
    import shutil
    import subprocess
    import sys

    movie = tmp_path / "movie.ome.zarr"
    shutil.copytree(dataset / "movie.ome.zarr", movie)
    [level] = [p for p in movie.iterdir() if p.is_dir() and (p / "zarr.json").exists() and p.name != "labels"]
    chunks = sorted(p for p in (level / "c" / "3").rglob("*") if p.is_file())  # time point 3
    assert chunks
    chunks[0].write_bytes(b"not a chunk" * 10)
    out = tmp_path / "dist.geojson"
    done = subprocess.run([sys.executable, "-m", "fewseg.cli", "segment", str(movie), "--examples",
                           str(dataset / "examples.json"), "--tag", "blob", "--t", "0", "--batch-t", "0-5", "-o", str(out),
                           "--workers", "2"], capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("fewseg: error: ") and "movie.ome.zarr" in lines[0], done.stderr
    assert "cannot read it as OME-Zarr" in lines[0]
    assert not out.exists() and not (tmp_path / "dist.geojson.fewseg.json").exists()
