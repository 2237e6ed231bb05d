"""Inauthentic follower share, criteria, bursts and totals on a hand-built follow graph."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

import cibwatch
from cibwatch.characterise import build_profiles
from cibwatch.config import Config

T0 = dt.datetime(2024, 4, 1, 9)


def load(ws, table: str, rows: list[dict]) -> None:
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [{k: r[k] for k in keys} for r in rows if tuple(sorted(r)) == keys]
        ws.con.register("new_rows", pa.Table.from_pylist(batch))
        ws.con.execute(f"INSERT INTO {table} ({', '.join(keys)}) SELECT {', '.join(keys)} "
                       "FROM new_rows")
        ws.con.unregister("new_rows")


def world(tmp_path, with_follows: bool = True):
    """Page P of the operation (with member M) has 30 bought followers (created within
    an hour, silent, following P within an hour), 20 real followers (created over years,
    active, following over weeks), and M follows P too."""
    ws = cibwatch.open(tmp_path / "ws.duckdb")
    accounts = [{"platform": "facebook", "account_id": "P", "asset_type": "page"},
                {"platform": "facebook", "account_id": "M"}]
    follows, posts = [], []
    for i in range(30):
        accounts.append({"platform": "facebook", "account_id": f"fake{i}",
                         "created_at": dt.datetime(2023, 12, 1, 3) + dt.timedelta(minutes=i)})
        follows.append({"platform": "facebook", "follower_id": f"fake{i}", "followee_id": "P",
                        "created_at": T0 + dt.timedelta(minutes=i)})
    for i in range(20):
        accounts.append({"platform": "facebook", "account_id": f"real{i}",
                         "created_at": dt.datetime(2015, 1, 1) + dt.timedelta(days=97 * i)})
        follows.append({"platform": "facebook", "follower_id": f"real{i}", "followee_id": "P",
                        "created_at": T0 + dt.timedelta(days=1 + 2 * i, hours=i)})
        posts += [{"platform": "facebook", "post_id": f"r{i}-{k}", "account_id": f"real{i}",
                   "created_at": T0} for k in range(3)]
    follows.append({"platform": "facebook", "follower_id": "M", "followee_id": "P",
                    "created_at": T0 + dt.timedelta(days=30)})
    # Follows of someone outside the operation do not count.
    follows.append({"platform": "facebook", "follower_id": "real0", "followee_id": "elsewhere",
                    "created_at": T0})
    posts += [{"platform": "facebook", "post_id": f"m{k}", "account_id": "M",
               "created_at": T0} for k in range(2)]
    load(ws, "accounts", accounts)
    load(ws, "posts", posts)
    if with_follows:
        load(ws, "follows", follows)
    load(ws, "clusters", [{"cluster_id": "c", "platform": "facebook", "n_assets": 2,
                           "score": 1.0}])
    load(ws, "cluster_members", [
        {"cluster_id": "c", "platform": "facebook", "account_id": a, "score": 1.0}
        for a in ("P", "M")])
    load(ws, "operations", [{"operation_id": "op", "confidence": 1.0}])
    load(ws, "operation_clusters", [{"operation_id": "op", "cluster_id": "c"}])
    return ws


def test_inauthentic_share_and_criteria(tmp_path):
    f = build_profiles(world(tmp_path).con, Config())["o:op"]["followers"]
    assert f["distinct_followers"] == 51
    assert f["inauthentic_followers"] == 31  # 30 bought + the member
    assert f["inauthentic_follower_share"] == round(31 / 51, 4)
    assert f["criteria"] == {"created_in_bursts": 30, "no_activity": 30,
                             "followed_in_bursts": 30, "in_operation": 1}
    assert f["examples"]["in_operation"] == ["M"]
    assert len(f["examples"]["created_in_bursts"]) == Config().characterise.max_listed
    burst = f["growth_bursts"][0]
    assert burst["followee_id"] == "P" and burst["follows"] == 30
    assert f["creation_bursts"][0]["accounts_created"] == 30
    assert "51 distinct accounts" in f["evidence"]


def test_one_criterion_alone_is_not_enough(tmp_path):
    ws = world(tmp_path)
    # Real followers go silent: inactive, but created and following at their own pace.
    ws.con.execute("DELETE FROM posts WHERE account_id LIKE 'real%'")
    f = build_profiles(ws.con, Config())["o:op"]["followers"]
    assert f["criteria"]["no_activity"] == 50  # 30 bought, 20 real
    assert f["inauthentic_followers"] == 31


def test_no_follows_table_gives_null(tmp_path):
    prof = build_profiles(world(tmp_path, with_follows=False).con, Config())["o:op"]
    assert prof["followers"] is None
