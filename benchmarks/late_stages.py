"""Time `detect`'s last stages (operations, characterise, results) on a detected workspace.

Copies WORKSPACE (after a `cibwatch detect`, so it holds keys and clusters) to a scratch
file and runs the three stages on the copy, as `pipeline.detect` runs them (same DuckDB
memory and thread settings), printing wall and CPU seconds (CPU: all threads of this
process). `--dump DIR` also writes the tables the stages fill and every profile, and
`--compare A B` checks two dumps for identity, so a speed change can be shown not to
change results (`--skip-time`: leave profiles' `time` section out of the comparison).

    nice .venv/bin/cibwatch detect benchmarks/work/world-s10-seed1 \
        --out /tmp/r10 --workspace /tmp/s10.duckdb
    git archive 73839a4 cibwatch | tar -x -C /tmp/before      # an earlier version
    nice .venv/bin/python benchmarks/late_stages.py /tmp/s10.duckdb --tree /tmp/before \
        --dump /tmp/d-before
    nice .venv/bin/python benchmarks/late_stages.py /tmp/s10.duckdb --dump /tmp/d-after
    .venv/bin/python benchmarks/late_stages.py --compare /tmp/d-before /tmp/d-after
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

TABLES = {
    "operations": "1", "operation_clusters": "1, 2", "operation_links": "1, 2, 3",
    "operation_evidence": "1, 2, 3, 4", "operation_assets": "1, 2, 3",
    "operation_history": "1, 2", "operation_profiles": "1", "cluster_profiles": "1",
}


def run(workspace: Path, dump: Path | None) -> dict[str, tuple[float, float]]:
    from cibwatch import characterise, operations, results
    from cibwatch.config import Config
    from cibwatch.pipeline import _duckdb_settings
    from cibwatch.workspace import Workspace

    scratch = Path(tempfile.mkdtemp(prefix="late-stages-"))
    try:
        shutil.copy(workspace, scratch / "ws.duckdb")
        ws = Workspace(scratch / "ws.duckdb")
        cfg = Config()
        _duckdb_settings(ws, cfg)
        seconds = {}
        for name, stage in (
            ("operations", lambda: operations.link_operations(ws.con, cfg)),
            ("characterise", lambda: characterise.characterise(ws.con, cfg)),
            ("results", lambda: results.write_results(ws.con, scratch / "results")),
        ):
            t0, c0 = time.perf_counter(), time.process_time()
            stage()
            seconds[name] = (round(time.perf_counter() - t0, 2),
                             round(time.process_time() - c0, 2))
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            for table, order in TABLES.items():
                ws.con.execute(f"COPY (SELECT * FROM {table} ORDER BY {order}) "
                               f"TO '{(dump / table).as_posix()}.csv' (HEADER)")
        ws.con.close()
        return seconds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def compare(a: Path, b: Path, skip_time: bool) -> bool:
    """Print which dumped tables differ; profiles are compared as parsed JSON."""
    csv.field_size_limit(sys.maxsize)
    same = True
    for table in TABLES:
        rows = []
        for side in (a, b):
            with (side / f"{table}.csv").open(encoding="utf-8") as fh:
                found = list(csv.reader(fh))[1:]
            if table.endswith("_profiles"):
                parsed = []
                for key, text in found:
                    profile = json.loads(text)
                    if skip_time:
                        profile.pop("time", None)
                    parsed.append((key, profile))
                found = parsed
            rows.append(found)
        equal = rows[0] == rows[1]
        same &= equal
        print(f"{table:20s} {len(rows[0]):6d} rows  {'identical' if equal else 'DIFFERENT'}")
        if not equal and table.endswith("_profiles"):
            left, right = dict(rows[0]), dict(rows[1])
            for key in sorted(set(left) | set(right)):
                if left.get(key) != right.get(key):
                    sections = sorted(s for s in set(left.get(key) or {}) | set(right.get(key)
                                                                                or {})
                                      if (left.get(key) or {}).get(s)
                                      != (right.get(key) or {}).get(s))
                    print(f"    {key}: sections {', '.join(sections)}")
    return same


def use_tree(tree: Path) -> None:
    """Import `cibwatch` from `tree` (holding a `cibwatch/` folder), not the installed
    (editable) package, whose import hook would otherwise win over sys.path."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, str(tree.resolve()))
    import cibwatch

    if not Path(cibwatch.__file__).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"--tree {tree}: cibwatch still imports from {cibwatch.__file__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", nargs="?", type=Path)
    ap.add_argument("--dump", type=Path, help="write the stages' tables here")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    ap.add_argument("--tree", type=Path,
                    help="run the cibwatch package under this folder (e.g. `git archive`)")
    ap.add_argument("--skip-time", action="store_true",
                    help="compare profiles without their `time` section")
    args = ap.parse_args()
    if args.compare:
        sys.exit(0 if compare(*args.compare, args.skip_time) else 1)
    if args.workspace is None:
        ap.error("a workspace (or --compare A B) is needed")
    if args.tree is not None:
        use_tree(args.tree)
    load = os.getloadavg()[0]
    seconds = run(args.workspace, args.dump)
    print(json.dumps({"workspace": str(args.workspace), "load_average_1min_at_start": load,
                      "seconds_wall_cpu": seconds}))


if __name__ == "__main__":
    main()
