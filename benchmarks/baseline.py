"""The naive baseline that cibwatch must beat, scored with `cibwatch.evaluate`.

Rule: flag every pair of accounts that posted the same URL, or re-shared the same post,
within 60 seconds of each other; operations = connected components of those pairs.
This is what "coordinated link sharing" detectors do without rarity weights, null
models or account-level evidence, and the synthetic world is built to make it fail on
its hard negatives (viral news, activists, chain messages, hyperactive people).

    .venv/bin/python benchmarks/baseline.py WORLD_DIR --out RESULTS_DIR [--window 60]

Writes RESULTS_DIR/accounts.csv and operations.json (the contract's results folder),
then prints the evaluation and writes RESULTS_DIR/evaluation.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import duckdb
import numpy as np
from rich.console import Console
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cibwatch.evaluate import evaluate, render


def _source(world: Path, table: str) -> str:
    """A DuckDB table expression over TABLE.{csv,jsonl,parquet} or its parts."""
    for ext, reader in (("parquet", "read_parquet('{}')"),
                        ("jsonl", "read_json('{}', format = 'newline_delimited')"),
                        ("csv", "read_csv('{}', all_varchar = true)")):
        files = sorted(world.glob(f"{table}.{ext}")) or sorted(world.glob(f"{table}-*.{ext}"))
        if files:
            pattern = (world / (f"{table}.{ext}" if len(files) == 1 else f"{table}-*.{ext}"))
            return reader.format(pattern.as_posix())
    raise SystemExit(f"{world}: no {table} table")


def naive_pairs(con: duckdb.DuckDBPyConnection, world: Path, window: int) -> np.ndarray:
    """(a, b) node pairs: same URL or same re-shared post within `window` seconds."""
    posts = _source(world, "posts")
    con.execute(f"CREATE TEMP TABLE p AS SELECT * FROM {posts}")
    url_type = con.execute("SELECT data_type FROM information_schema.columns "
                           "WHERE table_name = 'p' AND column_name = 'urls'").fetchall()[0][0]
    urls = "string_split(urls, ' ')" if url_type == "VARCHAR" else "urls"
    con.execute(f"""
        CREATE TEMP TABLE k AS
        SELECT platform || ':' || account_id AS node, 'u' || unnest({urls}) AS key,
               epoch(created_at::TIMESTAMPTZ) AS t
        FROM p WHERE urls IS NOT NULL
        UNION ALL
        SELECT platform || ':' || account_id, 's' || platform || ':' || shared_id,
               epoch(created_at::TIMESTAMPTZ)
        FROM p WHERE kind = 'share' AND shared_id IS NOT NULL""")
    con.execute(f"""
        CREATE TEMP TABLE pairs AS
        SELECT DISTINCT a.node AS a, b.node AS b FROM k a JOIN k b
        ON a.key = b.key AND a.node < b.node AND b.t BETWEEN a.t - {window} AND a.t + {window}
        WHERE a.key <> 'u'""")
    return con.execute("SELECT a, b FROM pairs").fetchnumpy()


def run(world: Path, out: Path, window: int = 60) -> dict:
    started = time.perf_counter()
    con = duckdb.connect()
    pairs = naive_pairs(con, world, window)
    nodes, inverse = np.unique(np.concatenate([pairs["a"], pairs["b"]]), return_inverse=True)
    n = len(nodes)
    half = len(pairs["a"])
    graph = coo_matrix((np.ones(half), (inverse[:half], inverse[half:])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    accounts = _source(world, "accounts")
    types = dict(
        (f"{p}:{a}", t or "account")
        for p, a, t in con.execute(f"SELECT platform, account_id, asset_type FROM {accounts}"
                                   ).fetchall()
    )
    out.mkdir(parents=True, exist_ok=True)
    ops: dict[str, dict] = {}
    with (out / "accounts.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["platform", "account_id", "operation_id", "cluster_id", "score"])
        for node, comp in zip(nodes, component, strict=True):
            platform, account = node.split(":", 1)
            op = f"naive-{comp}"
            cluster = f"{op}-{platform}"
            w.writerow([platform, account, op, cluster, 1.0])
            entry = ops.setdefault(op, {"operation_id": op, "clusters": set(), "assets": {}})
            entry["clusters"].add(cluster)
            kind = types.get(node, "account")
            entry["assets"].setdefault(platform, {}).setdefault(kind, 0)
            entry["assets"][platform][kind] += 1
    payload = [
        {**e, "clusters": sorted(e["clusters"]), "utc_offset_hours": None,
         "shift_pattern": None, "echo_chamber_ratio": None,
         "inauthentic_follower_share": None, "narratives": [], "evidence": [
             {"signal": "same URL or re-share within window", "strength": 1.0,
              "detail": f"{window} s"}], "confidence": 1.0}
        for e in ops.values()
    ]
    (out / "operations.json").write_text(json.dumps(payload), encoding="utf-8")
    seconds = time.perf_counter() - started
    return {"pairs": int(half), "flagged": int(n), "operations": len(ops),
            "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("world", type=Path, help="dataset folder made by `cibwatch synth`")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/work/baseline"))
    parser.add_argument("--window", type=int, default=60, help="seconds")
    args = parser.parse_args()
    summary = run(args.world, args.out, args.window)
    console = Console()
    console.print(f"naive baseline: {summary}")
    truth = args.world / "truth.json"
    result = evaluate(args.out, args.world / "labels.csv",
                      truth=truth if truth.is_file() else None)
    render(result, console)
    (args.out / "evaluation.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
