"""Why is an asset flagged? Its cluster, the cluster's evidence, and its strongest edges
with the shared keys and example posts (with timestamps) that any reviewer can check."""

from __future__ import annotations

import json
from typing import Any

import duckdb
from scipy.stats import poisson

from cibwatch.cluster import SIGNAL_LABELS
from cibwatch.errors import CibwatchError


class UnknownAssetError(CibwatchError):
    """The asset is not in the workspace."""


def explain(
    con: duckdb.DuckDBPyConnection, platform: str, account_id: str, max_edges: int = 10
) -> dict[str, Any]:
    """Everything that flags (or fails to flag) one asset, as plain data."""
    acct = con.execute(
        "SELECT handle, display_name, asset_type, created_at FROM accounts "
        "WHERE platform = ? AND account_id = ?",
        [platform, account_id],
    ).fetchall()
    n_posts = con.execute(
        "SELECT count(*) FROM posts WHERE platform = ? AND account_id = ?",
        [platform, account_id],
    ).fetchall()[0][0]
    if not acct and not n_posts:
        raise UnknownAssetError(f"{platform}/{account_id}: no such asset in the workspace")
    handle, name, asset_type, created = acct[0] if acct else (None, None, "account", None)
    out: dict[str, Any] = {
        "platform": platform,
        "account_id": account_id,
        "handle": handle,
        "display_name": name,
        "asset_type": asset_type,
        "created_at": created,
        "posts": int(n_posts),
        "flagged": False,
        "cluster": None,
        "operation_id": None,
        "score": None,
        "reason": None,
        "edges": [],
    }
    member = con.execute(
        """
        SELECT m.cluster_id, m.score, m.reason, c.n_assets, c.score, c.evidence,
               (SELECT min(operation_id) FROM operation_clusters oc
                WHERE oc.cluster_id = m.cluster_id)
        FROM cluster_members m JOIN clusters c USING (cluster_id)
        WHERE m.platform = ? AND m.account_id = ?
        """,
        [platform, account_id],
    ).fetchall()
    if member:
        cid, score, reason, n_assets, cscore, evidence, op = member[0]
        out.update(flagged=True, score=float(score), reason=reason, operation_id=op)
        out["cluster"] = {
            "cluster_id": cid,
            "n_assets": int(n_assets),
            "score": float(cscore) if cscore is not None else None,
            "evidence": json.loads(evidence) if evidence else [],
        }
    edges = con.execute(
        """
        SELECT CASE WHEN a = ? THEN b ELSE a END AS other, weight, q_value, n_keys, signals
        FROM edges WHERE platform = ? AND (a = ? OR b = ?)
        ORDER BY weight DESC, other LIMIT ?
        """,
        [account_id, platform, account_id, account_id, max_edges],
    ).fetchall()
    for other, weight, q, n_keys, signals in edges:
        a, b = sorted([account_id, other])
        mine = "a" if a == account_id else "b"
        theirs = "b" if mine == "a" else "a"
        examples = con.execute(
            f"""
            SELECT ev.key_type, ev.key, ev.weight, ev.post_{mine}, ev.ts_{mine},
                   pm.text, ev.post_{theirs}, ev.ts_{theirs}, pt.text
            FROM edge_evidence ev
            LEFT JOIN posts pm ON pm.platform = ev.platform AND pm.post_id = ev.post_{mine}
            LEFT JOIN posts pt ON pt.platform = ev.platform AND pt.post_id = ev.post_{theirs}
            WHERE ev.platform = ? AND ev.a = ? AND ev.b = ?
            ORDER BY ev.weight DESC, ev.key_type, ev.key
            """,
            [platform, a, b],
        ).fetchall()
        other_handle = con.execute(
            "SELECT any_value(handle) FROM accounts WHERE platform = ? AND account_id = ?",
            [platform, other],
        ).fetchall()[0][0]
        sig = json.loads(signals) if signals else {}
        for v in sig.values():  # each signal's own Poisson tail, for the reader
            v["p"] = float(poisson.sf(v["count"] - 1, max(v["expected"], 1e-12)))
        out["edges"].append(
            {
                "other": other,
                "other_handle": other_handle,
                "weight": float(weight),
                "q_value": float(q),
                "shared_keys": int(n_keys),
                "signals": {
                    SIGNAL_LABELS.get(k, k): v
                    for k, v in sorted(sig.items(), key=lambda kv: kv[1].get("p", 1.0))
                    if v.get("count")
                },
                "examples": [
                    {
                        "signal": SIGNAL_LABELS.get(kt, kt),
                        "key": key,
                        "rarity": float(w) if w is not None else None,
                        "post": pm,
                        "ts": tm,
                        "text": txm,
                        "other_post": po,
                        "other_ts": to,
                        "other_text": txo,
                    }
                    for kt, key, w, pm, tm, txm, po, to, txo in examples
                ],
            }
        )
    return out
