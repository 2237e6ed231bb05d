"""What the operation runs: the takedown tally, creation batches, handle families, avatars.

All figures come from `accounts` joined to the group's members, computed for every group
at once in SQL; Python only shapes the small results.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb

from cibwatch.config import CharacteriseConfig

PLATFORM_NAMES = {
    "facebook": "Facebook", "instagram": "Instagram", "x": "X", "twitter": "Twitter",
    "youtube": "YouTube", "tiktok": "TikTok", "reddit": "Reddit", "telegram": "Telegram",
    "vk": "VK", "weibo": "Weibo", "linkedin": "LinkedIn", "medium": "Medium",
    "pinterest": "Pinterest", "quora": "Quora", "threads": "Threads", "wechat": "WeChat",
}
# Takedown wording: "7,704 Facebook accounts, 954 Pages, 15 Groups and 15 Instagram accounts".
TYPE_WORDS = {"account": ("account", "accounts"), "page": ("Page", "Pages"),
              "group": ("Group", "Groups"), "channel": ("channel", "channels")}
TYPE_ORDER = {"account": 0, "page": 1, "group": 2, "channel": 3}


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform[:1].upper() + platform[1:])


def tally_text(tally: dict[str, dict[str, int]]) -> str:
    """The tally in takedown-report wording, largest platform first."""
    parts = []
    platforms = sorted(tally, key=lambda p: (-sum(tally[p].values()), p))
    for platform in platforms:
        types = sorted(tally[platform], key=lambda t: (TYPE_ORDER.get(t, 9), t))
        for i, asset_type in enumerate(types):
            n = tally[platform][asset_type]
            one, many = TYPE_WORDS.get(asset_type, (asset_type, asset_type + "s"))
            word = one if n == 1 else many
            # The platform is named once, on its first asset type; a lone Page keeps it too.
            prefix = f"{platform_name(platform)} " if i == 0 else ""
            parts.append(f"{n:,} {prefix}{word}")
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def asset_profiles(
    con: duckdb.DuckDBPyConnection, members: str, cfg: CharacteriseConfig
) -> dict[str, dict[str, Any]]:
    """`assets` section for every group in the `members(gid, platform, account_id)` table."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"tally": {}, "tally_text": "", "creation_timeline": [], "creation_batches": [],
                 "handle_families": [], "reused_avatars": [], "page_history": []}
    )
    rows = con.execute(
        f"""
        SELECT m.gid, m.platform, coalesce(a.asset_type, 'account') AS asset_type, count(*)
        FROM {members} m
        LEFT JOIN accounts a USING (platform, account_id)
        GROUP BY ALL ORDER BY 1, 2, 3
        """
    ).fetchall()
    for gid, platform, asset_type, n in rows:
        out[gid]["tally"].setdefault(platform, {})[asset_type] = int(n)
    for prof in out.values():
        prof["tally_text"] = tally_text(prof["tally"])

    for gid, day, n in con.execute(
        f"""
        SELECT m.gid, strftime(a.created_at, '%Y-%m-%d') AS day, count(*)
        FROM {members} m JOIN accounts a USING (platform, account_id)
        WHERE a.created_at IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2
        """
    ).fetchall():
        out[gid]["creation_timeline"].append({"date": day, "assets": int(n)})

    # Batches: assets of one platform created with gaps no longer than batch_gap_minutes.
    for gid, platform, start, end, n, examples in con.execute(
        f"""
        WITH c AS (
            SELECT m.gid, m.platform, a.account_id, a.created_at,
                   CASE WHEN a.created_at - lag(a.created_at) OVER w
                             <= INTERVAL (?) MINUTE THEN 0 ELSE 1 END AS new_batch
            FROM {members} m JOIN accounts a USING (platform, account_id)
            WHERE a.created_at IS NOT NULL
            WINDOW w AS (PARTITION BY m.gid, m.platform ORDER BY a.created_at, a.account_id)
        ), b AS (
            SELECT *, sum(new_batch) OVER (PARTITION BY gid, platform
                ORDER BY created_at, account_id ROWS UNBOUNDED PRECEDING) AS batch
            FROM c
        )
        SELECT gid, platform, min(created_at), max(created_at), count(*),
               list(account_id ORDER BY created_at, account_id)[1:5]
        FROM b GROUP BY gid, platform, batch
        HAVING count(*) >= ?
        ORDER BY gid, count(*) DESC, min(created_at), platform
        """,
        [cfg.batch_gap_minutes, cfg.batch_min_assets],
    ).fetchall():
        out[gid]["creation_batches"].append(
            {"platform": platform, "start": start.isoformat(), "end": end.isoformat(),
             "assets": int(n), "examples": list(examples)}
        )

    # Handle families: digits -> <digits> (lily_1987, lily_2201), then the coarser shape
    # where letters become <letters> too (anna_k_4412, jo_m_1290).
    for gid, kind, pattern, n, examples in con.execute(
        f"""
        WITH h AS (
            SELECT m.gid, lower(a.handle) AS handle,
                   regexp_replace(lower(a.handle), '[0-9]+', '<digits>', 'g') AS digits,
                   regexp_replace(
                       regexp_replace(lower(a.handle), '[0-9]+', '#', 'g'),
                       '[^#_.\\-]+', '<letters>', 'g') AS shape
            FROM {members} m JOIN accounts a USING (platform, account_id)
            WHERE a.handle IS NOT NULL AND a.handle <> ''
        ), fam AS (
            SELECT gid, 'digits' AS kind, digits AS pattern, handle FROM h
            WHERE digits LIKE '%<digits>%'
            UNION ALL
            SELECT gid, 'shape', replace(shape, '#', '<digits>'), handle FROM h
        )
        SELECT gid, kind, pattern, count(*) AS n, list(handle ORDER BY handle)[1:5]
        FROM fam GROUP BY ALL
        HAVING count(*) >= ?
        ORDER BY gid, n DESC, kind, pattern
        """,
        [cfg.handle_family_min_assets],
    ).fetchall():
        fams = out[gid]["handle_families"]
        if len(fams) < cfg.max_listed:
            fams.append({"pattern": pattern, "kind": kind, "assets": int(n),
                         "examples": list(examples)})

    for gid, avatar, n, examples in con.execute(
        f"""
        SELECT m.gid, a.avatar_hash, count(*) AS n, list(a.account_id ORDER BY a.account_id)[1:5]
        FROM {members} m JOIN accounts a USING (platform, account_id)
        WHERE a.avatar_hash IS NOT NULL AND a.avatar_hash <> ''
        GROUP BY ALL HAVING count(*) >= 2
        ORDER BY gid, n DESC, avatar_hash
        """
    ).fetchall():
        avatars = out[gid]["reused_avatars"]
        if len(avatars) < cfg.max_listed:
            avatars.append({"avatar_hash": avatar, "assets": int(n), "examples": list(examples)})

    # Page history lives in `extra` when an export carries it (name changes, admins).
    for gid, platform, account_id, key, value in con.execute(
        f"""
        WITH e AS (
            SELECT m.gid, m.platform, m.account_id, unnest(json_keys(a.extra)) AS key, a.extra
            FROM {members} m JOIN accounts a USING (platform, account_id)
            WHERE a.extra IS NOT NULL AND a.asset_type IN ('page', 'group', 'channel')
        )
        SELECT gid, platform, account_id, key, json_extract(extra, '$."' || key || '"')::VARCHAR
        FROM e
        WHERE regexp_matches(lower(key), 'history|previous|former|renam|name_change|admin')
        ORDER BY 1, 2, 3, 4
        """
    ).fetchall():
        hist = out[gid]["page_history"]
        if len(hist) < cfg.max_listed:
            hist.append({"platform": platform, "account_id": account_id, "field": key,
                         "value": value})
    return dict(out)
