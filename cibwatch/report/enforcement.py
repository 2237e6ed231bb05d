"""enforcement.csv / enforcement.parquet: every asset to action, with why.

One row per (operation, asset) that detection flagged, minus what analysts excluded in
the workbench (`review_exclusions`) and minus operations they rejected; with
`confirmed_only`, only operations whose latest review decision is "confirmed". The CSV is
neutralised against spreadsheet formulas; the Parquet file keeps the raw values.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cibwatch.report.collect import CONFIRMED, MEMBERS_SQL, REJECTED, STATUS_SQL
from cibwatch.safety import csv_safe

COLUMNS = ["operation_id", "operation_name", "review_status", "platform", "account_id",
           "asset_type", "handle", "display_name", "cluster_id", "score", "evidence_summary"]


def enforcement_rows(con: duckdb.DuckDBPyConnection, confirmed_only: bool = False,
                     operation_id: str | None = None) -> list[dict[str, Any]]:
    """The enforcement list as dicts with COLUMNS, by operation, score descending."""
    rows = con.execute(
        f"""
        WITH st AS (SELECT o.operation_id, o.name, {STATUS_SQL} AS status FROM operations o),
        pairs AS (
            SELECT platform, a AS account_id, weight FROM edges
            UNION ALL SELECT platform, b, weight FROM edges),
        links AS (SELECT platform, account_id, count(*) AS partners, sum(weight) AS weight
                  FROM pairs GROUP BY 1, 2),
        keys AS (
            SELECT platform, account_id, string_agg(DISTINCT key_type, ', '
                                                    ORDER BY key_type) AS kinds
            FROM (SELECT platform, a AS account_id, key_type FROM edge_evidence
                  UNION ALL SELECT platform, b, key_type FROM edge_evidence)
            GROUP BY 1, 2),
        reasons AS (SELECT cluster_id, platform, account_id, any_value(reason) AS reason
                    FROM cluster_members GROUP BY 1, 2, 3)
        SELECT m.operation_id, coalesce(st.name, m.operation_id), st.status, m.platform,
               m.account_id, coalesce(a.asset_type, 'account'), a.handle, a.display_name,
               m.cluster_id, m.score, l.partners, l.weight, k.kinds, r.reason
        FROM ({MEMBERS_SQL}) m
        JOIN st USING (operation_id)
        LEFT JOIN accounts a ON a.platform = m.platform AND a.account_id = m.account_id
        LEFT JOIN links l ON l.platform = m.platform AND l.account_id = m.account_id
        LEFT JOIN keys k ON k.platform = m.platform AND k.account_id = m.account_id
        LEFT JOIN reasons r ON r.cluster_id = m.cluster_id AND r.platform = m.platform
                           AND r.account_id = m.account_id
        WHERE st.status IS DISTINCT FROM ?
          AND (NOT ? OR st.status = ?)
          AND (? IS NULL OR m.operation_id = ?)
        ORDER BY m.operation_id, m.score DESC, m.platform, m.account_id
        """,
        [REJECTED, confirmed_only, CONFIRMED, operation_id, operation_id],
    ).fetchall()
    out = []
    for (op, name, status, platform, account_id, asset_type, handle, display, cluster, score,
         partners, weight, kinds, reason) in rows:
        parts = [f"cluster {cluster} (score {score:.2f})"]
        if partners:
            parts.append(f"co-activity with {partners} assets (total weight {weight:.1f})"
                         + (f" via {kinds}" if kinds else ""))
        if reason:
            parts.append(str(reason))
        out.append(dict(zip(COLUMNS, [
            op, name, status, platform, account_id, asset_type, handle, display, cluster,
            round(float(score), 4), "; ".join(parts)], strict=True)))
    return out


def write_enforcement(rows: list[dict[str, Any]], csv_path: str | Path,
                      parquet_path: str | Path | None = None) -> int:
    """Write the CSV (formula-safe) and optionally the Parquet copy; returns the row count."""
    with Path(csv_path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([csv_safe(row[c]) for c in COLUMNS])
    if parquet_path is not None:
        schema = pa.schema([(c, pa.float64() if c == "score" else pa.string())
                            for c in COLUMNS])
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, parquet_path)
    return len(rows)
