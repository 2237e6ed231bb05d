"""Signals: every coordination signal as rows of `keys(platform, account_id, key_type,
key, ts, post_id)`, the input of the one co-activity kernel (`signals.kernel`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import duckdb

from cibwatch.config import Config, SignalConfig
from cibwatch.signals.accounts import extract_account_keys
from cibwatch.signals.engagement import extract_engagement_keys
from cibwatch.signals.links import extract_link_keys
from cibwatch.signals.text import extract_text_keys

__all__ = ["extract_keys"]


def extract_keys(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """Replace the rows of `keys` with every key of the workspace; returns the row count.

    Two transactions at once, each committed whole: the text keys on `con` and every
    other key, SQL only, on a cursor in a worker thread, started once the texts are
    normalised (MinHash and grouping, after that, mostly use one core). DuckDB appends
    to one table from two transactions without conflict. One commit each: committed
    statement by statement, the dozen inserts pass DuckDB's WAL threshold again and
    again and each time checkpoint the database. A failure before the commits keeps the
    old keys; the text side commits first, so only a failing commit of the other side
    (after the first succeeded) would leave the text keys alone, and the next run
    replaces them."""
    cfg = config.signals
    others = con.cursor()
    try:
        others.execute("SET enable_progress_bar = false")
        con.execute("BEGIN TRANSACTION")
        others.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM keys")
            with ThreadPoolExecutor(1, thread_name_prefix="cibwatch-keys") as pool:
                rest = []
                try:
                    extract_text_keys(con, cfg, fingerprinted=lambda: rest.append(
                        pool.submit(_other_keys, others, cfg)))
                finally:
                    for started in rest:
                        started.result()
        except BaseException:
            con.execute("ROLLBACK")
            others.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        others.execute("COMMIT")
    finally:
        others.close()
    return int(con.execute("SELECT count(*) FROM keys").fetchall()[0][0])


def _other_keys(con: duckdb.DuckDBPyConnection, cfg: SignalConfig) -> None:
    """Every key that is not a text key: SQL over the posts, accounts and follows."""
    extract_link_keys(con, cfg)
    extract_engagement_keys(con, cfg)
    extract_account_keys(con, cfg)
