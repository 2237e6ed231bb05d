"""DuckDB and Spark engines side by side on the same synthetic world.

    nice .venv/bin/python benchmarks/spark.py --scales 1 10

For each scale this generates a world (seed 7) under benchmarks/work/spark/ (kept and
reused), ingests it once, then runs `detect` on two copies of that workspace: once with
the DuckDB engine, once with the Spark engine (`local[2]`, the config defaults). It
reports each engine's time for the stages an engine runs (signals = key extraction,
graph = kernel + pair aggregation + significance) and for the whole detect, the Spark
session start-up separately, the ratio Spark / DuckDB, and whether the two accounts.csv
files list the same assets in the same operations and clusters.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "spark"


def _accounts(folder: Path) -> list[tuple[str, str, str, str]]:
    with open(folder / "accounts.csv", newline="", encoding="utf-8") as f:
        return sorted((r["platform"], r["account_id"], r["operation_id"], r["cluster_id"])
                      for r in csv.DictReader(f))


def run(scale: float, seed: int) -> dict:
    import cibwatch
    from cibwatch.config import Config
    from cibwatch.engines.spark import spark_session
    from cibwatch.synth import generate

    world = WORK / f"world-s{scale:g}"
    if not (world / "posts.csv").exists():
        generate(world, scale=scale, seed=seed)
    base = WORK / f"ingested-s{scale:g}.duckdb"
    if not base.exists():
        with cibwatch.open(base) as ws:
            ws.ingest(world, progress=False)
    with cibwatch.open(base, read_only=True) as ws:
        posts = ws.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    cfg = Config()
    row: dict = {"scale": scale, "posts": posts}
    for engine in ("duckdb", "spark"):
        if engine == "spark":
            t0 = time.perf_counter()
            session, _own = spark_session(cfg.engine)
            row["spark_start_s"] = round(time.perf_counter() - t0, 1)
        path = WORK / f"{engine}-s{scale:g}.duckdb"
        shutil.copy(base, path)
        out = WORK / f"results-{engine}-s{scale:g}"
        with cibwatch.open(path) as ws:
            t0 = time.perf_counter()
            result = ws.detect(out=out, config=cfg, engine=engine)
            total = time.perf_counter() - t0
        row[engine] = {
            "signals_s": result.seconds["signals"],
            "graph_s": result.seconds["graph"],
            "detect_s": round(total, 1),
            "flagged": result.flagged_assets,
        }
    session.stop()
    duck, spark = row["duckdb"], row["spark"]
    row["ratio_engine_stages"] = round(
        (spark["signals_s"] + spark["graph_s"]) / (duck["signals_s"] + duck["graph_s"]), 1
    )
    row["ratio_detect"] = round(spark["detect_s"] / duck["detect_s"], 1)
    row["same_accounts"] = _accounts(WORK / f"results-duckdb-s{scale:g}") == _accounts(
        WORK / f"results-spark-s{scale:g}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(
        "| scale | posts | engine | signals s | graph s | detect s | flagged | "
        "Spark start s | Spark/DuckDB (signals+graph) | Spark/DuckDB (detect) | "
        "same accounts.csv |"
    )
    print("| --- " * 11 + "|")
    for scale in args.scales:
        r = run(scale, args.seed)
        for engine in ("duckdb", "spark"):
            e = r[engine]
            extra = (
                f"{r['spark_start_s']} | {r['ratio_engine_stages']} | {r['ratio_detect']} | "
                f"{'yes' if r['same_accounts'] else 'NO'}"
                if engine == "spark" else " | | | "
            )
            print(
                f"| {r['scale']:g} | {r['posts']:,} | {engine} | {e['signals_s']} | "
                f"{e['graph_s']} | {e['detect_s']} | {e['flagged']:,} | {extra} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
