"""Examples judged in their own cluster, and pieces of large structures kept out of the
examples' component (contacts.structures, propose.example_clusters, describe(clusters=),
select.mixture_fit(spread=, upper=))."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from fewseg.classic import contacts
from fewseg.classic.contacts import structures
from fewseg.classic.describe import DESCRIPTOR_NAMES, describe
from fewseg.classic.examples import learn_profile
from fewseg.objects import Frame, ObjectMask, masks_from_labels
from fewseg.classic.propose import default_settings, example_clusters
from fewseg.classic.select import mixture_fit


def _discs(centres, shape=(120, 160), radius=6):
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    for k, (r, c) in enumerate(centres, start=1):
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = k
    return labels


def _blurred(labels):
    rng = np.random.default_rng(0)
    signal = ndi.gaussian_filter((labels > 0).astype(np.float32), 1.0) + rng.normal(0, 0.02, labels.shape)
    return signal.astype(np.float32)


def test_an_example_cut_from_a_structure_has_the_rest_in_its_cluster():
    # Discs 1 and 2 (centres 10 apart, radius 6) make one plateau with a wide waist, which
    # the proposer cuts in two where the signal stays high; disc 3 stands alone.
    labels = _discs([(40, 40), (40, 50), (80, 110)])
    signal = _blurred(labels)
    masks = masks_from_labels(labels)
    settings = default_settings(6.0)
    joined, alone = example_clusters(signal, [masks[0], masks[2]], settings)
    assert 1.7 * masks[0].area < joined.area < 2.6 * masks[0].area
    assert 0.7 * masks[2].area < alone.area < 1.4 * masks[2].area
    full = np.zeros(labels.shape, dtype=bool)
    joined.paste(full)
    assert full[labels == 1].mean() > 0.9 and full[labels == 2].mean() > 0.7 and not full[labels == 3].any()
    # The same in one pass over the whole frame (windows covering most of a small frame).
    shifted = ObjectMask(masks[0].row - 20, masks[0].col - 20, masks[0].mask)
    (whole,) = example_clusters(signal[20:100, 20:70], [shifted], settings)
    assert abs(whole.area - joined.area) <= 0.1 * joined.area


def test_an_example_touching_a_neighbour_at_a_neck_stands_alone(monkeypatch):
    # Two blobs, brightest at their centres, touch (centres 12 apart): the signal falls
    # between them, as between two touching objects of a kind, so the example outlined on
    # the first (a disc of radius 6) is a cluster of its own.
    (example,) = masks_from_labels(_discs([(40, 40)]))
    rows, cols = np.indices((120, 160))
    rng = np.random.default_rng(0)
    signal = sum(np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 24.0) for r, c in [(40, 40), (40, 52), (80, 110)])
    signal = (signal + rng.normal(0, 0.02, rows.shape)).astype(np.float32)
    (touching,) = example_clusters(signal, [example], default_settings(6.0))
    assert touching.area == example.area
    # Had every contact joined, the neighbour the proposer finds would be in it.
    monkeypatch.setattr(contacts, "FLAT", 0.0)
    (everything,) = example_clusters(signal, [example], default_settings(6.0))
    assert everything.area > 1.4 * example.area


def test_structures_join_pieces_across_flat_contacts_only():
    """Pieces of a bright bar cut in three are one structure; two peaked blobs touching in
    a valley are two; a bright blob on a dim glow patch is not a piece of the patch (its
    contact is as bright as the patch, but far below the blob: the brighter side counts)."""
    shape = (60, 120)
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    signal = np.zeros(shape)
    labels[10:20, 5:15], labels[10:20, 15:25], labels[10:20, 25:35] = 1, 2, 3  # a bar, cut in three
    signal[10:20, 5:35] = 10.0
    for k, c in ((4, 50), (5, 62)):  # two peaked blobs touching at x = 56
        disc = (rows - 15) ** 2 + (cols - c) ** 2 <= 36
        labels[disc] = k
        signal += 10 * np.exp(-((rows - 15) ** 2 + (cols - c) ** 2) / 18.0)
    labels[35:55, 80:110] = 6  # a dim glow patch ...
    signal[35:55, 80:110] += 2.0
    blob = (rows - 45) ** 2 + (cols - 95) ** 2 <= 25
    labels[blob] = 7  # ... with a bright blob in it
    signal += 10 * np.exp(-((rows - 45) ** 2 + (cols - 95) ** 2) / 12.0)
    joined = structures(labels, signal, 7)
    assert joined[1] == joined[2] == joined[3]
    assert len({joined[3], joined[4], joined[5], joined[6], joined[7]}) == 5
    # Described, the bar's pieces sit in a cluster three times their size; the others in their own.
    col = DESCRIPTOR_NAMES.index("log_cluster")
    frame = Frame((100 + 10 * signal).astype(np.float32)[None])
    masks = masks_from_labels(labels)
    seen = describe(frame, signal.astype(np.float32), masks, learn_profile(frame, masks[:5]))[:, col]
    np.testing.assert_allclose(seen[:3], np.log(3.0))
    np.testing.assert_array_equal(seen[3:], 0.0)


def test_describe_takes_the_examples_cluster_size_from_their_clusters():
    labels = _discs([(40, 40), (40, 52), (80, 110)])
    data = (100 + 50 * (labels > 0)).astype(np.float32)[None]
    frame = Frame(data)
    masks = masks_from_labels(labels)
    profile = learn_profile(frame, masks)
    signal = (labels > 0).astype(np.float32)
    col = DESCRIPTOR_NAMES.index("log_cluster")
    alone = describe(frame, signal, [masks[0]], profile)
    assert alone[0, col] == 0.0  # on its own an example touches nothing
    pair = ObjectMask.from_full(labels[None].squeeze() > 0)  # a cluster twice its area (and the third disc)
    seen = describe(frame, signal, [masks[0]], profile, clusters=[pair])
    assert seen[0, col] == np.log(pair.area / masks[0].area)
    np.testing.assert_array_equal(np.delete(seen, col, axis=1), np.delete(alone, col, axis=1))


def test_touching_pairs_stay_and_pieces_of_structures_go_with_the_spread_fixed():
    """Candidates like the examples in every descriptor but the cluster size: 300 free
    objects, 60 touching pairs or triples (cluster 0.5-1.5) and 120 pieces of large
    structures (1.5-4), beside 400 of other things. The examples all stand free, so a
    spread learned from them and the candidates narrows onto the free objects and drops
    the pairs; fixed at 0.5 (or the examples' own, if wider) it keeps the pairs and
    still leaves most pieces out. Examples that sit in clusters of every size widen it."""
    rng = np.random.default_rng(1)
    base = lambda n: rng.normal(0, 1, (n, 3))  # noqa: E731
    free = np.column_stack([base(300), np.abs(rng.normal(0, 0.05, 300))])
    pairs = np.column_stack([base(60), rng.uniform(0.5, 1.5, 60)])
    pieces = np.column_stack([rng.normal(0.5, 1, (120, 3)), rng.uniform(1.5, 4, 120)])
    junk = np.column_stack([rng.normal(4, 1.5, (400, 3)), np.abs(rng.normal(0, 0.3, 400))])
    examples = np.column_stack([base(10), np.zeros(10)])
    candidates = np.vstack([free, pairs, pieces, junk])
    groups = {"free": slice(0, 300), "pairs": slice(300, 360), "pieces": slice(360, 480), "junk": slice(480, 880)}

    def kept(post):
        return {name: float((post[g] >= 0.5).mean()) for name, g in groups.items()}

    learned = kept(mixture_fit(examples, candidates)[0])
    fixed = kept(mixture_fit(examples, candidates, spread={3: 0.5})[0])
    assert learned["pairs"] < 0.2 and learned["free"] > 0.95
    assert fixed["pairs"] > 0.8 and fixed["free"] > 0.95
    assert fixed["pieces"] < 0.25 and fixed["junk"] < 0.05
    clustered = examples.copy()
    clustered[:, 3] = np.linspace(0, 3.5, 10)
    wide = kept(mixture_fit(clustered, candidates, spread={3: 0.5})[0])
    assert wide["pieces"] > fixed["pieces"] + 0.3
    # One-sided (what WeightFreeSegmenter.select does): the same, free objects are below the mean already.
    one_sided = kept(mixture_fit(examples, candidates, spread={3: 0.5}, upper=(3,))[0])
    assert one_sided["pairs"] > 0.8 and one_sided["free"] > 0.95
    assert one_sided["pieces"] < 0.25 and one_sided["junk"] < 0.05


def test_a_kind_found_alone_and_in_clusters_keeps_its_free_standing_members_one_sided():
    """Nuclei stand alone (log cluster size 0) and sit in clusters (~2.8), as on
    stardist's img3d planes. The examples: two alone, eight in clusters, then five
    clicked misses in clusters. Two-sided, the cluster size's component (its spread
    fixed) sits on the clustered members and loses every free-standing one; one-sided
    (``upper``: only a cluster larger than the kind's counts against a candidate) keeps
    both, with or without the clicks, and leaves out what is like the kind but sits in
    a far larger cluster (pieces of a structure). The pieces are what made the
    one-sided mean sink onto the free-standing members (the clustered ones all lost)
    before it was held at the examples' median or above."""
    rng = np.random.default_rng(0)

    def kind(n, alone):
        a = rng.random(n) < alone
        return np.column_stack([rng.normal(0, 1, n), rng.normal(0, 1, n), np.where(a, 0.0, rng.normal(2.8, 0.3, n))]), a

    members, free = kind(300, 0.3)
    other = np.column_stack([rng.normal(2.5, 1, 150), rng.normal(-2.5, 1, 150), np.abs(rng.normal(2.5, 1.0, 150))])
    pieces = np.column_stack([rng.normal(0, 1, (20, 2)), rng.uniform(5, 6, 20)])
    candidates = np.vstack([members, other, pieces])
    examples = np.vstack([[0.2, 0.1, 0.0], [-0.3, 0.2, 0.0], kind(8, 0.0)[0]])
    clicks = np.column_stack([rng.normal(-0.5, 0.3, 5), rng.normal(0, 0.3, 5), rng.normal(3.1, 0.1, 5)])
    for ex in (examples, np.vstack([examples, clicks])):
        two = mixture_fit(ex, candidates, spread={2: 0.5})[0] >= 0.5
        one = mixture_fit(ex, candidates, spread={2: 0.5}, upper=(2,))[0] >= 0.5
        assert two[:300][free].mean() < 0.1
        assert one[:300][free].mean() > 0.95 and one[:300][~free].mean() > 0.85
        assert one[300:450].mean() < 0.1 and one[450:].mean() < 0.05


def test_a_cluster_size_of_zero_everywhere_says_nothing():
    """Where no object touches another, every cluster size is 0: the column is left out
    of the fit (as an unknown one is), not standardised by its zero spread, which made
    the spread fixed there ~1e18 wide and scored every candidate down (a frame of
    separate discs: nothing found)."""
    rng = np.random.default_rng(0)
    examples = rng.normal(0, 1, (10, 3))
    candidates = np.vstack([rng.normal(0, 1, (200, 3)), rng.normal(4, 1, (300, 3))])
    zero = lambda a: np.column_stack([a, np.zeros(len(a))])  # noqa: E731
    post, typical = mixture_fit(zero(examples), zero(candidates), spread={3: 0.5}, upper=(3,))
    alone, typical_alone = mixture_fit(examples, candidates)
    np.testing.assert_allclose(post, alone)
    assert (post[:200] > 0.5).mean() > 0.9 and (post[200:] > 0.5).mean() < 0.05
    np.testing.assert_allclose(typical - typical[0], typical_alone - typical_alone[0])
