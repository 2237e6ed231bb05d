"""The co-activity kernel: one self-join of `keys` that turns shared keys into pairs.

Every signal is a key; this one query finds, for every key, the pairs of distinct assets
that used it within that key type's time window. The SQL text lives here, built by
`kernel_sql`, and uses only constructs Spark SQL also has (window functions, equi-join,
CASE, abs, md5), so an engine module can run the same text on Spark (with
`unix_timestamp` for `epoch`).

Integer ids inside: `encode_steps` gives every asset, key type and key a dictionary
integer first, so every GROUP BY, window and join over millions of key uses and pairs
runs on integers, not on string ids; the graph maps them back to strings only for the
edges and evidence it writes. Asset ids follow (platform, account_id) order, so `a < b`
and every sort by asset is the same as on the strings.

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


def encode_steps(cfg: SignalConfig, source: str = "keys") -> list[tuple[str, str]]:
    """The integer dictionaries of the keys table, as named SQL steps (temp tables):

    - `key_accounts(aid, platform, account_id, hrank)`: aid in (platform, account_id)
      order; hrank in md5 order, the popular-key sample order;
    - `key_kinds(kt, platform, key_type, window_s, cap)`: one per platform and key type,
      with its window and its popular-key cap;
    - `key_ids(kid, kt, key, h)`: one per key (kid in no particular order: nothing sorts
      by it), h the hash of (platform, key_type, key);
    - `key_clashes(h)`: the hashes two keys share (almost always none; one pair among
      the 20M keys of a 10.8M-post world);
    - `key_rows(kid, kt, aid, hrank, ts, post_id)`: the keys table on those ids, found
      by the key's hash (an integer join: on the key strings themselves, the join
      took 8 s more at 10.8M posts), or by the strings for a hash in `key_clashes`.

    DuckDB only (an engine takes `key_rows` from DuckDB), so DuckDB's `hash` is fine."""
    rows = ", ".join(
        f"('{k}', {'NULL' if w is None else int(w)})" for k, w in windows(cfg).items()
    )
    network = ", ".join(f"'{k}'" for k in NETWORK_KEY_TYPES)
    cap = int(cfg.max_key_accounts)
    small = int(cfg.max_key_accounts_network)
    return [
        ("key_accounts", f"""
            SELECT CAST(row_number() OVER (ORDER BY platform, account_id) AS INT) AS aid,
                   platform, account_id,
                   CAST(row_number() OVER (ORDER BY md5(account_id), account_id) AS INT)
                       AS hrank
            FROM (SELECT DISTINCT platform, account_id FROM {source})"""),
        ("key_kinds", f"""
            WITH win(key_type, window_s) AS (VALUES {rows})
            SELECT CAST(row_number() OVER (ORDER BY t.platform, t.key_type) AS INT) AS kt,
                   t.platform, t.key_type, w.window_s,
                   CASE WHEN t.key_type IN ({network}) THEN {small} ELSE {cap} END AS cap
            FROM (SELECT DISTINCT platform, key_type FROM {source}) t
            LEFT JOIN win w ON w.key_type = t.key_type"""),
        ("key_ids", f"""
            SELECT CAST(row_number() OVER () AS INT) AS kid, k.kt, s.key, s.h
            FROM (SELECT DISTINCT platform, key_type, key, {_key_hash()} AS h
                  FROM {source}) s
            JOIN key_kinds k ON k.platform = s.platform AND k.key_type = s.key_type"""),
        ("key_clashes", """
            SELECT h FROM key_ids GROUP BY h HAVING count(*) > 1"""),
        ("key_rows", f"""
            SELECT i.kid, i.kt, a.aid, a.hrank, s.ts, s.post_id
            FROM {source} s
            JOIN (SELECT kid, kt, h FROM key_ids ANTI JOIN key_clashes USING (h)) i
              ON i.h = {_key_hash("s.")}
            JOIN key_accounts a ON a.platform = s.platform AND a.account_id = s.account_id
            UNION ALL
            SELECT i.kid, i.kt, a.aid, a.hrank, s.ts, s.post_id
            FROM (SELECT * FROM {source} s
                  WHERE {_key_hash("s.")} IN (SELECT h FROM key_clashes)) s
            JOIN key_kinds k ON k.platform = s.platform AND k.key_type = s.key_type
            JOIN (SELECT kid, kt, key FROM key_ids SEMI JOIN key_clashes USING (h)) i
              ON i.kt = k.kt AND i.key = s.key
            JOIN key_accounts a ON a.platform = s.platform AND a.account_id = s.account_id"""),
    ]


def _key_hash(alias: str = "") -> str:
    """SQL: the 64-bit hash of a key row's (platform, key_type, key)."""
    return f"hash({alias}platform, {alias}key_type, {alias}key)"


def key_uses_sql(cfg: SignalConfig, source: str = "key_rows") -> str:
    """First use of each key by each asset, with the asset's md5 rank (hrank), the key's
    popularity and sample rank (INT, not BIGINT: they are copied into every key pair,
    ~100M rows at 10M posts)."""
    return f"""
    WITH first_use AS (
        SELECT kid, kt, aid, min(hrank) AS hrank,
               min(ts) AS ts, arg_min(post_id, ts) AS post_id
        FROM {source}
        GROUP BY kid, kt, aid
    )
    SELECT kid, kt, aid, hrank, ts, post_id,
           CAST(count(*) OVER (PARTITION BY kid) AS INT) AS n_users,
           CAST(row_number() OVER (PARTITION BY kid ORDER BY hrank) AS INT) AS sample_rank
    FROM first_use
    """


def kernel_sql(
    cfg: SignalConfig, uses: str = "key_uses", join: str = "", where: str = "TRUE"
) -> str:
    """Pairs (a < b) sharing a key within its window: one row per pair and key.

    `join` and `where` restrict the key uses paired (alias `u`, key kind `k`), after
    the popularity and sample rank are known: the pairs of the assets or key kinds
    kept are the same as in the whole kernel (`graph.pair_stats_steps` pairs windowed
    keys alone, and candidate assets alone).

    Keys with no window and keys with one are two joins, one after the other: with the
    window test as an OR on every joined row, counting the ~12M pairs at 1.1M posts
    took DuckDB 2.1-2.7 CPU s; split, 1.8-2.0."""
    def half(kinds: str, test: str) -> str:
        return f"""
        SELECT * FROM (
            WITH usable AS (
                SELECT u.kid, u.kt, u.aid, u.ts, u.n_users, k.window_s
                FROM {uses} u JOIN key_kinds k ON k.kt = u.kt {join}
                WHERE u.n_users >= 2 AND u.sample_rank <= k.cap AND ({where})
                  AND k.window_s {kinds}
            )
            SELECT x.kid, x.kt, x.aid AS a, y.aid AS b, x.ts AS ts_a, y.ts AS ts_b,
                   x.n_users
            FROM usable x
            JOIN usable y ON x.kid = y.kid AND x.aid < y.aid
            {test}
        )"""

    return half("IS NULL", "") + " UNION ALL " + half(
        "IS NOT NULL",
        "WHERE x.ts IS NULL OR y.ts IS NULL OR abs(epoch(x.ts) - epoch(y.ts)) <= x.window_s",
    )


def decoded_pairs_sql(pairs: str = "key_pairs", uses: str = "key_uses") -> str:
    """`pairs` with string ids again: (platform, key_type, key, a, b, post_a, ts_a,
    post_b, ts_b, n_users), the example posts from the pair's key uses."""
    return f"""
    SELECT k.platform, k.key_type, i.key, xa.account_id AS a, yb.account_id AS b,
           ua.post_id AS post_a, p.ts_a, ub.post_id AS post_b, p.ts_b, p.n_users
    FROM {pairs} p
    JOIN key_kinds k ON k.kt = p.kt
    JOIN key_ids i ON i.kid = p.kid
    JOIN key_accounts xa ON xa.aid = p.a
    JOIN key_accounts yb ON yb.aid = p.b
    JOIN {uses} ua ON ua.kid = p.kid AND ua.aid = p.a
    JOIN {uses} ub ON ub.kid = p.kid AND ub.aid = p.b
    """


def run_kernel(
    con: duckdb.DuckDBPyConnection, cfg: SignalConfig, pairs: bool = True
) -> None:
    """Materialise the dictionaries (`encode_steps`), `key_uses` and, with `pairs`, all
    of `key_pairs` (temp tables) from the keys table. The graph's kernel asks for no
    pairs: it counts them without keeping them (`graph.pair_stats_steps`)."""
    *dicts, (_, rows) = encode_steps(cfg)
    for name, sql in dicts:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    # key_rows is read once: planned inline, never materialised
    con.execute(f"CREATE OR REPLACE TEMP TABLE key_uses AS {key_uses_sql(cfg, f'({rows})')}")
    if pairs:
        con.execute(f"CREATE OR REPLACE TEMP TABLE key_pairs AS {kernel_sql(cfg)}")
