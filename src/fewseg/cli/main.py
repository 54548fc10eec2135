"""The ``fewseg`` command line. Arguments are parsed before anything heavy is imported.

What a user sees when something is wrong is one line, ``fewseg: error: ...``, and exit
status 2: a mistyped option (argparse's message, without the usage text), a bad file
(:class:`~fewseg.errors.InputError`), a missing optional package. While a command runs,
the warnings and log lines of the libraries underneath (numpy / scipy / shapely
``RuntimeWarning``, tifffile's log, Pillow's ``DecompressionBombWarning``) are collected
instead of printed; ``--verbose`` prints them, and the traceback of an error, after the
command.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
import warnings
from typing import Iterator

from ..errors import FewsegError

# Each command module exposes ``add_parser(subparsers)``; the parser it adds sets
# ``func(args) -> int``. Modules are imported lazily by name so ``fewseg --help`` stays fast.
COMMAND_MODULES = (
    "fewseg.cli.segment",
    "fewseg.cli.evaluate",
    "fewseg.cli.demo",
    "fewseg.cli.sweep",
    "fewseg.cli.models",
)

VERBOSE_HELP = "also print the warnings, log lines and tracebacks of the libraries underneath"


class UsageError(FewsegError):
    """A command line argparse refused; the message is argparse's, on one line."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``fewseg segment: error: ...``), not the usage text."""

    def error(self, message: str):  # argparse calls this and expects it not to return
        raise UsageError(f"{self.prog}: error: " + " ".join(message.split()) + f" (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = OneLineParser(
        prog="fewseg",
        description="Few-shot object segmentation for microscopy: outline ~10 examples, find the rest.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    _add_verbose(parser)
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` after any (sub-)command too, without overriding one given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if "--verbose" not in child._option_string_actions:
                    child.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
                _add_verbose(child)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.levelname.lower()}: {record.getMessage()}")


@contextlib.contextmanager
def _quiet() -> Iterator[list[str]]:
    """Collect warnings and WARNING+ log records (the root logger's handlers stay silent) into a list."""
    notes: list[str] = []
    handler = _Collect()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [handler]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield notes
        finally:
            root.handlers = saved
            notes.extend(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught)
            notes.extend(handler.lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``fewseg`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 on success, 2 for bad input (one line on stderr), 130 when interrupted, 1 for an
    error that is a bug in fewseg (one line; the traceback with ``--verbose``).
    """
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    verbose = "-v" in argv or "--verbose" in argv
    with _quiet() as notes:
        status, message, error = _run(argv)
    if verbose:
        for line in notes:
            print(f"fewseg: note: {line}", file=sys.stderr)
        if error is not None:
            traceback.print_exception(error, file=sys.stderr)
    if message:
        print(message, file=sys.stderr)
    return status


def _run(argv: list[str]) -> tuple[int, str | None, BaseException | None]:
    """``(exit status, the one line to print, the exception)`` of running the command."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0), None, None
    except UsageError as exc:
        return 2, str(exc), None
    except FewsegError as exc:
        return 2, "fewseg: error: " + _one_line(exc), exc
    except KeyboardInterrupt:
        return 130, "fewseg: interrupted", None
    except Exception as exc:  # a bug in fewseg, not the user's input: one line, the traceback with --verbose
        return 1, f"fewseg: internal error (please report it with the output of --verbose): {type(exc).__name__}: " \
                  f"{_one_line(exc)[:300]}", exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
