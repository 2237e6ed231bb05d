"""The Spark engine gives the same keys, the same kernel pairs and the same detection
results as the DuckDB engine, on a real local Spark session (one for the module)."""

from __future__ import annotations

import csv
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
from cibwatch.engines.spark import spark_kernel, spark_sql

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
    with pytest.raises(ValueError, match="exact count"):
        spark_sql("SELECT approx_count_distinct(CAST(ts AS DATE))")


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


def _detect(dataset: Path, ws: Path, out: Path, engine: str):
    """`cibwatch detect DATASET --engine ENGINE`, in process (reuses the Spark session)."""
    return CliRunner().invoke(
        app, ["detect", str(dataset), "--workspace", str(ws), "--out", str(out),
              "--engine", engine, "--quiet", "--set", "signals.max_key_accounts=12"],
    )


@pytest.fixture(scope="module")
def detected(small_world, spark, tmp_path_factory):
    """The small world detected by both engines (a small sample cap, so the sampling of
    popular keys by md5 order is exercised). Tables written before a failing later
    stage stay in the workspace for the table comparisons."""
    root = tmp_path_factory.mktemp("engines")
    runs = {}
    for engine in ("duckdb", "spark"):
        result = _detect(small_world, root / f"{engine}.duckdb", root / engine, engine)
        runs[engine] = (root / f"{engine}.duckdb", root / engine, result)
    return runs


def _table(ws: Path, sql: str) -> pa.Table:
    with cibwatch.open(ws, read_only=True) as w:
        return w.con.sql(sql).to_arrow_table()


@pytest.mark.spark
def test_spark_keys_equal_duckdb_keys(detected):
    duck = _table(detected["duckdb"][0], "SELECT * FROM keys")
    ours = _table(detected["spark"][0], "SELECT * FROM keys")
    assert duck.num_rows > 1000
    assert set(duck.column("key_type").to_pylist()) >= {"text", "neardup", "url", "follow"}
    assert _sorted(ours, KEY_COLS) == _sorted(duck, KEY_COLS)


@pytest.mark.spark
def test_spark_kernel_pairs_and_stats_equal_duckdb(detected, spark):
    import duckdb

    from cibwatch.graph import duckdb_kernel
    from cibwatch.signals.kernel import decoded_pairs_sql, encode_steps

    cfg = _config()
    con = duckdb.connect()
    con.execute(f"ATTACH '{detected['duckdb'][0]}' AS w (READ_ONLY)")
    con.execute("CREATE TABLE keys AS SELECT * FROM w.keys")
    duckdb_kernel(con, cfg)  # leaves its results and dictionaries as temp tables
    duck_stats = con.sql("SELECT * FROM pair_stats").to_arrow_table()
    duck_tests = con.sql("SELECT n_tests FROM pair_tests").fetchall()[0][0]
    duck_pairs = con.sql(decoded_pairs_sql()).to_arrow_table()
    # the sample cap bites: some key has more users than the cap
    assert con.sql("SELECT max(n_users) FROM key_uses").fetchall()[0][0] > 12

    # the same integer rows (the dictionaries above) go to Spark
    rows = con.sql(dict(encode_steps(cfg.signals))["key_rows"]).to_arrow_table()
    kinds = con.sql("SELECT * FROM key_kinds").to_arrow_table()
    ids = con.sql("SELECT kid, key FROM key_ids").to_arrow_table()
    k = spark_kernel(spark, spark.createDataFrame(rows), spark.createDataFrame(kinds),
                     spark.createDataFrame(ids), cfg)
    con.register("spark_pairs", k.pairs.toArrow())
    con.register("spark_uses", k.uses.toArrow())
    pairs = con.sql(decoded_pairs_sql("spark_pairs", "spark_uses")).to_arrow_table()
    stats = k.stats.toArrow()
    tests = k.tests.toArrow().column("n_tests").to_pylist()
    k.unpersist()
    assert duck_pairs.num_rows > 100
    assert _sorted(pairs, PAIR_COLS) == _sorted(duck_pairs, PAIR_COLS)
    assert tests == [duck_tests]
    assert duck_tests > stats.num_rows > 0  # most pairs are tests that cannot pass

    exact = ["a", "b", "kt", "c", "days"]
    ours = _sorted(stats, [*exact, "idf", "lam"])
    theirs = _sorted(duck_stats, [*exact, "idf", "lam"])
    assert [r[:5] for r in ours] == [r[:5] for r in theirs]
    for x, y in zip(ours, theirs, strict=True):
        # sums in another order: equal up to floating-point rounding
        assert x[5] == pytest.approx(y[5], rel=1e-12, abs=1e-12)
        assert x[6] == pytest.approx(y[6], rel=1e-12, abs=1e-300)


def _accounts(path: Path) -> list[dict]:
    with open(path / "accounts.csv", newline="", encoding="utf-8") as f:
        return sorted(csv.DictReader(f), key=lambda r: (r["platform"], r["account_id"]))


@pytest.mark.spark
def test_spark_edges_equal_duckdb_edges(detected):
    cols = ["platform", "a", "b", "n_keys", "weight", "p_value", "q_value"]
    sql = f"SELECT {', '.join(cols)} FROM edges"
    ours = _sorted(_table(detected["spark"][0], sql), cols)
    duck = _sorted(_table(detected["duckdb"][0], sql), cols)
    assert [r[:4] for r in ours] == [r[:4] for r in duck]
    for x, y in zip(ours, duck, strict=True):
        # sums in another order: equal up to floating-point rounding
        assert x[4:] == pytest.approx(y[4:], rel=1e-9, abs=1e-300)
    ev_cols = ["platform", "a", "b", "key_type", "key", "post_a", "ts_a", "post_b", "ts_b"]
    sql = f"SELECT {', '.join(ev_cols)} FROM edge_evidence"
    assert _sorted(_table(detected["spark"][0], sql), ev_cols) == _sorted(
        _table(detected["duckdb"][0], sql), ev_cols)


@pytest.mark.spark
def test_detect_with_spark_engine_equals_duckdb(detected):
    """`cibwatch detect DATASET --engine spark` writes the accounts.csv DuckDB writes."""
    for engine in ("duckdb", "spark"):
        result = detected[engine][2]
        assert result.exit_code == 0, (engine, result.output, result.exception)
    run = _table(detected["spark"][0], "SELECT config->>'$.engine.name' AS e FROM runs")
    assert run.column("e").to_pylist() == ["spark"]
    duck, ours = _accounts(detected["duckdb"][1]), _accounts(detected["spark"][1])
    assert duck, "the DuckDB engine flagged nothing: the comparison would be empty"
    assert [(r["platform"], r["account_id"], r["operation_id"], r["cluster_id"])
            for r in ours] == [(r["platform"], r["account_id"], r["operation_id"],
                                r["cluster_id"]) for r in duck]
    for x, y in zip(ours, duck, strict=True):
        assert float(x["score"]) == pytest.approx(float(y["score"]), abs=1e-9)


@pytest.mark.spark
def test_empty_spark_output_reads_back_typed(spark, tmp_path):
    """A world with no shared key gives empty Spark outputs: they still come back as
    typed (empty) tables, not as a missing-file error."""
    import duckdb

    from cibwatch.engines.spark import _read_sql, _write

    df = spark.sql("SELECT 'x' AS platform, current_timestamp() AS ts").where("false")
    path = _write(df, tmp_path / "it's empty", ("ts",))
    table = duckdb.connect().sql(_read_sql(path, ("ts",))).to_arrow_table()
    assert table.num_rows == 0
    assert table.schema.field("ts").type == pa.timestamp("us")
