import numpy as np
import pytest

from fewseg.errors import InputError
from fewseg.evaluate import drop_rediscovered, greedy_match, iou_pairs, score, split_examples
from fewseg.objects import ObjectMask


def square(r, c, size=4):
    return ObjectMask(r, c, np.ones((size, size), dtype=bool))


def test_split_is_seeded_and_disjoint():
    items = list(range(20))
    a = split_examples(items, num_train=5, seed=42)
    b = split_examples(items, num_train=5, seed=42)
    c = split_examples(items, num_train=5, seed=1)
    assert a == b and a != c
    assert sorted(a[0] + a[1]) == items and len(a[0]) == 5


def test_split_matches_python_random_shuffle():
    import random

    items = list(range(30))
    order = list(items)
    random.Random(42).shuffle(order)
    assert split_examples(items, num_train=10, seed=42) == (order[:10], order[10:])


@pytest.mark.parametrize("n", [0, 5, 10])
def test_split_needs_num_train_plus_one(n):
    with pytest.raises(InputError, match=r"truth.json: has .* at least --num-train \+ 1 = 11"):
        split_examples(list(range(n)), num_train=10, seed=0, source="truth.json")


def test_greedy_takes_highest_iou_first():
    # pred 0 overlaps truth 0 (0.5) and truth 1 (0.9); pred 1 overlaps truth 1 (0.6) only.
    pairs = np.array([[0, 0, 0.5], [0, 1, 0.9], [1, 1, 0.6]])
    assert greedy_match(pairs, iou=0.3) == [(0, 1, 0.9)]
    assert greedy_match(pairs, iou=0.95) == []


def test_iou_pairs_exact():
    pred = [square(0, 0), square(0, 2)]
    truth = [square(0, 0)]
    pairs = iou_pairs(pred, truth, (10, 10))
    assert pairs.tolist() == [[0, 0, 1.0], [1, 0, 8 / 24]]


def test_score_counts_and_empty_cases():
    truth = [square(0, 0), square(10, 10), square(20, 20)]
    pred = [square(0, 0), square(11, 10), square(30, 30)]
    s = score(pred, truth, (40, 40))
    assert s.n_matched == 2 and s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.mean_iou == pytest.approx((1 + 12 / 20) / 2)
    assert s.matched_truth.tolist() == [True, True, False]
    empty = score([], truth, (40, 40))
    assert (empty.precision, empty.recall, empty.f1, empty.mean_iou) == (0.0, 0.0, 0.0, 0.0)


def test_iou_threshold_is_inclusive():
    truth = [square(0, 0, 10)]
    pred = [ObjectMask(0, 0, np.ones((10, 3), dtype=bool))]  # IoU exactly 0.3
    assert score(pred, truth, (20, 20), iou=0.3).n_matched == 1


def test_drop_rediscovered_removes_only_matches():
    examples = [square(0, 0)]
    pred = [square(0, 0), square(10, 10)]
    kept, n = drop_rediscovered(pred, examples, (20, 20))
    assert n == 1 and kept == [pred[1]]


# --- AP50, F1@0.5, mSA --------------------------------------------------------------------

def labels_to_masks(labels):
    from fewseg.objects import masks_from_labels

    return masks_from_labels(labels)


def test_published_metrics_by_hand():
    from fewseg.evaluate import MSA_THRESHOLDS, accuracy

    assert MSA_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    truth = [square(0, 0, 10), square(20, 20, 10), square(40, 40, 10)]
    # IoU 1 with truth 0, 0.8 with truth 1 (10 x 8 inside 10 x 10), none with truth 2; one false object.
    pred = [square(0, 0, 10), ObjectMask(20, 20, np.ones((10, 8), bool)), square(60, 0, 5)]
    s = score(pred, truth, (80, 80), iou=0.3)
    assert (s.n_matched, s.ap50) == (2, pytest.approx(2 / 4))  # TP 2, FP 1, FN 1
    assert s.f1_50 == pytest.approx(2 * 2 / (3 + 3))
    # AP 0.5 up to 0.8 (7 thresholds), then only the exact match counts (1 / 5).
    assert s.ap == pytest.approx((0.5,) * 7 + (0.2,) * 3)
    assert s.msa == pytest.approx((7 * 0.5 + 3 * 0.2) / 10)
    assert accuracy(0, 3, 3) == 0.0 and score([], truth, (80, 80)).msa == 0.0
    assert {"ap50", "f1_50", "msa"} <= set(s.as_dict())


def test_published_metrics_use_their_own_threshold_not_iou():
    truth = [square(0, 0, 10)]
    pred = [ObjectMask(0, 0, np.ones((10, 4), bool))]  # IoU 0.4: a match at --iou 0.3, not at 0.5
    s = score(pred, truth, (20, 20), iou=0.3)
    assert s.f1 == 1.0 and (s.ap50, s.f1_50, s.msa) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_counts_as_optimal_matching_from_iou_half(seed):
    """stardist's and micro-sam's matching is an optimal one-to-one assignment at each
    threshold; fewseg's greedy one counts the same true positives at IoU >= 0.5 on
    disjoint objects."""
    from scipy.optimize import linear_sum_assignment
    from skimage.measure import label
    from skimage.segmentation import expand_labels

    from fewseg.evaluate import MSA_THRESHOLDS

    rng = np.random.default_rng(seed)

    def blobs(n):
        seeds = np.zeros((64, 64), int)
        seeds[rng.integers(0, 64, n), rng.integers(0, 64, n)] = 1
        return label(expand_labels(label(seeds), int(rng.integers(2, 6))) > 0)

    truth, pred = labels_to_masks(blobs(25)), labels_to_masks(blobs(25))
    pairs = iou_pairs(pred, truth, (64, 64))
    iou = np.zeros((len(pred), len(truth)))
    iou[pairs[:, 0].astype(int), pairs[:, 1].astype(int)] = pairs[:, 2]
    for t in (0.3, *MSA_THRESHOLDS):
        rows, cols = linear_sum_assignment(-(iou >= t).astype(float))
        optimal = int((iou[rows, cols] >= t).sum())
        greedy = len(greedy_match(pairs, iou=t))
        assert greedy == optimal if t >= 0.5 else greedy <= optimal


# --- the correction curve -----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_demo():
    from fewseg.demo import make_demo

    return make_demo(seed=1, shape=(256, 256), n_blobs=40)


@pytest.mark.parametrize("clicks", [False, True])
def test_curve_round_zero_is_the_evaluation(small_demo, clicks):
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import correction_curve, run_evaluation

    frame, truth = small_demo
    plain = run_evaluation(frame, truth, config=SegmentConfig(), seed=3, clicks=clicks).metrics
    curve = correction_curve(frame, truth, config=SegmentConfig(), seed=3, clicks=clicks, rounds=2, corrections=3)
    first = curve[0].metrics
    for key in ("precision", "recall", "f1", "mean_iou", "ap50", "f1_50", "msa", "n_pred", "n_truth", "n_train",
                "examples_as", "learned"):
        assert first[key] == plain[key], key
    assert [ev.metrics["round"] for ev in curve] == [0, 1, 2]


def test_curve_corrections_follow_the_previous_round(small_demo):
    from fewseg.classic.examples import example_masks
    from fewseg.classic.negatives import SAME_CLICK
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import correction_curve

    frame, truth = small_demo
    curve = correction_curve(frame, truth, config=SegmentConfig(), seed=0, rounds=2, corrections=4)
    again = correction_curve(frame, truth, config=SegmentConfig(), seed=0, rounds=2, corrections=4)
    every = example_masks(truth, frame.shape)
    for prev, ev, same in zip(curve, curve[1:], again[1:]):
        m = ev.metrics
        assert m["rejected"] == same.metrics["rejected"] and m["clicked"] == same.metrics["clicked"]  # seeded
        false = [p for p, hit in zip(prev.predictions, prev.scores.matched_pred) if not hit]
        missed = [t for t, hit in zip(prev.truth, prev.scores.matched_truth) if not hit]
        assert len(m["rejected"]) <= min(4, len(false)) and len(m["clicked"]) == min(4, len(missed))
        # "Not this" only where the click lies on no object of the kind (truth or example).
        for r, c in m["rejected"]:
            assert not any(o.row <= round(r) < o.bbox[2] and o.col <= round(c) < o.bbox[3]
                           and o.mask[int(round(r)) - o.row, int(round(c)) - o.col] for o in every)
        for r, c in m["rejected"]:  # a click inside a false object of the previous round
            assert any(o.mask[int(round(r)) - o.row, int(round(c)) - o.col] for o in false
                       if o.row <= round(r) < o.bbox[2] and o.col <= round(c) < o.bbox[3])
        # Each click inside the missed object it marks; no rejection at one of the user's
        # clicks (within SAME_CLICK pixels: the engine would refuse it), this round's included.
        for r, c in m["clicked"]:
            assert any(t.holds(*np.rint([r, c]).astype(int)) for t in missed)
        points = [np.rint(e.point) for e in ev.examples if getattr(e, "point", None) is not None]
        for r, c in m["rejected"]:
            assert all(np.abs(np.rint([r, c]) - p).max() > SAME_CLICK for p in points)
        # The clicked objects leave the truth and join the examples, as clicks.
        assert m["n_truth"] == len(prev.truth) - len(m["clicked"])
        assert m["n_train"] == prev.metrics["n_train"] + len(m["clicked"])
        assert [tuple(e.point) for e in ev.examples[-len(m["clicked"]):]] == [tuple(p) for p in m["clicked"]]
        assert m["n_negatives"] == prev.metrics["n_negatives"] + len(m["rejected"])


def test_curve_gives_negatives_to_a_method_that_takes_them():
    """The harness passes the rejected objects as ``fit(..., negatives=)`` only to a
    method whose ``fit`` takes them (a recording wrapper here, not a method)."""
    from fewseg.classic.model import WeightFreeSegmenter
    from fewseg.config import SegmentConfig
    from fewseg.evaluate import correction_curve, learns_negatives

    class Recording(WeightFreeSegmenter):
        def fit(self, frame, examples, *, negatives=None):
            self.calls = [*getattr(self, "calls", []), (len(examples), None if negatives is None else list(negatives))]
            return super().fit(frame, examples)

    from fewseg.demo import make_demo

    frame, truth = make_demo(seed=1, shape=(256, 256), n_blobs=40, busy=True)  # distractors: false objects
    model = Recording()
    assert learns_negatives(model)
    curve = correction_curve(frame, truth, config=SegmentConfig(), seed=0, rounds=2, corrections=3, segmenter=model)
    assert model.calls[0][1] is None  # round 0: no negatives, fit(frame, examples) as before
    for (n_examples, negatives), ev in zip(model.calls[1:], curve[1:]):
        assert n_examples == ev.metrics["n_train"] and ev.metrics["negatives_learned"]
        so_far = [tuple(p) for e in curve[1:ev.metrics["round"] + 1] for p in e.metrics["rejected"]]
        # negatives= only when there are some
        assert (None if negatives is None else [tuple(n.point) for n in negatives]) == (so_far or None)
    assert any(negatives for _, negatives in model.calls)


def test_evaluate_command_rounds(tmp_path, capsys):
    import json

    from fewseg.cli import main
    from fewseg.demo import write_demo

    paths = write_demo(tmp_path, seed=2, shape=(200, 200), n_blobs=30)
    out = tmp_path / "curve.json"
    code = main(["evaluate", str(paths["frame"]), "--truth", str(paths["annotations"]), "--seed", "0,1",
                 "--rounds", "2", "--corrections", "3", "--json", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and "| seed | round |" in stdout and "round 2:" in stdout
    record = json.loads(out.read_text())
    assert (record["rounds"], record["corrections"], len(record["runs"]), len(record["mean"])) == (2, 3, 6, 3)
    assert {"f1", "ap50", "msa", "round", "clicked", "rejected"} <= set(record["runs"][0])
    code = main(["evaluate", str(paths["frame"]), "--truth", str(paths["annotations"]), "--rounds", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "--rounds" in err and err.count("\n") == 1
