"""Which frames to process: the seed's Batch XY / Z / Time ranges.

A range text is ``"1-3, 5-8"`` (inclusive, 0-based like the file's planes), ``"all"``,
or empty for "just the current position". The frames of a batch are the product of
the Z and Time ranges.
"""

from __future__ import annotations

from .errors import InputError


def parse_range(text: str | None, *, size: int, option: str, current: int = 0) -> list[int]:
    """Indices named by ``text`` within ``range(size)``.

    Examples
    --------
    >>> parse_range("1-3, 5", size=8, option="--batch-z")
    [1, 2, 3, 5]
    >>> parse_range("all", size=3, option="--batch-z")
    [0, 1, 2]
    >>> parse_range("", size=3, option="--batch-z", current=2)
    [2]
    """
    if text is None or not text.strip():
        return [current]
    if text.strip().lower() == "all":
        return list(range(size))
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise InputError(option, f"expected ranges like '1-3, 5-8' or 'all', got {text!r}") from None
        if a > b:
            raise InputError(option, f"range {part!r} runs backwards")
        if a < 0 or b >= size:
            raise InputError(option, f"range {part!r} is outside 0-{size - 1} (the file has {size})")
        out.extend(i for i in range(a, b + 1) if i not in out)
    if not out:
        raise InputError(option, f"expected at least one index, got {text!r}")
    return out
