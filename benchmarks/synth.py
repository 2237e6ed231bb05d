"""Generation throughput of the synthetic world (target: at least 200k posts/s).

    .venv/bin/python benchmarks/synth.py [--scales 1 10] [--format csv] [--seed 7]

Each scale runs in a fresh process (imports excluded from the timing) and writes to
benchmarks/work/synth-<scale>-<format>/; prints posts, wall and CPU seconds and posts per
second of each (CPU time is the fair figure on a shared, loaded machine: generation is
single-threaded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ONE = """
import json, sys, time
from cibwatch.synth import generate
import holidays  # loaded before timing: a one-off import cost of ~0.3 s
holidays.China(years=2024)
t, c = time.perf_counter(), time.process_time()
s = generate(sys.argv[1], scale=float(sys.argv[2]), seed=int(sys.argv[3]), fmt=sys.argv[4])
s["wall_seconds"] = time.perf_counter() - t
s["cpu_seconds"] = time.process_time() - c
print(json.dumps(s))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--format", default="csv", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work"))
    args = parser.parse_args()
    for scale in args.scales:
        out = args.work / f"synth-{scale:g}-{args.format}"
        run = subprocess.run(
            [sys.executable, "-c", ONE, str(out), str(scale), str(args.seed), args.format],
            capture_output=True, text=True, check=True,
        )
        s = json.loads(run.stdout.strip().splitlines()[-1])
        load = os.getloadavg()[0]
        print(f"scale {scale:g} ({args.format}): {s['posts']:,} posts, "
              f"{s['accounts']:,} accounts, {s['follows']:,} follows in "
              f"{s['wall_seconds']:.2f} s wall = {s['posts'] / s['wall_seconds']:,.0f} posts/s; "
              f"{s['cpu_seconds']:.2f} s CPU = {s['posts'] / s['cpu_seconds']:,.0f} posts per "
              f"CPU-second (load average {load:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
