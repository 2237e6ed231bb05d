"""Ingest throughput and peak memory at 1M and 10M generated posts, or of a dataset folder.

    nice .venv/bin/python benchmarks/ingest.py --posts 1000000 10000000 --format csv parquet
    nice .venv/bin/python benchmarks/ingest.py --dataset benchmarks/work/world-s10-seed1

(`--format jsonl` measures the JSON-lines reader too.)

For each size and format this writes a dataset folder (posts + 100k accounts) with
DuckDB under benchmarks/work/ingest/, runs `cibwatch ingest` on it in a child process
into a fresh workspace (first load), then again into the same workspace (re-load: every
row matched by key and found unchanged), and reports wall time, posts/s and each child's
own CPU seconds and peak RSS (`os.wait4` rusage). The generated posts carry URL and hashtag lists,
ISO timestamps with an offset, ids with leading zeros, and 0.1% bad rows (unparseable
timestamps) so the quarantine path is exercised too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "ingest"
ACCOUNTS = 100_000


def generate(folder: Path, posts: int, fmt: str) -> None:
    """posts.{fmt} and accounts.{fmt}, written by DuckDB straight to disk."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '1GB'")
    options = {"csv": "(FORMAT csv, HEADER true)", "parquet": "(FORMAT parquet)",
               "jsonl": "(FORMAT json)"}[fmt]
    con.execute(
        f"""
        COPY (
            SELECT 'x' AS platform, lpad(CAST(i AS VARCHAR), 10, '0') AS post_id,
                   lpad(CAST(hash(i) % {ACCOUNTS} AS VARCHAR), 7, '0') AS account_id,
                   CASE WHEN i % 1000 = 999 THEN 'not a time'
                        ELSE strftime(TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND,
                                      '%Y-%m-%dT%H:%M:%S+08:00') END AS created_at,
                   CASE WHEN i % 5 = 0 THEN 'share' ELSE 'post' END AS kind,
                   'post number ' || i || ' about topic ' || (i % 977) AS text,
                   'https://d' || (i % 5000) || '.example/u' || (i % 200000) AS urls,
                   'h' || (i % 300) || ' h' || (i % 71) AS hashtags,
                   CASE WHEN i % 5 = 0 THEN lpad(CAST(i // 7 AS VARCHAR), 10, '0') END
                       AS shared_id
            FROM range({posts}) t(i)
        ) TO '{folder / f"posts.{fmt}"}' {options}
        """
    )
    con.execute(
        f"""
        COPY (
            SELECT 'x' AS platform, lpad(CAST(i AS VARCHAR), 7, '0') AS account_id,
                   'user' || i AS handle, CAST(i % 5000 AS VARCHAR) AS followers_count
            FROM range({ACCOUNTS}) t(i)
        ) TO '{folder / f"accounts.{fmt}"}' {options}
        """
    )
    con.close()


def run(folder: Path, ws: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of `cibwatch ingest folder` in a
    child process."""
    cli = Path(sys.executable).parent / "cibwatch"
    start = time.perf_counter()
    child = subprocess.Popen([str(cli), "ingest", str(folder), "--workspace", str(ws), "-q"],
                             stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"cibwatch ingest failed with exit code {child.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--format", nargs="+", default=["csv", "parquet"],
                    choices=["csv", "parquet", "jsonl"])
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--dataset", type=Path, help="time this dataset folder instead")
    args = ap.parse_args()
    print("| posts | format | run | seconds | CPU s | posts/s | peak RSS (MiB) |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    if args.dataset:
        WORK.mkdir(parents=True, exist_ok=True)
        ws = WORK / "dataset.duckdb"
        for label in ("first load", "re-load"):
            if label == "first load":
                for leftover in (ws, ws.with_suffix(".duckdb.wal")):
                    leftover.unlink(missing_ok=True)
            seconds, cpu, peak = run(args.dataset, ws)
            con = duckdb.connect(str(ws), read_only=True)
            n = con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
            con.close()
            print(f"| {n:,} | {args.dataset.name} | {label} | {seconds:.1f} | {cpu:.1f} "
                  f"| {n / seconds:,.0f} | {peak:,.0f} |", flush=True)
        for leftover in (ws, ws.with_suffix(".duckdb.wal")):
            leftover.unlink(missing_ok=True)
        return
    for n in sorted(args.posts):
        for fmt in args.format:
            folder = WORK / f"{fmt}-{n}"
            generate(folder, n, fmt)
            ws = folder / "bench.duckdb"
            for leftover in (ws, ws.with_suffix(".duckdb.wal")):
                leftover.unlink(missing_ok=True)
            for label in ("first load", "re-load"):
                seconds, cpu, peak = run(folder, ws)
                print(f"| {n:,} | {fmt} | {label} | {seconds:.1f} | {cpu:.1f} "
                      f"| {n / seconds:,.0f} | {peak:,.0f} |", flush=True)
            if not args.keep:
                shutil.rmtree(folder)


if __name__ == "__main__":
    main()
