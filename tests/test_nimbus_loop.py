"""The correction loop in NimbusImage: tag examples, run, tag what is wrong "not", run again; the preview.

Against the test server (a real Girder 3.2 with the platform's endpoints, ``tests/nimbus_server``),
the worker run as the platform runs it (:func:`test_nimbus_worker.run_worker`).
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from fewseg.config import SegmentConfig
from fewseg.io.annotations import from_nimbus
from fewseg.objects import Annotation
from test_nimbus_worker import (  # noqa: F401  (fixtures: the same kind of running server)
    IMAGE,
    SHAPE,
    annotations_tagged,
    assert_protocol,
    compute_params,
    demo,
    nimbus_items,
    post_examples,
    run_worker,
    second_truth,
    server,
)

ROOT = Path(__file__).resolve().parents[1]


def uploads_since(server, before: int) -> list[dict]:
    return server["gc"].get("fewseg_test/log")[before:]


def log_length(server) -> int:
    return len(server["gc"].get("fewseg_test/log"))


def masks_tagged(server, tag: str, *, z: int = 0) -> list:
    return [from_nimbus(a, source="server").to_mask(SHAPE) for a in annotations_tagged(server, tag)
            if a["location"]["Z"] == z]


def done_line(messages) -> dict:
    assert_protocol(messages)
    assert not [m for m in messages if "error" in m], messages
    return messages[-1]


# --------------------------------------------------------------------------- "Not these tags"


def test_objects_tagged_not_are_learned_from_and_never_returned(server, demo):
    """Run; re-tag three found objects "not" (two with the "not" tag instead of the run's,
    one with it added) and click a point on a fourth with it; run again: none of the four
    comes back, the worker says it learned from them, and a rerun with the first run's tag
    adds nothing already there."""
    _, _, truth = demo
    gc = server["gc"]
    post_examples(server, nimbus_items(truth[:10]), "loop example")
    interface = {"Training tags": ["loop example"], "Not these tags": ["loop not"]}

    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=["loop run 1"]))

    assert code == 0, err
    warned = [m for m in messages if m.get("title") == "No negatives"]
    assert len(warned) == 1 and "no polygon or point carries 'loop not' yet" in warned[0]["warning"]
    first = annotations_tagged(server, "loop run 1")
    assert len(first) > 20
    wrong = [from_nimbus(a, source="server") for a in first[:4]]
    for a, tags in zip(first[:3], (["loop not"], ["loop not"], ["loop run 1", "loop not"])):
        gc.put(f"upenn_annotation/{a['_id']}", json={"tags": tags})  # the user re-tags it in the app
    click = Annotation(point=np.argwhere(wrong[3].to_mask(SHAPE).to_full(SHAPE)).mean(axis=0) + 0.5)
    post_examples(server, nimbus_items([click]), "loop not")  # a point on the fourth

    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=["loop run 2"]))

    assert code == 0, err
    assert not [m for m in messages if "warning" in m], messages
    learning = next(m for m in messages if m.get("title") == "Learning from the examples")
    assert learning["info"].startswith("10 examples and 4 not wanted")
    assert "and 4 not wanted" in done_line(messages)["info"]
    second = masks_tagged(server, "loop run 2")
    assert second
    for w in wrong:
        mask = w.to_mask(SHAPE)
        assert max(mask.iou(m) for m in second) < SegmentConfig().iou  # not returned

    kept = annotations_tagged(server, "loop run 1")  # the first run's results, less the two re-tagged
    assert len(kept) == len(first) - 2
    before = log_length(server)
    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=["loop run 1"]))

    assert code == 0, err
    added = sum(u["count"] for u in uploads_since(server, before))
    assert added < len(first) // 2  # the objects already there are not uploaded again
    again = masks_tagged(server, "loop run 1")
    old = [from_nimbus(a, source="server").to_mask(SHAPE) for a in kept]
    assert len(again) == len(kept) + added
    for m in again[len(kept):]:  # what the rerun added re-discovers nothing that was there
        assert max(m.iou(o) for o in old) < SegmentConfig().iou


@pytest.mark.parametrize("case, interface, posts, expected", [
    ("tagged both ways", {"Training tags": ["both ex"], "Not these tags": ["both not"]}, "both",
     "carries the training tag 'both ex' and the not tag 'both not'"),
    ("same tag in both fields", {"Training tags": ["same"], "Not these tags": ["same"]}, None,
     "Not these tags: 'same' is also a training tag"),
    ("not tag is a list of numbers", {"Training tags": ["x"], "Not these tags": [3]}, None,
     "Not these tags: expected a list of tags"),
])
def test_bad_negatives_give_one_error_line(server, demo, case, interface, posts, expected):
    _, _, truth = demo
    if posts == "both":
        post_examples(server, nimbus_items(truth[:8]), "both ex")
        item = {**nimbus_items(truth[8:9])[0]}
        records = post_examples(server, [item], "both ex")
        server["gc"].post("upenn_annotation/multiple", json=[{**{k: v for k, v in records[0].items() if k != "_id"},
                                                               "tags": ["both ex", "both not"]}])
    before = log_length(server)

    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=["never"]))

    assert code == 1, err
    assert_protocol(messages)
    errors = [m for m in messages if "error" in m]
    assert len(errors) == 1 and expected in errors[0]["error"] and messages[-1] is errors[0], messages
    assert uploads_since(server, before) == []


def test_examples_and_negatives_on_several_frames_are_all_learned_from(server, demo, second_truth):
    """Examples on Z 1 and Z 2 and a negative on Z 2: one fit learns from all of them (no
    warning), and nothing is outlined again where it was drawn."""
    _, _, truth = demo
    post_examples(server, nimbus_items(truth[:6]), "two frames", z=0)
    post_examples(server, nimbus_items(second_truth[:3]), "two frames", z=1)
    post_examples(server, nimbus_items(second_truth[3:4]), "two frames not", z=1)
    interface = {"Training tags": ["two frames"], "Not these tags": ["two frames not"], "Batch Z": "all"}

    code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=["two frames out"]))

    assert code == 0, err
    assert not [m for m in messages if "warning" in m], messages
    reading = next(m for m in messages if m.get("title") == "Reading the frames")
    assert reading["info"] == "XY 1, Z 1, Time 1; XY 1, Z 2, Time 1"
    learning = next(m for m in messages if m.get("title") == "Learning from the examples")
    assert learning["info"].startswith("9 examples and 1 not wanted")
    at_z2 = masks_tagged(server, "two frames out", z=1)
    assert at_z2
    for drawn in second_truth[:4]:
        assert max(drawn.to_mask(SHAPE).iou(m) for m in at_z2) < SegmentConfig().iou


# --------------------------------------------------------------------------- deleted results


def recorded(server) -> dict:
    """fewseg's record of its uploads in the dataset folder's metadata: the pixels by tags (every location)."""
    from fewseg.nimbus.deleted import KEY

    meta = server["gc"].get(f"folder/{server['datasetId']}")["meta"]
    found = {}
    for entry in meta.get(KEY, {}).get("entries", []):
        found.setdefault(tuple(entry["tags"]), []).extend(entry["pixels"])
    return found


def first_run(server, demo, name: str) -> tuple[dict, list[dict]]:
    """Ten examples tagged "NAME example", a run tagging its results "NAME run": its parameters and results."""
    post_examples(server, nimbus_items(demo[2][:10]), f"{name} example")
    params = compute_params(server, {"Training tags": [f"{name} example"]}, tags=[f"{name} run"])
    code, messages, err = run_worker(server, "compute", params)
    assert code == 0, err
    assert "deleted" not in done_line(messages)["info"]
    return params, annotations_tagged(server, f"{name} run")


def test_results_the_user_deleted_are_learned_from_and_never_returned(server, demo):
    """Run; delete two results in the app; run again (twice): the two are not uploaded
    again, nothing over them is returned, and each run says it learned from 2 deletions."""
    gc = server["gc"]
    params, first = first_run(server, demo, "forget")
    pixels = recorded(server)[("forget run",)]
    assert len(pixels) == len(first) > 20
    for a in first:  # one recorded pixel lies in each result
        inside = from_nimbus(a, source="server").to_mask(SHAPE).to_full(SHAPE)
        assert sum(inside[tuple(p)] for p in pixels) == 1
    gone = [from_nimbus(a, source="server").to_mask(SHAPE) for a in first[:2]]
    for a in first[:2]:
        gc.delete(f"upenn_annotation/{a['_id']}")  # the user deletes two results in the app

    for _ in range(2):  # the deletions are learned from on every later run, not only the next
        before = log_length(server)
        code, messages, err = run_worker(server, "compute", params)

        assert code == 0, err
        assert not [m for m in messages if "warning" in m], messages
        said = [m for m in messages if m.get("title") == "Deleted results"]
        assert len(said) == 1 and said[0]["info"].startswith("2 result(s) deleted"), messages
        assert "and 2 deleted result(s)" in done_line(messages)["info"]
        kept = re.search(r"; (\d+) found by earlier runs with these tags are left as they are$", done_line(messages)["info"])
        assert kept and int(kept.group(1)) == len(masks_tagged(server, "forget run")) - sum(
            u["count"] for u in uploads_since(server, before)), done_line(messages)
        learning = next(m for m in messages if m.get("title") == "Learning from the examples")
        assert learning["info"].startswith("10 examples and 2 not wanted")
        now = masks_tagged(server, "forget run")
        assert len(now) == len(first) - 2 + sum(u["count"] for u in uploads_since(server, before))
        for g in gone:  # not uploaded again, and nothing over them
            assert max(g.iou(m) for m in now) < SegmentConfig().iou
            assert not any(m.to_full(SHAPE)[g.to_full(SHAPE)].any() for m in now)

    code, messages, err = run_worker(server, "preview", params)  # the preview learns from them too

    assert code == 0, err
    assert [m for m in messages if m.get("title") == "Deleted results"]
    said = done_line(messages)["info"]
    m = re.fullmatch(r"(\d+) new objects on the current tile from 10 examples and 2 not wanted; (\d+) found there by "
                     r"earlier runs with these tags are left as they are \(not drawn\)", said)
    assert m, said  # what earlier runs found is counted, not drawn: the overlay is what a run would add
    assert int(m.group(2)) == len(masks_tagged(server, "forget run")) > 20


def test_a_deleted_result_drawn_again_as_an_example_is_an_example(server, demo):
    gc = server["gc"]
    params, first = first_run(server, demo, "redraw")
    gc.delete(f"upenn_annotation/{first[0]['_id']}")
    gc.delete(f"upenn_annotation/{first[1]['_id']}")
    redrawn = {k: v for k, v in first[0].items() if k not in ("_id", "tags")}
    post_examples(server, [redrawn], "redraw example")  # the user draws the first again, as an example

    code, messages, err = run_worker(server, "compute", params)

    assert code == 0, err
    said = [m for m in messages if m.get("title") == "Deleted results"]
    assert len(said) == 1 and said[0]["info"].startswith("1 result(s) deleted"), messages
    learning = next(m for m in messages if m.get("title") == "Learning from the examples")
    assert learning["info"].startswith("11 examples and 1 not wanted")
    assert "and 1 deleted result(s)" in done_line(messages)["info"]


def test_a_writer_s_run_records_its_uploads(server, demo):
    """The job runs with the user's token: WRITE on the dataset (what uploading needs) is enough."""
    from test_nimbus_server import new_user

    writer, _ = new_user(server, level=1)
    post_examples(server, nimbus_items(demo[2][:10]), "writer rec example")
    params = compute_params(server, {"Training tags": ["writer rec example"]}, tags=["writer rec run"])

    code, messages, err = run_worker({**server, "token": writer.token}, "compute", params)

    assert code == 0, err
    assert not [m for m in messages if "warning" in m], messages
    assert len(recorded(server)[("writer rec run",)]) == len(annotations_tagged(server, "writer rec run")) > 20


def test_the_record_of_uploads_is_bounded_and_says_so_once(server, demo, capsys, monkeypatch):
    from fewseg.nimbus import deleted
    from test_nimbus_worker import run_worker_here

    _, _, truth = demo
    post_examples(server, nimbus_items(truth[:10]), "bound example")
    total = sum(len(p) for p in recorded(server).values())
    monkeypatch.setattr(deleted, "LIMIT", total + 5)
    params = compute_params(server, {"Training tags": ["bound example"], "Batch Z": "all"}, tags=["bound run"])

    code, messages, err = run_worker_here(server, capsys, "compute", params)

    assert code == 0, err
    warned = [m for m in messages if "warning" in m]
    assert len(warned) == 1 and warned[0]["title"] == "Record full", messages  # two frames, one warning
    assert "deleting them will not teach fewseg anything" in warned[0]["warning"]
    assert len(annotations_tagged(server, "bound run")) > 20  # everything is uploaded
    assert len(recorded(server)[("bound run",)]) == 5
    assert sum(len(p) for p in recorded(server).values()) == total + 5


def test_a_record_that_is_not_fewsegs_is_neither_used_nor_overwritten(server, demo, capsys):
    from fewseg.nimbus.deleted import KEY
    from test_nimbus_worker import run_worker_here

    _, _, truth = demo
    gc = server["gc"]
    folder = f"folder/{server['datasetId']}"
    kept = gc.get(folder)["meta"].get(KEY)
    post_examples(server, nimbus_items(truth[:10]), "odd example")
    gc.put(f"{folder}/metadata", json={KEY: {"version": 7}})
    try:
        code, messages, err = run_worker_here(server, capsys, "compute", compute_params(
            server, {"Training tags": ["odd example"]}, tags=["odd run"]))

        assert code == 0, err
        warned = [m for m in messages if "warning" in m]
        assert len(warned) == 1 and warned[0]["title"] == "Record unreadable", messages
        assert f"the dataset's metadata '{KEY}' is not fewseg's record" in warned[0]["warning"]
        assert gc.get(folder)["meta"][KEY] == {"version": 7}
    finally:
        gc.put(f"{folder}/metadata", json={KEY: kept})


# --------------------------------------------------------------------------- the preview


def decode_preview(server, image: str = IMAGE) -> np.ndarray:
    import imageio.v3 as iio

    stored = server["gc"].get("worker_preview", parameters={"image": image})
    url = stored["preview"]["image"]
    assert url.startswith("data:image/png;base64,")
    data = base64.b64decode(url.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return iio.imread(io.BytesIO(data), extension=".png")


def test_the_preview_draws_what_a_run_finds_on_the_current_tile_and_uploads_nothing(server, demo):
    _, _, truth = demo
    post_examples(server, nimbus_items(truth[:10]), "preview example", z=1)
    interface = {"Training tags": ["preview example"], "Batch Z": "1-2"}
    params = compute_params(server, interface, tags=["preview run"])
    params["tile"] = {"XY": 0, "Z": 1, "Time": 0}
    before = log_length(server)

    code, messages, err = run_worker(server, "preview", params)

    assert code == 0, err
    assert uploads_since(server, before) == []  # a preview uploads nothing
    rgba = decode_preview(server)
    assert rgba.shape == (*SHAPE, 4) and rgba.dtype == np.uint8
    text = server["gc"].get("worker_preview", parameters={"image": IMAGE})["preview"]["text"]
    n = int(re.fullmatch(r"(\d+) objects on the current tile from 10 examples", text).group(1))
    assert done_line(messages)["info"] == text

    code, messages, err = run_worker(server, "compute", params)  # what a run uploads for that tile

    assert code == 0, err
    found = masks_tagged(server, "preview run", z=1)
    assert len(found) == n > 10
    on_objects = np.zeros(SHAPE, bool)
    for m in found:
        on_objects |= m.to_full(SHAPE)
    drawn = rgba[..., 3] > 0
    assert drawn.any() and not (drawn & ~on_objects).any()  # every drawn pixel lies on a found object
    assert all(drawn[m.to_full(SHAPE)].any() for m in found)  # and every found object is drawn
    assert (rgba[..., 3][drawn] == 255).sum() < drawn.sum()  # outlines opaque, insides tinted


def test_a_preview_without_the_image_name_is_one_error_line(server):
    params = compute_params(server, {"Training tags": ["preview example"]})
    params.pop("image")
    code, messages, _ = run_worker(server, "preview", params)
    assert code == 1 and len([m for m in messages if "error" in m]) == 1
    assert "image: the preview is stored for the worker's image" in messages[-1]["error"]


def test_a_preview_by_a_user_who_is_not_an_admin_says_why_it_is_refused(server, demo):
    """NimbusImage stores a worker's preview only for an admin's job (the job runs with the
    user's token): a writer's preview ends in one line saying so, and stores nothing."""
    from test_nimbus_server import new_user

    _, _, truth = demo
    post_examples(server, nimbus_items(truth[:10]), "writer example")
    writer, _ = new_user(server, level=1)
    image = "fewseg/nimbus:writer"
    params = {**compute_params(server, {"Training tags": ["writer example"]}), "image": image}

    code, messages, err = run_worker({**server, "token": writer.token}, "preview", params)

    assert code == 1, err
    errors = [m for m in messages if "error" in m]
    assert len(errors) == 1 and messages[-1] is errors[0], messages
    assert "the server refused to store the preview (403)" in errors[0]["error"]
    assert server["gc"].get("worker_preview", parameters={"image": image}) == {}


# --------------------------------------------------------------------------- the images


@pytest.mark.parametrize("dockerfile, gpu", [("Dockerfile", False), ("Dockerfile.cuda", True)])
def test_worker_images_declare_the_preview_and_the_gpu(dockerfile, gpu):
    """girder_worker gives a container the GPU only when its image carries
    com.nvidia.volumes.needed=nvidia_driver; the app offers previews only with hasPreview."""
    text = (ROOT / "docker" / "nimbus" / dockerfile).read_text()
    labels = dict(re.findall(r'([\w.]+)="([^"]*)"', text[text.index("LABEL"):]))
    assert labels["hasPreview"] == "true"
    assert labels["isGPUWorker"] == json.dumps(gpu)
    assert (labels.get("com.nvidia.volumes.needed") == "nvidia_driver") is gpu
