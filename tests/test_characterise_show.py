"""`cibwatch show`: the stored profile rendered safely, as JSON, and a clean error."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pyarrow as pa
from typer.testing import CliRunner

import cibwatch
from cibwatch.characterise import characterise
from cibwatch.cli import app
from cibwatch.config import Config

HOSTILE = "[bold red]owned[/] \x1b[31mANSI\x1b[0m <script>alert(1)</script> \u202eevil"


def load(ws, table: str, rows: list[dict]) -> None:
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [{k: r[k] for k in keys} for r in rows if tuple(sorted(r)) == keys]
        ws.con.register("new_rows", pa.Table.from_pylist(batch))
        ws.con.execute(f"INSERT INTO {table} ({', '.join(keys)}) SELECT {', '.join(keys)} "
                       "FROM new_rows")
        ws.con.unregister("new_rows")


def workspace(tmp_path):
    path = tmp_path / "ws.duckdb"
    ws = cibwatch.open(path)
    t0 = dt.datetime(2024, 4, 1, 1)  # 09:00 at UTC+8, Monday
    posts = [{"platform": "x", "post_id": f"p{d}-{m}", "account_id": f"a{m % 3}",
              "created_at": t0 + dt.timedelta(days=d, minutes=m * 5),
              "text": HOSTILE if m % 2 else "The truth about Fort Detrick",
              "hashtags": ["[blink]tag[/blink]"]}
             for d in range(14) if d % 7 < 5 for m in range(36)]
    load(ws, "posts", posts)
    load(ws, "accounts", [{"platform": "x", "account_id": f"a{i}", "handle": f"=HYPER{i}()\x07",
                           "created_at": dt.datetime(2024, 1, 1)} for i in range(3)])
    load(ws, "clusters", [{"cluster_id": "c", "platform": "x", "n_assets": 3, "score": 1.0}])
    load(ws, "cluster_members", [{"cluster_id": "c", "platform": "x", "account_id": f"a{i}",
                                  "score": 1.0} for i in range(3)])
    load(ws, "operations", [{"operation_id": "op", "confidence": 1.0}])
    load(ws, "operation_clusters", [{"operation_id": "op", "cluster_id": "c"}])
    characterise(ws.con, Config())
    ws.close()
    return path


def test_show_renders_profile_safely(tmp_path):
    path = workspace(tmp_path)
    result = CliRunner().invoke(app, ["show", "op", "--workspace", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "operation op" in out and "3 X accounts" in out
    assert "narratives" in out and "echo chamber ratio" in out
    assert "[bold red]owned[/]" in out  # markup shown literally, not interpreted
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out


def test_show_json_is_the_stored_profile(tmp_path):
    path = workspace(tmp_path)
    result = CliRunner().invoke(app, ["show", "op", "-w", str(path), "--json"])
    assert result.exit_code == 0
    profile = json.loads(result.output)
    with cibwatch.open(path, read_only=True) as ws:
        stored = json.loads(ws.con.execute(
            "SELECT profile FROM operation_profiles WHERE operation_id = 'op'").fetchall()[0][0])
    assert profile == stored
    assert set(profile) >= {"time", "engagement", "followers", "narratives", "languages",
                            "targets", "top_domains", "top_hashtags", "assets",
                            "activity_timeline", "platforms", "first_seen", "last_seen",
                            "posts"}


def test_show_unknown_operation_is_a_one_line_error(tmp_path):
    path = workspace(tmp_path)
    run = subprocess.run([sys.executable, "-m", "cibwatch.cli", "show", "nope", "-w", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "nope" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_show_lists_teams_with_their_hours():
    """Teams found in an operation (different office hours) are shown with their hours,
    breaks and the clusters they sit in, data-derived names escaped."""
    from io import StringIO

    from rich.console import Console

    from cibwatch.characterise.show import render

    profile = {"assets": {"tally_text": "8 X accounts"}, "platforms": ["x"], "posts": 900,
               "time": {"schedule": "office", "utc_offset_hours": 8.0, "teams": [
                   {"accounts": 5, "posts": 600,
                    "work_hours": [{"start": "09:00", "end": "11:30"}],
                    "breaks": [{"name": "lunch", "start": "11:30", "end": "13:30"}],
                    "clusters": {"x-c1": 4, "[red]x-c2[/]": 1}},
                   {"accounts": 3, "posts": 300,
                    "work_hours": [{"start": "10:00", "end": "12:30"}],
                    "breaks": [], "clusters": {"x-c1": 3}}]}}
    buf = StringIO()
    render("op", profile, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "team 1 (5 accounts, 600 posts): 09:00-11:30; breaks lunch 11:30-13:30" in out
    assert "mostly in x-c1 (4), [red]x-c2[/] (1)" in out
    assert "team 2 (3 accounts, 300 posts): 10:00-12:30; mostly in x-c1 (3)" in out
