"""The co-activity kernel: one self-join of `keys` that turns shared keys into pairs.

Every signal is a key; this one query finds, for every key, the pairs of distinct assets
that used it within that key type's time window. The SQL text lives here, built by
`kernel_sql`, and uses only constructs Spark SQL also has (window functions, equi-join,
CASE, abs, md5), so an engine module can run the same text on Spark (with
`unix_timestamp` for `epoch`).

Sub-quadratic on popular keys: each asset counts once per key (its first use), and a key
used by more than `max_key_accounts` assets keeps a deterministic pseudo-random sample of
that many (ordered by the md5 of the account id: DuckDB's and Spark's own `hash`
differ, md5 is the same on both). Such keys carry almost no rarity weight,
so the sample loses nothing the graph would use, and a key of 50,000 users costs at most
max_key_accounts^2 / 2 pairs instead of 1.25 billion.
"""

from __future__ import annotations

import duckdb

from cibwatch.config import SignalConfig

# Keys of the follow/engagement network: no window, and many per account, so their
# popular keys get the smaller `max_key_accounts_network` sample.
NETWORK_KEY_TYPES = ("follow", "engage")


def windows(cfg: SignalConfig) -> dict[str, int | None]:
    """Seconds within which two uses of a key count as co-activity; None = no window."""
    return {
        "text": cfg.window_text_s,
        "neardup": cfg.window_neardup_s,
        "url": cfg.window_url_s,
        "domain": cfg.window_domain_s,
        "share": cfg.window_share_s,
        "reply": cfg.window_reply_s,
        "react": cfg.window_react_s,
        "hashtags": cfg.window_hashtags_s,
        "media": cfg.window_media_s,
        "avatar": None,
        "batch": None,
        "handle": None,
        "name": None,
        "follow": None,
        "engage": None,
    }


def key_uses_sql(cfg: SignalConfig, source: str = "keys") -> str:
    """First use of each key by each asset, with the key's popularity and sample rank."""
    return f"""
    WITH first_use AS (
        SELECT platform, key_type, key, account_id,
               min(ts) AS ts, arg_min(post_id, ts) AS post_id
        FROM {source}
        GROUP BY platform, key_type, key, account_id
    )
    SELECT platform, key_type, key, account_id, ts, post_id,
           count(*) OVER (PARTITION BY platform, key_type, key) AS n_users,
           row_number() OVER (PARTITION BY platform, key_type, key
                              ORDER BY md5(account_id), account_id) AS sample_rank
    FROM first_use
    """


def kernel_sql(cfg: SignalConfig, uses: str = "key_uses") -> str:
    """Pairs (a < b) sharing a key within its window: one row per pair and key."""
    rows = ", ".join(
        f"('{k}', {'NULL' if w is None else int(w)})" for k, w in windows(cfg).items()
    )
    cap = int(cfg.max_key_accounts)
    small = int(cfg.max_key_accounts_network)
    network = ", ".join(f"'{k}'" for k in NETWORK_KEY_TYPES)
    return f"""
    WITH win(key_type, window_s) AS (VALUES {rows}),
    kept AS (
        SELECT u.*, w.window_s FROM {uses} u LEFT JOIN win w USING (key_type)
        WHERE u.n_users >= 2
          AND u.sample_rank <= CASE WHEN u.key_type IN ({network}) THEN {small}
                                    ELSE {cap} END
    )
    SELECT x.platform, x.key_type, x.key, x.account_id AS a, y.account_id AS b,
           x.post_id AS post_a, x.ts AS ts_a, y.post_id AS post_b, y.ts AS ts_b,
           x.n_users
    FROM kept x
    JOIN kept y
      ON x.platform = y.platform AND x.key_type = y.key_type AND x.key = y.key
     AND x.account_id < y.account_id
    WHERE x.window_s IS NULL OR x.ts IS NULL OR y.ts IS NULL
       OR abs(epoch(x.ts) - epoch(y.ts)) <= x.window_s
    """


def run_kernel(con: duckdb.DuckDBPyConnection, cfg: SignalConfig) -> None:
    """Materialise `key_uses` and `key_pairs` (temp tables) from the keys table."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE key_uses AS {key_uses_sql(cfg)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE key_pairs AS {kernel_sql(cfg)}")
