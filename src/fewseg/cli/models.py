"""``fewseg models``: list, download and verify Segment Anything checkpoints.

Parsing imports nothing heavy; :mod:`fewseg.sam.registry` (no torch) is imported when a
sub-command runs.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``fewseg models`` with its sub-commands ``list``, ``download`` and ``verify``."""
    parser = subparsers.add_parser(
        "models",
        help="list, download and verify Segment Anything checkpoints",
        description=(
            "Segment Anything checkpoints known to fewseg. Files are downloaded once into a "
            "cache folder ($FEWSEG_CACHE, default: the OS cache under fewseg/checkpoints) and "
            "checked against the registry's size and hash."
        ),
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    sub = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND")

    cache_help = "use this folder as the checkpoint cache for this call (default: $FEWSEG_CACHE or the OS cache)"

    p_list = sub.add_parser("list", help="show the known checkpoints and whether they are cached")
    p_list.add_argument("--json", action="store_true", help="print full JSON records instead of a table")
    p_list.add_argument("--cache-dir", metavar="DIR", help=cache_help)
    p_list.set_defaults(func=_cmd_list)

    p_download = sub.add_parser(
        "download",
        help="download checkpoints into the cache (skips files already there and verified)",
        description="Download checkpoints into the cache; 'all' downloads every known checkpoint.",
    )
    p_download.add_argument("names", nargs="+", metavar="NAME", help="model name(s), or 'all'")
    p_download.add_argument("--cache-dir", metavar="DIR", help=cache_help)
    p_download.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p_download.set_defaults(func=_cmd_download)

    p_verify = sub.add_parser(
        "verify",
        help="hash cached checkpoints and compare them with the registry",
        description="Hash checkpoint files again. Exit status 1 if any file does not match, 0 otherwise.",
    )
    p_verify.add_argument(
        "names", nargs="*", metavar="NAME", help="model name(s) (default: every checkpoint in the cache)"
    )
    p_verify.add_argument("--cache-dir", metavar="DIR", help=cache_help)
    p_verify.set_defaults(func=_cmd_verify)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.error("choose a sub-command: list, download or verify")  # one line, exit status 2


def _names(requested: list[str]) -> list[str]:
    from ..sam import registry as weights

    if "all" in requested:
        return list(weights.CHECKPOINTS)
    for name in requested:
        weights.get_checkpoint(name)  # unknown names fail before anything is downloaded
    return list(dict.fromkeys(requested))


def _cmd_list(args) -> int:
    from ..sam import registry as weights

    rows = []
    for entry in weights.CHECKPOINTS.values():
        status = weights.cache_status(entry, cache_dir=args.cache_dir)
        rows.append((entry, status))
    if args.json:
        records = []
        for entry, status in rows:
            record = entry.to_json()
            record["path"] = str(weights.cached_path(entry, cache_dir=args.cache_dir))
            record["cached"] = status
            records.append(record)
        print(json.dumps(records, indent=2))
        return 0

    header = ("name", "family", "arch", "size", "hash", "cached")
    table = [header] + [
        (
            entry.name,
            entry.family,
            entry.arch,
            weights.format_size(entry.size),
            f"{entry.hash_algorithm} {entry.expected_hash[:12]}…",
            _CACHED_WORDS[status],
        )
        for entry, status in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    root = weights.cache_dir(args.cache_dir)
    print(f"\ncache: {root}  (set {weights.ENV_CACHE} to move it)")
    return 0


_CACHED_WORDS = {
    "missing": "no",
    "verified": "yes",
    "unverified": "yes (not yet checked)",
    "mismatch": "DAMAGED",
}


def _cmd_download(args) -> int:
    from ..errors import FewsegError
    from ..sam import registry as weights

    failed = 0
    for name in _names(args.names):
        already = weights.cache_status(name, cache_dir=args.cache_dir) == "verified"
        try:
            path = weights.download(name, progress=not args.no_progress, cache_dir=args.cache_dir)
        except FewsegError as exc:
            print(f"fewseg: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {'already in the cache' if already else 'ok'} {path}")
    return 2 if failed else 0


def _cmd_verify(args) -> int:
    from ..sam import registry as weights

    if args.names:
        results = []
        for name in _names(args.names):
            results.extend(weights.verify(name, cache_dir=args.cache_dir, progress=True))
    else:
        results = weights.verify(cache_dir=args.cache_dir, progress=True)
        if not results:
            print(f"no checkpoints in the cache {weights.cache_dir(args.cache_dir)}")
    for result in results:
        print(result.describe())
    return 1 if any(result.status == "mismatch" for result in results) else 0
