"""How every benchmark publishes its figures: printed, and written to OUT/NAME.md (the
Markdown the README and docs/performance.md copy) and OUT/NAME.json (the raw numbers)."""

from __future__ import annotations

import json
from pathlib import Path


def publish(out_dir, name: str, lines: list[str], data) -> None:
    text = "\n".join(lines)
    print(text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text + "\n")
    (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=float))


def cold() -> None:
    """Forget what fewseg keeps between fits in this process (:mod:`fewseg.classic.reuse`),
    so a timed run starts cold, as a fresh process does; a tree from before it keeps nothing."""
    try:
        from fewseg.classic.reuse import clear
    except ImportError:
        return
    clear()
