"""Gather what the report shows about one operation from the workspace tables.

Everything downstream (HTML, Markdown, indicators, STIX, graphs) reads the same view, so
the exports cannot disagree. The operation's profile (docs/profile.md) comes first; where
a section of it is missing, the few figures that are cheap to compute from the raw tables
(asset tally, hour-of-week counts, daily activity, self-engagement, own domains) are
computed here, and anything else is left `None` for the templates to mark as not available.
Assets an analyst excluded in the workbench (`review_exclusions`) are left out everywhere.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import duckdb

from cibwatch.config import ReportConfig
from cibwatch.errors import CibwatchError

# Every (operation, asset) pair that cibwatch flags and no analyst excluded; one row per
# asset and operation, the cluster where it scored highest.
MEMBERS_SQL = """
SELECT oc.operation_id, cm.platform, cm.account_id,
       arg_max(cm.cluster_id, cm.score) AS cluster_id, max(cm.score) AS score
FROM cluster_members cm
JOIN operation_clusters oc USING (cluster_id)
WHERE NOT EXISTS (
    SELECT 1 FROM review_exclusions x
    WHERE x.operation_id = oc.operation_id AND x.platform = cm.platform
      AND x.account_id = cm.account_id)
GROUP BY ALL
"""

PLATFORM_NAMES = {
    "facebook": "Facebook", "instagram": "Instagram", "threads": "Threads", "x": "X",
    "twitter": "X", "youtube": "YouTube", "tiktok": "TikTok", "reddit": "Reddit",
    "telegram": "Telegram", "vk": "VK", "weibo": "Weibo", "medium": "Medium",
}
# Plural noun per asset type, as takedown reports write them ("954 Pages").
ASSET_NOUNS = {
    "account": ("account", "accounts"), "page": ("Page", "Pages"),
    "group": ("Group", "Groups"), "channel": ("channel", "channels"),
}
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class ReportError(CibwatchError):
    """The report cannot be made (unknown operation, unwritable folder)."""


def safe_name(value: str, limit: int = 60) -> str:
    """A file-name-safe form of an id from the data: letters, digits, '_' and '-' only."""
    name = re.sub("_+", "_", _UNSAFE_NAME.sub("_", str(value))).strip("_-")[:limit]
    return name or "operation"


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform.lower(), platform[:1].upper() + platform[1:])


def asset_noun(asset_type: str, n: int) -> str:
    singular, plural = ASSET_NOUNS.get(asset_type, (asset_type, asset_type + "s"))
    return singular if n == 1 else plural


def tally_phrase(platform: str, asset_type: str, n: int) -> str:
    """'7,704 Facebook accounts', as one line of Meta's indicator files."""
    return f"{n:,} {platform_name(platform)} {asset_noun(asset_type, n)}"


def tally_text(tally: list[dict]) -> str:
    """'7,704 Facebook accounts, 954 Pages, 15 Groups and 15 Instagram accounts'."""
    parts, seen = [], set()
    for row in tally:
        n, platform, asset_type = row["count"], row["platform"], row["asset_type"]
        if platform in seen:
            parts.append(f"{n:,} {asset_noun(asset_type, n)}")
        else:
            parts.append(tally_phrase(platform, asset_type, n))
            seen.add(platform)
    if len(parts) <= 1:
        return parts[0] if parts else "no assets"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def operation_views(
    con: duckdb.DuckDBPyConnection,
    operation_id: str | None = None,
    config: ReportConfig | None = None,
) -> list[dict[str, Any]]:
    """One view per operation (or just `operation_id`), largest first.

    Operations an analyst rejected are left out unless asked for by id.
    """
    config = config or ReportConfig()
    docs = _operations(con)
    if operation_id is not None:
        docs = [d for d in docs if d["operation_id"] == operation_id]
        if not docs:
            raise ReportError(f"no operation {operation_id!r} in the workspace")
    views = []
    used_names: set[str] = set()
    for doc in docs:
        if operation_id is None and review_status(con, doc["operation_id"]) == REJECTED:
            continue
        view = _view(con, doc, config)
        name = view["safe_id"]
        i = 2
        while name in used_names:
            name, i = f"{view['safe_id']}-{i}", i + 1
        view["safe_id"] = name
        used_names.add(name)
        views.append(view)
    return views


def _operations(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Operations with their profile JSON and evidence, most flagged assets first.

    Read here rather than through results.operation_documents so that a profile section
    of an unexpected shape degrades to "not available" instead of stopping the report.
    """
    rows = con.execute(
        f"""
        WITH n AS (SELECT operation_id, count(*) AS assets FROM ({MEMBERS_SQL}) GROUP BY 1)
        SELECT o.operation_id, o.name, o.confidence, o.status, o.known_operation, p.profile
        FROM operations o
        LEFT JOIN operation_profiles p USING (operation_id)
        LEFT JOIN n USING (operation_id)
        ORDER BY coalesce(n.assets, 0) DESC, o.operation_id
        """).fetchall()
    evidence: dict[str, list[dict]] = {}
    for op, signal, strength, detail in con.execute(
        "SELECT operation_id, signal, strength, detail FROM operation_evidence "
        "ORDER BY operation_id, strength DESC, signal").fetchall():
        evidence.setdefault(op, []).append(
            {"signal": signal, "strength": float(strength), "detail": detail})
    docs = []
    for op, name, confidence, status, known, raw in rows:
        try:
            profile = json.loads(raw) if raw else {}
        except ValueError:
            profile = {}
        docs.append({"operation_id": op, "name": name, "confidence": float(confidence),
                     "status": status, "known_operation": known, "profile": profile,
                     "evidence": evidence.get(op, [])})
    return docs


def _view(con: duckdb.DuckDBPyConnection, doc: dict, config: ReportConfig) -> dict[str, Any]:
    op = doc["operation_id"]
    profile = clean_profile(doc.get("profile"))
    members = _members(con, op)
    tally = _tally(members)
    view: dict[str, Any] = {
        "id": op,
        "safe_id": safe_name(op),
        "name": doc.get("name") or op,
        "profile": profile,
        "confidence": doc.get("confidence"),
        "status": doc.get("status"),
        "known_operation": doc.get("known_operation"),
        "review_status": review_status(con, op),
        "members": members,
        "excluded": _excluded(con, op),
        "tally": tally,
        "tally_text": tally_text(tally),
        "platforms": sorted({m["platform"] for m in members})
        or sorted(profile.get("platforms") or []),
        "clusters": _clusters(con, op),
        "links": _links(con, op),
    }
    view.update(_activity(con, op, profile))
    view["time"] = _dict(profile.get("time"))
    view["engagement"] = _dict(profile.get("engagement"))
    view["followers"] = _dict(profile.get("followers"))
    view["narratives"] = [n for n in profile.get("narratives") or [] if isinstance(n, dict)]
    view["assets_profile"] = _dict(profile.get("assets")) or {}
    view["self_engagement"] = _self_engagement(con, op)
    view["domains"], view["urls"] = _domains(con, op, config)
    view["evidence"] = (doc.get("evidence") or [])[: config.evidence_items]
    view["links_shown"] = view["links"][: config.evidence_items]
    view["edge_signals"] = _edge_signals(con, op)
    view["examples"] = _edge_examples(con, op, config.evidence_items)
    view["network"] = _network(con, op, members, config.network_max_nodes)
    view["network"]["cluster_links"] = [
        {"a": link["cluster_a"], "b": link["cluster_b"], "strength": link["strength"]}
        for link in view["links"]]
    return view


def _dict(value: Any) -> dict | None:
    return value if isinstance(value, dict) and value else None


# Profile fields the report reads, by shape. Profiles come from a stage under active
# development (and from older workspaces): a field of the wrong shape is dropped here so
# the report shows "not available" instead of failing.
_NUMBERS = {
    "time": ("utc_offset_hours", "offset_confidence", "weekend_ratio"),
    "engagement": ("echo_chamber_ratio", "engagements_received", "engagements_own",
                   "engagements_authentic"),
    "followers": ("inauthentic_follower_share", "distinct_followers",
                  "inauthentic_followers"),
}
_RECORDS = {
    "time": ("work_hours", "breaks", "quiet_holidays"),
    "engagement": ("authentic_amplifiers",),
    "followers": ("growth_bursts",),
    "assets": ("creation_batches", "handle_families", "reused_avatars", "creation_timeline"),
}
_MAPPINGS = {"time": ("runner_up", "clusters"), "engagement": ("breakout",),
             "followers": ("criteria",), "assets": ("tally",)}


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if value == value else None  # NaN is not a figure


def clean_profile(raw: Any) -> dict[str, Any]:
    """The profile with every field the report reads in the shape docs/profile.md gives."""
    profile = dict(raw) if isinstance(raw, dict) else {}
    for section in ("time", "engagement", "followers", "assets"):
        value = profile.get(section)
        if not isinstance(value, dict):
            profile[section] = None
            continue
        value = dict(value)
        for key in _NUMBERS.get(section, ()):
            if key in value:
                value[key] = _number(value[key])
        for key in _RECORDS.get(section, ()):
            if key in value:
                value[key] = [r for r in value[key] or [] if isinstance(r, dict)] \
                    if isinstance(value[key], list) else []
        for key in _MAPPINGS.get(section, ()):
            if key in value and not isinstance(value[key], dict):
                value[key] = None
        profile[section] = value
    time_ = profile.get("time") or {}
    for key in ("hour_of_week_utc", "hour_of_week_local"):
        how = time_.get(key)
        if how is not None and not (isinstance(how, list) and len(how) == 168
                                    and all(_number(v) is not None for v in how)):
            time_[key] = None
    narratives = []
    for n in profile.get("narratives") or [] if isinstance(profile.get("narratives"),
                                                             list) else []:
        if isinstance(n, dict):
            n = dict(n)
            examples = n.get("examples")
            n["examples"] = [str(e) for e in examples if e is not None] \
                if isinstance(examples, list) else []
            n["share"] = _number(n.get("share"))
            narratives.append(n)
    profile["narratives"] = narratives
    if not isinstance(profile.get("activity_timeline"), list):
        profile["activity_timeline"] = None
    if _number(profile.get("posts")) is None:
        profile.pop("posts", None)
    return profile


def _members(con: duckdb.DuckDBPyConnection, op: str) -> list[dict]:
    rows = con.execute(
        f"""
        SELECT m.platform, m.account_id, coalesce(a.asset_type, 'account'), a.handle,
               a.display_name, m.cluster_id, m.score, a.created_at, a.followers_count
        FROM ({MEMBERS_SQL}) m
        LEFT JOIN accounts a ON a.platform = m.platform AND a.account_id = m.account_id
        WHERE m.operation_id = ?
        ORDER BY m.platform, m.score DESC, m.account_id
        """,
        [op],
    ).fetchall()
    keys = ("platform", "account_id", "asset_type", "handle", "display_name", "cluster_id",
            "score", "created_at", "followers_count")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _excluded(con: duckdb.DuckDBPyConnection, op: str) -> int:
    return int(con.execute(
        "SELECT count(DISTINCT (platform, account_id)) FROM review_exclusions "
        "WHERE operation_id = ?", [op]).fetchall()[0][0])


# An operation's review status: the latest analyst decision in the workbench
# ("confirmed", "rejected", "needs-more-work"), else the status detection gave it ("new").
STATUS_SQL = """
    coalesce((SELECT r.decision FROM reviews r
              WHERE r.target_type = 'operation' AND r.target_id = o.operation_id
              ORDER BY r.decided_at DESC LIMIT 1), o.status)
"""
CONFIRMED = "confirmed"
REJECTED = "rejected"


def review_status(con: duckdb.DuckDBPyConnection, op: str) -> str:
    """The latest analyst decision on an operation, else its detection status."""
    rows = con.execute(
        f"SELECT {STATUS_SQL} FROM operations o WHERE o.operation_id = ?", [op]).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] else "new"


def _tally(members: list[dict]) -> list[dict]:
    counts: dict[tuple[str, str], int] = {}
    for m in members:
        key = (m["platform"], m["asset_type"])
        counts[key] = counts.get(key, 0) + 1
    totals: dict[str, int] = {}
    for (platform, _), n in counts.items():
        totals[platform] = totals.get(platform, 0) + n
    order = sorted(counts, key=lambda k: (-totals[k[0]], k[0], -counts[k], k[1]))
    return [{"platform": p, "asset_type": t, "count": counts[(p, t)]} for p, t in order]


def _clusters(con: duckdb.DuckDBPyConnection, op: str) -> list[dict]:
    rows = con.execute(
        """
        SELECT c.cluster_id, c.platform, c.n_assets, c.score, c.evidence
        FROM clusters c JOIN operation_clusters oc USING (cluster_id)
        WHERE oc.operation_id = ? ORDER BY c.n_assets DESC, c.cluster_id
        """, [op]).fetchall()
    return [
        {"cluster_id": c, "platform": p, "n_assets": int(n), "score": float(s),
         "evidence": _evidence_items(e)}
        for c, p, n, s, e in rows
    ]


def _evidence_items(raw: Any) -> list[dict]:
    """Cluster/link evidence JSON as [{signal, detail}] whatever shape the stage wrote."""
    if raw is None:
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [{"signal": "note", "detail": str(raw)}]
    if isinstance(value, dict) and isinstance(value.get("detail"), str):
        value = [{"signal": value.get("kind", "link"), "strength": value.get("strength"),
                  "detail": value["detail"]}]
    elif isinstance(value, dict):
        value = [{"signal": k, "detail": v} for k, v in value.items()]
    if not isinstance(value, list):
        return [{"signal": "note", "detail": str(value)}]
    items = []
    for item in value:
        if isinstance(item, dict):
            detail = item.get("detail", item.get("details", ""))
            items.append({"signal": str(item.get("signal", item.get("type", "signal"))),
                          "strength": item.get("strength"),
                          "detail": detail if isinstance(detail, str) else json.dumps(detail)})
        else:
            items.append({"signal": "note", "detail": str(item)})
    return items


def _links(con: duckdb.DuckDBPyConnection, op: str) -> list[dict]:
    rows = con.execute(
        "SELECT cluster_a, cluster_b, strength, evidence FROM operation_links "
        "WHERE operation_id = ? ORDER BY strength DESC", [op]).fetchall()
    return [{"cluster_a": a, "cluster_b": b, "strength": float(s),
             "evidence": _evidence_items(e)} for a, b, s, e in rows]


def _activity(con: duckdb.DuckDBPyConnection, op: str, profile: dict) -> dict[str, Any]:
    """Posts, hour-of-week counts and daily activity: the profile's, else from posts."""
    time_ = _dict(profile.get("time")) or {}
    offset = time_.get("utc_offset_hours")
    member_posts = f"""
        SELECT p.* FROM posts p JOIN ({MEMBERS_SQL}) m
        ON p.platform = m.platform AND p.account_id = m.account_id
        WHERE m.operation_id = ?"""
    stats = con.execute(
        f"SELECT count(*), min(created_at), max(created_at) FROM ({member_posts})", [op]
    ).fetchall()[0]
    by_platform = con.execute(
        f"SELECT platform, count(*) FROM ({member_posts}) GROUP BY 1 ORDER BY 2 DESC, 1", [op]
    ).fetchall()
    followed = con.execute(
        f"""
        SELECT DISTINCT f.platform, coalesce(a.asset_type, 'account') FROM follows f
        JOIN ({MEMBERS_SQL}) m ON f.platform = m.platform AND f.followee_id = m.account_id
        LEFT JOIN accounts a ON a.platform = f.platform AND a.account_id = f.followee_id
        WHERE m.operation_id = ? ORDER BY 1, 2
        """, [op]).fetchall()
    out: dict[str, Any] = {
        "posts_by_platform": {p: int(n) for p, n in by_platform},
        "followed_assets": [(p, t) for p, t in followed],
        "posts": int(profile.get("posts") or stats[0]),
        "first_seen": profile.get("first_seen") or stats[1],
        "last_seen": profile.get("last_seen") or stats[2],
    }
    for key, shift in (("hour_of_week_utc", 0.0), ("hour_of_week_local", offset)):
        how = time_.get(key)
        if isinstance(how, list) and len(how) == 168:
            out[key] = [int(v) for v in how]
        elif shift is not None and stats[0]:
            out[key] = _hour_of_week(con, member_posts, op, float(shift))
        else:
            out[key] = None
    timeline = profile.get("activity_timeline")
    if isinstance(timeline, list) and timeline:
        out["timeline"] = [t for t in timeline if isinstance(t, dict) and "date" in t]
    elif stats[0]:
        out["timeline"] = [
            {"date": str(d), "posts": int(n), "assets": int(a)}
            for d, n, a in con.execute(
                f"SELECT created_at::DATE, count(*), count(DISTINCT (platform, account_id)) "
                f"FROM ({member_posts}) GROUP BY 1 ORDER BY 1", [op]).fetchall()
        ]
    else:
        out["timeline"] = []
    return out


def _hour_of_week(con, member_posts: str, op: str, shift: float) -> list[int]:
    counts = [0] * 168
    for slot, n in con.execute(
        f"""
        SELECT (isodow(t) - 1) * 24 + hour(t), count(*) FROM (
            SELECT created_at + to_minutes(CAST(round(? * 60) AS BIGINT)) AS t
            FROM ({member_posts})) GROUP BY 1
        """, [shift, op]).fetchall():
        counts[int(slot)] = int(n)
    return counts


def _self_engagement(con: duckdb.DuckDBPyConnection, op: str) -> list[dict]:
    """Comments/replies/shares/reactions on the operation's posts, all and by its own assets,
    per platform and kind."""
    rows = con.execute(
        f"""
        WITH m AS (SELECT platform, account_id FROM ({MEMBERS_SQL}) WHERE operation_id = ?),
        target AS (SELECT p.platform, p.post_id FROM posts p
                   JOIN m ON p.platform = m.platform AND p.account_id = m.account_id),
        eng AS (SELECT platform, account_id, kind, coalesce(parent_id, shared_id) AS ref
                FROM posts WHERE kind IN ('comment', 'reply', 'share', 'reaction')
                  AND coalesce(parent_id, shared_id) IS NOT NULL)
        SELECT e.platform, e.kind, count(*), count(own.account_id)
        FROM eng e JOIN target t ON e.platform = t.platform AND e.ref = t.post_id
        LEFT JOIN m own ON own.platform = e.platform AND own.account_id = e.account_id
        GROUP BY 1, 2 ORDER BY 1, 2
        """, [op]).fetchall()
    return [{"platform": p, "kind": kind, "all": int(n), "own": int(own)}
            for p, kind, n, own in rows]


_DOMAIN_SQL = r"regexp_extract(lower(u), '^[a-z][a-z0-9+.-]*://(?:www\.)?([^/:?#@\s]+)', 1)"


def _domains(con: duckdb.DuckDBPyConnection, op: str, config: ReportConfig):
    """Domains the operation links to that almost nobody else links to: its own sites."""
    rows = con.execute(
        f"""
        WITH m AS (SELECT platform, account_id FROM ({MEMBERS_SQL}) WHERE operation_id = ?),
        links AS (
            SELECT p.platform, p.account_id, p.post_id, unnest(p.urls) AS u
            FROM posts p WHERE p.urls IS NOT NULL AND len(p.urls) > 0),
        d AS (SELECT l.*, {_DOMAIN_SQL} AS domain, m.account_id IS NOT NULL AS own
              FROM links l
              LEFT JOIN m ON m.platform = l.platform AND m.account_id = l.account_id)
        SELECT domain, count(DISTINCT post_id) FILTER (WHERE own) AS own_posts,
               count(DISTINCT post_id) AS all_posts
        FROM d WHERE domain <> ''
        GROUP BY 1 HAVING own_posts >= ?
        ORDER BY own_posts DESC, domain
        """, [op, config.domain_min_posts]).fetchall()
    domains = [
        {"domain": dom, "posts": int(own), "all_posts": int(total), "share": own / total}
        for dom, own, total in rows if total and own / total >= config.domain_min_share
    ]
    if not domains:
        return [], []
    urls = [r[0] for r in con.execute(
        f"""
        WITH m AS (SELECT platform, account_id FROM ({MEMBERS_SQL}) WHERE operation_id = ?)
        SELECT u, count(*) AS n FROM (
            SELECT unnest(p.urls) AS u FROM posts p
            JOIN m ON p.platform = m.platform AND p.account_id = m.account_id
            WHERE p.urls IS NOT NULL)
        WHERE {_DOMAIN_SQL} IN (SELECT unnest(?::VARCHAR[]))
        GROUP BY 1 ORDER BY n DESC, u LIMIT ?
        """, [op, [d["domain"] for d in domains], config.max_urls]).fetchall()]
    return domains, urls


def _edge_signals(con: duckdb.DuckDBPyConnection, op: str) -> list[dict]:
    """Which kinds of shared keys tie the operation's assets together, most pairs first."""
    rows = con.execute(
        f"""
        WITH m AS (SELECT platform, account_id FROM ({MEMBERS_SQL}) WHERE operation_id = ?)
        SELECT key_type, count(DISTINCT (e.a, e.b)) AS pairs, count(DISTINCT key) AS keys
        FROM edge_evidence e
        JOIN m ma ON ma.platform = e.platform AND ma.account_id = e.a
        JOIN m mb ON mb.platform = e.platform AND mb.account_id = e.b
        GROUP BY 1 ORDER BY pairs DESC, key_type
        """, [op]).fetchall()
    return [{"key_type": k, "pairs": int(p), "n_keys": int(n)} for k, p, n in rows]


def _edge_examples(con: duckdb.DuckDBPyConnection, op: str, limit: int) -> list[dict]:
    """The strongest pieces of pair evidence, with the two posts behind each: the best of
    every kind of key first, so the table shows each signal before repeating one."""
    rows = con.execute(
        f"""
        WITH m AS (SELECT platform, account_id FROM ({MEMBERS_SQL}) WHERE operation_id = ?),
        ev AS (
            SELECT e.*, row_number() OVER (PARTITION BY e.key_type, e.key
                                           ORDER BY e.weight DESC NULLS LAST) AS rn
            FROM edge_evidence e
            JOIN m ma ON ma.platform = e.platform AND ma.account_id = e.a
            JOIN m mb ON mb.platform = e.platform AND mb.account_id = e.b),
        best AS (SELECT *, row_number() OVER (PARTITION BY key_type
                                              ORDER BY weight DESC NULLS LAST, key) AS rt
                 FROM ev WHERE rn = 1)
        SELECT ev.platform, ev.a, aa.handle, ev.b, ab.handle, ev.key_type, ev.key, ev.weight,
               ev.ts_a, ev.ts_b, coalesce(pa.title, pa.text), coalesce(pb.title, pb.text)
        FROM best ev
        LEFT JOIN accounts aa ON aa.platform = ev.platform AND aa.account_id = ev.a
        LEFT JOIN accounts ab ON ab.platform = ev.platform AND ab.account_id = ev.b
        LEFT JOIN posts pa ON pa.platform = ev.platform AND pa.post_id = ev.post_a
        LEFT JOIN posts pb ON pb.platform = ev.platform AND pb.post_id = ev.post_b
        ORDER BY ev.rt, ev.weight DESC NULLS LAST, ev.key_type, ev.key LIMIT ?
        """, [op, limit]).fetchall()
    keys = ("platform", "a", "handle_a", "b", "handle_b", "key_type", "key", "weight",
            "ts_a", "ts_b", "text_a", "text_b")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _signal_names(raw: Any) -> list[str]:
    if raw is None:
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [str(raw)]
    if isinstance(value, dict):  # a signal with no co-use left (count 0) did not tie them
        return sorted(str(k) for k, v in value.items()
                      if not isinstance(v, dict) or v.get("count", 1))
    if isinstance(value, list):
        return sorted({str(v.get("signal", v)) if isinstance(v, dict) else str(v) for v in value})
    return [str(value)]


def _network(con, op: str, members: list[dict], max_nodes: int) -> dict[str, Any]:
    """Nodes, edges and a fixed-seed layout of the operation's co-activity network."""
    rows = con.execute(
        f"""
        WITH m AS (SELECT platform, account_id FROM ({MEMBERS_SQL}) WHERE operation_id = ?)
        SELECT e.platform, e.a, e.b, e.weight, e.signals FROM edges e
        JOIN m ma ON ma.platform = e.platform AND ma.account_id = e.a
        JOIN m mb ON mb.platform = e.platform AND mb.account_id = e.b
        """, [op]).fetchall()
    edges = [{"source": f"{p}:{a}", "target": f"{p}:{b}", "weight": float(w),
              "signals": _signal_names(s)} for p, a, b, w, s in rows]
    nodes = {f"{m['platform']}:{m['account_id']}": m for m in members}
    strength: dict[str, float] = dict.fromkeys(nodes, 0.0)
    for e in edges:
        strength[e["source"]] = strength.get(e["source"], 0.0) + e["weight"]
        strength[e["target"]] = strength.get(e["target"], 0.0) + e["weight"]
    # Strongest first; among equals, clusters take turns so every cluster is drawn.
    rank: dict[str, int] = {}
    seen: dict[str, int] = {}
    for k in sorted(nodes, key=lambda k: (-strength[k], k)):
        cluster = str(nodes[k]["cluster_id"])
        rank[k] = seen.get(cluster, 0)
        seen[cluster] = rank[k] + 1
    keep = sorted(nodes, key=lambda k: (-strength[k], rank[k], k))[:max_nodes]
    kept = set(keep)
    shown_edges = [e for e in edges if e["source"] in kept and e["target"] in kept]
    return {
        "nodes": [{"id": k, **nodes[k], "strength": strength[k]} for k in keep],
        "edges": shown_edges,
        "all_edges": edges,
        "total_nodes": len(nodes),
        "total_edges": len(edges),
        "layout": _layout(keep, shown_edges),
    }


def _layout(node_ids: list[str], edges: list[dict]) -> dict[str, tuple[float, float]]:
    if not node_ids:
        return {}
    import igraph

    index = {n: i for i, n in enumerate(node_ids)}
    g = igraph.Graph(n=len(node_ids), edges=[(index[e["source"]], index[e["target"]])
                                             for e in edges])
    state = random.getstate()
    random.seed(0)
    try:
        weights = [e["weight"] for e in edges] if edges else None
        coords = g.layout_fruchterman_reingold(weights=weights, niter=300).coords
    finally:
        random.setstate(state)
    return {n: (float(x), float(y)) for n, (x, y) in zip(node_ids, coords, strict=True)}
