"""End to end through `cibwatch detect`: dataset folder in, accounts.csv and
operations.json out, clusters, edges and evidence stored in the workspace."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_cluster import build_world
from typer.testing import CliRunner

from cibwatch.cli import app
from cibwatch.workspace import Workspace

REQUIRED = ("operation_id", "clusters", "assets", "evidence", "confidence")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The hand-built world of test_cluster written as a Parquet dataset folder."""
    root = tmp_path_factory.mktemp("detect")
    ws = Workspace(root / "build.duckdb")
    groups = build_world(ws.con)
    folder = root / "dataset"
    folder.mkdir()
    for table, cols in (
        ("accounts", "platform, account_id, handle, display_name, created_at, avatar_hash"),
        ("posts", "platform, post_id, account_id, created_at, kind, text, urls, "
                  "shared_id, parent_id"),
        ("follows", "platform, follower_id, followee_id"),
    ):
        ws.con.execute(
            f"COPY (SELECT {cols} FROM {table}) TO '{folder / table}.parquet' (FORMAT parquet)"
        )
    ws.close()
    return folder, groups


def read_accounts(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_detect_dataset_then_workspace(dataset, tmp_path):
    folder, groups = dataset
    runner = CliRunner()
    ws_path = tmp_path / "ws.duckdb"
    res = runner.invoke(
        app, ["detect", str(folder), "--out", str(tmp_path / "r1"), "--workspace",
              str(ws_path), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    rows = read_accounts(tmp_path / "r1" / "accounts.csv")
    assert list(rows[0]) == ["platform", "account_id", "operation_id", "cluster_id", "score"]
    flagged = {r["account_id"] for r in rows}
    assert flagged == set(groups["ops"]) | set(groups["dormant"])
    assert all(0 <= float(r["score"]) <= 1 for r in rows)
    ops = json.loads((tmp_path / "r1" / "operations.json").read_text(encoding="utf-8"))
    assert len(ops) == 1
    op = ops[0]
    for key in REQUIRED:
        assert op[key] is not None and op[key] != []
    assert op["assets"] == {"x": {"account": len(flagged)}}
    assert {r["cluster_id"] for r in rows} == set(op["clusters"])
    assert any(e["signal"] == "identical text" for e in op["evidence"])

    with Workspace(ws_path, read_only=True) as ws:
        counts = {
            t: ws.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("keys", "edges", "edge_evidence", "clusters", "cluster_members")
        }
    assert all(n > 0 for n in counts.values()), counts

    # detect again from the workspace alone: same flags, same cluster ids
    res = runner.invoke(
        app, ["detect", "--workspace", str(ws_path), "--out", str(tmp_path / "r2"), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    again = read_accounts(tmp_path / "r2" / "accounts.csv")
    assert [(r["account_id"], r["cluster_id"]) for r in again] == [
        (r["account_id"], r["cluster_id"]) for r in rows
    ]
    with Workspace(ws_path, read_only=True) as ws:
        assert ws.con.execute("SELECT count(*) FROM edges").fetchall()[0][0] == counts["edges"]


def test_config_override_reaches_detection(dataset, tmp_path):
    folder, _ = dataset
    res = CliRunner().invoke(
        app, ["detect", str(folder), "--out", str(tmp_path / "r"), "--workspace",
              str(tmp_path / "ws.duckdb"), "--quiet", "--set", "cluster.min_cluster_size=50"]
    )
    assert res.exit_code == 0, res.output
    assert read_accounts(tmp_path / "r" / "accounts.csv") == []


def test_detect_caps_duckdb_memory_and_threads(dataset, tmp_path):
    from cibwatch.config import Config
    from cibwatch.pipeline import detect

    folder, groups = dataset
    cfg = Config().updated(
        {"engine": {"duckdb_memory_limit": "1GB", "duckdb_threads": 1}}, source="test"
    )
    with Workspace(tmp_path / "ws.duckdb") as ws:
        ws.ingest(folder)
        result = detect(ws, config=cfg)
        limit, threads = ws.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchall()[0]
    assert (limit, threads) == ("953.6 MiB", 1)
    assert result.flagged_assets == len(groups["ops"]) + len(groups["dormant"])
    run = subprocess.run(
        [str(Path(sys.executable).parent / "cibwatch"), "detect", str(folder), "--workspace",
         str(tmp_path / "ws2.duckdb"), "--quiet", "--set", "engine.duckdb_memory_limit=lots"],
        capture_output=True, text=True,
    )
    assert run.returncode == 2, run.stderr
    assert "engine.duckdb_memory_limit" in run.stderr and "Traceback" not in run.stderr


def test_detect_silences_duckdb_progress_bars(dataset, tmp_path):
    """DuckDB draws its own bars on long queries; detect reports its stages itself."""
    from cibwatch.pipeline import detect as run_detect

    folder, _ = dataset
    ws = Workspace(tmp_path / "ws.duckdb")
    ws.ingest(folder, progress=False)
    ws.con.execute("SET enable_progress_bar = true")
    run_detect(ws, tmp_path / "out")
    setting = ws.con.execute("SELECT current_setting('enable_progress_bar')").fetchall()
    ws.close()
    assert setting == [(False,)]
