"""The results folder: accounts.csv and operations.json as SCHEMA.md defines them."""

from __future__ import annotations

import csv
import json

import cibwatch
from cibwatch.results import write_results


def _workspace(tmp_path, profile: dict):
    ws = cibwatch.open(tmp_path / "ws.duckdb")
    ws.con.execute(
        "INSERT INTO accounts (platform, account_id, asset_type) VALUES "
        "('facebook', '=cmd|x', 'page'), ('facebook', '002', 'account'), ('x', '7', 'account')"
    )
    ws.con.execute(
        "INSERT INTO clusters VALUES ('fb-1', 'facebook', 2, 0.9, NULL), ('x-1', 'x', 1, 0.8, NULL)"
    )
    ws.con.execute(
        "INSERT INTO cluster_members VALUES ('fb-1', 'facebook', '=cmd|x', 0.9, NULL), "
        "('fb-1', 'facebook', '002', 0.7, NULL), ('x-1', 'x', '7', 0.8, NULL)"
    )
    ws.con.execute("INSERT INTO operations (operation_id, confidence) VALUES ('op-1', 0.9)")
    ws.con.execute("INSERT INTO operation_clusters VALUES ('op-1', 'fb-1'), ('op-1', 'x-1')")
    ws.con.execute(
        "INSERT INTO operation_evidence VALUES ('op-1', 'text', 0.8, '40 identical texts')"
    )
    ws.con.execute(
        "INSERT INTO operation_profiles VALUES ('op-1', ?)", [json.dumps(profile)]
    )
    return ws


def test_results_follow_the_contract(tmp_path):
    profile = {
        "time": {"utc_offset_hours": 8.0, "shift_pattern": True},
        "engagement": {"echo_chamber_ratio": 0.9},
        "followers": {"inauthentic_follower_share": 0.4},
        "narratives": [{"label": "a", "share": 1.0, "examples": ["x"], "top_terms": ["a"]}],
    }
    with _workspace(tmp_path, profile) as ws:
        out = write_results(ws.con, tmp_path / "results")
    rows = list(csv.DictReader((out / "accounts.csv").open(encoding="utf-8")))
    assert [r["account_id"] for r in rows] == ["002", "'=cmd|x", "7"]
    assert {r["operation_id"] for r in rows} == {"op-1"}
    (op,) = json.loads((out / "operations.json").read_text(encoding="utf-8"))
    assert op["assets"] == {"facebook": {"page": 1, "account": 1}, "x": {"account": 1}}
    assert op["clusters"] == ["fb-1", "x-1"]
    assert op["utc_offset_hours"] == 8.0 and op["shift_pattern"] is True
    assert op["echo_chamber_ratio"] == 0.9 and op["inauthentic_follower_share"] == 0.4
    assert op["narratives"] == [{"label": "a", "share": 1.0, "examples": ["x"]}]
    assert op["evidence"] == [{"signal": "text", "strength": 0.8, "detail": "40 identical texts"}]
    assert op["confidence"] == 0.9


def test_null_profile_sections_give_null_fields(tmp_path):
    with _workspace(tmp_path, {"time": None, "followers": None, "narratives": None}) as ws:
        out = write_results(ws.con, tmp_path / "results")
    (op,) = json.loads((out / "operations.json").read_text(encoding="utf-8"))
    assert op["utc_offset_hours"] is None
    assert op["inauthentic_follower_share"] is None
    assert op["narratives"] == []
