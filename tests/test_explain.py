"""`explain`: why an asset is flagged, from the API and from the command line."""

from __future__ import annotations

import pytest
from test_cluster import build_world, detect_clusters
from typer.testing import CliRunner

from cibwatch.cli import app
from cibwatch.explain import UnknownAssetError, explain
from cibwatch.workspace import Workspace


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    path = tmp_path_factory.mktemp("explain") / "ws.duckdb"
    ws = Workspace(path)
    groups = build_world(ws.con)
    # a hostile handle and text reach the terminal only neutralised
    ws.con.execute(
        "UPDATE accounts SET handle = '[bold red]x\x1b[2J' WHERE account_id = 'op3'"
    )
    ws.con.execute(
        "UPDATE posts SET text = text || ' \x1b]0;pwned\x07' WHERE account_id = 'op3'"
    )
    detect_clusters(ws.con)
    ws.close()
    return path, groups


def test_explain_flagged_asset(detected):
    path, groups = detected
    ws = Workspace(path, read_only=True)
    info = explain(ws.con, "x", "op1")
    assert info["flagged"] and info["cluster"]["n_assets"] == 19
    assert info["reason"] == "edges"
    edge = info["edges"][0]
    assert edge["other"].startswith("op") and edge["q_value"] <= 0.001
    assert edge["signals"]["identical text"]["count"] >= 3
    ex = next(x for x in edge["examples"] if x["signal"] == "identical text")
    assert "harbour project" in ex["text"] and ex["text"] == ex["other_text"]
    assert ex["ts"] is not None and ex["other_ts"] is not None


def test_explain_attached_and_organic(detected):
    path, groups = detected
    ws = Workspace(path, read_only=True)
    dormant = explain(ws.con, "x", groups["dormant"][0])
    assert dormant["flagged"] and dormant["reason"].startswith("attached:")
    organic = explain(ws.con, "x", "o5")
    assert not organic["flagged"] and organic["edges"] == []
    with pytest.raises(UnknownAssetError):
        explain(ws.con, "x", "nobody")


def test_explain_cli_is_terminal_safe(detected):
    path, _ = detected
    runner = CliRunner()
    res = runner.invoke(app, ["explain", "x", "op1", "--workspace", str(path)])
    assert res.exit_code == 0, res.output
    assert "flagged: cluster x-c" in res.output
    assert "identical text" in res.output and "expected" in res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    res = runner.invoke(app, ["explain", "x", "op3", "--workspace", str(path)])
    assert res.exit_code == 0, res.output
    assert "[bold red]x" in res.output  # markup printed literally, not interpreted
    assert "pwned" in res.output and "\x1b" not in res.output and "\x07" not in res.output
    res = runner.invoke(app, ["explain", "x", "nobody", "--workspace", str(path)])
    assert res.exit_code != 0
