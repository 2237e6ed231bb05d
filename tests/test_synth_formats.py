"""Every output format holds the same world; the CLI writes it; big tables split in parts."""

from __future__ import annotations

import json
import sys

import duckdb
import pytest

from cibwatch.synth import generate, writer


def _read(con, path, fmt):
    if fmt == "csv":
        return f"read_csv('{path}', all_varchar = true)"
    if fmt == "jsonl":
        return f"read_json('{path}', format = 'newline_delimited')"
    return f"read_parquet('{path}')"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_formats_hold_the_same_world(tmp_path, small_world, fmt):
    out = tmp_path / fmt
    generate(out, scale=0.05, seed=3, fmt=fmt)
    assert (out / "labels.csv").read_bytes() == (small_world / "labels.csv").read_bytes()
    con = duckdb.connect()
    for table in ("accounts", "posts", "follows"):
        a = con.execute(f"SELECT count(*) FROM {_read(con, out / f'{table}.{fmt}', fmt)}"
                        ).fetchall()
        b = con.execute(f"SELECT count(*) FROM {_read(con, small_world / f'{table}.csv', 'csv')}"
                        ).fetchall()
        assert a == b and a[0][0] > 0
    posts = _read(con, out / f"posts.{fmt}", fmt)
    csv_posts = _read(con, small_world / "posts.csv", "csv")
    # Same rows: ids, timestamps, text and lists (CSV lists are space-joined cells).
    diff = con.execute(f"""
        SELECT count(*) FROM (
          SELECT platform, post_id, created_at::TIMESTAMPTZ AS t, text,
                 array_to_string(urls, ' ') AS u, array_to_string(hashtags, ' ') AS h
          FROM {posts}
          EXCEPT
          SELECT platform, post_id, created_at::TIMESTAMPTZ, text, urls, hashtags
          FROM {csv_posts})""").fetchall()[0][0]
    assert diff == 0
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                             f"{posts})").fetchall())
    assert types["urls"].endswith("[]") and types["hashtags"].endswith("[]")
    if fmt == "parquet":
        assert types["created_at"].startswith("TIMESTAMP")


def test_large_tables_are_split_into_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "PART_ROWS", 1500)
    generate(tmp_path, scale=0.05, seed=5, fmt="parquet")
    parts = sorted(p.name for p in tmp_path.glob("posts-*.parquet"))
    assert len(parts) >= 3 and not (tmp_path / "posts.parquet").exists()
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/posts-*.parquet')"
                    ).fetchall()[0][0]
    assert n == json.loads((tmp_path / "truth.json").read_text())["world"]["posts"]
    # Regenerating unsplit removes the stale parts (a reader would load both).
    monkeypatch.setattr(writer, "PART_ROWS", 10**9)
    generate(tmp_path, scale=0.05, seed=5, fmt="parquet")
    assert not list(tmp_path.glob("posts-*.parquet"))


def test_cli_synth(tmp_path, monkeypatch, capsys):
    from cibwatch import cli

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["cibwatch", *args])
        try:
            cli.main()
        except SystemExit as exc:
            return exc.code or 0, capsys.readouterr()
        return 0, capsys.readouterr()

    code, out = run("synth", "--scale", "0.05", "--seed", "2", "--out", str(tmp_path / "w"),
                    "--format", "jsonl")
    assert code == 0, out.err
    assert (tmp_path / "w" / "posts.jsonl").is_file() and "posts" in out.out
    code, out = run("synth", "--out", str(tmp_path / "v"), "--format", "xml")
    assert code == 2 and "csv, jsonl, parquet" in out.err
    code, out = run("synth", "--out", str(tmp_path / "v"), "--scale", "0")
    assert code == 2 and "--scale" in out.err


def test_viral_moments_are_hundreds_at_scale_one(tmp_path):
    """At scale 1 each viral moment draws hundreds of people, most within ten minutes."""
    generate(tmp_path, scale=1.0, seed=11, fmt="parquet")
    truth = json.loads((tmp_path / "truth.json").read_text())
    world = truth["world"]
    assert 85_000 <= world["posts"] <= 130_000
    con = duckdb.connect()
    posts = f"read_parquet('{tmp_path}/posts.parquet')"
    for event in truth["hard_negatives"]["viral"]:
        assert event["size"] >= 200
        if event["mode"] == "reshare":
            n = con.execute(f"""
                SELECT count(DISTINCT s.account_id) FROM {posts} s JOIN {posts} o
                ON s.platform = o.platform AND s.shared_id = o.post_id
                WHERE o.text = ? AND s.created_at <= o.created_at + INTERVAL 10 MINUTE""",
                            [event["headline"]]).fetchall()[0][0]
        else:
            n = con.execute(f"""SELECT count(DISTINCT account_id) FROM {posts}
                                WHERE list_contains(urls, ?)""", [event["url"]]).fetchall()[0][0]
        assert n >= 0.6 * event["size"]
    assert truth["hard_negatives"]["activist"]["size"] >= 100
