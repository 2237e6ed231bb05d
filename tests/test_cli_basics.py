"""The `cibwatch` command as a user runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_ingest import ACCOUNTS, POSTS, dataset, write_csv

CLI = str(Path(sys.executable).parent / "cibwatch")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("ingest", "quarantine", "detect"):
        assert command in result.stdout


def test_ingest_prints_counts_and_where_to_see_the_quarantine(tmp_path):
    folder = dataset(tmp_path / "d", posts=[*POSTS, {**POSTS[0], "post_id": "9",
                                                     "created_at": "soon"}])
    result = run("ingest", folder, "--workspace", tmp_path / "w.duckdb", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    line = next(x for x in result.stdout.splitlines() if "posts" in x and "│" in x)
    assert [c.strip() for c in line.strip("│ ").split("│")] == ["posts", "3", "2", "0", "0", "1"]
    assert "cibwatch quarantine --workspace" in result.stdout

    shown = run("quarantine", "--workspace", tmp_path / "w.duckdb")
    assert shown.returncode == 0
    assert "Quarantine: 1 rows" in shown.stdout and "created_at: not a timestamp" in shown.stdout

    out = tmp_path / "q.csv"
    written = run("quarantine", "--workspace", tmp_path / "w.duckdb", "--csv", out)
    assert written.returncode == 0 and "1 quarantined rows written" in written.stdout
    with out.open(encoding="utf-8") as fh:
        assert [r["row_number"] for r in csv.DictReader(fh)] == ["3"]


def test_default_workspace_is_in_the_current_folder(tmp_path):
    folder = dataset(tmp_path / "d")
    result = run("ingest", folder, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cibwatch.duckdb").exists()


@pytest.mark.parametrize("case", ["missing_table", "no_header", "truncated", "no_folder"])
def test_unreadable_input_is_exit_2_and_one_line(tmp_path, case):
    folder = tmp_path / "d"
    folder.mkdir()
    write_csv(folder / "accounts.csv", ACCOUNTS)
    expected = str(folder)
    if case == "no_header":
        (folder / "posts.csv").write_text("x,1,2,2023-01-01\n")
        expected = "posts.csv"
    elif case == "truncated":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"platform": ["x"] * 1000, "post_id": ["1"] * 1000}),
                       folder / "posts.parquet")
        data = (folder / "posts.parquet").read_bytes()
        (folder / "posts.parquet").write_bytes(data[:-100])
        expected = "posts.parquet"
    elif case == "no_folder":
        folder = tmp_path / "absent"
        expected = "absent"
    result = run("ingest", folder, "--workspace", tmp_path / "w.duckdb")
    assert_one_line_error(result, expected)


def test_quarantine_of_a_missing_workspace_is_a_one_line_error(tmp_path):
    assert_one_line_error(run("quarantine", "--workspace", tmp_path / "none.duckdb"),
                          "no such workspace")
