"""Who engages with the operation: its own assets (the echo chamber) or real people.

`echo_chamber_ratio` is the contract's definition (../shared/SCHEMA.md): of all comments,
replies, shares and reactions that the operation's posts received, the fraction made by
the operation's own assets. It is one SQL aggregate over every group at once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from cibwatch.config import CharacteriseConfig

BREAKOUT_LABELS = {
    1: "one platform, one community",
    2: "several platforms or several communities",
    3: "several platforms and several communities",
    4: "mainstream media pick-up",
    5: "amplification by high-profile figures",
    6: "policy response or call to violence",
}

# Engagements of every group: the engaging post, its author and the operation post it
# answers (a share points through shared_id, the other kinds through parent_id).
_ENGAGEMENTS = """
CREATE OR REPLACE TEMP TABLE cw_engagements AS
WITH own_posts AS (
    SELECT m.gid, p.platform, p.post_id
    FROM posts p JOIN {members} m USING (platform, account_id)
), eng AS (
    SELECT platform, post_id AS engagement_id, account_id AS engager, kind,
           CASE WHEN kind = 'share' THEN coalesce(shared_id, parent_id)
                ELSE coalesce(parent_id, shared_id) END AS target
    FROM posts
    WHERE kind IN ('comment', 'reply', 'share', 'reaction')
)
SELECT o.gid, e.platform, e.engagement_id, e.engager, e.kind, e.target,
       (m.account_id IS NOT NULL) AS own,
       (f.account_id IS NOT NULL) AS flagged
FROM eng e
JOIN own_posts o ON o.platform = e.platform AND o.post_id = e.target
LEFT JOIN {members} m ON m.gid = o.gid AND m.platform = e.platform
                     AND m.account_id = e.engager
LEFT JOIN (SELECT DISTINCT platform, account_id FROM cluster_members) f
       ON f.platform = e.platform AND f.account_id = e.engager
"""


def engagement_profiles(
    con: duckdb.DuckDBPyConnection, members: str, cfg: CharacteriseConfig
) -> dict[str, dict[str, Any]]:
    """`engagement` section for every group of `members(gid, platform, account_id)`."""
    con.execute(_ENGAGEMENTS.format(members=members))
    out: dict[str, dict[str, Any]] = {}
    for gid, received, own, authentic, by_kind in con.execute(
        """
        SELECT gid, count(*), count(*) FILTER (own),
               count(*) FILTER (NOT own AND NOT flagged),
               histogram(kind)
        FROM cw_engagements GROUP BY gid
        """
    ).fetchall():
        out[gid] = {
            "echo_chamber_ratio": round(own / received, 4) if received else None,
            "engagements_received": int(received),
            "engagements_own": int(own),
            "engagements_authentic": int(authentic),
            "engagements_other_flagged": int(received - own - authentic),
            "by_kind": {k: int(v) for k, v in dict(by_kind).items()},
            "authentic_amplifiers": [],
            "examples_own": [],
        }
    for gid, examples in con.execute(
        """
        SELECT gid, list([platform, engagement_id, engager, target]
                         ORDER BY engagement_id)[1:?]
        FROM cw_engagements WHERE own GROUP BY gid
        """,
        [cfg.max_listed],
    ).fetchall():
        out[gid]["examples_own"] = [
            {"platform": p, "post_id": e, "account_id": a, "target": t} for p, e, a, t in examples
        ]
    amplifiers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for gid, platform, account_id, handle, followers, n, post_ids, targets in con.execute(
        """
        SELECT e.gid, e.platform, e.engager, any_value(a.handle), any_value(a.followers_count),
               count(*) AS n, list(e.engagement_id ORDER BY e.engagement_id)[1:10],
               list(DISTINCT e.target ORDER BY e.target)[1:10]
        FROM cw_engagements e
        JOIN accounts a ON a.platform = e.platform AND a.account_id = e.engager
        WHERE NOT e.own AND NOT e.flagged AND a.followers_count >= ?
        GROUP BY 1, 2, 3
        ORDER BY 1, any_value(a.followers_count) DESC, n DESC, 3
        """,
        [cfg.amplifier_min_followers],
    ).fetchall():
        amplifiers[gid].append(
            {"platform": platform, "account_id": account_id, "handle": handle,
             "followers_count": int(followers), "engagements": int(n),
             "post_ids": list(post_ids), "target_post_ids": sorted(targets)}
        )
    communities = _communities(con, cfg)
    presence = defaultdict(list)
    for gid, platform in con.execute(
        f"SELECT DISTINCT gid, platform FROM {members} ORDER BY 1, 2"
    ).fetchall():
        presence[gid].append(platform)
    reached = defaultdict(dict)
    for gid, platform, n in con.execute(
        "SELECT gid, platform, count(*) FROM cw_engagements WHERE NOT own AND NOT flagged "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall():
        reached[gid][platform] = int(n)
    for gid in presence:
        prof = out.setdefault(gid, {
            "echo_chamber_ratio": None, "engagements_received": 0, "engagements_own": 0,
            "engagements_authentic": 0, "engagements_other_flagged": 0, "by_kind": {},
            "authentic_amplifiers": [], "examples_own": [],
        })
        prof["authentic_amplifiers"] = amplifiers.get(gid, [])[: cfg.max_listed]
        prof["breakout"] = breakout(presence[gid], reached.get(gid, {}),
                                    communities.get(gid), prof["authentic_amplifiers"], cfg)
        prof["evidence"] = _evidence(prof)
    return out


def _communities(con: duckdb.DuckDBPyConnection, cfg: CharacteriseConfig) -> dict[str, dict]:
    """Authentic engagers grouped into communities: connected parts of the follow graph
    among them, per platform. None per group when there are no follows to judge by."""
    if not con.execute("SELECT count(*) FROM follows").fetchall()[0][0]:
        return {}
    # Engagers numbered per (group, platform); follows among them are edges. One graph
    # holds every group (no edge crosses groups), so one components call does them all.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE cw_engager_nodes AS
        SELECT gid, platform, engager,
               (row_number() OVER (ORDER BY gid, platform, engager) - 1)::BIGINT AS i,
               (dense_rank() OVER (ORDER BY gid, platform) - 1)::BIGINT AS g
        FROM (SELECT DISTINCT gid, platform, engager FROM cw_engagements
              WHERE NOT own AND NOT flagged)
        """
    )
    groups = con.execute(
        "SELECT gid, platform FROM cw_engager_nodes GROUP BY ALL ORDER BY any_value(g)"
    ).fetchall()
    group_of = con.sql("SELECT g FROM cw_engager_nodes ORDER BY i").fetchnumpy()["g"]
    edges = con.sql(
        """
        SELECT a.i AS a, b.i AS b
        FROM follows f
        JOIN cw_engager_nodes a ON a.platform = f.platform AND a.engager = f.follower_id
        JOIN cw_engager_nodes b ON b.gid = a.gid AND b.platform = f.platform
                               AND b.engager = f.followee_id
        """
    ).fetchnumpy()
    con.execute("DROP TABLE cw_engager_nodes")
    # Weakly connected components (their numbering does not matter, only which engagers
    # share one), from the edge arrays as they come: no Python list of the edges.
    n = len(group_of)
    component = np.zeros(0, np.int64)
    if n:
        follows = sparse.csr_matrix(
            (np.ones(len(edges["a"])), (np.asarray(edges["a"]), np.asarray(edges["b"]))),
            shape=(n, n))
        component = connected_components(follows, directed=True, connection="weak")[1]
    big = np.bincount(component, minlength=1)[component] >= cfg.community_min_size
    # Communities per group: distinct big components among its engagers.
    pairs = np.unique(group_of[big] * (len(group_of) + 1) + component[big])
    count = np.bincount(pairs // (len(group_of) + 1), minlength=len(groups))
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (gid, platform), n in zip(groups, count.tolist(), strict=True):
        out[gid][platform] = int(n)
    return out


def breakout(
    platforms: list[str], reached: dict[str, int], communities: dict[str, int] | None,
    amplifiers: list[dict[str, Any]], cfg: CharacteriseConfig,
) -> dict[str, Any]:
    """Nimmo's Breakout Scale. Categories 1-3 come from the data (platforms where the
    operation is present; authentic communities its content reached); 5 only when an
    authentic account above `high_profile_followers` amplified it; 4 and 6 need evidence
    (media articles, policy responses) that a social-media dataset does not hold."""
    broke_out = {p: n for p, n in reached.items() if n >= cfg.breakout_min_engagements}
    if communities is None:
        reached_communities = {p: 1 for p in broke_out}
        how = "no follows table: each platform with authentic engagement counted as one community"
    else:
        reached_communities = {p: communities.get(p, 0) for p in broke_out}
        how = (f"communities are connected groups (>= {cfg.community_min_size}) of authentic "
               "engagers in the follow graph")
    several_platforms = len(platforms) > 1
    platforms_broken = [p for p, n in reached_communities.items() if n >= 1]
    several_communities = sum(reached_communities.values()) >= 1
    if len(platforms_broken) >= 2 or (several_platforms and several_communities
                                      and len(platforms_broken) >= 1
                                      and sum(reached_communities.values()) >= 2):
        category = 3
    elif several_platforms or several_communities:
        category = 2
    else:
        category = 1
    reason = (f"present on {len(platforms)} platform(s) ({', '.join(platforms)}); "
              f"authentic engagement (>= {cfg.breakout_min_engagements}) on "
              f"{len(broke_out)} platform(s)"
              + (f" reaching {sum(reached_communities.values())} outside community(ies)"
                 if broke_out else "") + f" ({how}).")
    high = [a for a in amplifiers if a["followers_count"] >= cfg.high_profile_followers]
    if high:
        category = 5
        top = high[0]
        reason += (f" Amplified by {len(high)} authentic account(s) with >= "
                   f"{cfg.high_profile_followers:,} followers, e.g. {top['platform']} "
                   f"{top['handle'] or top['account_id']} ({top['followers_count']:,}); "
                   "confirm they are public figures.")
    else:
        reason += (" Categories 4 to 6 need evidence of media pick-up, high-profile "
                   "amplification or a policy response; the data holds none.")
    return {"category": category, "label": BREAKOUT_LABELS[category], "reason": reason,
            "platforms": platforms, "authentic_engagement_by_platform": reached,
            "communities_reached": reached_communities}


def _evidence(p: dict[str, Any]) -> str:
    if not p["engagements_received"]:
        return "The operation's posts received no comments, replies, shares or reactions."
    return (f"Of {p['engagements_received']:,} comments, replies, shares and reactions on the "
            f"operation's posts, {p['engagements_own']:,} came from its own assets "
            f"(echo chamber ratio {p['echo_chamber_ratio']:.2f}); "
            f"{p['engagements_authentic']:,} from accounts not flagged in any cluster.")
