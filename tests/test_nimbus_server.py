"""The NimbusImage test server behaves as the platform's real annotation plugin where a worker can trip.

Each test talks to the running test server (``tests/nimbus_server``, a real Girder 3.2) over
HTTP, as the worker and the app do; what the real plugin answers was read from its source
(NimbusImage's ``devops/girder/plugins/AnnotationPlugin``). The server is the one the worker's
tests use (same fixture).
"""

from __future__ import annotations

import base64
import itertools
import json

import pytest

from test_nimbus_worker import (  # noqa: F401  (demo, server: fixtures, so this module runs its own server)
    compute_params, demo, nimbus_items, run_worker, server)

girder_client = pytest.importorskip("girder_client")
_users = itertools.count()

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n fewseg test").decode()


def status_of(call, *args, **kwargs) -> int:
    """The HTTP status a girder_client call fails with (200 when it succeeds)."""
    try:
        call(*args, **kwargs)
    except girder_client.HttpError as exc:
        return exc.status
    return 200


def new_user(server, *, level: int | None) -> tuple[girder_client.GirderClient, str]:
    """A non-admin user and their client; ``level`` (0 READ, 1 WRITE, None: none) on the test dataset."""
    gc = server["gc"]
    login = f"user{next(_users)}"
    user = gc.post("user", parameters={"login": login, "email": f"{login}@fewseg.test", "firstName": "A",
                                       "lastName": "User", "password": "password1"})
    if level is not None:
        share(server, server["datasetId"], user["_id"], level)
    client = girder_client.GirderClient(apiUrl=server["apiUrl"])
    client.authenticate(login, "password1")
    return client, user["_id"]


def share(server, folder_id: str, user_id: str, level: int) -> None:
    gc = server["gc"]
    acl = gc.get(f"folder/{folder_id}/access")
    acl["users"] = [u for u in acl["users"] if u["id"] != user_id] + [{"id": user_id, "level": level}]
    gc.put(f"folder/{folder_id}/access", parameters={"access": json.dumps(acl)})


def new_folder(server, name: str, *, dataset: bool) -> str:
    """A folder beside the test dataset; a dataset (``contrastDataset``) or a plain folder."""
    gc = server["gc"]
    parent = gc.get(f"folder/{server['datasetId']}")["parentId"]
    folder = gc.post("folder", parameters={"parentId": parent, "name": name})
    if dataset:
        gc.put(f"folder/{folder['_id']}/metadata", json={"subtype": "contrastDataset"})
    return folder["_id"]


def record(server, *, tags, x=10.0, y=10.0, z=0, shape="point", channel=1, dataset_id=None) -> dict:
    """One annotation as the platform stores it (a point at (x, y), or a 4 x 4 square there)."""
    coords = ([{"x": x, "y": y}] if shape == "point" else
              [{"x": x - 2, "y": y - 2}, {"x": x + 2, "y": y - 2}, {"x": x + 2, "y": y + 2}, {"x": x - 2, "y": y + 2}])
    return {"coordinates": coords, "tags": list(tags), "channel": channel, "shape": shape,
            "location": {"XY": 0, "Z": z, "Time": 0}, "datasetId": dataset_id or server["datasetId"]}


def listed(client, dataset_id, **query) -> list[dict]:
    """One page of the list endpoint (the server caps pages at 7)."""
    return client.get("upenn_annotation", parameters={"datasetId": dataset_id, **query})


def every(client, dataset_id, **query) -> list[dict]:
    """Every page, following the ``afterId`` cursor as the SDK does."""
    found = []
    while page := listed(client, dataset_id, sort="_id", **query, **({"afterId": found[-1]["_id"]} if found else {})):
        found += page
    return found


# --------------------------------------------------------------------------- training tags


def test_the_list_answers_annotations_carrying_all_the_tags_asked_for(server):
    gc = server["gc"]
    a, b, both = gc.post("upenn_annotation/multiple", json=[
        record(server, tags=["all A"]), record(server, tags=["all B"]), record(server, tags=["all B", "all A", "x"])])
    ids = lambda page: [r["_id"] for r in page]  # noqa: E731
    assert ids(listed(gc, server["datasetId"], tags=json.dumps(["all A"]))) == [a["_id"], both["_id"]]
    assert ids(listed(gc, server["datasetId"], tags=json.dumps(["all A", "all B"]))) == [both["_id"]]  # $all
    assert ids(listed(gc, server["datasetId"], tags=json.dumps(["all A", "all C"]))) == []
    assert status_of(gc.get, "upenn_annotation", parameters={"datasetId": server["datasetId"], "tags": '"all A"'}) == 400


def test_the_worker_learns_from_examples_carrying_any_training_tag_each_once(server, demo):
    """5 examples tagged A and 5 tagged B: the job learns from all 10; two of them carry both
    (4 A, 4 B, 2 both): still 10, each once. The platform's list would give only the 2 with
    both for the tags [A, B]."""
    first, _, truth = demo
    items = nimbus_items(truth[:10])
    tags = [["any A"]] * 4 + [["any B"]] * 4 + [["any A", "any B"]] * 2
    server["gc"].post("upenn_annotation/multiple", json=[
        {**item, "tags": t, "channel": 1, "location": {"XY": 0, "Z": 0, "Time": 0}, "datasetId": server["datasetId"]}
        for item, t in zip(items, tags)])
    assert len(listed(server["gc"], server["datasetId"], tags=json.dumps(["any A", "any B"]))) == 2
    params = compute_params(server, {"Training tags": ["any A", "any B"], "Method": "classic"}, tags=["any out"])
    params["connectTo"] = {"tags": ["any A"], "channel": 1}

    code, messages, err = run_worker(server, "compute", params)

    assert code == 0, (err, messages)
    learning = [m for m in messages if m.get("title") == "Learning from the examples"]
    assert learning[0]["info"].startswith("10 examples"), learning
    # connectTo linked every uploaded object to its nearest example tagged 'any A' on its location
    out = every(server["gc"], server["datasetId"], tags=json.dumps(["any out"]))
    links = server["gc"].get("annotation_connection", parameters={"datasetId": server["datasetId"], "limit": 0})
    by_child = {link["childId"]: link["parentId"] for link in links}
    parents = {r["_id"]: r for r in every(server["gc"], server["datasetId"], tags=json.dumps(["any A"]))}
    assert len(out) > 10 and all(by_child.get(r["_id"]) in parents for r in out)


# --------------------------------------------------------------------------- worker previews


def test_a_preview_is_stored_as_the_plugin_stores_it_and_read_back(server):
    gc = server["gc"]
    image = "fewseg/nimbus:preview-test"
    assert gc.get("worker_preview", parameters={"image": image}) == {}  # none yet: an empty object
    stored = gc.post("worker_preview", parameters={"image": image}, json={"image": PNG})
    assert stored["image"] == image and stored["preview"] == {"image": PNG} and len(stored["_id"]) == 24
    assert stored["access"]["users"][0]["level"] == 2  # its poster owns it (ADMIN)
    again = gc.post("worker_preview", parameters={"image": image}, json={"image": PNG + "AA", "text": "3 found"})
    assert again["_id"] == stored["_id"]  # one document per worker image, its preview replaced
    read = gc.get("worker_preview", parameters={"image": image})
    assert read == again and read["preview"] == {"image": PNG + "AA", "text": "3 found"}  # the app reads .preview
    gc.delete("worker_preview", parameters={"image": image})
    assert gc.get("worker_preview", parameters={"image": image}) == {}


def test_a_preview_needs_its_image_and_an_object_body(server):
    gc = server["gc"]
    assert status_of(gc.get, "worker_preview") == 400
    assert status_of(gc.post, "worker_preview", json={"image": PNG}) == 400
    assert status_of(gc.post, "worker_preview", parameters={"image": "x"}, json={"image": 5}) == 400


def test_the_interface_post_answers_the_whole_stored_document(server):
    gc = server["gc"]
    image = "fewseg/nimbus:interface-test"
    assert gc.get("worker_interface", parameters={"image": image}) is None
    stored = gc.post("worker_interface", parameters={"image": image}, json={"Tags": {"type": "tags"}})
    assert stored["image"] == image and stored["interface"] == {"Tags": {"type": "tags"}} and len(stored["_id"]) == 24
    assert gc.get("worker_interface", parameters={"image": image}) == {"Tags": {"type": "tags"}}


def test_a_non_admin_may_read_previews_but_not_post_them(server):
    reader, _ = new_user(server, level=0)
    image = "fewseg/nimbus:preview-access"
    assert reader.get("worker_preview", parameters={"image": image}) == {}
    assert status_of(reader.post, "worker_preview", parameters={"image": image}, json={"image": PNG}) == 403
    assert status_of(reader.post, "worker_interface", parameters={"image": image}, json={}) == 403


# --------------------------------------------------------------------------- access and status codes


def test_uploads_need_write_access(server):
    reader, _ = new_user(server, level=0)
    writer, _ = new_user(server, level=1)
    one = record(server, tags=["access"])
    assert listed(reader, server["datasetId"], limit=1)  # reading is allowed
    assert status_of(reader.post, "upenn_annotation/multiple", json=[one]) == 403
    assert status_of(reader.post, "upenn_annotation", json=one) == 403
    made = writer.post("upenn_annotation/multiple", json=[one])
    assert made[0]["tags"] == ["access"] and writer.post("upenn_annotation", json=one)["tags"] == ["access"]


def test_the_worker_with_a_read_only_token_stops_before_computing_and_says_so(server, demo):
    """Uploading needs WRITE (the real plugin answers 403 to a reader's POST); the worker
    reads the user's access level from the dataset folder and says so in one line before
    the fit and the frames cost anything."""
    _, _, truth = demo
    reader, _ = new_user(server, level=0)
    server["gc"].post("upenn_annotation/multiple", json=[
        {**item, "tags": ["read only"], "channel": 1, "location": {"XY": 0, "Z": 0, "Time": 0},
         "datasetId": server["datasetId"]} for item in nimbus_items(truth[:6])])
    params = compute_params(server, {"Training tags": ["read only"], "Method": "classic"}, tags=["read only out"])

    code, messages, _ = run_worker({**server, "token": reader.token}, "compute", params)

    errors = [m["error"] for m in messages if "error" in m]
    assert code == 1 and len(errors) == 1
    assert "may only read this dataset" in errors[0] and "WRITE" in errors[0], errors
    assert not any(m.get("title") == "Learning from the examples" for m in messages), messages
    assert every(server["gc"], server["datasetId"], tags=json.dumps(["read only out"])) == []
    # (A writer is let through: tests/test_nimbus_loop.py, WRITE is enough.)


def test_status_codes_on_reading(server):
    gc = server["gc"]
    outsider, _ = new_user(server, level=None)
    plain = new_folder(server, "not a dataset (read)", dataset=False)
    gc.post("upenn_annotation/multiple", json=[record(server, tags=["codes"])])
    assert status_of(gc.get, "upenn_annotation", parameters={"datasetId": "not-an-id"}) == 500
    assert status_of(gc.get, "upenn_annotation", parameters={"datasetId": "0123456789abcdef01234567"}) == 400
    assert status_of(outsider.get, "upenn_annotation", parameters={"datasetId": server["datasetId"]}) == 403
    assert listed(gc, plain) == []  # a folder that is not a dataset: 200 and nothing


def test_status_codes_on_upload(server):
    gc = server["gc"]
    plain = new_folder(server, "not a dataset (upload)", dataset=False)
    good = record(server, tags=["codes"])
    assert status_of(gc.post, "upenn_annotation/multiple", json=[{**good, "datasetId": "not-an-id"}]) == 500
    assert status_of(gc.post, "upenn_annotation/multiple",
                     json=[{**good, "datasetId": "0123456789abcdef01234567"}]) == 403
    assert status_of(gc.post, "upenn_annotation/multiple", json=[{**good, "datasetId": plain}]) == 400
    before = len(every(gc, server["datasetId"], tags=json.dumps(["codes"])))
    assert status_of(gc.post, "upenn_annotation/multiple", json=[good, {**good, "channel": "one"}]) == 400
    assert status_of(gc.post, "upenn_annotation/multiple", json=[good, {**good, "shape": "blob"}]) == 400
    assert len(every(gc, server["datasetId"], tags=json.dumps(["codes"]))) == before  # one bad: none stored


# --------------------------------------------------------------------------- pagination


def test_pages_honour_sort_and_sortdir_and_ignore_offset_after_a_cursor(server):
    gc = server["gc"]
    dataset = new_folder(server, "paging", dataset=True)
    made = gc.post("upenn_annotation/multiple", json=[record(server, tags=["page"], z=z, dataset_id=dataset)
                                                      for z in (2, 0, 1, 0, 2)])
    ids = [r["_id"] for r in made]
    page = lambda **q: [r["_id"] for r in listed(gc, dataset, **q)]  # noqa: E731
    assert page() == ids  # default: by _id, ascending
    assert page(sort="_id", sortdir=-1) == ids[::-1]
    assert [r["location"]["Z"] for r in listed(gc, dataset, sort="location.Z")] == [0, 0, 1, 2, 2]
    assert [r["location"]["Z"] for r in listed(gc, dataset, sort="location.Z", sortdir=-1)] == [2, 2, 1, 0, 0]
    assert page(offset=2) == ids[2:] and page(limit=2, offset=1) == ids[1:3]
    assert page(afterId=ids[1], offset=2) == ids[2:]  # offset ignored with afterId
    assert every(gc, dataset) == listed(gc, dataset)


# --------------------------------------------------------------------------- connectTo


def test_connect_to_links_each_new_object_to_its_nearest_tagged_neighbour_on_its_location(server):
    gc = server["gc"]
    dataset = new_folder(server, "connections", dataset=True)
    near, far, square = gc.post("upenn_annotation/multiple", json=[
        record(server, tags=["parent"], x=10, y=10, dataset_id=dataset),
        record(server, tags=["parent", "other"], x=60, y=60, dataset_id=dataset),
        # its vertex mean is (101, 100): the platform measures from the vertex mean, not the area centroid
        {**record(server, tags=["parent"], dataset_id=dataset), "shape": "polygon",
         "coordinates": [{"x": 90, "y": 90}, {"x": 110, "y": 90}, {"x": 110, "y": 110}, {"x": 90, "y": 110},
                         {"x": 105, "y": 110}]}])
    decoys = gc.post("upenn_annotation/multiple", json=[
        record(server, tags=["parent"], x=31, y=31, z=1, dataset_id=dataset),  # another location
        record(server, tags=["parent"], x=31, y=31, channel=0, dataset_id=dataset),  # another channel
        record(server, tags=["unrelated"], x=31, y=31, dataset_id=dataset)])  # not tagged
    children = gc.post("upenn_annotation/multiple", json=[
        record(server, tags=["child"], x=32, y=32, dataset_id=dataset),  # 31 from near, 39.6 from far
        record(server, tags=["child"], x=101, y=103, shape="polygon", dataset_id=dataset),
        record(server, tags=["child"], x=10, y=10, z=2, dataset_id=dataset)])  # nothing tagged on its location

    made = gc.post("annotation_connection/connectTo", json={
        "annotationsIds": [c["_id"] for c in children], "tags": ["parent"], "channelId": 1, "datasetId": dataset})

    links = {link["childId"]: link["parentId"] for link in made}
    assert links == {children[0]["_id"]: near["_id"], children[1]["_id"]: square["_id"]}
    assert far["_id"] not in links.values() and not {d["_id"] for d in decoys} & set(links.values())
    stored = gc.get("annotation_connection", parameters={"datasetId": dataset})
    assert {(s["childId"], s["parentId"]) for s in stored} == set(links.items())
    assert all(s["label"] == "A Connection -- automatic" and s["tags"] == [] for s in stored)
    links_any = gc.post("annotation_connection/connectTo", json={  # any of the tags; channel None: any channel
        "annotationsIds": [children[0]["_id"]], "tags": ["other", "unrelated"], "channelId": None,
        "datasetId": dataset})
    assert [link["parentId"] for link in links_any] == [decoys[2]["_id"]]


# --------------------------------------------------------------------------- collections


def test_a_collection_needs_its_compatibility(server):
    gc = server["gc"]
    meta = {"subtype": "contrastConfiguration", "compatibility": {}, "layers": [], "tools": [], "propertyIds": [],
            "snapshots": [], "scales": {}}
    made = gc.post("upenn_collection", parameters={"folderId": server["datasetId"], "name": "with compatibility",
                                                   "metadata": json.dumps(meta)})
    assert gc.get(f"upenn_collection/{made['_id']}")["meta"] == meta
    without = {k: v for k, v in meta.items() if k != "compatibility"}
    assert status_of(gc.post, "upenn_collection", parameters={
        "folderId": server["datasetId"], "name": "without", "metadata": json.dumps(without)}) == 400
    names = gc.get(f"item/{server['itemId']}/tiles").get("channels") or ["Unnamed channel"] * 2  # the app's fallback
    assert gc.get(f"upenn_collection/{server['collectionId']}")["meta"]["compatibility"] == {  # as the app makes it
        "xyDimensions": "one", "zDimensions": "multiple", "tDimensions": "one", "channels": {"0": names[0], "1": names[1]}}
    assert status_of(gc.get, "upenn_collection/0123456789abcdef01234567") == 400
    outsider, _ = new_user(server, level=None)
    assert status_of(outsider.get, f"upenn_collection/{made['_id']}") == 403


# --------------------------------------------------------------------------- a user's corrections


def test_retagging_and_deleting_as_a_user_corrects_and_what_it_takes(server):
    gc = server["gc"]
    reader, _ = new_user(server, level=0)
    dataset = new_folder(server, "corrections", dataset=True)
    share(server, dataset, reader.get("user/me")["_id"], 0)
    parent, found, wrong, gone = gc.post("upenn_annotation/multiple", json=[
        record(server, tags=["example"], x=10, y=10, dataset_id=dataset)]
        + [record(server, tags=["found"], x=12 + k, y=12, dataset_id=dataset) for k in range(3)])
    gc.post("annotation_connection/connectTo", json={"annotationsIds": [found["_id"], wrong["_id"], gone["_id"]],
                                                     "tags": ["example"], "channelId": 1, "datasetId": dataset})
    assert reader.get(f"upenn_annotation/{wrong['_id']}")["tags"] == ["found"]
    assert status_of(reader.put, f"upenn_annotation/{wrong['_id']}", json={"tags": ["not found"]}) == 403
    assert status_of(reader.delete, f"upenn_annotation/{gone['_id']}") == 403
    assert status_of(reader.sendRestRequest, "DELETE", "upenn_annotation/multiple", json=[gone["_id"]]) == 403

    retagged = gc.put(f"upenn_annotation/{wrong['_id']}", json={"tags": ["not found"], "_id": "ignored"})
    assert retagged["_id"] == wrong["_id"] and retagged["tags"] == ["not found"]
    assert status_of(gc.put, f"upenn_annotation/{wrong['_id']}", json={"tags": "no list"}) == 400
    gc.delete(f"upenn_annotation/{gone['_id']}")
    assert status_of(gc.get, f"upenn_annotation/{gone['_id']}") == 400  # Girder: "Invalid upenn_annotation id"
    assert [r["_id"] for r in listed(gc, dataset, tags=json.dumps(["found"]))] == [found["_id"]]
    assert [r["_id"] for r in listed(gc, dataset, tags=json.dumps(["not found"]))] == [wrong["_id"]]
    links = gc.get("annotation_connection", parameters={"datasetId": dataset})
    assert sorted(link["childId"] for link in links) == sorted([found["_id"], wrong["_id"]])  # gone's link went
    gc.sendRestRequest("DELETE", "upenn_annotation/multiple", json=[found["_id"], wrong["_id"]])
    assert [r["_id"] for r in listed(gc, dataset)] == [parent["_id"]]
    assert gc.get("annotation_connection", parameters={"datasetId": dataset}) == []
