"""Signals: every coordination signal as rows of `keys(platform, account_id, key_type,
key, ts, post_id)`, the input of the one co-activity kernel (`signals.kernel`)."""

from __future__ import annotations

import duckdb

from cibwatch.config import Config
from cibwatch.signals.accounts import extract_account_keys
from cibwatch.signals.engagement import extract_engagement_keys
from cibwatch.signals.links import extract_link_keys
from cibwatch.signals.text import extract_text_keys

__all__ = ["extract_keys"]


def extract_keys(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """Replace the rows of `keys` with every key of the workspace; returns the row count.

    One transaction: committed one by one, the dozen inserts pass DuckDB's WAL
    threshold again and again and each time checkpoint the database (about 1 CPU s of
    12 at 1.1M posts); one commit checkpoints once, and a failure keeps the old keys."""
    cfg = config.signals
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM keys")

        def the_others() -> None:
            extract_link_keys(con, cfg)
            extract_engagement_keys(con, cfg)
            extract_account_keys(con, cfg)

        # the others run while a worker groups near-duplicate texts (pure NumPy)
        extract_text_keys(con, cfg, meanwhile=the_others)
        rows = con.execute("SELECT count(*) FROM keys").fetchall()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return int(rows[0][0])
