#!/usr/bin/env python3
"""Time of `import m3cvc_format` (target: at most 150 ms) and of a first real use.

    python tools/bench/bench_import.py [--runs 21]

Each figure is the median over fresh interpreters, minus the median start-up of an
interpreter that imports nothing.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "python -c pass (baseline)": "pass",
    "import m3cvc_format": "import m3cvc_format",
    "import m3cvc_format; m3cvc_format.Reader (loads the syntax: construct)": "import m3cvc_format; m3cvc_format.Reader",
    "import m3cvc_format; m3cvc_format.decode_index_map (loads numpy, constriction)": "import m3cvc_format; m3cvc_format.decode_index_map",
}


def median_wall(code: str, runs: int) -> float:
    env: dict[str, str] = {}
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    walls = {name: median_wall(code, args.runs) for name, code in CASES.items()}
    base = walls["python -c pass (baseline)"]
    lines = [
        "## Import time",
        "",
        f"`python tools/bench/bench_import.py --runs {args.runs}`, {datetime.date.today().isoformat()}: median wall "
        "time of fresh interpreters, minus the baseline. Target: `import m3cvc_format` at most 150 ms.",
        "",
        "| what | wall time | over the baseline |",
        "|---|---|---|",
    ]
    for name, wall in walls.items():
        lines.append(f"| {name} | {1000 * wall:.1f} ms | {1000 * (wall - base):.1f} ms |")
    text = "\n".join(lines) + "\n"
    if not args.no_doc:
        from report import update_section

        update_section("import", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
