"""fewseg's NimbusImage worker against a real server, run as the platform runs it.

The server (``tests/nimbus_server``) is a real Girder 3.2 with girder-large-image serving
a real OME-TIFF (two Z planes of demo frames) through its tiles endpoints, plus the
platform's annotation, worker-interface, dataset-view and collection endpoints. It runs
in its own environment (``.venv-girder``, made by ``scripts/setup``). The worker runs as a
subprocess with exactly the platform's flags.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fewseg.io.annotations import from_nimbus
from fewseg.config import SegmentConfig
from fewseg.demo import make_demo
from fewseg.evaluate import run_evaluation, score, split_examples
from fewseg.methods import make_segmenter
from fewseg.objects import Location

ROOT = Path(__file__).resolve().parents[1]
SERVER_PYTHON = ROOT / ".venv-girder" / "bin" / "python"
SHAPE = (256, 256)
IMAGE = "fewseg/nimbus:test"
TRAIN, OUT = "example blob", "fewseg blob"
PAGE_CAP = 7  # the server pages annotations by 7: the worker must follow the cursor to see all 10 examples
LAYERS = [
    {"id": "bf", "name": "Brightfield", "channel": 0, "color": "#808080", "visible": True,
     "contrast": {"mode": "percentile", "blackPoint": 0, "whitePoint": 100}},
    {"id": "yfp", "name": "YFP", "channel": 1, "color": "#FFFF00", "visible": True,
     "contrast": {"mode": "percentile", "blackPoint": 0, "whitePoint": 100}},
]

pytest.importorskip("nimbusimage")
if not SERVER_PYTHON.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{SERVER_PYTHON} is missing: run 'bash scripts/setup' (it makes the test server's venv)")
    pytest.skip("the NimbusImage test server's venv (.venv-girder) is missing: run 'bash scripts/setup'",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo():
    """Two demo frames (Z planes 1 and 2) and the truth of the first."""
    first, truth = make_demo(seed=0, shape=SHAPE, n_blobs=40)
    second, _ = make_demo(seed=1, shape=SHAPE, n_blobs=40)
    return first, second, truth


@pytest.fixture(scope="module")
def second_truth():
    return make_demo(seed=1, shape=SHAPE, n_blobs=40)[1]


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    first, second, _ = demo
    folder = tmp_path_factory.mktemp("nimbus")
    image = folder / "frames.ome.tif"
    stack = np.stack([first.data, second.data]).astype(np.uint16)  # ZCYX
    tifffile.imwrite(image, stack, ome=True, metadata={"axes": "ZCYX", "Channel": {"Name": ["Brightfield", "YFP"]}})
    ready = folder / "ready.json"
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([str(SERVER_PYTHON), str(ROOT / "tests" / "nimbus_server" / "serve.py"),
                             "--port", str(_free_port()), "--data", str(folder / "data"), "--image", str(image),
                             "--layers", json.dumps(LAYERS), "--ready", str(ready), "--page-cap", str(PAGE_CAP)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start: {(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)
        info = json.loads(ready.read_text())
        import girder_client

        gc = girder_client.GirderClient(apiUrl=info["apiUrl"])
        gc.setToken(info["token"])
        info["gc"] = gc
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def run_worker(server, request: str, parameters: dict, *, api_url=None, env=None, timeout=600):
    """The worker as the platform runs it: returns (exit status, JSON messages, stderr)."""
    args = [sys.executable, "-m", "fewseg.nimbus", "--apiUrl", api_url or server["apiUrl"], "--token", server["token"],
            "--request", request, "--parameters", json.dumps(parameters)]
    if request != "interface":
        args += ["--datasetId", server["datasetId"]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, messages, done.stderr


def compute_params(server, interface: dict, *, tags=(OUT,), channel=1) -> dict:
    """The compute parameters the platform passes (its runJobRequest's shape)."""
    return {"datasetId": server["datasetId"], "type": "segmentation", "id": "tool", "name": "fewseg",
            "image": IMAGE, "channel": channel, "assignment": {"XY": 0, "Z": 0, "Time": 0},
            "tile": {"XY": 0, "Z": 0, "Time": 0}, "tags": list(tags),
            "connectTo": {"tags": [], "channel": 0}, "workerInterface": interface, "scales": {}}


def post_examples(server, polygons_items: list[dict], tag: str, *, z: int = 0) -> list[dict]:
    records = [{**item, "tags": [tag], "channel": 1, "location": {"XY": 0, "Z": z, "Time": 0},
                "datasetId": server["datasetId"]} for item in polygons_items]
    return server["gc"].post("upenn_annotation/multiple", json=records)


def annotations_tagged(server, tag: str) -> list[dict]:
    """Every annotation with ``tag`` (following the server's afterId cursor)."""
    found, after = [], None
    while True:
        query = {"datasetId": server["datasetId"], "limit": 1000, "sort": "_id", "tags": json.dumps([tag])}
        page = server["gc"].get("upenn_annotation", parameters={**query, **({"afterId": after} if after else {})})
        if not page:
            return [a for a in found if tag in a["tags"]]
        found += page
        after = page[-1]["_id"]


def nimbus_items(annotations) -> list[dict]:
    from fewseg.io.annotations import to_nimbus

    return [to_nimbus(a) for a in annotations]


def assert_protocol(messages):
    for m in messages:
        assert set(m) in ({"progress", "title", "info"}, {"warning", "title", "info", "type"},
                          {"error", "title", "info", "type"}), m


# --------------------------------------------------------------------------- interface


def test_interface_posts_the_fields(server):
    code, messages, err = run_worker(server, "interface", {"image": IMAGE})
    assert code == 0, err
    fields = server["gc"].get("worker_interface", parameters={"image": IMAGE})
    assert fields["Training tags"]["type"] == fields["Not these tags"]["type"] == "tags"
    assert {fields[k]["type"] for k in ("Batch XY", "Batch Z", "Batch Time")} == {"text"}
    assert fields["Method"]["items"] == ["classic", "seed", "fast"] and fields["Method"]["default"] == "classic"
    assert "sam1_vit_h" in fields["Model"]["items"]
    defaults = SegmentConfig()
    assert fields["Minimum area"]["default"] == defaults.min_area and fields["Smoothing"]["default"] == defaults.smoothing
    assert fields["Points per side"]["default"] == defaults.points_per_side
    assert all(f.get("tooltip") for f in fields.values())
    assert sorted(f["displayOrder"] for f in fields.values()) == list(range(len(fields)))


# --------------------------------------------------------------------------- compute, classic


def test_compute_classic_uploads_each_frame_and_matches_the_evaluation(server, demo):
    first, _, truth = demo
    train, rest = split_examples(truth, num_train=10, seed=42)
    posted = post_examples(server, nimbus_items(train), TRAIN)
    interface = {"Training tags": [TRAIN], "Batch XY": "", "Batch Z": "1-2", "Batch Time": "", "Method": "classic"}
    log_before = len(server["gc"].get("fewseg_test/log"))

    code, messages, err = run_worker(server, "compute", compute_params(server, interface))

    assert code == 0, err
    assert_protocol(messages)
    assert not [m for m in messages if "error" in m]
    fractions = [m["progress"] for m in messages if "progress" in m]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("Outlining objects" == m.get("title") for m in messages) == 2  # one line per frame
    learning = [m for m in messages if m.get("title") == "Learning from the examples"]
    assert learning[0]["info"].startswith("10 examples")  # both pages of examples (the server pages by 7)
    # one upload per frame, each of one location, with the job's tags
    uploads = server["gc"].get("fewseg_test/log")[log_before:]
    assert [u["locations"] for u in uploads] == [['{"Time": 0, "XY": 0, "Z": 0}'], ['{"Time": 0, "XY": 0, "Z": 1}']]
    assert all(u["tags"] == [OUT] for u in uploads)
    found = annotations_tagged(server, OUT)
    assert sum(u["count"] for u in uploads) == len(found) > 20
    for a in found:
        assert a["shape"] == "polygon" and a["channel"] == 1 and a["datasetId"] == server["datasetId"]
        assert len(a["coordinates"]) >= 3 and a["coordinates"][0] != a["coordinates"][-1]  # open ring
        xs, ys = [p["x"] for p in a["coordinates"]], [p["y"] for p in a["coordinates"]]
        assert 0 <= min(xs) and max(xs) <= SHAPE[1] and 0 <= min(ys) and max(ys) <= SHAPE[0]
    assert {a["location"]["Z"] for a in found} == {0, 1}
    # the examples are not uploaded again, nor changed
    assert len(annotations_tagged(server, TRAIN)) == len(posted)

    # quality: what the worker uploaded for Z 1 (read back in the platform's coordinates)
    # scores against the rest of the truth exactly as fewseg's own fit + predict does
    here = [from_nimbus(a, source="server") for a in found if a["location"]["Z"] == 0]
    worker_scores = score([a.to_mask(SHAPE) for a in here], [a.to_mask(SHAPE) for a in rest], SHAPE)
    config = SegmentConfig()
    model = make_segmenter(config).fit(first, train)
    reference = [a.to_mask(SHAPE) for a in model.predict(first, exclude=train).annotations()]
    reference_scores = score(reference, [a.to_mask(SHAPE) for a in rest], SHAPE)
    assert worker_scores.as_dict() == reference_scores.as_dict()
    # and equal to what `fewseg evaluate` gives on the same split (it scores the pixel masks
    # before they become polygons; on this frame the polygons rasterise back to them)
    evaluation = run_evaluation(first, truth, config=config, num_train=10, seed=42).metrics
    assert {k: evaluation[k] for k in ("precision", "recall", "f1", "mean_iou", "n_pred", "n_truth")} == {
        k: worker_scores.as_dict()[k] for k in ("precision", "recall", "f1", "mean_iou", "n_pred", "n_truth")}
    assert worker_scores.f1 > 0.85


def test_compute_learns_from_point_annotations_as_clicks(server, demo):
    """Points tagged as examples are clicks: the worker outlines the clicked objects and
    learns from them, as `fewseg evaluate --clicks` does on the same split."""
    from fewseg.evaluate import as_clicks
    from fewseg.objects import Annotation

    first, _, truth = demo
    train, rest = split_examples(truth, num_train=10, seed=7)
    clicks = as_clicks([a.to_mask(SHAPE) for a in train], seed=7)  # centroid + a seeded offset, as --clicks
    posted = post_examples(server, nimbus_items([Annotation(point=p) for p in clicks]), "clicked blob")
    assert {p["shape"] for p in posted} == {"point"}
    interface = {"Training tags": ["clicked blob"], "Method": "classic"}

    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=["from clicks"]))

    assert code == 0, err
    assert not [m for m in messages if "error" in m or "warning" in m], messages
    learning = [m for m in messages if m.get("title") == "Learning from the examples"]
    assert learning[0]["info"].startswith("10 examples")
    found = [from_nimbus(a, source="server") for a in annotations_tagged(server, "from clicks")]
    assert found and all(a.polygon is not None and a.location == Location() for a in found)
    assert len(annotations_tagged(server, "clicked blob")) == 10  # the clicks are left as they were
    worker_scores = score([a.to_mask(SHAPE) for a in found], [a.to_mask(SHAPE) for a in rest], SHAPE)
    evaluation = run_evaluation(first, truth, config=SegmentConfig(), num_train=10, seed=7, clicks=True).metrics
    assert {k: evaluation[k] for k in ("precision", "recall", "f1", "mean_iou", "n_pred", "n_truth")} == {
        k: worker_scores.as_dict()[k] for k in ("precision", "recall", "f1", "mean_iou", "n_pred", "n_truth")}
    assert worker_scores.f1 > 0.8


# --------------------------------------------------------------------------- what a user can get wrong


def _degenerate_items():
    line = [{"x": 10.0, "y": 10.0}, {"x": 20.0, "y": 20.0}, {"x": 30.0, "y": 30.0}]
    return [{"shape": "polygon", "coordinates": line}, {"shape": "polygon", "coordinates": line[:2]}]


@pytest.mark.parametrize("case, interface, expected", [
    ("no tag", {"Training tags": []}, "no training tag chosen"),
    ("no annotation", {"Training tags": ["nothing has this"]}, "no polygon or point in this dataset carries 'nothing has this'"),
    ("degenerate", {"Training tags": ["flat"]}, "every polygon or point tagged 'flat' is degenerate"),
    ("bad batch", {"Training tags": [TRAIN], "Batch Z": "2-5"}, "Batch Z: range '2-5' is outside 1-2"),
    ("bad batch text", {"Training tags": [TRAIN], "Batch XY": "first"}, "Batch XY: expected ranges like"),
    ("model not in image", {"Training tags": [TRAIN], "Method": "fast", "Model": "sam1_vit_h"},
     "the model 'sam1_vit_h' is not in this worker's image"),
    ("bad number", {"Training tags": [TRAIN], "Minimum area": -5}, "Minimum area: expected a value in"),
])
def test_user_errors_give_one_error_line_and_a_failed_exit(server, case, interface, expected, tmp_path):
    if case == "degenerate" and not annotations_tagged(server, "flat"):
        post_examples(server, _degenerate_items(), "flat")
    before = len(annotations_tagged(server, OUT))

    code, messages, err = run_worker(server, "compute", compute_params(server, interface),
                                     env={"FEWSEG_CACHE": str(tmp_path)})  # an image without checkpoints

    assert code == 1, err
    assert_protocol(messages)
    errors = [m for m in messages if "error" in m]
    assert len(errors) == 1 and expected in errors[0]["error"], messages
    assert messages[-1] is errors[0]
    assert len(annotations_tagged(server, OUT)) == before  # nothing uploaded


def test_unreachable_server(server):
    port = _free_port()
    code, messages, _ = run_worker(server, "compute", compute_params(server, {"Training tags": [TRAIN]}),
                                   api_url=f"http://127.0.0.1:{port}/api/v1")
    assert code == 1
    assert len(messages) == 1 and "cannot reach the NimbusImage server" in messages[0]["error"]


def test_bad_parameters_json(server):
    done = subprocess.run([sys.executable, "-m", "fewseg.nimbus", "--apiUrl", server["apiUrl"], "--token", "x",
                           "--request", "compute", "--parameters", "{not json"], capture_output=True, text=True)
    assert done.returncode == 1 and "is not a JSON object" in json.loads(done.stdout)["error"]


# --------------------------------------------------------------------------- SAM methods, tiny trained SAM1


@pytest.mark.sam
@pytest.mark.slow
@pytest.mark.parametrize("method, extra", [("fast", {"Max tiles": 1}), ("seed", {"Points per side": 6, "Predicted IoU threshold": 0, "Stability threshold": 0})])
def test_compute_with_sam_methods(server, method, extra):
    pytest.importorskip("segment_anything")
    checkpoint = ROOT / "tests" / "data" / "tiny_sam1.pt"
    tag = f"fewseg {method}"
    interface = {"Training tags": [TRAIN], "Method": method, "Model": "sam1_vit_b", "Device": "cpu",
                 "Minimum area": 5, **extra}
    if not annotations_tagged(server, TRAIN):
        truth = make_demo(seed=0, shape=SHAPE, n_blobs=40)[1]
        post_examples(server, nimbus_items(split_examples(truth, num_train=10, seed=42)[0]), TRAIN)

    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=[tag]),
                                     env={"FEWSEG_NIMBUS_CHECKPOINTS": f"sam1_vit_b={checkpoint}"})

    assert code == 0, err + json.dumps(messages)
    assert_protocol(messages)
    found = annotations_tagged(server, tag)
    assert found and all(a["location"] == {"XY": 0, "Z": 0, "Time": 0} for a in found)
    polygons = [from_nimbus(a, source="server") for a in found]
    assert all(p.to_mask(SHAPE).area >= 5 for p in polygons)


# --------------------------------------------------------------------------- the seed's experiment on a dataset


def test_evaluate_reads_a_dataset_and_keeps_the_token_out(server, demo, tmp_path):
    first, _, truth = demo
    post_examples(server, nimbus_items(truth), "YFP truth")
    out = tmp_path / "metrics.json"
    env = {k: v for k, v in os.environ.items() if k not in ("NI_API_KEY", "NI_TOKEN", "NI_API_URL")}
    args = [sys.executable, "-m", "fewseg.cli", "evaluate", f"nimbus:{server['datasetId']}", "--api-url",
            server["apiUrl"], "--tag", "YFP truth", "--num-train", "10", "--seed", "42", "--json", str(out)]

    refused = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    done = subprocess.run(args, capture_output=True, text=True, env={**env, "NI_TOKEN": server["token"]}, timeout=300)

    assert refused.returncode == 2 and "NI_TOKEN: set NI_TOKEN" in refused.stderr
    assert done.returncode == 0, done.stderr
    metrics = json.loads(out.read_text())
    local = run_evaluation(first, truth, config=SegmentConfig(), num_train=10, seed=42).metrics
    for key in ("precision", "recall", "f1", "mean_iou", "n_train", "n_truth", "n_pred"):
        assert metrics[key] == local[key], key
    for text in (done.stdout, done.stderr, out.read_text()):
        assert server["token"] not in text


def test_sam_methods_see_the_frame_as_the_platform_shows_it(server):
    """The worker's RGB (fewseg.render from the dataset's layers) equals the SDK's app-like composite."""
    from fewseg.nimbus.server import DatasetSource
    from fewseg.render import to_rgb

    source = DatasetSource(server["apiUrl"], server["token"], server["datasetId"])
    frame = source.read(Location())
    render = source.render_config(frame)
    assert [s.color for s in render.styles] == ["#808080", "#FFFF00"]
    assert render.styles[1].black == frame.data[1].min() and render.styles[1].white == frame.data[1].max()
    ours = to_rgb(frame, render).astype(int)
    platform = source.dataset.images.get_composite(xy=0, z=0, time=0, dtype="uint8").astype(int)
    assert ours.shape == platform.shape
    assert np.abs(ours - platform).max() <= 1  # rounding (ours) vs truncation (the SDK's uint8)


def test_examples_on_two_frames_are_all_learned_from_and_never_outlined_again(server, demo, second_truth):
    _, _, truth = demo
    post_examples(server, nimbus_items(truth[:6]), "two places", z=0)
    post_examples(server, nimbus_items(second_truth[:3]), "two places", z=1)
    interface = {"Training tags": ["two places"], "Batch Z": "all"}
    params = compute_params(server, interface, tags=["two places out"])
    params["connectTo"] = {"tags": ["two places"], "channel": 1}
    log_before = len(server["gc"].get("fewseg_test/log"))

    code, messages, err = run_worker(server, "compute", params)

    assert code == 0, err
    assert not [m for m in messages if "warning" in m], messages  # issue 20: every example is learned from
    learning = [m for m in messages if m.get("title") == "Learning from the examples"]
    assert learning[0]["info"].startswith("9 examples")
    found = annotations_tagged(server, "two places out")
    at_z1 = [from_nimbus(a, source="server").to_mask(SHAPE) for a in found if a["location"]["Z"] == 1]
    assert at_z1
    for example in second_truth[:3]:
        mask = example.to_mask(SHAPE)
        assert max(mask.iou(m) for m in at_z1) < SegmentConfig().iou  # not outlined again
    connected = [e for e in server["gc"].get("fewseg_test/log")[log_before:] if "connectTo" in e]
    assert len(connected) == 2 and connected[0]["connectTo"]["tags"] == ["two places"]


def test_upload_is_chunked(server, demo):
    from fewseg.nimbus.server import DatasetSource

    _, _, truth = demo
    source = DatasetSource(server["apiUrl"], server["token"], server["datasetId"])
    log_before = len(server["gc"].get("fewseg_test/log"))

    n = source.upload(truth[:12], tags=["chunked"], channel=0, chunk=5)

    assert n == 12
    assert [e["count"] for e in server["gc"].get("fewseg_test/log")[log_before:]] == [5, 5, 2]
    back = [from_nimbus(a, source="server") for a in annotations_tagged(server, "chunked")]
    for before, after in zip(truth[:12], back):
        np.testing.assert_allclose(after.polygon, before.polygon, atol=1e-9)  # pixel-corner there and back


@pytest.mark.sam
@pytest.mark.slow
def test_sweep_reads_a_dataset(server, demo, tmp_path):
    pytest.importorskip("segment_anything")
    _, _, truth = demo
    post_examples(server, nimbus_items(truth[:16]), "YFP sweep")
    checkpoint = ROOT / "tests" / "data" / "tiny_sam1.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("NI_API_KEY", "NI_API_URL")}
    out = tmp_path / "table"

    done = subprocess.run([sys.executable, "-m", "fewseg.cli", "sweep", f"nimbus:{server['datasetId']}", "--api-url",
                           server["apiUrl"], "--tag", "YFP sweep", "--models", "sam1_vit_b", "--checkpoints",
                           f"sam1_vit_b={checkpoint}", "--pts", "2", "--device", "cpu", "--num-train", "10",
                           "--seed", "42", "--out", str(out)],
                          capture_output=True, text=True, env={**env, "NI_TOKEN": server["token"]}, timeout=600)

    assert done.returncode == 0, done.stderr
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("sam1_vit_b,2,")
    assert server["token"] not in done.stdout + done.stderr + out.with_suffix(".md").read_text()


# --------------------------------------------------------------------------- malformed parameters and server answers
# (issue 13: every one gives one JSON error line and exit status 1, no traceback, nothing uploaded)


def run_worker_here(server, capsys, request: str, parameters, *, api_url=None, dataset=True):
    """The worker's ``main`` in this process (no interpreter start per case): (status, messages, stderr)."""
    from fewseg.nimbus.worker import main

    args = ["--apiUrl", api_url or server["apiUrl"], "--token", server["token"], "--request", request,
            "--parameters", parameters if isinstance(parameters, str) else json.dumps(parameters)]
    if dataset:
        args += ["--datasetId", server["datasetId"]]
    code = main(args)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def assert_one_error(code, messages, err, expected):
    assert code == 1, messages
    assert_protocol(messages)
    errors = [m for m in messages if "error" in m]
    assert len(errors) == 1 and messages[-1] is errors[0], messages
    assert expected in errors[0]["error"], errors[0]
    assert "Traceback" not in err and err == "", err


MALFORMED_PARAMETERS = {
    # field: (what replaces it in compute_params, a piece of the one error line)
    "workerInterface=list": ({"workerInterface": [TRAIN]}, "workerInterface: expected the tool's fields"),
    "Training tags=number": ({"workerInterface": {"Training tags": 5}}, "Training tags: expected a list of tags"),
    "Minimum area=NaN": ({"Minimum area": float("nan")}, "Minimum area: expected a value in"),
    "Minimum area=inf": ({"Minimum area": float("inf")}, "Minimum area: expected a value in"),
    "Minimum area='nan'": ({"Minimum area": "nan"}, "Minimum area: expected a value in"),
    "Minimum area=true": ({"Minimum area": True}, "Minimum area: expected a number"),
    "Minimum area=[1]": ({"Minimum area": [1]}, "Minimum area: expected a number"),
    "Minimum area=400 digits": ({"Minimum area": 10**400}, "Minimum area: expected a number"),
    "Similarity=2": ({"Similarity": 2}, "Similarity: expected a value in 0..1"),
    "Max tiles=0": ({"Max tiles": 0}, "Max tiles: expected a value in 1..64"),
    "areas crossed": ({"Minimum area": 100, "Maximum area": 50}, "Maximum area: 50 is below the minimum area 100"),
    "Batch XY=list": ({"Batch XY": [1, 2]}, "Batch XY: expected text like"),
    "Batch Z=5000 digits": ({"Batch Z": "9" * 5000}, "Batch Z: expected ranges like"),
    "Batch Z=backwards": ({"Batch Z": "2-1"}, "Batch Z: range '2-1' runs backwards"),
    "Batch Time=0": ({"Batch Time": "0"}, "Batch Time: range '0' is outside 1-1"),
    "Method=unknown": ({"Method": "magic"}, "Method: expected one of classic, seed, fast"),
    "Method=list": ({"Method": ["classic"]}, "Method: expected one of"),
    "Model=unknown": ({"Method": "fast", "Model": "sam9_huge"}, "unknown model 'sam9_huge'"),
    "Model=number": ({"Method": "fast", "Model": 7}, "Model: expected a model name"),
    "Device=gpu": ({"Device": "gpu"}, "Device: expected one of auto, cpu, cuda"),
    "tile=text": ({"tile": "here"}, "tile: expected {'XY': i"),
    "tile.Z=-1": ({"tile": {"XY": 0, "Z": -1, "Time": 0}}, "tile.Z: expected a 0-based index"),
    "tile.Z=NaN": ({"tile": {"XY": 0, "Z": float("nan"), "Time": 0}}, "tile.Z: expected a 0-based index"),
    "tile.Z=1.5": ({"tile": {"XY": 0, "Z": 1.5, "Time": 0}}, "tile.Z: expected a 0-based index"),
    "tile.Z outside": ({"tile": {"XY": 0, "Z": 7, "Time": 0}}, "tile.Z: 7 is outside the dataset's 2"),
    "tags=text": ({"tags": "fewseg blob"}, "tags: expected a list of tags"),
    "tags=[1]": ({"tags": [1]}, "tags: expected a list of tags"),
    "channel=-1": ({"channel": -1}, "channel: expected a 0-based index"),
    "channel outside": ({"channel": 9}, "channel: 9 is outside the dataset's 2 channels"),
    "connectTo=list": ({"connectTo": ["x"]}, "connectTo: expected a JSON object"),
    "datasetId=number": ({"datasetId": 12}, "datasetId: expected the dataset's folder id"),
}
_INTERFACE_FIELDS = {"Minimum area", "Similarity", "Max tiles", "Maximum area", "Batch XY", "Batch Z", "Batch Time",
                     "Method", "Model", "Device"}


@pytest.mark.parametrize("name", sorted(MALFORMED_PARAMETERS))
def test_malformed_parameters_give_one_error_line(server, capsys, tmp_path, monkeypatch, name):
    change, expected = MALFORMED_PARAMETERS[name]
    monkeypatch.setenv("FEWSEG_CACHE", str(tmp_path))  # an image without checkpoints
    params = compute_params(server, {"Training tags": [TRAIN]})
    for key, value in change.items():
        if key in _INTERFACE_FIELDS:
            params["workerInterface"][key] = value
        else:
            params[key] = value
    before = len(annotations_tagged(server, OUT))
    text = json.dumps(params)  # NaN / Infinity as the platform's JavaScript would never send them, but a script might
    code, messages, err = run_worker_here(server, capsys, "compute", text, dataset=name != "datasetId=number")
    assert_one_error(code, messages, err, expected)
    assert len(annotations_tagged(server, OUT)) == before


@pytest.mark.parametrize("text, expected", [
    ("[1, 2]", "is not a JSON object"), ("", "is not a JSON object"), ("[" * 5000, "is not a JSON object"),
    ('{"image": 5}', "must name the worker image"),
])
def test_malformed_parameters_text(server, capsys, text, expected):
    code, messages, err = run_worker_here(server, capsys, "interface", text, dataset=False)
    assert_one_error(code, messages, err, expected)


class GarbleProxy:
    """A real HTTP proxy in front of the test server that answers some requests with garbage.

    ``garble(method, path)`` returns the bytes to answer instead (status 200), or None to
    pass the request on unchanged.
    """

    def __init__(self, target: str, garble):
        import http.server
        import threading
        from urllib.parse import urlsplit

        import requests

        origin = "{0.scheme}://{0.netloc}".format(urlsplit(target))
        session = requests.Session()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = garble(self.command, self.path)
                if answer is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    got = session.request(self.command, origin + self.path, data=body, headers=headers)
                    status, answer = got.status_code, got.content
                    kind = got.headers.get("Content-Type", "application/octet-stream")
                else:
                    status, kind = 200, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = target.replace(origin, f"http://127.0.0.1:{self.httpd.server_address[1]}")
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _pickled(value) -> bytes:
    import pickle

    return pickle.dumps(value, protocol=5)


GARBAGE_ANSWERS = {
    # what is garbled: (garble(method, path) -> bytes or None, a piece of the one error line)
    "everything is HTML": (lambda m, p: b"<html>It works!</html>", "answered the request for dataset"),
    "tile is not a pickle": (lambda m, p: b"garbage" if "tiles/region" in p else None,
                             "answered the tile request for XY 1, Z 1, Time 1 with something fewseg cannot read"),
    "tile is the wrong shape": (lambda m, p: _pickled(np.zeros((3, 5))) if "tiles/region" in p else None,
                                "channel 0 is (3, 5), not the dataset's (256, 256)"),
    "tile is text": (lambda m, p: _pickled("no image") if "tiles/region" in p else None,
                     "with something fewseg cannot read"),
    "tile holds NaN": (lambda m, p: _pickled(np.full(SHAPE, np.nan)) if "tiles/region" in p else None,
                       "holds NaN or infinite values"),
    "annotations are not JSON": (lambda m, p: b"{]" if m == "GET" and "upenn_annotation?" in p else None,
                                 "answered the annotation request with something fewseg cannot read"),
    "annotations have broken coordinates": (
        lambda m, p: json.dumps([{"_id": "a1", "shape": "polygon", "tags": [TRAIN], "channel": 1,
                                  "location": {"XY": 0, "Z": 0, "Time": 0}, "coordinates": [{"x": "left"}] * 3},
                                 {"_id": "a2", "shape": "polygon", "tags": [TRAIN], "channel": 1,
                                  "location": {"XY": 0, "Z": 0, "Time": 0}, "coordinates": 7}]).encode()
        if m == "GET" and "upenn_annotation?" in p and "afterId" not in p else None,
        "answered the annotation request with something fewseg cannot read (ValidationError"),
}


def ensure_examples(server):
    """Examples tagged TRAIN on Z 1 (posted by the compute test when the whole module runs)."""
    if not annotations_tagged(server, TRAIN):
        post_examples(server, nimbus_items(make_demo(seed=0, shape=SHAPE, n_blobs=40)[1][:10]), TRAIN)


@pytest.mark.parametrize("name", sorted(GARBAGE_ANSWERS))
def test_malformed_server_answers_give_one_error_line(server, capsys, tmp_path, name):
    garble, expected = GARBAGE_ANSWERS[name]
    ensure_examples(server)
    before = len(annotations_tagged(server, OUT))
    with GarbleProxy(server["apiUrl"], garble) as proxy:
        code, messages, err = run_worker_here(server, capsys, "compute",
                                              compute_params(server, {"Training tags": [TRAIN]}), api_url=proxy.api_url)
    assert_one_error(code, messages, err, expected)
    assert len(annotations_tagged(server, OUT)) == before  # nothing half-uploaded


@pytest.mark.parametrize("tags", [(), (OUT,)])
def test_a_folder_answered_garbled_on_the_job_s_own_read_gives_one_error_line(server, capsys, tags):
    """The job reads the dataset folder again for its uploads record and the user's access;
    a server that answers that read with something else than a document ends the job in one
    line, whether or not the job has output tags (the record is read only with them)."""
    ensure_examples(server)
    path, seen = f"/folder/{server['datasetId']}", []

    def garble(method, full):
        if method == "GET" and full.split("?")[0].endswith(path):
            seen.append(full)
            return b"[]" if len(seen) > 1 else None  # the client's own first read passes
        return None

    with GarbleProxy(server["apiUrl"], garble) as proxy:
        code, messages, err = run_worker_here(server, capsys, "compute",
                                              compute_params(server, {"Training tags": [TRAIN]}, tags=tags),
                                              api_url=proxy.api_url)
    assert len(seen) >= 2
    assert_one_error(code, messages, err, "answered the request for dataset")
    assert "folder with something fewseg cannot read" in messages[-1]["error"]


def test_a_later_frame_unreadable_leaves_whole_frames_and_says_which(server, capsys, tmp_path):
    """Batch Z 1-2 where only Z 2's tiles are garbage: Z 1 (the fit frame) is uploaded whole,
    a warning says so, then one error line; nothing of Z 2 is on the server."""
    tag = "partly done"
    ensure_examples(server)

    def garble(method, path):
        if "tiles/region" in path and any(f"frame={i}&" in path or path.endswith(f"frame={i}") for i in (2, 3)):
            return b"garbage"
        return None

    with GarbleProxy(server["apiUrl"], garble) as proxy:
        code, messages, err = run_worker_here(server, capsys, "compute", compute_params(
            server, {"Training tags": [TRAIN], "Batch Z": "1-2"}, tags=(tag,)), api_url=proxy.api_url)
    assert_one_error(code, messages, err, "answered the tile request for XY 1, Z 2, Time 1")
    [warning] = [m for m in messages if m.get("title") == "Partly done"]
    assert warning["warning"].startswith("the outlines of the first 1 of 2 frame(s)")
    uploaded = annotations_tagged(server, tag)
    assert uploaded and {a["location"]["Z"] for a in uploaded} == {0}
