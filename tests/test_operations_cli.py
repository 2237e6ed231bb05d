"""`cibwatch ops ...` on a real workspace file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import test_operations_world as world
from typer.testing import CliRunner

import cibwatch
from cibwatch.cli import app
from cibwatch.config import Config
from cibwatch.operations import link_operations

CIBWATCH = Path(sys.executable).parent / "cibwatch"


def test_ops_commands(tmp_path):
    path = tmp_path / "ws.duckdb"
    with cibwatch.open(path) as ws:
        world.build(ws)
        link_operations(ws.con, Config())
        op_a = ws.con.execute(
            "SELECT operation_id FROM operation_clusters WHERE cluster_id = 'fa'"
        ).fetchall()[0][0]
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["ops", *args, "--workspace", str(path)])
        assert result.exit_code == 0, result.output
        return result.output

    hostile = "[bold]Alpha[/bold] =cmd"
    assert "9 assets" in run("save", op_a, "--name", hostile)
    listing = json.loads(run("list", "--json"))
    assert [o["known_operation"] for o in listing["operations"]].count(hostile) == 1
    assert listing["saved"][0]["name"] == hostile
    assert "operations" in run("list")
    # Rich markup in a name is shown as typed, not interpreted.
    assert "saved operation [bold]Alpha[/bold] =cmd" in run("show", hostile)
    shown = run("show", op_a)
    assert "cross_platform_link" in shown and "facebook cluster fa" in shown
    doc = json.loads(run("show", op_a, "--json"))
    assert doc["assets"] == 9 and doc["known_operation"] == hostile
    run("rename", hostile, "Alpha")
    out = tmp_path / "alpha.json"
    run("export", "Alpha", str(out))
    assert json.loads(out.read_text())["name"] == "Alpha"
    run("forget", "Alpha")
    run("import", str(out), "--name", "Alpha again")
    assert json.loads(run("list", "--json"))["saved"][0]["name"] == "Alpha again"


def test_ops_errors_are_one_line_and_exit_2(tmp_path):
    path = tmp_path / "ws.duckdb"
    cibwatch.open(path).close()
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "cibwatch-operation-signature", "version": 7}')
    proc = subprocess.run(
        [str(CIBWATCH), "ops", "import", str(bad), "--workspace", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and "version" in proc.stderr
    proc = subprocess.run(
        [str(CIBWATCH), "ops", "save", "op-missing", "--name", "X", "--workspace", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "no operation 'op-missing'" in proc.stderr
