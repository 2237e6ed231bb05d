"""Join single-platform clusters into operations (first version: one operation per cluster)."""

from __future__ import annotations

import duckdb

from cibwatch.config import Config


def link_operations(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Fill operations / operation_clusters / operation_evidence from the clusters table."""
    con.execute("DELETE FROM operation_clusters")
    con.execute("DELETE FROM operation_evidence")
    con.execute("DELETE FROM operation_links")
    con.execute("DELETE FROM operations")
    con.execute(
        """
        INSERT INTO operation_clusters
        SELECT 'op-' || cluster_id, cluster_id FROM clusters
        """
    )
    con.execute(
        """
        INSERT INTO operations (operation_id, confidence)
        SELECT 'op-' || cluster_id, score FROM clusters
        """
    )
