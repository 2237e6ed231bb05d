"""Write the results folder of ../shared/SCHEMA.md from the workspace tables.

`accounts.csv` lists every flagged asset; `operations.json` one object per operation with
the contract's keys plus the full `profile` (docs/profile.md).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb

from cibwatch.safety import csv_safe

ACCOUNT_COLUMNS = ["platform", "account_id", "operation_id", "cluster_id", "score"]


def flagged_assets(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(platform, account_id, operation_id, cluster_id, score) of every flagged asset."""
    return con.execute(
        """
        SELECT m.platform, m.account_id, oc.operation_id, m.cluster_id, m.score
        FROM cluster_members m
        JOIN operation_clusters oc USING (cluster_id)
        ORDER BY oc.operation_id, m.cluster_id, m.platform, m.account_id
        """
    ).fetchall()


def operation_documents(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """One contract object per operation, largest first."""
    ops = con.execute(
        """
        SELECT o.operation_id, o.name, o.confidence, o.status, o.known_operation,
               p.profile
        FROM operations o LEFT JOIN operation_profiles p USING (operation_id)
        """
    ).fetchall()
    # Clusters and assets of all operations in one query each, not one per operation
    # (each asset query joins the accounts table).
    clusters_of: dict[str, list[str]] = {}
    for op_id, cluster_id in con.execute(
        "SELECT operation_id, cluster_id FROM operation_clusters ORDER BY 1, 2"
    ).fetchall():
        clusters_of.setdefault(op_id, []).append(cluster_id)
    assets_of: dict[str, dict[str, dict[str, int]]] = {}
    for op_id, platform, asset_type, n in con.execute(
        """
        SELECT oc.operation_id, m.platform, coalesce(a.asset_type, 'account'), count(*)
        FROM cluster_members m
        JOIN operation_clusters oc USING (cluster_id)
        LEFT JOIN accounts a ON a.platform = m.platform AND a.account_id = m.account_id
        GROUP BY ALL ORDER BY 1, 2, 4 DESC, 3
        """
    ).fetchall():
        assets_of.setdefault(op_id, {}).setdefault(platform, {})[asset_type] = int(n)
    docs = []
    for op_id, name, confidence, status, known, profile_json in ops:
        profile = json.loads(profile_json) if profile_json else {}
        clusters = clusters_of.get(op_id, [])
        assets = assets_of.get(op_id, {})
        evidence = [
            {"signal": s, "strength": float(st), "detail": d}
            for s, st, d in con.execute(
                "SELECT signal, strength, detail FROM operation_evidence "
                "WHERE operation_id = ? ORDER BY strength DESC, signal, detail",
                [op_id],
            ).fetchall()
        ]
        time_ = profile.get("time") or {}
        docs.append(
            {
                "operation_id": op_id,
                "name": name,
                "clusters": clusters,
                "assets": assets,
                "utc_offset_hours": time_.get("utc_offset_hours"),
                "shift_pattern": time_.get("shift_pattern"),
                "echo_chamber_ratio": (profile.get("engagement") or {}).get(
                    "echo_chamber_ratio"
                ),
                "inauthentic_follower_share": (profile.get("followers") or {}).get(
                    "inauthentic_follower_share"
                ),
                "narratives": [
                    {k: n[k] for k in ("label", "share", "examples") if k in n}
                    for n in profile.get("narratives") or []
                ],
                "evidence": evidence,
                "confidence": float(confidence),
                "status": status,
                "known_operation": known,
                "profile": profile,
            }
        )
    docs.sort(key=lambda d: -sum(sum(t.values()) for t in d["assets"].values()))
    return docs


def write_results(con: duckdb.DuckDBPyConnection, out: str | Path) -> Path:
    """Write accounts.csv and operations.json into `out` (created if missing)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "accounts.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(ACCOUNT_COLUMNS)
        for platform, account_id, op_id, cluster_id, score in flagged_assets(con):
            writer.writerow(
                [csv_safe(platform), csv_safe(account_id), op_id, cluster_id, f"{score:.4f}"]
            )
    docs = operation_documents(con)
    (out / "operations.json").write_text(
        json.dumps(docs, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return out
