"""Shared test helpers: build workspaces from generated worlds.

`truth_as_results` fills the result tables from a world's labels.csv (one cluster per
operation and platform), so stages after detection can be tested on known operations
without depending on detection quality.
"""

from __future__ import annotations

from pathlib import Path

from cibwatch.workspace import Workspace


def truth_as_results(ws: Workspace, labels_csv: str | Path) -> None:
    """Clusters/operations tables = the ground truth operators of `labels_csv`."""
    con = ws.con
    for table in (
        "operation_evidence", "operation_links", "operation_clusters", "operations",
        "cluster_members", "clusters", "operation_profiles", "cluster_profiles",
    ):
        con.execute(f"DELETE FROM {table}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE truth_labels AS
        SELECT * FROM read_csv('{Path(labels_csv).as_posix()}', all_varchar = true)
        WHERE role = 'operator'
        """
    )
    con.execute(
        """
        INSERT INTO cluster_members
        SELECT operation_id || '-' || platform, platform, account_id, 1.0, 'ground truth'
        FROM truth_labels
        """
    )
    con.execute(
        """
        INSERT INTO clusters
        SELECT cluster_id, any_value(platform), count(*), 1.0, NULL
        FROM cluster_members GROUP BY cluster_id
        """
    )
    con.execute(
        """
        INSERT INTO operation_clusters
        SELECT DISTINCT operation_id, operation_id || '-' || platform FROM truth_labels
        """
    )
    con.execute(
        """
        INSERT INTO operations (operation_id, confidence)
        SELECT DISTINCT operation_id, 1.0 FROM truth_labels
        """
    )
