"""The NimbusImage test server behaves as the platform's real annotation plugin where a worker can trip.

Each test talks to the running test server (``tests/nimbus_server``, a real Girder 3.2) over
HTTP, as the worker and the app do; what the real plugin answers was read from its source
(NimbusImage's ``devops/girder/plugins/AnnotationPlugin``). The server is the one the worker's
tests use (same fixture).
"""

from __future__ import annotations

import base64
import json

import pytest

from test_nimbus_worker import IMAGE, demo, server  # noqa: F401  (fixtures: the same running server)

girder_client = pytest.importorskip("girder_client")

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n fewseg test").decode()


def status_of(call, *args, **kwargs) -> int:
    """The HTTP status a girder_client call fails with (200 when it succeeds)."""
    try:
        call(*args, **kwargs)
    except girder_client.HttpError as exc:
        return exc.status
    return 200


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
