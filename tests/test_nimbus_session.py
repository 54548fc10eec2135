"""A scripted correction session in NimbusImage reproduces the engine's correction curve.

``fewseg evaluate --rounds R --corrections K`` (:func:`fewseg.evaluate.correction_curve`)
records every round's clicks: the false objects the simulated user rejected and the missed
ones they clicked. Here the same user works through the test server (a real Girder 3.2,
``tests/nimbus_server``): round 0's examples are polygons (or, as ``--clicks``, points)
with the training tag; in each
later round the rejections become points with the "Not these tags" tag and the clicks
points with the training tag; the worker runs as the platform runs it (a subprocess with
the platform's flags, results under a tag of their own each round), and what it uploaded
is read back and scored against the truth left. Every round's F1 equals the curve's.
"""

from __future__ import annotations

import numpy as np
import pytest

from fewseg.config import SegmentConfig
from fewseg.evaluate import correction_curve, score, split_examples
from fewseg.io.annotations import from_nimbus
from fewseg.objects import Annotation
from test_nimbus_worker import (  # noqa: F401  (fixtures: the same kind of running server)
    SHAPE,
    annotations_tagged,
    compute_params,
    demo,
    nimbus_items,
    post_examples,
    run_worker,
    server,
)

EXAMPLE, NOT = "session blob", "session not"
ROUNDS, CORRECTIONS, NUM_TRAIN, SEED = 2, 4, 10, 2  # a split whose session both rejects and clicks


@pytest.mark.parametrize("clicks", [False, True], ids=["outlines", "clicks"])
def test_a_correction_session_through_the_server_reproduces_the_curve(server, demo, clicks):
    first, _, truth = demo
    curve = correction_curve(first, truth, config=SegmentConfig(), num_train=NUM_TRAIN, seed=SEED, rounds=ROUNDS,
                             corrections=CORRECTIONS, clicks=clicks)
    # the session does click missed objects, and with outlines it rejects false ones (from
    # clicks, this frame's few false objects lie on real ones, which the user does not reject)
    assert sum(len(ev.metrics["clicked"]) for ev in curve) > 0
    if not clicks:
        assert sum(len(ev.metrics["rejected"]) for ev in curve) > 0
    # round 0's examples: the outlines the curve splits off, or the clicks it makes of them
    example, negative = f"{EXAMPLE} {clicks}", f"{NOT} {clicks}"
    train, _ = split_examples(truth, num_train=NUM_TRAIN, seed=SEED)
    post_examples(server, nimbus_items(curve[0].examples if clicks else train), example)
    interface = {"Training tags": [example], "Not these tags": [negative], "Method": "classic"}

    for ev in curve:
        k = ev.metrics["round"]
        if k:  # the user's corrections of the last round's result, as points
            for points, what in ((ev.metrics["rejected"], negative), (ev.metrics["clicked"], example)):
                if points:
                    post_examples(server, nimbus_items([Annotation(point=np.asarray(p)) for p in points]), what)
        tag = f"session round {k} {clicks}"

        code, messages, err = run_worker(server, "compute", compute_params(server, interface, tags=[tag]))

        assert code == 0, err + str(messages)
        assert not [m for m in messages if "error" in m], messages
        learning = next(m for m in messages if m.get("title") == "Learning from the examples")
        assert learning["info"].startswith(f"{ev.metrics['n_train']} examples")
        found = [from_nimbus(a, source="server").to_mask(SHAPE) for a in annotations_tagged(server, tag)]
        scores = score(found, ev.truth, SHAPE, iou=SegmentConfig().iou)
        assert (k, scores.f1, scores.n_pred) == (k, ev.metrics["f1"], ev.metrics["n_pred"])
    assert curve[-1].metrics["f1"] != pytest.approx(0)
