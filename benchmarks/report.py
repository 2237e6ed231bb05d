"""Report benchmark: time and size of every export on a generated world.

    nice .venv/bin/python benchmarks/report.py --scale 1 --seed 7

Operations are the ground truth (tests/support.py::truth_as_results), profiles the real
`characterise`; then `build_report` writes every format. Prints JSON: seconds per stage
and per export (wall clock and CPU time of the process, all threads: on the shared build
machine wall time is mostly waiting for a core), file sizes, operations and assets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import cibwatch
from cibwatch.characterise import characterise
from cibwatch.config import Config
from cibwatch.report import FORMATS, build_report
from cibwatch.synth import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import truth_as_results  # noqa: E402


class _Clock:
    """`with clock(name):` records name_wall_s and name_cpu_s into figures."""

    def __init__(self, figures: dict):
        self.figures = figures

    @contextmanager
    def __call__(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.figures[f"{name}_wall_s"] = round(time.perf_counter() - wall, 2)
        self.figures[f"{name}_cpu_s"] = round(time.process_time() - cpu, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("benchmarks/work/report"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    figures: dict = {"scale": args.scale, "seed": args.seed}
    clock = _Clock(figures)
    with clock("synth"):
        generate(args.work / "world", scale=args.scale, seed=args.seed)
    with cibwatch.open(args.work / "ws.duckdb") as ws:
        with clock("ingest_characterise"):
            ws.ingest(args.work / "world", progress=False)
            truth_as_results(ws, args.work / "world" / "labels.csv")
            characterise(ws.con, Config())
        out = args.work / "out"
        for fmt in FORMATS:
            with clock(fmt):
                build_report(ws, out, formats=[fmt])
        with clock("all_formats"):
            written = build_report(ws, out)
        figures["operations"] = ws.con.execute(
            "SELECT count(*) FROM operations").fetchall()[0][0]
        figures["assets"] = ws.con.execute(
            "SELECT count(*) FROM cluster_members").fetchall()[0][0]
    figures["bytes"] = {name: p.stat().st_size for name, p in written.items()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
