"""Echo-chamber ratio, authentic engagement, amplifiers and the Breakout Scale on a
hand-built workspace with known answers."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

import cibwatch
from cibwatch.characterise import build_profiles, characterise
from cibwatch.characterise.engagement import breakout
from cibwatch.config import Config

T0 = dt.datetime(2024, 4, 1, 9)


def load(ws, table: str, rows: list[dict]) -> None:
    """Insert dict rows into a workspace table (missing columns take their defaults)."""
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [{k: r[k] for k in keys} for r in rows if tuple(sorted(r)) == keys]
        ws.con.register("new_rows", pa.Table.from_pylist(batch))
        ws.con.execute(f"INSERT INTO {table} ({', '.join(keys)}) SELECT {', '.join(keys)} "
                       "FROM new_rows")
        ws.con.unregister("new_rows")


def world(tmp_path):
    ws = cibwatch.open(tmp_path / "ws.duckdb")
    load(ws, "accounts", [
        {"platform": "x", "account_id": "op1", "handle": "op_one"},
        {"platform": "x", "account_id": "op2", "handle": "op_two"},
        {"platform": "facebook", "account_id": "op3", "asset_type": "page"},
        {"platform": "x", "account_id": "star", "handle": "<b>star</b>",
         "followers_count": 50_000},
        {"platform": "x", "account_id": "small", "followers_count": 40},
        {"platform": "x", "account_id": "other", "followers_count": 90_000},
    ])
    post = {"created_at": T0}
    load(ws, "posts", [
        {**post, "platform": "x", "post_id": "p1", "account_id": "op1", "text": "hi"},
        {**post, "platform": "x", "post_id": "p2", "account_id": "op2", "text": "yo"},
        {**post, "platform": "facebook", "post_id": "f1", "account_id": "op3"},
        # On p1: two by the operation (one its author's own reaction), three by others.
        {**post, "platform": "x", "post_id": "e1", "account_id": "op2", "kind": "comment",
         "parent_id": "p1"},
        {**post, "platform": "x", "post_id": "e2", "account_id": "op1", "kind": "reaction",
         "parent_id": "p1"},
        {**post, "platform": "x", "post_id": "e3", "account_id": "star", "kind": "share",
         "shared_id": "p1"},
        {**post, "platform": "x", "post_id": "e4", "account_id": "small", "kind": "reply",
         "parent_id": "p1"},
        {**post, "platform": "x", "post_id": "e5", "account_id": "other", "kind": "comment",
         "parent_id": "p2"},
        # A share by the operation of its own post, and engagement elsewhere (not counted).
        {**post, "platform": "x", "post_id": "e6", "account_id": "op1", "kind": "share",
         "shared_id": "p2"},
        {**post, "platform": "x", "post_id": "e7", "account_id": "star", "kind": "comment",
         "parent_id": "unrelated"},
        # Same post id on another platform is another post.
        {**post, "platform": "facebook", "post_id": "e8", "account_id": "fbuser",
         "kind": "comment", "parent_id": "p1"},
    ])
    load(ws, "clusters", [
        {"cluster_id": "cx", "platform": "x", "n_assets": 2, "score": 1.0},
        {"cluster_id": "cf", "platform": "facebook", "n_assets": 1, "score": 1.0},
        {"cluster_id": "other-c", "platform": "x", "n_assets": 1, "score": 1.0},
    ])
    load(ws, "cluster_members", [
        {"cluster_id": "cx", "platform": "x", "account_id": "op1", "score": 1.0},
        {"cluster_id": "cx", "platform": "x", "account_id": "op2", "score": 1.0},
        {"cluster_id": "cf", "platform": "facebook", "account_id": "op3", "score": 1.0},
        # "other" is flagged in another operation: not authentic, not own.
        {"cluster_id": "other-c", "platform": "x", "account_id": "other", "score": 1.0},
    ])
    load(ws, "operations", [{"operation_id": "op", "confidence": 1.0},
                            {"operation_id": "op-b", "confidence": 1.0}])
    load(ws, "operation_clusters", [
        {"operation_id": "op", "cluster_id": "cx"}, {"operation_id": "op", "cluster_id": "cf"},
        {"operation_id": "op-b", "cluster_id": "other-c"},
    ])
    return ws


def test_echo_chamber_ratio_counts_the_operations_own_engagement(tmp_path):
    ws = world(tmp_path)
    eng = build_profiles(ws.con, Config())["o:op"]["engagement"]
    # Received: e1 e2 e3 e4 e5 e6 = 6; own: e1 e2 e6 = 3.
    assert eng["engagements_received"] == 6
    assert eng["engagements_own"] == 3
    assert eng["echo_chamber_ratio"] == 0.5
    assert eng["engagements_authentic"] == 2  # star, small ("other" is flagged elsewhere)
    assert eng["engagements_other_flagged"] == 1
    assert eng["by_kind"] == {"comment": 2, "reaction": 1, "share": 2, "reply": 1}
    assert {e["post_id"] for e in eng["examples_own"]} == {"e1", "e2", "e6"}
    # The same ratio, independently, straight from the contract's definition.
    direct = ws.con.execute(
        """
        SELECT avg(CASE WHEN e.account_id IN ('op1', 'op2') THEN 1.0 ELSE 0.0 END)
        FROM posts e JOIN posts t ON t.platform = e.platform
         AND t.post_id = coalesce(e.parent_id, e.shared_id)
        WHERE e.kind <> 'post' AND t.account_id IN ('op1', 'op2') AND e.platform = 'x'
        """
    ).fetchall()[0][0]
    assert eng["echo_chamber_ratio"] == round(direct, 4)


def test_authentic_high_follower_amplifiers_are_listed(tmp_path):
    ws = world(tmp_path)
    eng = build_profiles(ws.con, Config())["o:op"]["engagement"]
    assert eng["authentic_amplifiers"] == [{
        "platform": "x", "account_id": "star", "handle": "<b>star</b>",
        "followers_count": 50_000, "engagements": 1, "post_ids": ["e3"],
        "target_post_ids": ["p1"],
    }]


def test_no_engagement_gives_null_ratio_and_category_one(tmp_path):
    ws = world(tmp_path)
    ws.con.execute("DELETE FROM posts WHERE kind <> 'post'")
    eng = build_profiles(ws.con, Config())["o:op-b"]["engagement"]
    assert eng["echo_chamber_ratio"] is None and eng["engagements_received"] == 0
    assert eng["breakout"]["category"] == 1


def test_breakout_scale_categories():
    cfg = Config().characterise
    assert breakout(["x"], {}, None, [], cfg)["category"] == 1
    assert breakout(["x", "facebook"], {}, None, [], cfg)["category"] == 2
    assert breakout(["x"], {"x": 9}, {"x": 2}, [], cfg)["category"] == 2
    assert breakout(["x", "facebook"], {"x": 9, "facebook": 7},
                    {"x": 1, "facebook": 1}, [], cfg)["category"] == 3
    # Authentic engagement below the minimum is not a breakout.
    assert breakout(["x"], {"x": 2}, {"x": 1}, [], cfg)["category"] == 1
    big = [{"platform": "x", "account_id": "a", "handle": "celebrity",
            "followers_count": 2_000_000}]
    out = breakout(["x"], {"x": 9}, {"x": 1}, big, cfg)
    assert out["category"] == 5 and "celebrity" in out["reason"]
    assert "4 to 6" in breakout(["x"], {}, None, [], cfg)["reason"]


def test_profiles_are_stored_per_operation_and_cluster(tmp_path):
    ws = world(tmp_path)
    characterise(ws.con, Config())
    ops = dict(ws.con.execute("SELECT operation_id, profile FROM operation_profiles")
               .fetchall())
    clusters = dict(ws.con.execute("SELECT cluster_id, profile FROM cluster_profiles")
                    .fetchall())
    assert set(ops) == {"op", "op-b"}
    assert set(clusters) == {"cx", "cf", "other-c"}
    assert not ws.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'cw_%'").fetchall()[0][0]


def test_empty_results_and_silent_operations(tmp_path):
    ws = cibwatch.open(tmp_path / "empty.duckdb")
    characterise(ws.con, Config())
    assert ws.con.execute("SELECT count(*) FROM operation_profiles").fetchall()[0][0] == 0
    # An operation whose assets never posted still gets a profile, with empty sections.
    load(ws, "clusters", [{"cluster_id": "c", "platform": "x", "n_assets": 1, "score": 1.0}])
    load(ws, "cluster_members", [{"cluster_id": "c", "platform": "x", "account_id": "ghost",
                                  "score": 1.0}])
    load(ws, "operations", [{"operation_id": "op", "confidence": 1.0}])
    load(ws, "operation_clusters", [{"operation_id": "op", "cluster_id": "c"}])
    prof = build_profiles(ws.con, Config())["o:op"]
    assert prof["posts"] == 0 and prof["narratives"] == []
    assert prof["time"]["utc_offset_hours"] is None and prof["time"]["shift_pattern"] is False
    assert prof["engagement"]["echo_chamber_ratio"] is None
    assert prof["followers"] is None
    assert prof["assets"]["tally_text"] == "1 X account"
