"""Negatives for the SAM methods (seed, fast): ``fit(frame, examples, negatives=...)``.

The object at or under a negative is never returned on the frame it was marked on;
things like it are scored down on every frame (:mod:`fewseg.sam.contrast`). The
project's trained tiny SAM1 runs the methods; the scoring rules are checked on vectors.
"""

from pathlib import Path

import numpy as np
import pytest

from fewseg.objects import Annotation, ObjectMask

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

from fewseg.config import SegmentConfig  # noqa: E402
from fewseg.demo import make_demo  # noqa: E402
from fewseg.sam.contrast import ContrastSelector, under_negatives, unit_rows  # noqa: E402

pytestmark = pytest.mark.sam


@pytest.fixture(scope="module")
def small_demo():
    torch.set_num_threads(2)
    return make_demo(seed=5, shape=(128, 160), n_blobs=20)


TRAINED = Path(__file__).parent / "data" / "tiny_sam1.pt"


def config(method, tiny_file=TRAINED, points_per_side=4):
    return SegmentConfig(method=method, model="sam1_vit_b", checkpoint=str(tiny_file), device="cpu",
                         points_per_side=points_per_side, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_area=5)


def test_nearest_rule_scores_down_what_is_nearer_a_negative():
    examples = unit_rows(np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]]))
    prototype = unit_rows(examples.mean(axis=0, keepdims=True))[0]
    negatives = unit_rows(np.array([[0.0, 0.0, 1.0]]))
    sel = ContrastSelector(prototype, negatives, examples)
    v = np.array([[1.0, 0.1, 0.0], [0.1, 0.0, 1.0], [0.7, 0.0, 0.7]])
    s = sel.similarity(v)
    np.testing.assert_allclose(s[0], sel.positive(v[:1])[0])  # nearer an example: the plain cosine
    assert s[1] < sel.positive(v[1:2])[0] - 0.99  # nearer the negative: scored down by 1
    assert s[2] == sel.positive(v[2:3])[0]  # a tie stays on the examples' side
    # Every example is on its own side, whatever the prototype.
    np.testing.assert_allclose(sel.similarity(examples), sel.positive(examples))


def test_penalty_rule_is_nimbusimage_s():
    sel = ContrastSelector(np.array([1.0, 0.0]), np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]), rule="penalty",
                           weight=0.5)
    v = unit_rows(np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(sel.similarity(v), [np.sqrt(0.5) - 0.5 * np.sqrt(0.5)])
    with pytest.raises(ValueError, match="rule must be one of"):
        ContrastSelector(np.array([1.0]), np.zeros((0, 1)), np.ones((1, 1)), rule="farthest")


def test_under_negatives_at_and_under():
    obj = ObjectMask(10, 10, np.ones((6, 6), bool))
    far = ObjectMask(40, 40, np.ones((6, 6), bool))
    piece = ObjectMask(12, 12, np.ones((2, 2), bool))  # a small negative on the object: under it
    region = ObjectMask(0, 0, np.ones((30, 30), bool))  # background region holding the object
    graze = ObjectMask(15, 15, np.ones((8, 8), bool))  # shares 1 pixel of 36: not under
    assert under_negatives([obj, far], [piece]).tolist() == [True, False]
    assert under_negatives([obj, far], [region]).tolist() == [True, False]
    assert under_negatives([obj, far], [graze]).tolist() == [False, False]
    assert under_negatives([obj, far], [], points=[(45, 41)]).tolist() == [False, True]


@pytest.mark.parametrize("method", ["seed", "fast"])
def test_object_at_a_negative_is_never_returned_on_its_frame(small_demo, method):
    """With the trained tiny SAM1 (a random one finds too few candidates)."""
    from fewseg.methods import make_segmenter

    frame, truth = small_demo
    cfg = config(method, TRAINED, points_per_side=8)
    model = make_segmenter(cfg).fit(frame, truth[:10])
    first = model.predict(frame, exclude=truth[:10], similarity=0.0)
    candidates = first.candidates.masks
    assert len(candidates) >= 2
    # Reject two candidates: one by a click at its most interior pixel, one by its outline.
    from fewseg.sam.fast_method import interior_point

    click = Annotation(point=np.array(interior_point(candidates[0])))
    outline = candidates[1]
    model = make_segmenter(cfg).fit(frame, truth[:10], negatives=[click, outline])
    under = model.negatives.under(candidates)  # the click's outline and pixel, and the outline
    assert under[:2].all()
    for similarity in (0.0, None, -5.0):
        again = model.predict(frame, exclude=truth[:10], similarity=similarity)
        assert len(again.candidates.masks) == len(candidates)
        assert again.extra["n_under_negatives"] == int(under.sum())
        assert not again.selection.keep[under].any()
        assert np.isneginf(again.selection.scores[under]).all()
        # Re-thresholding keeps them out too.
        assert not model.rethreshold(again, similarity=-100.0).selection.keep[under].any()
    assert model.describe_fit()["n_negatives"] == 2


@pytest.mark.parametrize("method", ["seed", "fast"])
def test_rethreshold_with_negatives_equals_a_fresh_predict(small_demo, method):
    from fewseg.methods import make_segmenter

    frame, truth = small_demo
    negatives = [Annotation(point=np.array([5.0, 5.0])), truth[15]]
    model = make_segmenter(config(method)).fit(frame, truth[:10], negatives=negatives)
    first = model.predict(frame, exclude=[*truth[:10], *negatives])
    for similarity in (0.0, 0.9, None):
        again = model.rethreshold(first, similarity=similarity)
        fresh = model.predict(frame, exclude=[*truth[:10], *negatives], similarity=similarity)
        assert again.selection.to_dict() == fresh.selection.to_dict()
        np.testing.assert_array_equal(again.scores, fresh.scores)
        for a, b in zip(again.polygons, fresh.polygons):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["seed", "fast"])
def test_without_negatives_nothing_changes(small_demo, method):
    """``negatives=None`` and ``negatives=[]`` give what a fit without the keyword gives."""
    from fewseg.methods import make_segmenter

    frame, truth = small_demo
    results = [make_segmenter(config(method)).fit(frame, truth[:10], **kw).predict(frame, exclude=truth[:10])
               for kw in ({}, {"negatives": None}, {"negatives": []})]
    for r in results[1:]:
        np.testing.assert_array_equal(r.scores, results[0].scores)
        assert "n_under_negatives" not in r.extra


def test_negatives_elsewhere_are_learned_not_masked(small_demo):
    """On another frame nothing is masked out: the negatives act only through the scores."""
    from fewseg.methods import make_segmenter

    frame, truth = small_demo
    other, _ = make_demo(seed=6, shape=(128, 160), n_blobs=20)
    model = make_segmenter(config("seed")).fit(frame, truth[:10], negatives=[truth[12]])
    result = model.predict(other)
    assert result.extra["n_under_negatives"] == 0
    plain = make_segmenter(config("seed")).fit(frame, truth[:10]).predict(other)
    assert plain.n_candidates == result.n_candidates


def test_seed_predicting_the_same_frame_again_reuses_candidates(small_demo, monkeypatch):
    """A correction round (refit, predict the same frame) does not generate or encode again."""
    from fewseg.sam import seed_method

    frame, truth = small_demo
    model = seed_method.SeedSegmenter(config("seed")).fit(frame, truth[:10])
    first = model.predict(frame, exclude=truth[:10])

    def fail(*args, **kwargs):
        raise AssertionError("generated candidates again")

    monkeypatch.setattr(seed_method, "generate_candidates", fail)
    model.fit(frame, truth[:10], negatives=[truth[12]])
    again = model.predict(frame, exclude=truth[:10])
    assert again.candidates.masks is first.candidates.masks
