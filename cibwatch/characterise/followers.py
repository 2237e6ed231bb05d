"""Who follows the operation's assets, and how many of those followers are bought.

A follower is judged by four criteria: it belongs to the operation itself; its account was
created in a burst with many others among the group's followers; it has no or almost no
activity; its follow of the operation's asset came in a burst of follows. Operation
members count as inauthentic outright; others need `follower_min_criteria` of the three
behavioural criteria (any one alone fits plenty of real, quiet users). Everything is SQL
over all groups at once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb

from cibwatch.config import CharacteriseConfig

_FOLLOWERS = """
CREATE OR REPLACE TEMP TABLE cw_follow_rows AS
SELECT DISTINCT m.gid, f.platform, f.follower_id, f.followee_id, f.created_at
FROM follows f JOIN {members} m ON m.platform = f.platform AND m.account_id = f.followee_id;

CREATE OR REPLACE TEMP TABLE cw_follow_bursts AS
WITH b AS (
    SELECT gid, platform, followee_id,
           time_bucket(INTERVAL ({bucket}) MINUTE, created_at) AS bucket, count(*) AS n
    FROM cw_follow_rows WHERE created_at IS NOT NULL GROUP BY ALL
), w AS (
    SELECT *, sum(n) OVER (PARTITION BY gid, platform, followee_id ORDER BY bucket
                           RANGE BETWEEN INTERVAL ({reach}) MINUTE PRECEDING
                                     AND INTERVAL ({reach}) MINUTE FOLLOWING) AS wn
    FROM b
), s AS (
    SELECT gid, platform, followee_id, count(*) AS total,
           greatest(epoch(max(created_at) - min(created_at)) / 60.0, {window}) AS span_minutes
    FROM cw_follow_rows WHERE created_at IS NOT NULL GROUP BY ALL
)
SELECT w.gid, w.platform, w.followee_id, w.bucket, w.n
FROM w JOIN s USING (gid, platform, followee_id)
WHERE w.wn >= greatest({min_events}, {factor} * s.total * {window} / s.span_minutes);

CREATE OR REPLACE TEMP TABLE cw_followers AS
WITH fr AS (
    SELECT r.gid, r.platform, r.follower_id,
           bool_or(fb.bucket IS NOT NULL) AS followed_in_burst,
           bool_or(r.created_at IS NOT NULL) AS has_follow_time
    FROM cw_follow_rows r
    LEFT JOIN cw_follow_bursts fb
      ON fb.gid = r.gid AND fb.platform = r.platform AND fb.followee_id = r.followee_id
     AND fb.bucket = time_bucket(INTERVAL ({bucket}) MINUTE, r.created_at)
    GROUP BY ALL
), activity AS (
    SELECT p.platform, p.account_id, count(*) AS posts
    FROM posts p
    WHERE (p.platform, p.account_id) IN (SELECT platform, follower_id FROM fr)
    GROUP BY ALL
)
SELECT fr.*, a.created_at AS account_created,
       coalesce(act.posts, 0) AS posts,
       (m.account_id IS NOT NULL) AS in_operation
FROM fr
LEFT JOIN accounts a ON a.platform = fr.platform AND a.account_id = fr.follower_id
LEFT JOIN activity act ON act.platform = fr.platform AND act.account_id = fr.follower_id
LEFT JOIN {members} m ON m.gid = fr.gid AND m.platform = fr.platform
                     AND m.account_id = fr.follower_id;

CREATE OR REPLACE TEMP TABLE cw_creation_bursts AS
WITH b AS (
    SELECT gid, time_bucket(INTERVAL ({bucket}) MINUTE, account_created) AS bucket,
           count(*) AS n
    FROM cw_followers WHERE account_created IS NOT NULL GROUP BY ALL
), w AS (
    SELECT *, sum(n) OVER (PARTITION BY gid ORDER BY bucket
                           RANGE BETWEEN INTERVAL ({reach}) MINUTE PRECEDING
                                     AND INTERVAL ({reach}) MINUTE FOLLOWING) AS wn
    FROM b
), s AS (
    SELECT gid, count(*) AS total,
           greatest(epoch(max(account_created) - min(account_created)) / 60.0, {window})
               AS span_minutes
    FROM cw_followers WHERE account_created IS NOT NULL GROUP BY ALL
)
SELECT w.gid, w.bucket, w.n FROM w JOIN s USING (gid)
WHERE w.wn >= greatest({min_events}, {factor} * s.total * {window} / s.span_minutes);

CREATE OR REPLACE TEMP TABLE cw_follower_flags AS
SELECT f.*,
       (cb.bucket IS NOT NULL) AS created_in_burst,
       (f.posts <= {inactive}) AS no_activity,
       (f.account_created IS NOT NULL) AS has_created
FROM cw_followers f
LEFT JOIN cw_creation_bursts cb
  ON cb.gid = f.gid AND cb.bucket = time_bucket(INTERVAL ({bucket}) MINUTE, f.account_created);
"""


def follower_profiles(
    con: duckdb.DuckDBPyConnection, members: str, cfg: CharacteriseConfig
) -> dict[str, dict[str, Any] | None]:
    """`followers` section for every group; None for all when there is no follows data."""
    gids = [r[0] for r in con.execute(f"SELECT DISTINCT gid FROM {members}").fetchall()]
    if not con.execute("SELECT count(*) FROM follows").fetchall()[0][0]:
        return dict.fromkeys(gids)
    con.execute(_FOLLOWERS.format(
        members=members, bucket=int(cfg.burst_bucket_minutes),
        reach=int(cfg.burst_bucket_minutes * cfg.burst_neighbours),
        window=int(cfg.burst_bucket_minutes * (2 * cfg.burst_neighbours + 1)),
        min_events=int(cfg.burst_min_events), factor=float(cfg.burst_factor),
        inactive=int(cfg.inactive_max_posts),
    ))
    out: dict[str, dict[str, Any] | None] = {
        g: {"inauthentic_follower_share": None, "distinct_followers": 0,
            "inauthentic_followers": 0, "criteria": {}, "examples": {}, "growth_bursts": [],
            "creation_bursts": [], "evidence": "No follows of the operation's assets."}
        for g in gids
    }
    # Criteria that the data can judge: creation times and follow times may be missing.
    for gid, total, inauth, in_op, created, inactive, followed, combos in con.execute(
        f"""
        WITH f AS (
            SELECT *,
                   (created_in_burst::INT + no_activity::INT + followed_in_burst::INT)
                       AS criteria,
                   least({int(cfg.follower_min_criteria)},
                         1 + (max(has_created::INT) OVER (PARTITION BY gid))
                           + (max(has_follow_time::INT) OVER (PARTITION BY gid))) AS needed
            FROM cw_follower_flags
        )
        SELECT gid, count(*),
               count(*) FILTER (in_operation OR criteria >= needed),
               count(*) FILTER (in_operation), count(*) FILTER (created_in_burst),
               count(*) FILTER (no_activity), count(*) FILTER (followed_in_burst),
               histogram(criteria)
        FROM f GROUP BY gid
        """
    ).fetchall():
        prof = out[gid]
        assert prof is not None
        prof.update({
            "inauthentic_follower_share": round(inauth / total, 4) if total else None,
            "distinct_followers": int(total), "inauthentic_followers": int(inauth),
            "criteria": {"created_in_bursts": int(created), "no_activity": int(inactive),
                         "followed_in_bursts": int(followed), "in_operation": int(in_op)},
            "followers_by_criteria_met": {str(k): int(v) for k, v in dict(combos).items()},
        })
    for gid, criterion, examples in con.execute(
        f"""
        UNPIVOT (
            SELECT gid,
                   list(follower_id ORDER BY follower_id) FILTER (created_in_burst)
                       [1:{cfg.max_listed}] AS created_in_bursts,
                   list(follower_id ORDER BY follower_id) FILTER (no_activity)
                       [1:{cfg.max_listed}] AS no_activity,
                   list(follower_id ORDER BY follower_id) FILTER (followed_in_burst)
                       [1:{cfg.max_listed}] AS followed_in_bursts,
                   list(follower_id ORDER BY follower_id) FILTER (in_operation)
                       [1:{cfg.max_listed}] AS in_operation
            FROM cw_follower_flags GROUP BY gid
        ) ON created_in_bursts, no_activity, followed_in_bursts, in_operation
        INTO NAME criterion VALUE examples
        ORDER BY 1, 2
        """
    ).fetchall():
        if examples:
            out[gid]["examples"][criterion] = list(examples)
    bursts: dict[str, list] = defaultdict(list)
    bucket = int(cfg.burst_bucket_minutes)
    for gid, platform, followee, start, end, n in con.execute(
        f"""
        WITH b AS (
            SELECT *, bucket - lag(bucket) OVER w AS gap
            FROM cw_follow_bursts WINDOW w AS (PARTITION BY gid, platform, followee_id
                                               ORDER BY bucket)
        ), g AS (
            SELECT *, sum(CASE WHEN gap IS NULL OR gap > INTERVAL ({bucket}) MINUTE
                               THEN 1 ELSE 0 END)
                      OVER (PARTITION BY gid, platform, followee_id ORDER BY bucket
                            ROWS UNBOUNDED PRECEDING) AS island
            FROM b
        )
        SELECT gid, platform, followee_id, min(bucket),
               max(bucket) + INTERVAL ({bucket}) MINUTE, sum(n)::BIGINT
        FROM g GROUP BY gid, platform, followee_id, island
        -- ties broken by asset, so the listed bursts are the same run to run
        ORDER BY gid, sum(n) DESC, min(bucket), platform, followee_id
        """
    ).fetchall():
        if len(bursts[gid]) < cfg.max_listed:
            bursts[gid].append({"platform": platform, "followee_id": followee,
                                "start": start.isoformat(), "end": end.isoformat(),
                                "follows": int(n)})
    for gid, start, n in con.execute(
        "SELECT gid, bucket, n FROM cw_creation_bursts ORDER BY gid, n DESC, bucket"
    ).fetchall():
        listed = out[gid]["creation_bursts"]
        if len(listed) < cfg.max_listed:
            listed.append({"start": start.isoformat(), "accounts_created": int(n)})
    for gid, prof in out.items():
        if prof is None or not prof["distinct_followers"]:
            continue
        prof["growth_bursts"] = bursts.get(gid, [])
        c = prof["criteria"]
        prof["evidence"] = (
            f"{prof['distinct_followers']:,} distinct accounts followed one or more of its "
            f"assets; {prof['inauthentic_followers']:,} judged inauthentic "
            f"({prof['inauthentic_follower_share']:.0%}): {c['in_operation']:,} belong to the "
            f"operation, others meet {cfg.follower_min_criteria}+ of: created in bursts "
            f"({c['created_in_bursts']:,}), {cfg.inactive_max_posts} post(s) or fewer "
            f"({c['no_activity']:,}), followed in bursts ({c['followed_in_bursts']:,})."
        )
    return out
