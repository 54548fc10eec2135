"""MkDocs hook: put each command's ``fewseg COMMAND --help`` text where a page asks for it.

A page writes ``<!-- fewseg-help: segment -->``; the build replaces it with the help that
``fewseg segment --help`` prints, so the CLI page lists every option as the code has it.
The package is imported from ``src/`` next to ``mkdocs.yml``; parsing arguments imports
nothing heavy.
"""

import contextlib
import io
import os
import re
import sys
from pathlib import Path

_MARK = re.compile(r"<!-- fewseg-help: ([a-z ]+) -->")


def _help(words: list[str]) -> str:
    src = str(Path(__file__).resolve().parents[1] / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    from fewseg.cli.main import build_parser

    out = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "90"  # argparse wraps at the terminal's width: the same page on every machine
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            build_parser().parse_args([*words, "--help"])
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue()


def on_page_markdown(markdown, page, config, files):
    def replace(match):
        words = match.group(1).split()
        return f"### fewseg {' '.join(words)}\n\n```text\n{_help(words).rstrip()}\n```"

    return _MARK.sub(replace, markdown)
