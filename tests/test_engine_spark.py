"""The Spark engine gives the same keys, the same kernel pairs and the same detection
results as the DuckDB engine, on a real local Spark session (one for the module)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import cibwatch
from cibwatch.cli import app
from cibwatch.config import Config, EngineConfig
from cibwatch.engines import DuckDBEngine, EngineError, get_engine
from cibwatch.engines.spark import SparkEngine, spark_kernel, spark_keys, spark_sql

KEY_COLS = ["platform", "account_id", "key_type", "key", "ts", "post_id"]
PAIR_COLS = ["platform", "key_type", "key", "a", "b", "post_a", "ts_a", "post_b", "ts_b",
             "n_users"]


def _config() -> Config:
    # A small sample cap, so the sampling of popular keys (md5 order) is exercised.
    cfg = Config()
    return replace(cfg, signals=replace(cfg.signals, max_key_accounts=12))


def _naive(table: pa.Table) -> pa.Table:
    """Spark's UTC timestamps as the workspace's naive UTC timestamps."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            col = table.column(i).cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
            table = table.set_column(i, field.name, col)
    return table


def _sorted(table: pa.Table, cols: list[str]) -> list[tuple]:
    table = _naive(table)
    rows = zip(*(table.column(c).to_pylist() for c in cols), strict=True)
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


# ------------------------------------------------------------------ dialect (no Spark)
def test_dialect_rewrites_duckdb_only_constructs():
    sql = (
        "SELECT abs(epoch(x.ts) - epoch(y.ts)), ltrim(regexp_extract(u, '(a,b)', 4), '?'),"
        " list_sort(list_filter(string_split(q, '&'), lambda x: NOT regexp_matches(x, "
        "'^utm_'))), arg_min(post_id, ts), 'epoch(kept)'"
    )
    out = spark_sql(sql)
    assert "(unix_micros(x.ts) / 1e6) - (unix_micros(y.ts) / 1e6)" in out
    assert "trim(LEADING '?' FROM regexp_extract(u, '(a,b)', 4))" in out
    assert "array_sort(filter(split(q, '&'), x -> NOT rlike(x, '^utm_')))" in out
    assert "min_by(post_id, ts)" in out
    assert "'epoch(kept)'" in out  # string literals are never rewritten
    assert spark_sql("string_split(s, '.')") == r"split(s, '\.')"
    with pytest.raises(ValueError, match="md5"):
        spark_sql("SELECT hash(account_id)")


def test_unknown_engine_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="unknown engine 'flink'"):
        get_engine("flink", Config())
    assert isinstance(get_engine("duckdb", Config()), DuckDBEngine)
    result = subprocess.run(
        [sys.executable, "-m", "cibwatch.cli", "detect", "--workspace",
         str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "r"), "--engine", "flink",
         "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "unknown engine 'flink'" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ on Spark
@pytest.fixture(scope="module")
def spark():
    from cibwatch.engines.spark import spark_session

    session, own = spark_session(
        EngineConfig(spark_master="local[2]", spark_shuffle_partitions=2,
                     spark_driver_memory="1g")
    )
    yield session
    if own:
        session.stop()


@pytest.fixture(scope="module")
def world_ws(small_world, tmp_path_factory) -> Path:
    """The small world ingested once; tests copy the workspace file."""
    path = tmp_path_factory.mktemp("spark") / "world.duckdb"
    with cibwatch.open(path) as ws:
        ws.ingest(small_world, progress=False)
    return path


@pytest.fixture(scope="module")
def both_keys(world_ws, spark, tmp_path_factory):
    """Keys of the world from DuckDB (signals.extract_keys) and from Spark."""
    from cibwatch.signals import extract_keys

    cfg = _config()
    work = tmp_path_factory.mktemp("keys")
    path = work / "ws.duckdb"
    shutil.copy(world_ws, path)
    with cibwatch.open(path) as ws:
        extract_keys(ws.con, cfg)
        duck = ws.con.sql("SELECT * FROM keys").to_arrow_table()
        engine = SparkEngine(replace(cfg, engine=replace(cfg.engine,
                                                         spark_workdir=str(work / "x"))),
                             session=spark)
        inputs = engine.export_inputs(ws.con)
    keys = spark_keys(spark, inputs, cfg.signals).persist()
    return cfg, duck, keys


@pytest.mark.spark
def test_spark_keys_equal_duckdb_keys(both_keys):
    _cfg, duck, keys = both_keys
    theirs = keys.toArrow()
    assert duck.num_rows > 1000
    assert set(duck.column("key_type").to_pylist()) >= {"text", "neardup", "url", "follow"}
    assert _sorted(theirs, KEY_COLS) == _sorted(duck, KEY_COLS)


@pytest.mark.spark
def test_spark_kernel_pairs_and_stats_equal_duckdb(both_keys, spark):
    from cibwatch.graph import duckdb_kernel

    cfg, duck_keys, _ = both_keys
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE keys (platform VARCHAR, account_id VARCHAR, key_type VARCHAR, "
        "key VARCHAR, ts TIMESTAMP, post_id VARCHAR)"
    )
    con.register("_k", duck_keys)
    con.execute("INSERT INTO keys SELECT * FROM _k")
    duck_stats = duckdb_kernel(con, cfg)
    duck_pairs = con.sql("SELECT * FROM key_pairs").to_arrow_table()
    # the sample cap bit: some key has more users than the cap
    assert con.sql("SELECT max(n_users) FROM key_uses").fetchall()[0][0] > 12

    keys_df = spark.createDataFrame(duck_keys)
    k = spark_kernel(spark, keys_df, cfg)
    pairs = k.pairs.toArrow()
    stats = k.stats.toArrow()
    k.unpersist()
    assert duck_pairs.num_rows > 100
    assert _sorted(pairs, PAIR_COLS) == _sorted(duck_pairs, PAIR_COLS)

    exact = ["platform", "a", "b", "key_type", "c"]
    ours, theirs = _sorted(stats, [*exact, "idf", "lam"]), _sorted(
        duck_stats, [*exact, "idf", "lam"])
    assert [r[:5] for r in ours] == [r[:5] for r in theirs]
    for x, y in zip(ours, theirs, strict=True):
        # sums in a different order: equal up to floating-point rounding
        assert x[5] == pytest.approx(y[5], rel=1e-12, abs=1e-12)
        assert x[6] == pytest.approx(y[6], rel=1e-12, abs=1e-300)


def _accounts(path: Path) -> list[dict]:
    with open(path / "accounts.csv", newline="", encoding="utf-8") as f:
        return sorted(csv.DictReader(f), key=lambda r: (r["platform"], r["account_id"]))


@pytest.mark.spark
def test_detect_with_spark_engine_equals_duckdb(small_world, world_ws, spark, tmp_path):
    """`cibwatch detect DATASET --engine spark` writes the accounts.csv DuckDB writes."""
    duck_ws, spark_ws = tmp_path / "duck.duckdb", tmp_path / "spark.duckdb"
    with cibwatch.open(duck_ws) as ws:
        ws.ingest(small_world, progress=False)
        ws.detect(out=tmp_path / "duck", engine="duckdb")
        duck_edges = ws.con.sql("SELECT platform, a, b, n_keys FROM edges").to_arrow_table()
        duck_ev = ws.con.sql("SELECT count(*) FROM edge_evidence").fetchall()[0][0]
    result = CliRunner().invoke(
        app, ["detect", str(small_world), "--workspace", str(spark_ws), "--out",
              str(tmp_path / "spark"), "--engine", "spark", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    with cibwatch.open(spark_ws, read_only=True) as ws:
        edges = ws.con.sql("SELECT platform, a, b, n_keys FROM edges").to_arrow_table()
        ev = ws.con.sql("SELECT count(*) FROM edge_evidence").fetchall()[0][0]
        run = ws.con.sql("SELECT config->>'$.engine.name' FROM runs").fetchall()
    assert run == [("spark",)]
    cols = ["platform", "a", "b", "n_keys"]
    assert _sorted(edges, cols) == _sorted(duck_edges, cols)
    assert ev == duck_ev
    duck, ours = _accounts(tmp_path / "duck"), _accounts(tmp_path / "spark")
    assert [(r["platform"], r["account_id"], r["operation_id"], r["cluster_id"])
            for r in ours] == [(r["platform"], r["account_id"], r["operation_id"],
                                r["cluster_id"]) for r in duck]
    for x, y in zip(ours, duck, strict=True):
        assert float(x["score"]) == pytest.approx(float(y["score"]), abs=1e-9)
