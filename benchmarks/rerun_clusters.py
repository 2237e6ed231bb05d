"""Rerun the clusters and operations stages on a copy of a detected workspace, and score.

For trying a cluster- or operations-stage setting on many worlds without repeating
ingest, signals and graph: copy WORKSPACE (after `cibwatch detect`, so it holds keys and
edges), run `cluster.find_clusters` and `operations.link_operations` as the pipeline
runs them (same DuckDB settings), write the results and score them against WORLD's
labels (`benchmarks/detect.py::score`). `--set SECTION.KEY=VALUE` overrides a config
value (repeatable); the value is read as JSON, else kept as a string.

    .venv/bin/cibwatch detect benchmarks/work/world-s1-seed1 --out /tmp/r --workspace /tmp/w.duckdb
    .venv/bin/python benchmarks/rerun_clusters.py /tmp/w.duckdb benchmarks/work/world-s1-seed1 \
        --set cluster.attach_min_in_ties=2
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detect import score  # noqa: E402

from cibwatch import cluster, operations, results  # noqa: E402
from cibwatch.config import Config, ConfigError  # noqa: E402
from cibwatch.pipeline import _duckdb_settings  # noqa: E402
from cibwatch.workspace import Workspace  # noqa: E402


def overrides(pairs: list[str]) -> dict[str, dict[str, object]]:
    """`SECTION.KEY=VALUE` strings as the nested dict `Config.updated` takes."""
    out: dict[str, dict[str, object]] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        section, _, key = name.partition(".")
        if not key or not _:
            raise SystemExit(f"--set {pair}: expected SECTION.KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(section, {})[key] = value
    return out


def rerun(workspace: Path, world: Path, config: Config) -> dict:
    """Seconds of both stages and the score of their results."""
    scratch = Path(tempfile.mkdtemp(prefix="rerun-clusters-"))
    try:
        shutil.copy(workspace, scratch / "ws.duckdb")
        ws = Workspace(scratch / "ws.duckdb")
        _duckdb_settings(ws, config)
        t = time.perf_counter()
        cluster.find_clusters(ws.con, config)
        t_clusters = time.perf_counter() - t
        t = time.perf_counter()
        operations.link_operations(ws.con, config)
        t_operations = time.perf_counter() - t
        results.write_results(ws.con, scratch / "results")
        ws.close()
        return {"clusters_s": round(t_clusters, 2), "operations_s": round(t_operations, 2),
                **score(scratch / "results", world)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path, help="a workspace after `cibwatch detect`")
    ap.add_argument("world", type=Path, help="the world's folder (labels.csv)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args()
    try:
        config = Config().updated(overrides(args.set), source="--set")
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    print(json.dumps(rerun(args.workspace, args.world, config)))


if __name__ == "__main__":
    main()
