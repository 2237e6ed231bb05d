"""Takedown tally and its wording, creation batches, handle families, reused avatars."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

import cibwatch
from cibwatch.characterise import build_profiles
from cibwatch.characterise.assets import tally_text
from cibwatch.config import Config


def load(ws, table: str, rows: list[dict]) -> None:
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [{k: r[k] for k in keys} for r in rows if tuple(sorted(r)) == keys]
        ws.con.register("new_rows", pa.Table.from_pylist(batch))
        ws.con.execute(f"INSERT INTO {table} ({', '.join(keys)}) SELECT {', '.join(keys)} "
                       "FROM new_rows")
        ws.con.unregister("new_rows")


def test_tally_text_in_takedown_wording():
    assert tally_text({"facebook": {"account": 7704, "page": 954, "group": 15},
                       "instagram": {"account": 15}}) == (
        "7,704 Facebook accounts, 954 Pages, 15 Groups and 15 Instagram accounts")
    assert tally_text({"youtube": {"channel": 1}}) == "1 YouTube channel"
    assert tally_text({"x": {"account": 3}, "mastodon": {"account": 3}}) == (
        "3 Mastodon accounts and 3 X accounts")
    assert tally_text({}) == ""


def test_asset_profile(tmp_path):
    ws = cibwatch.open(tmp_path / "ws.duckdb")
    batch = dt.datetime(2023, 6, 1, 10)
    accounts = [{"platform": "facebook", "account_id": f"a{i}", "handle": f"lily_{1980 + i}",
                 "created_at": batch + dt.timedelta(minutes=2 * i),
                 "avatar_hash": "ffee" if i < 4 else f"h{i}"} for i in range(6)]
    accounts += [
        {"platform": "facebook", "account_id": "p1", "asset_type": "page", "handle": "News",
         "created_at": dt.datetime(2022, 1, 1), "extra": '{"previous_names": ["Cats"]}'},
        {"platform": "instagram", "account_id": "i1", "handle": "=cmd()",
         "created_at": dt.datetime(2023, 9, 9)},
    ]
    load(ws, "accounts", accounts)
    members = [(a["platform"], a["account_id"]) for a in accounts]
    load(ws, "clusters", [{"cluster_id": "c", "platform": "facebook", "n_assets": 8,
                           "score": 1.0}])
    load(ws, "cluster_members", [{"cluster_id": "c", "platform": p, "account_id": a,
                                  "score": 1.0} for p, a in members])
    load(ws, "operations", [{"operation_id": "op", "confidence": 1.0}])
    load(ws, "operation_clusters", [{"operation_id": "op", "cluster_id": "c"}])
    a = build_profiles(ws.con, Config())["o:op"]["assets"]
    assert a["tally"] == {"facebook": {"account": 6, "page": 1}, "instagram": {"account": 1}}
    assert a["tally_text"] == "6 Facebook accounts, 1 Page and 1 Instagram account"
    assert a["creation_batches"] == [{
        "platform": "facebook", "start": "2023-06-01T10:00:00", "end": "2023-06-01T10:10:00",
        "assets": 6, "examples": ["a0", "a1", "a2", "a3", "a4"]}]
    assert {"date": "2023-06-01", "assets": 6} in a["creation_timeline"]
    digits = [f for f in a["handle_families"] if f["kind"] == "digits"]
    assert digits == [{"pattern": "lily_<digits>", "kind": "digits", "assets": 6,
                       "examples": ["lily_1980", "lily_1981", "lily_1982", "lily_1983",
                                    "lily_1984"]}]
    assert a["reused_avatars"] == [{"avatar_hash": "ffee", "assets": 4,
                                    "examples": ["a0", "a1", "a2", "a3"]}]
    assert a["page_history"] == [{"platform": "facebook", "account_id": "p1",
                                  "field": "previous_names", "value": '["Cats"]'}]
