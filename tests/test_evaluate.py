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
