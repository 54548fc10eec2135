"""The ``fewseg`` command line. Arguments are parsed before anything heavy is imported."""

from __future__ import annotations

import argparse
import sys

from .errors import FewsegError

# Each command module exposes ``add_parser(subparsers)``; the parser it adds sets
# ``func(args) -> int``. Modules are imported lazily by name so ``fewseg --help`` stays fast.
COMMAND_MODULES = (
    "fewseg._cli_segment",
    "fewseg._cli_sweep",
    "fewseg._cli_models",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="fewseg",
        description="Few-shot object segmentation for microscopy: outline ~10 examples, find the rest.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FewsegError as exc:
        print(f"fewseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fewseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
