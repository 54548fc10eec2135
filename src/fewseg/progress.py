"""Progress bars that show on a terminal and stay quiet in logs and pipes."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar on stderr, shown only when stderr is a TTY.

    ``enabled=True`` / ``False`` forces it on / off.
    """
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:  # (no bar: leave tqdm, and the asyncio it imports, unimported)
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=desc, leave=False, file=sys.stderr))
