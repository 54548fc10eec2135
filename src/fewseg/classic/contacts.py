"""Which touching objects are pieces of one structure: the cluster size both the candidates
and the examples are described by (:func:`fewseg.classic.describe.describe`,
:func:`fewseg.classic.propose.example_clusters`).

Two objects of a kind that touch meet in a valley of the object signal: the proposer cut
them apart at a neck, where the signal falls well below their level inside. The pieces a
larger bright structure (an aggregate, a fibre) is cut into meet where the signal is as
high as inside them. (Busy demo, the signal along an object's contacts over its own mean
inside, median and 10-90 % range: 0.94, 0.83-0.99 for the pieces of aggregates the
selector kept; 0.42, 0.27-0.77 for the blobs in clusters it kept.) Joined only across
flat contacts, objects of a kind that touch each stand alone, while the pieces of a
structure still make one large cluster, as they did when every contact joined.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: A contact is flat (the two objects are pieces of one structure) where the mean object
#: signal along it is at least this share of the brighter object's mean inside. Chosen on
#: split seeds 0-4 among 0.6, 0.7, 0.8 and 0.9: 0.6 and 0.9 did worse on the busy demo,
#: 0.7 and 0.8 about alike there, and at 0.7 stardist img2d's clicks fell in round 3
#: (docs/performance.md, "Pieces and neighbours").
FLAT = 0.8


def structures(labels: np.ndarray, signal: np.ndarray, n: int) -> np.ndarray:
    """For each label 0..``n`` of ``labels``, the structure it belongs to: an ``(n + 1,)``
    int array, equal for labels joined through flat contacts (directly or through others).

    Objects touch as the cluster size has always counted it (within 2 pixels): each is
    grown by one pixel into the background (4-connected; a pixel between two objects goes
    to the larger label) and grown objects that meet touch. Their contact is the pairs of
    pixels, one on each side, where they meet with an object's own pixel on one side at
    least (the growth alone beside both ends of a contact, or across a 2-pixel gap, is
    background); it is flat where its mean ``signal`` is at least :data:`FLAT` times the
    mean ``signal`` inside the brighter of the two. (Against the dimmer one, a bright
    object lying in a dim glow joined the glow: the signal where they meet is as high as
    the glow's inside. Busy demo, split seeds 0-4, F1 after 3 rounds of corrections
    0.961 / 0.968 with outlines / clicks against 0.977 / 0.969 with the brighter, both
    at a share of 0.8.)

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((5, 9), int); labels[1:4, 1:3] = 1; labels[1:4, 3:5] = 2; labels[1:4, 6:8] = 3
    >>> flat = np.where(labels > 0, 1.0, 0.0)                      # 1 | 2 one plateau, 3 beside it
    >>> structures(labels, flat, 3)[1:].tolist()
    [1, 1, 2]
    >>> valley = flat.copy(); valley[1:4, 2:4] = 0.4                # a neck between 1 and 2
    >>> structures(labels, valley, 3)[1:].tolist()
    [1, 2, 3]
    """
    area = np.bincount(labels.ravel(), minlength=n + 1)[: n + 1]
    inside = np.bincount(labels.ravel(), weights=signal.ravel().astype(np.float64), minlength=n + 1)[: n + 1]
    inside = inside / np.maximum(area, 1)
    cross = ndi.generate_binary_structure(2, 1)
    grown = np.where(labels == 0, ndi.grey_dilation(labels, footprint=cross), labels)
    a_parts, b_parts, s_parts = [], [], []
    solid = labels > 0
    for a, b, sa, sb, on in ((grown[:, 1:], grown[:, :-1], signal[:, 1:], signal[:, :-1], solid[:, 1:] | solid[:, :-1]),
                             (grown[1:, :], grown[:-1, :], signal[1:, :], signal[:-1, :], solid[1:, :] | solid[:-1, :])):
        meet = (a != b) & (a > 0) & (b > 0) & on
        a_parts.append(a[meet])
        b_parts.append(b[meet])
        s_parts.append((sa[meet].astype(np.float64) + sb[meet]) / 2)
    a, b, s = np.concatenate(a_parts), np.concatenate(b_parts), np.concatenate(s_parts)
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    pairs, which = np.unique(lo * (n + 1) + hi, return_inverse=True)
    level = np.bincount(which, weights=s) / np.bincount(which)
    lo, hi = pairs // (n + 1), pairs % (n + 1)
    brighter = np.maximum(inside[lo], inside[hi])
    flat = (brighter > 0) & (level >= FLAT * brighter)
    graph = coo_matrix((np.ones(int(flat.sum())), (lo[flat], hi[flat])), shape=(n + 1, n + 1))
    return connected_components(graph, directed=False)[1]
