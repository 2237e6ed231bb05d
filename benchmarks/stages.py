"""Ingest, signals and graph of `cibwatch detect`, statement by statement, on a world.

Times `ingest_dataset`, `extract_keys` and `build_edges` (wall and CPU seconds, and each
SQL statement over 0.15 s) on a fresh workspace, so a change to those stages can be
measured alone and checked for identical output against another run's workspace:

    .venv/bin/python benchmarks/stages.py --scale 10 --out /tmp/after.duckdb
    .venv/bin/python benchmarks/stages.py --scale 10 --out /tmp/after.duckdb \
        --compare /tmp/before.duckdb

Another version of the package (say HEAD, `git archive HEAD cibwatch | tar -x -C
/tmp/base`) runs the same script from outside the work tree:
`cd /tmp && PYTHONPATH=/tmp/base /work/main/.venv/bin/python
/work/main/benchmarks/stages.py --scale 10 --out /tmp/before.duckdb`.

`--detect PKG` instead runs the whole `cibwatch detect` command of the package in folder
PKG (ingest included) through `benchmarks/detect.py` and prints its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import stat
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import detect as bench  # noqa: E402  (benchmarks/detect.py: worlds and scoring)


class Timed:
    """A DuckDB connection that records each statement's wall and CPU seconds."""

    def __init__(self, con):
        self._con = con
        self.log: list[tuple[float, float, str]] = []

    def _timed(self, method, sql, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        out = getattr(self._con, method)(sql, *args, **kwargs)
        text = " ".join(str(sql).split())[:100]
        self.log.append((time.perf_counter() - wall, time.process_time() - cpu, text))
        return out

    def execute(self, sql, *args, **kwargs):
        return self._timed("execute", sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        return self._timed("sql", sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def stages(dataset: Path, out: Path) -> None:
    import cibwatch
    from cibwatch.config import Config
    from cibwatch.graph import build_edges
    from cibwatch.ingest import ingest_dataset
    from cibwatch.pipeline import _duckdb_settings
    from cibwatch.signals import extract_keys
    from cibwatch.workspace import Workspace

    print(f"package: {Path(cibwatch.__file__).parent}; load average {os.getloadavg()}")
    for p in (out, Path(str(out) + ".wal")):
        p.unlink(missing_ok=True)
    ws = Workspace(out)
    cfg = Config()
    rows = []
    wall, cpu = time.perf_counter(), time.process_time()
    ingest_dataset(ws, dataset, progress=False, config=cfg)
    rows.append(("ingest", time.perf_counter() - wall, time.process_time() - cpu))
    _duckdb_settings(ws, cfg)
    con = Timed(ws.con)
    for name, stage in (("signals", extract_keys), ("graph", build_edges)):
        wall, cpu = time.perf_counter(), time.process_time()
        stage(con, cfg)
        rows.append((name, time.perf_counter() - wall, time.process_time() - cpu))
    for wall_s, cpu_s, text in con.log:
        if wall_s > 0.15:
            print(f"  {wall_s:6.2f} s  cpu {cpu_s:6.2f}  {text}")
    print("| stage | wall s | CPU s |\n| --- | --- | --- |")
    for name, wall_s, cpu_s in rows:
        print(f"| {name} | {wall_s:.1f} | {cpu_s:.1f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    counts = {t: ws.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for t in ("posts", "keys", "edges", "edge_evidence")}
    print(f"peak RSS {peak:.2f} GiB; rows {counts}; load average {os.getloadavg()}")
    ws.con.close()


def compare(ours: Path, theirs: Path) -> None:
    """EXCEPT ALL both ways on keys, edges and edge_evidence; float columns of edges
    compared by their largest relative difference."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{ours}' AS o (READ_ONLY)")
    con.execute(f"ATTACH '{theirs}' AS t (READ_ONLY)")
    checks = [("keys", "*"), ("edge_evidence", "*"),
              ("edges", "platform, a, b, n_keys, signals"), ("edges", "*")]
    for table, cols in checks:
        n = [con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {x}.{table} EXCEPT ALL "
                         f"SELECT {cols} FROM {y}.{table})").fetchall()[0][0]
             for x, y in (("o", "t"), ("t", "o"))]
        print(f"{table} [{cols}]: {n[0]} rows only here, {n[1]} only there")
    rel = con.execute(
        """
        SELECT max(abs(o.weight - t.weight) / t.weight),
               max(abs(o.p_value - t.p_value) / greatest(t.p_value, 1e-300)),
               max(abs(o.q_value - t.q_value) / greatest(t.q_value, 1e-300))
        FROM o.edges o JOIN t.edges t USING (platform, a, b)
        """
    ).fetchall()[0]
    print(f"edges: largest relative difference weight {rel[0]}, p {rel[1]}, q {rel[2]}")


def detect_with(package: Path, dataset: Path, tag: str) -> None:
    """`cibwatch detect` of the package in `package` (run from outside the work tree)."""
    script = Path(tempfile.mkdtemp()) / "cibwatch"
    code = ("import sys, cibwatch; from cibwatch.cli import app; "
            "sys.argv[0] = 'cibwatch'; app()")
    script.write_text(f'#!/bin/sh\ncd /tmp\nPYTHONPATH="{package}" exec "{sys.executable}" '
                      f'-c "{code}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    bench.CIBWATCH = str(script)
    load = os.getloadavg()
    m = bench.run_detect(dataset, tag, nice=True)
    q = bench.score(m.pop("results"), dataset)
    print(json.dumps({"package": str(package), "load_start": load,
                      "load_end": os.getloadavg(), **m, **q}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, help="workspace to create (stages mode)")
    ap.add_argument("--compare", type=Path, help="another run's workspace to compare with")
    ap.add_argument("--detect", type=Path, metavar="PKG",
                    help="run the whole detect command of the package in folder PKG")
    args = ap.parse_args()
    bench.WORK.mkdir(parents=True, exist_ok=True)
    dataset = bench.world(args.scale, args.seed)
    if args.detect:
        detect_with(args.detect.resolve(), dataset,
                    f"stages-s{args.scale:g}-seed{args.seed}")
        return
    if args.out is None:
        ap.error("--out is required unless --detect is given")
    stages(dataset, args.out)
    if args.compare:
        compare(args.out, args.compare)


if __name__ == "__main__":
    main()
