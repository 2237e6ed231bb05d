"""The co-activity kernel: windows per key type, account-level keys, the popular-key cap."""

from __future__ import annotations

from datetime import datetime, timedelta

from cibwatch.config import Config
from cibwatch.signals.kernel import (
    decoded_pairs_sql,
    encode_steps,
    kernel_sql,
    key_uses_sql,
    run_kernel,
    windows,
)
from cibwatch.workspace import Workspace

T0 = datetime(2024, 3, 1)


def add_keys(con, rows):
    con.executemany("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?)", rows)


def pairs(con):
    return con.execute(
        f"SELECT key_type, key, a, b FROM ({decoded_pairs_sql()}) ORDER BY ALL"
    ).fetchall()


def test_window_per_key_type(tmp_path):
    ws = Workspace(tmp_path / "k.duckdb")
    cfg = Config().signals
    hour = timedelta(hours=1)
    add_keys(ws.con, [
        # re-shares 30 s apart are inside the one-minute share window; 5 minutes are not
        ("x", "a", "share", "p1", T0, "s1"),
        ("x", "b", "share", "p1", T0 + timedelta(seconds=30), "s2"),
        ("x", "c", "share", "p1", T0 + timedelta(minutes=5), "s3"),
        # the same text 6 days apart is co-activity (7-day window)
        ("x", "a", "text", "t1", T0, "s4"),
        ("x", "c", "text", "t1", T0 + 6 * 24 * hour, "s5"),
        # account-level keys have no window
        ("x", "a", "avatar", "ff", None, None),
        ("x", "c", "avatar", "ff", None, None),
        # same key on another platform is another key
        ("y", "a", "text", "t1", T0, "s6"),
    ])
    run_kernel(ws.con, cfg)
    assert pairs(ws.con) == [
        ("avatar", "ff", "a", "c"),
        ("share", "p1", "a", "b"),
        ("text", "t1", "a", "c"),
    ]


def test_first_use_only_and_pair_order(tmp_path):
    ws = Workspace(tmp_path / "k.duckdb")
    add_keys(ws.con, [
        ("x", "b", "share", "p1", T0, "s1"),
        ("x", "b", "share", "p1", T0 + timedelta(seconds=5), "s2"),
        ("x", "a", "share", "p1", T0 + timedelta(seconds=9), "s3"),
    ])
    run_kernel(ws.con, Config().signals)
    rows = ws.con.execute(f"SELECT a, b, post_a, post_b FROM ({decoded_pairs_sql()})").fetchall()
    assert rows == [("a", "b", "s3", "s1")]


def test_popular_key_is_capped_not_quadratic(tmp_path):
    ws = Workspace(tmp_path / "k.duckdb")
    n = 1_000
    ws.con.execute(
        f"""
        INSERT INTO keys
        SELECT 'x', 'u' || i, 'url', 'viral.com/story',
               TIMESTAMP '2024-03-01' + INTERVAL (i) SECOND, 'p' || i
        FROM range({n}) t(i)
        """
    )
    cfg = Config().with_overrides(["signals.max_key_accounts=50"]).signals
    run_kernel(ws.con, cfg)
    n_pairs = ws.con.execute("SELECT count(*) FROM key_pairs").fetchall()[0][0]
    assert n_pairs == 50 * 49 // 2  # not 1000 * 999 / 2
    sampled = ws.con.execute(
        "SELECT count(*), max(n_users) FROM key_uses WHERE sample_rank <= 50"
    ).fetchall()[0]
    assert sampled == (50, n)
    # the sample is a fixed function of the data: rerunning picks the same accounts
    decoded = f"SELECT a, b FROM ({decoded_pairs_sql()}) ORDER BY ALL"
    first = ws.con.execute(decoded).fetchall()
    run_kernel(ws.con, cfg)
    assert ws.con.execute(decoded).fetchall() == first


def test_sql_is_one_text_per_step():
    cfg = Config().signals
    sql = dict(encode_steps(cfg))["key_kinds"]
    assert "window_s" in kernel_sql(cfg)
    for key_type, w in windows(cfg).items():
        assert f"('{key_type}', {'NULL' if w is None else w})" in sql
    assert "GROUP BY kid, kt, aid" in key_uses_sql(cfg)


def test_integer_ids_keep_the_string_order(tmp_path):
    """Asset ids follow (platform, account_id) order, so pairs (a < b) and every sort
    by asset are the same on the integers as on the strings; the same key text of two
    key types or platforms is two keys."""
    ws = Workspace(tmp_path / "k.duckdb")
    add_keys(ws.con, [
        ("x", "zed", "avatar", "k", None, None),
        ("x", "Abe", "avatar", "k", None, None),
        ("x", "abe", "avatar", "k", None, None),
        ("x", "abe", "name", "k", None, None),
        ("w", "zed", "avatar", "k", None, None),
    ])
    for name, sql in encode_steps(Config().signals)[:3]:
        ws.con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
    by_id = ws.con.execute(
        "SELECT platform, account_id FROM key_accounts ORDER BY aid"
    ).fetchall()
    assert by_id == sorted(by_id)
    assert ws.con.execute("SELECT count(*) FROM key_ids").fetchall()[0][0] == 3
    run_kernel(ws.con, Config().signals)
    assert pairs(ws.con) == [
        ("avatar", "k", "Abe", "abe"), ("avatar", "k", "Abe", "zed"),
        ("avatar", "k", "abe", "zed"),
    ]


def test_keys_whose_hashes_clash_stay_two_keys(tmp_path):
    """Key rows find their key id by the key's 64-bit hash; two follow keys of a
    10.8M-post world share one, and must still be two keys, not one."""
    ws = Workspace(tmp_path / "k.duckdb")
    one, two = "100036401185672", "100031871185629"
    hashes = ws.con.execute(
        "SELECT hash('facebook', 'follow', ?), hash('facebook', 'follow', ?)", [one, two]
    ).fetchall()[0]
    assert hashes[0] == hashes[1], "this DuckDB hashes them apart: pick another clash"
    add_keys(ws.con, [
        ("facebook", "a", "follow", one, None, None),
        ("facebook", "b", "follow", one, None, None),
        ("facebook", "c", "follow", two, None, None),
        ("facebook", "d", "follow", two, None, None),
        ("facebook", "e", "follow", "other", None, None),
        ("facebook", "f", "follow", "other", None, None),
    ])
    run_kernel(ws.con, Config().signals)
    assert ws.con.execute("SELECT count(*) FROM key_clashes").fetchall()[0][0] == 1
    assert pairs(ws.con) == [
        ("follow", two, "c", "d"), ("follow", one, "a", "b"), ("follow", "other", "e", "f"),
    ]
