"""Stable operation ids across runs, and each operation's week-by-week history.

`operation_assets` remembers every asset ever attributed to an operation id. A new run's
operations take the id of the previous operation they share most assets with (greedy,
one to one, at least `id_min_overlap` of the smaller set), so ingesting more data and
running detect again keeps ids; an operation with no predecessor gets an id derived from
its smallest asset, so re-running on unchanged data gives the same ids.
"""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow as pa

from cibwatch.config import OperationsConfig


def assign_ids(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    groups: list[list[tuple[str, str]]],
) -> list[str]:
    """One id per group of (platform, account_id): a previous id by overlap, else new."""
    table = pa.table(
        {
            "g": [i for i, g in enumerate(groups) for _ in g],
            "platform": [p for g in groups for p, _ in g],
            "account_id": [a for g in groups for _, a in g],
        },
        schema=pa.schema(
            [("g", pa.int64()), ("platform", pa.string()), ("account_id", pa.string())]
        ),
    )
    con.register("_op_new_members", table)
    overlaps = con.execute(
        """
        WITH prev AS (SELECT operation_id, count(*) AS size FROM operation_assets GROUP BY 1)
        SELECT n.g, o.operation_id, count(*) AS shared, any_value(prev.size) AS size
        FROM _op_new_members n
        JOIN operation_assets o USING (platform, account_id)
        JOIN prev USING (operation_id)
        GROUP BY ALL
        ORDER BY shared DESC, n.g, o.operation_id
        """
    ).fetchall()
    con.unregister("_op_new_members")
    previous = {r[0] for r in con.execute("SELECT DISTINCT operation_id FROM operation_assets")
                .fetchall()}
    ids: list[str | None] = [None] * len(groups)
    used: set[str] = set()
    for g, op_id, shared, size in overlaps:
        if ids[g] is not None or op_id in used:
            continue
        if shared >= cfg.id_min_overlap * min(len(groups[g]), int(size)):
            ids[g] = op_id
            used.add(op_id)
    taken = previous | used
    for g, members in enumerate(groups):
        if ids[g] is not None:
            continue
        first = min(members) if members else ("", str(g))
        base = "op-" + hashlib.sha1(f"{first[0]}:{first[1]}".encode()).hexdigest()[:10]
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        ids[g] = candidate
        taken.add(candidate)
    return [i for i in ids if i is not None]


ASSET_WEEKS = "_op_asset_weeks_all"


def asset_weeks(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `ASSET_WEEKS(platform, account_id, wk, n, first_at, last_at)`: the
    posts per week of every asset `record` can count (clustered now, or attributed
    before), which does not depend on how clusters join into operations, so it can be
    read from `posts` while they are being joined. Call before `record` changes
    operation_assets."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {ASSET_WEEKS} AS
        SELECT p.platform, p.account_id,
               CAST(date_trunc('week', p.created_at) AS DATE) AS wk, count(*) AS n,
               min(p.created_at) AS first_at, max(p.created_at) AS last_at
        FROM posts p
        SEMI JOIN (SELECT platform, account_id FROM cluster_members
                   UNION SELECT platform, account_id FROM operation_assets) a
          ON a.platform = p.platform AND a.account_id = p.account_id
        GROUP BY ALL
        """
    )


def record(
    con: duckdb.DuckDBPyConnection, cfg: OperationsConfig, weeks: str | None = None
) -> None:
    """Remember the current members of each operation, then rebuild operation_history
    and operations.first_seen/last_seen from the posts of all its assets. `weeks`: the
    table `asset_weeks` made on this connection, else the posts are read here."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _op_current AS
        SELECT DISTINCT oc.operation_id, m.platform, m.account_id
        FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
        """
    )
    # An asset that moved to another operation leaves the old one.
    con.execute(
        """
        DELETE FROM operation_assets o
        WHERE EXISTS (SELECT 1 FROM _op_current c
                      WHERE c.platform = o.platform AND c.account_id = o.account_id
                        AND c.operation_id <> o.operation_id)
        """
    )
    con.execute(
        """
        INSERT INTO operation_assets
        SELECT c.operation_id, c.platform, c.account_id FROM _op_current c
        ANTI JOIN operation_assets o
          ON o.operation_id = c.operation_id AND o.platform = c.platform
         AND o.account_id = c.account_id
        """
    )
    con.execute("DELETE FROM operation_history")
    # Each asset's posts per week, read from `posts` once for both statements below.
    if weeks is None:
        asset_weeks(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _op_asset_weeks AS
        SELECT o.operation_id, o.platform, o.account_id, w.wk,
               -- an asset listed twice counts its posts twice, as joining posts did
               sum(w.n) AS n, min(w.first_at) AS first_at, max(w.last_at) AS last_at
        FROM operation_assets o
        JOIN {weeks or ASSET_WEEKS} w USING (platform, account_id)
        WHERE o.operation_id IN (SELECT operation_id FROM operations)
        GROUP BY ALL
        """
    )
    con.execute(
        """
        INSERT INTO operation_history
        WITH life AS (
            SELECT operation_id, platform, account_id, min(wk) AS first_wk, max(wk) AS last_wk
            FROM _op_asset_weeks GROUP BY ALL
        ),
        weeks AS (
            SELECT operation_id,
                   CAST(unnest(generate_series(CAST(min(first_wk) AS TIMESTAMP),
                                               CAST(max(last_wk) AS TIMESTAMP),
                                               INTERVAL 7 DAY)) AS DATE) AS week
            FROM life GROUP BY operation_id
        ),
        act AS (
            SELECT operation_id, wk AS week, count(*) AS assets, sum(n) AS posts
            FROM _op_asset_weeks GROUP BY ALL
        ),
        born AS (SELECT operation_id, first_wk AS week, count(*) AS n FROM life GROUP BY ALL),
        ended AS (SELECT operation_id, last_wk AS week, count(*) AS n FROM life GROUP BY ALL)
        SELECT w.operation_id, w.week, coalesce(act.assets, 0), coalesce(act.posts, 0),
               coalesce(born.n, 0),
               coalesce(sum(coalesce(ended.n, 0)) OVER (
                   PARTITION BY w.operation_id ORDER BY w.week
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
        FROM weeks w
        LEFT JOIN act USING (operation_id, week)
        LEFT JOIN born USING (operation_id, week)
        LEFT JOIN ended USING (operation_id, week)
        ORDER BY 1, 2
        """
    )
    con.execute(
        """
        UPDATE operations SET first_seen = s.first_seen, last_seen = s.last_seen
        FROM (SELECT operation_id, min(first_at) AS first_seen, max(last_at) AS last_seen
              FROM _op_asset_weeks GROUP BY 1) s
        WHERE operations.operation_id = s.operation_id
        """
    )
    con.execute("DROP TABLE _op_asset_weeks")
    con.execute(f"DROP TABLE IF EXISTS {ASSET_WEEKS}")
