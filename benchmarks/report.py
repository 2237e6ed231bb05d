"""Report benchmark: time and size of every export on a generated world.

    nice .venv/bin/python benchmarks/report.py --scale 1 --seed 7

Operations are the ground truth (tests/support.py::truth_as_results), profiles the real
`characterise`; then `build_report` writes every format. Prints JSON: seconds per stage
and per export, file sizes, operations and assets reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import cibwatch
from cibwatch.characterise import characterise
from cibwatch.config import Config
from cibwatch.report import FORMATS, build_report
from cibwatch.synth import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import truth_as_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("benchmarks/work/report"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    figures: dict = {"scale": args.scale, "seed": args.seed}
    t = time.perf_counter()
    generate(args.work / "world", scale=args.scale, seed=args.seed)
    figures["synth_s"] = round(time.perf_counter() - t, 2)
    with cibwatch.open(args.work / "ws.duckdb") as ws:
        t = time.perf_counter()
        ws.ingest(args.work / "world", progress=False)
        truth_as_results(ws, args.work / "world" / "labels.csv")
        characterise(ws.con, Config())
        figures["ingest_characterise_s"] = round(time.perf_counter() - t, 2)
        out = args.work / "out"
        for fmt in FORMATS:
            t = time.perf_counter()
            build_report(ws, out, formats=[fmt])
            figures[f"{fmt}_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        written = build_report(ws, out)
        figures["all_formats_s"] = round(time.perf_counter() - t, 2)
        figures["operations"] = ws.con.execute(
            "SELECT count(*) FROM operations").fetchall()[0][0]
        figures["assets"] = ws.con.execute(
            "SELECT count(*) FROM cluster_members").fetchall()[0][0]
    figures["bytes"] = {name: p.stat().st_size for name, p in written.items()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
