"""The DuckDB workspace file: creation, reopening, migrations, version guard, rollback."""

from __future__ import annotations

import duckdb
import pytest

import cibwatch
from cibwatch import workspace
from cibwatch.workspace import SCHEMA_VERSION, WorkspaceError


def _tables(ws) -> set[str]:
    return {r[0] for r in ws.sql("SELECT table_name FROM information_schema.tables").fetchall()}


def test_fresh_file_has_every_table_at_current_version(tmp_path):
    path = tmp_path / "sub" / "ws.duckdb"
    with cibwatch.open(path) as ws:
        assert ws.schema_version() == SCHEMA_VERSION
        assert {"accounts", "posts", "follows", "quarantine", "ingest_log"} <= _tables(ws)
    assert path.exists()


def test_reopen_keeps_data_and_does_not_migrate_again(tmp_path):
    path = tmp_path / "ws.duckdb"
    with cibwatch.open(path) as ws:
        ws.con.execute(
            "INSERT INTO accounts (platform, account_id) VALUES ('x', '007')"
        )
    with cibwatch.open(path) as ws:
        assert ws.sql("SELECT account_id, asset_type FROM accounts").fetchall() == [
            ("007", "account")
        ]
        assert ws.sql("SELECT count(*) FROM schema_version").fetchall()[0][0] == SCHEMA_VERSION


def test_read_only_open_of_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="no such workspace"):
        cibwatch.open(tmp_path / "nope.duckdb", read_only=True)


def test_plain_duckdb_file_is_migrated_from_version_zero(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE notes (t VARCHAR)")
    con.execute("INSERT INTO notes VALUES ('kept')")
    con.close()
    with cibwatch.open(path) as ws:
        assert ws.schema_version() == SCHEMA_VERSION
        assert ws.sql("SELECT t FROM notes").fetchall() == [("kept",)]
        assert "posts" in _tables(ws)


def test_older_workspace_is_migrated_by_a_newer_cibwatch(tmp_path, monkeypatch):
    path = tmp_path / "v1.duckdb"
    with cibwatch.open(path) as ws:
        ws.con.execute("INSERT INTO accounts (platform, account_id) VALUES ('x', '1')")

    def add_column(con):
        con.execute("ALTER TABLE accounts ADD COLUMN verified BOOLEAN DEFAULT false")

    newer = [*workspace.MIGRATIONS, add_column]
    monkeypatch.setattr(workspace, "MIGRATIONS", newer)
    monkeypatch.setattr(workspace, "SCHEMA_VERSION", len(newer))
    with cibwatch.open(path) as ws:
        assert ws.schema_version() == len(newer)
        assert ws.sql("SELECT account_id, verified FROM accounts").fetchall() == [("1", False)]
    # opened again: nothing left to migrate, the migration is not run twice
    with cibwatch.open(path) as ws:
        assert ws.sql("SELECT count(*) FROM schema_version").fetchall()[0][0] == len(newer)


def test_failed_migration_leaves_the_file_at_its_old_version(tmp_path, monkeypatch):
    path = tmp_path / "v1.duckdb"
    cibwatch.open(path).close()

    def broken(con):
        con.execute("ALTER TABLE accounts ADD COLUMN half_done INTEGER")
        con.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(workspace, "MIGRATIONS", [*workspace.MIGRATIONS, broken])
    monkeypatch.setattr(workspace, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(duckdb.Error):
        cibwatch.open(path)
    monkeypatch.undo()
    with cibwatch.open(path) as ws:
        assert ws.schema_version() == SCHEMA_VERSION
        cols = [r[0] for r in ws.sql("DESCRIBE accounts").fetchall()]
        assert "half_done" not in cols


def test_workspace_from_a_newer_cibwatch_is_refused(tmp_path):
    path = tmp_path / "future.duckdb"
    with cibwatch.open(path) as ws:
        ws.con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 5])
    for read_only in (False, True):
        with pytest.raises(WorkspaceError, match="newer than this cibwatch"):
            cibwatch.open(path, read_only=read_only)


def test_transaction_rolls_back_everything_on_error(tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as ws:
        with pytest.raises(RuntimeError), ws.transaction() as con:
            con.execute("INSERT INTO accounts (platform, account_id) VALUES ('x', 'a')")
            con.execute("INSERT INTO follows VALUES ('x', 'a', 'b', NULL)")
            raise RuntimeError("boom")
        assert ws.sql("SELECT count(*) FROM accounts").fetchall()[0][0] == 0
        assert ws.sql("SELECT count(*) FROM follows").fetchall()[0][0] == 0
        with ws.transaction() as con:
            con.execute("INSERT INTO accounts (platform, account_id) VALUES ('x', 'a')")
        assert ws.sql("SELECT count(*) FROM accounts").fetchall()[0][0] == 1


def test_sql_and_tables_as_arrow(tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as ws:
        ws.con.execute("INSERT INTO accounts (platform, account_id) VALUES ('x', '01'), ('x', '2')")
        rel = ws.sql("SELECT account_id FROM accounts WHERE platform = ? ORDER BY 1", ["x"])
        assert rel.fetchall() == [("01",), ("2",)]
        table = ws.accounts()
        assert table.num_rows == 2
        assert table.to_pandas()["account_id"].tolist() == ["01", "2"]
