"""What a correction round reuses: the work on a frame, kept by what it was made from.

A user corrects and runs again: ``fit(frame, examples, negatives=...)`` with one more
example or negative, then ``predict(frame)``. Most of the work does not change: the
profile, object signal and proposer's settings that the outlines teach (a click or a
negative teaches none of them), the frame's candidates and their descriptors under
them, the examples' descriptors. Each stage of :class:`~fewseg.classic.model.WeightFreeSegmenter`
that is worth keeping goes through :func:`reuse`, keyed by everything it depends on (the
frame's bytes, the examples' pixels, the fitted profile and settings), so a new segmenter
or the same one, fitted again, finds it; a result is the same object a fresh computation
would give the same numbers of, so nothing about the results depends on what was kept.

Why a cache keyed by content and not an explicit ``refit``: napari's live mode and the
NimbusImage worker call plain ``make_segmenter(config).fit(...)`` and ``.predict(...)``,
and a frame may come back as a new array (read again, another layer) with the same
bytes, or the same array edited in place; a key made of the bytes is right in every case
and asks nothing of the caller. Each kind keeps its :data:`SIZE` latest entries (a frame's
candidates take a few MB), in this process only (a pickled model carries none of it).
Kept arrays are read-only, so no caller can change what the next one gets.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import numpy as np

T = TypeVar("T")

#: Entries kept of each kind (the latest used): a few frames, or a few rounds of examples.
SIZE = 4

_lock = threading.Lock()
_kept: dict[str, OrderedDict] = {}


def reuse(kind: str, key: Hashable, compute: Callable[[], T], *, freeze: bool = True) -> T:
    """``compute()``, or what it returned before for the same ``kind`` and ``key``.

    ``key`` must hold everything the result depends on (:func:`array_key`,
    :func:`masks_key`, frozen settings). Arrays in the result are made read-only unless
    ``freeze`` is False (a result holding the caller's own arrays).

    Examples
    --------
    >>> calls = []
    >>> first = reuse("doctest", ("a", 1), lambda: calls.append(1) or np.arange(3))
    >>> again = reuse("doctest", ("a", 1), lambda: calls.append(1) or np.arange(3))
    >>> again is first, len(calls), first.flags.writeable
    (True, 1, False)
    >>> clear()
    """
    with _lock:
        entries = _kept.setdefault(kind, OrderedDict())
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
    return remember(kind, key, compute(), freeze=freeze)


def remember(kind: str, key: Hashable, value: T, *, freeze: bool = True) -> T:
    """Keep ``value`` (made by the caller) for :func:`reuse` of ``kind`` and ``key``."""
    value = _frozen(value) if freeze else value
    with _lock:
        entries = _kept.setdefault(kind, OrderedDict())
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > SIZE:
            entries.popitem(last=False)
    return value


def clear() -> None:
    """Forget everything kept (a cold start: benchmarks and tests)."""
    with _lock:
        _kept.clear()


def array_key(data: np.ndarray) -> tuple:
    """An array's shape, type and a digest of its bytes (about 5 ms for a 1024 x 1024 x 2
    frame): equal for equal arrays, whichever object holds them."""
    digest = hashlib.sha256(np.ascontiguousarray(data).data).digest()
    return data.shape, data.dtype.str, digest


def masks_key(masks) -> bytes:
    """A digest of ``masks`` (:class:`~fewseg.objects.ObjectMask`), in order: where each
    lies and its pixels."""
    h = hashlib.blake2b(digest_size=16)
    for m in masks:
        h.update(repr((m.row, m.col, m.mask.shape)).encode())
        h.update(np.packbits(m.mask).tobytes())
    return h.digest()


def examples_key(items) -> bytes:
    """A digest of examples or negatives as given (:class:`~fewseg.objects.Annotation`
    or :class:`~fewseg.objects.ObjectMask`), in order: what their masks on a frame
    depend on (an outline's vertices, a label-image object's pixels, a click's point)."""
    h = hashlib.blake2b(digest_size=16)
    for item in items:
        mask = item if isinstance(getattr(item, "mask", None), np.ndarray) else getattr(item, "mask", None)
        if mask is not None:
            h.update(b"m" + masks_key([mask]))
        for name in ("polygon", "point"):
            value = getattr(item, name, None)
            if value is not None:
                value = np.ascontiguousarray(value, dtype=np.float64)
                h.update(name.encode() + repr(value.shape).encode() + value.tobytes())
        h.update(b";")
    return h.digest()


def _frozen(value):
    """``value`` with its arrays (also in tuples, lists and masks' pixels) read-only."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for v in value:
            _frozen(v)
    elif hasattr(value, "mask") and isinstance(getattr(value, "mask"), np.ndarray):
        value.mask.flags.writeable = False
    return value
