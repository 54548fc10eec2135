"""Fuzz the fewseg command line with malformed inputs and count broken promises.

    python benchmarks/fuzz.py                 # every case (~1,460), 60 s timeout each
    python benchmarks/fuzz.py --no-hangs      # without the many-examples cases (a minute each before issues 12, 18)
    python benchmarks/fuzz.py --only json     # one group: tiff, json, zarr, clicks, output, option, valid, hang

Each case runs ``fewseg.cli.main`` in a forked child of this process (so the libraries are
imported once), in its own folder holding a small demo case (``tests/fuzz_cases.py``),
with stdout / stderr captured, a timeout and, for the full-disk cases, a file size limit.
It prints and writes to ``benchmarks/results/fuzz.md`` (and ``fuzz.json``, one record per
case) a table of: runs, tracebacks (or an exit status other than 0 / 2), hangs, user files
changed, outputs left after a failure, wrongly accepted, wrongly refused, refusals over
two lines, successes that printed to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import fuzz_cases as fc  # noqa: E402

COLUMNS = ("traceback", "hang", "user file changed", "output left on failure", "wrongly accepted",
           "wrongly refused", "refusal over two lines", "refusal without a message", "noisy success")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    parser.add_argument("--random", type=int, default=150, help="random byte-flip TIFF variants (default 150)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random variants")
    parser.add_argument("--only", default=None, help="run one group only")
    parser.add_argument("--no-hangs", action="store_true", help="leave out the many-examples cases")
    parser.add_argument("--out", default=None,
                        help="writes OUT.md and OUT.json (default benchmarks/results/fuzz for a whole run, "
                             "fuzz-GROUP for --only GROUP, fuzz-no-hangs for --no-hangs: a part never "
                             "overwrites the whole run's figures)")
    args = parser.parse_args(argv)
    if args.out is None:
        part = f"-{args.only}" if args.only else "-no-hangs" if args.no_hangs else ""
        args.out = str(HERE / "results" / f"fuzz{part}")

    # import what the command uses once, before forking
    import fewseg.cli  # noqa: F401
    import fewseg.cli.segment  # noqa: F401
    import fewseg.figure  # noqa: F401
    import fewseg.methods  # noqa: F401
    import fewseg.classic.model  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import skimage.segmentation  # noqa: F401

    base = fc.demo_files()
    cases = fc.all_cases(base, n_random=args.random, seed=args.seed, hangs=not args.no_hangs)
    if args.only:
        cases = [c for c in cases if c.group == args.only]
    work = Path(tempfile.mkdtemp(prefix="fewseg-fuzz-"))
    records, counts, by_group = [], Counter(), {}
    t0 = time.perf_counter()
    try:
        for i, case in enumerate(cases):
            case.timeout = args.timeout
            folder = work / f"case{i:04d}"
            outcome = fc.run_forked(case, folder, base)
            problems = outcome.problems()
            shutil.rmtree(folder, ignore_errors=True)
            counts.update(problems)
            group = by_group.setdefault(case.group, Counter())
            group["runs"] += 1
            group.update(problems)
            records.append({"name": case.name, "group": case.group, "expect": case.expect, "status": outcome.status,
                            "seconds": round(outcome.seconds, 3), "problems": problems,
                            **({"stderr": outcome.stderr[-600:]} if problems else {})})
            if problems:
                first = (outcome.stderr.strip().splitlines() or [""])[-1][:160]
                print(f"[{i + 1}/{len(cases)}] {case.name}: {', '.join(problems)} (exit {outcome.status}) {first}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - t0

    import fewseg

    header = "| group | runs | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for name, group in sorted(by_group.items()):
        lines.append(f"| {name} | {group['runs']} | " + " | ".join(str(group[c]) for c in COLUMNS) + " |")
    lines.append(f"| **all** | {len(records)} | " + " | ".join(str(counts[c]) for c in COLUMNS) + " |")
    kept = sum(1 for r in records if not r["problems"])
    statuses = Counter("killed" if r["status"] is None else r["status"] for r in records)
    exits = ", ".join(f"exit {k}: {n}" for k, n in sorted(statuses.items(), key=str))
    summary = (f"fewseg {fewseg.__file__}: {len(records)} runs ({exits}), promise kept in {kept} "
               f"({100 * kept / max(1, len(records)):.1f} %), {elapsed:.0f} s, timeout {args.timeout:.0f} s per run")
    table = "\n".join(lines)
    print(table)
    print(summary)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(f"`python benchmarks/fuzz.py {' '.join(argv or sys.argv[1:])}`\n\n{table}\n\n{summary}\n")
    cases = ",\n".join(json.dumps(r) for r in records)  # one case per line
    out.with_suffix(".json").write_text(f'{{"summary": {json.dumps(summary)}, "counts": {json.dumps(dict(counts))}, '
                                        f'"cases": [\n{cases}\n]}}\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
