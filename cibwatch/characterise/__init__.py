"""Characterise each operation: time, engagement, followers, narratives, assets."""

from __future__ import annotations

import duckdb

from cibwatch.config import Config


def characterise(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Write one profile per operation and per cluster (docs/profile.md)."""
    con.execute("DELETE FROM operation_profiles")
    con.execute("DELETE FROM cluster_profiles")
