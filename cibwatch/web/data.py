"""What the workbench shows, as plain dicts read from the workspace tables.

The API returns these as JSON and the pages render them; both go through here so that
a figure on screen and in the API can never disagree. Every query is parameterised.
A profile (docs/profile.md) may be missing or partial: readers use `.get` and fall back
to figures computed from the posts where that is cheap (hour-of-week, timeline).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import duckdb

from cibwatch import audit
from cibwatch.errors import CibwatchError
from cibwatch.workspace import scalar

log = logging.getLogger(__name__)
DECISIONS = ("confirmed", "rejected", "needs-more-work")
TARGET_TYPES = ("operation", "cluster")


class NotFound(CibwatchError):
    """The operation, cluster or asset asked for does not exist."""


class Invalid(CibwatchError):
    """A request names a value outside what is allowed."""


class Unavailable(CibwatchError):
    """A feature needs a module (report, enforcement) that is not installed yet."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _json(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# ------------------------------------------------------------------------------ status
def status(con: duckdb.DuckDBPyConnection) -> dict:
    counts = _rows(
        con,
        "SELECT (SELECT count(*) FROM posts) AS posts, (SELECT count(*) FROM accounts) "
        "AS accounts, (SELECT count(*) FROM follows) AS follows, "
        "(SELECT count(*) FROM quarantine) AS quarantined, "
        "(SELECT count(*) FROM operations) AS operations, "
        "(SELECT count(*) FROM clusters) AS clusters, "
        "(SELECT count(*) FROM cluster_members) AS flagged_assets",
    )[0]
    files = _rows(
        con,
        "SELECT file, table_name, format, rows_read, rows_loaded, rows_updated, "
        "rows_unchanged, rows_quarantined, finished_at FROM ingest_log "
        "ORDER BY finished_at DESC LIMIT 100",
    )
    quarantine_by_table = _rows(
        con,
        "SELECT table_name, count(*) AS rows FROM quarantine GROUP BY 1 ORDER BY 1",
    )
    runs = _rows(
        con,
        "SELECT run_id, started_at, finished_at, status, summary FROM runs "
        "ORDER BY started_at DESC LIMIT 10",
    )
    for r in runs:
        r["summary"] = _json(r["summary"])
    return {"counts": counts, "ingest": files, "quarantine": quarantine_by_table, "runs": runs}


def quarantine(
    con: duckdb.DuckDBPyConnection, table: str | None, limit: int, offset: int
) -> dict:
    where, params = ("WHERE table_name = ?", [table]) if table else ("", [])
    total = scalar(con, f"SELECT count(*) FROM quarantine {where}", params)
    rows = _rows(
        con,
        f"SELECT table_name, file, row_number, raw_row, reason, quarantined_at "
        f"FROM quarantine {where} ORDER BY file, row_number LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {"total": total, "rows": rows, "limit": limit, "offset": offset}


# -------------------------------------------------------------------------- operations
_STATUS_SQL = """
    coalesce((SELECT r.decision FROM reviews r
              WHERE r.target_type = 'operation' AND r.target_id = o.operation_id
              ORDER BY r.decided_at DESC LIMIT 1), o.status)
"""


def operations(
    con: duckdb.DuckDBPyConnection,
    platform: str | None = None,
    status: str | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> list[dict]:
    """Every operation with its tally and review status, largest first, filtered."""
    ops = _rows(
        con,
        f"""
        WITH members AS (
            SELECT DISTINCT oc.operation_id, m.platform, m.account_id
            FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
        ), sizes AS (
            SELECT operation_id, count(*) AS assets,
                   list(DISTINCT platform ORDER BY platform) AS platforms
            FROM members GROUP BY 1
        ), excl AS (
            SELECT operation_id, count(*) AS excluded FROM review_exclusions GROUP BY 1
        ), ncl AS (
            SELECT operation_id, count(*) AS clusters FROM operation_clusters GROUP BY 1
        )
        SELECT o.operation_id, o.name, o.confidence, {_STATUS_SQL} AS status,
               o.known_operation, o.first_seen, o.last_seen,
               coalesce(s.assets, 0) AS assets, coalesce(s.platforms, []) AS platforms,
               coalesce(n.clusters, 0) AS clusters, coalesce(e.excluded, 0) AS excluded,
               p.profile->'$.time.utc_offset_hours' AS utc_offset_hours,
               p.profile->>'$.time.schedule' AS schedule,
               p.profile->'$.engagement.echo_chamber_ratio' AS echo_chamber_ratio
        FROM operations o
        LEFT JOIN sizes s USING (operation_id)
        LEFT JOIN ncl n USING (operation_id)
        LEFT JOIN excl e USING (operation_id)
        LEFT JOIN operation_profiles p USING (operation_id)
        ORDER BY assets DESC, o.operation_id
        """,
    )
    tallies = tally(con)
    out = []
    for op in ops:
        if platform and platform not in op["platforms"]:
            continue
        if status and op["status"] != status:
            continue
        if min_size is not None and op["assets"] < min_size:
            continue
        if max_size is not None and op["assets"] > max_size:
            continue
        for key in ("utc_offset_hours", "echo_chamber_ratio"):
            op[key] = _json(op[key])
        op["tally"] = tallies.get(op["operation_id"], {})
        out.append(op)
    return out


def flagged_platforms(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT DISTINCT platform FROM cluster_members ORDER BY 1").fetchall()]


def tally(con: duckdb.DuckDBPyConnection, operation_id: str | None = None) -> dict:
    """{operation_id: {platform: {asset_type: n}}}: the takedown tally."""
    where, params = ("WHERE oc.operation_id = ?", [operation_id]) if operation_id else ("", [])
    rows = con.execute(
        f"""
        SELECT oc.operation_id, m.platform, coalesce(a.asset_type, 'account'),
               count(DISTINCT m.account_id)
        FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
        LEFT JOIN accounts a ON a.platform = m.platform AND a.account_id = m.account_id
        {where} GROUP BY ALL ORDER BY 1, 2, 4 DESC
        """,
        params,
    ).fetchall()
    out: dict[str, dict[str, dict[str, int]]] = {}
    for op, plat, kind, n in rows:
        out.setdefault(op, {}).setdefault(plat, {})[kind] = int(n)
    return out


def operation(con: duckdb.DuckDBPyConnection, operation_id: str) -> dict:
    """One operation with every characterisation figure, its clusters, links, evidence,
    reviews and exclusions."""
    rows = _rows(
        con,
        f"SELECT o.*, {_STATUS_SQL} AS review_status, p.profile FROM operations o "
        "LEFT JOIN operation_profiles p USING (operation_id) WHERE o.operation_id = ?",
        [operation_id],
    )
    if not rows:
        raise NotFound(f"no operation {operation_id!r}")
    op = rows[0]
    op["stored_status"] = op.pop("status")
    op["status"] = op.pop("review_status")
    op["profile"] = _json(op["profile"]) or {}
    op["tally"] = tally(con, operation_id).get(operation_id, {})
    op["assets"] = sum(sum(t.values()) for t in op["tally"].values())
    op["clusters"] = _rows(
        con,
        """
        SELECT c.cluster_id, c.platform, c.n_assets, c.score,
               (SELECT r.decision FROM reviews r WHERE r.target_type = 'cluster'
                AND r.target_id = c.cluster_id ORDER BY r.decided_at DESC LIMIT 1) AS status
        FROM operation_clusters oc JOIN clusters c USING (cluster_id)
        WHERE oc.operation_id = ? ORDER BY c.n_assets DESC, c.cluster_id
        """,
        [operation_id],
    )
    op["links"] = _rows(
        con,
        "SELECT cluster_a, cluster_b, strength, evidence FROM operation_links "
        "WHERE operation_id = ? ORDER BY strength DESC",
        [operation_id],
    )
    for link in op["links"]:
        link["evidence"] = _json(link["evidence"])
    op["evidence"] = _rows(
        con,
        "SELECT signal, strength, detail FROM operation_evidence WHERE operation_id = ? "
        "ORDER BY strength DESC",
        [operation_id],
    )
    op["reviews"] = reviews(con, "operation", operation_id)
    op["exclusions"] = _rows(
        con,
        "SELECT platform, account_id, user_name, note, excluded_at FROM review_exclusions "
        "WHERE operation_id = ? ORDER BY excluded_at DESC",
        [operation_id],
    )
    time_ = op["profile"].get("time") or {}
    op["hour_of_week_utc"] = time_.get("hour_of_week_utc") or _hour_of_week(con, operation_id)
    op["hour_of_week_local"] = time_.get("hour_of_week_local")
    op["activity_timeline"] = op["profile"].get("activity_timeline") or _timeline(
        con, operation_id
    )
    return op


def _member_filter() -> str:
    return """
        SELECT DISTINCT m.platform, m.account_id
        FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
        WHERE oc.operation_id = ?
    """


def _hour_of_week(con: duckdb.DuckDBPyConnection, operation_id: str) -> list[int]:
    """Posts per UTC hour of the week (Monday 00:00 first), from the members' posts."""
    counts = [0] * 168
    for how, n in con.execute(
        f"""
        SELECT (isodow(p.created_at) - 1) * 24 + hour(p.created_at), count(*)
        FROM posts p JOIN ({_member_filter()}) m USING (platform, account_id)
        GROUP BY 1
        """,
        [operation_id],
    ).fetchall():
        counts[int(how)] = int(n)
    return counts


def _timeline(con: duckdb.DuckDBPyConnection, operation_id: str) -> list[dict]:
    return [
        {"date": d.isoformat(), "posts": int(n), "assets": int(a)}
        for d, n, a in con.execute(
            f"""
            SELECT p.created_at::DATE, count(*), count(DISTINCT p.account_id)
            FROM posts p JOIN ({_member_filter()}) m USING (platform, account_id)
            GROUP BY 1 ORDER BY 1
            """,
            [operation_id],
        ).fetchall()
    ]


def members(
    con: duckdb.DuckDBPyConnection, operation_id: str, limit: int, offset: int
) -> dict:
    total = scalar(con, f"SELECT count(*) FROM ({_member_filter()})", [operation_id])
    rows = _rows(
        con,
        """
        SELECT m.platform, m.account_id, any_value(m.cluster_id) AS cluster_id,
               max(m.score) AS score, any_value(m.reason) AS reason,
               any_value(a.handle) AS handle, any_value(a.display_name) AS display_name,
               any_value(coalesce(a.asset_type, 'account')) AS asset_type,
               bool_or(x.account_id IS NOT NULL) AS excluded
        FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
        LEFT JOIN accounts a ON a.platform = m.platform AND a.account_id = m.account_id
        LEFT JOIN review_exclusions x ON x.operation_id = oc.operation_id
             AND x.platform = m.platform AND x.account_id = m.account_id
        WHERE oc.operation_id = ?
        GROUP BY m.platform, m.account_id
        ORDER BY score DESC, m.platform, m.account_id
        LIMIT ? OFFSET ?
        """,
        [operation_id, limit, offset],
    )
    return {"total": total, "rows": rows, "limit": limit, "offset": offset}


def operation_exists(con: duckdb.DuckDBPyConnection, operation_id: str) -> None:
    if not scalar(con, "SELECT count(*) FROM operations WHERE operation_id = ?",
                  [operation_id]):
        raise NotFound(f"no operation {operation_id!r}")


def network(con: duckdb.DuckDBPyConnection, operation_id: str, max_nodes: int) -> dict:
    """Cytoscape elements: cluster parents, member nodes (best-connected first), the
    significant edges among them and the links that joined clusters."""
    operation_exists(con, operation_id)
    nodes = con.execute(
        """
        WITH mem AS (
            SELECT m.cluster_id, m.platform, m.account_id, m.score
            FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
            WHERE oc.operation_id = ?
        ), ends AS (
            SELECT e.platform, e.a AS id FROM edges e
            SEMI JOIN mem ON mem.platform = e.platform AND mem.account_id = e.a
            UNION ALL
            SELECT e.platform, e.b FROM edges e
            SEMI JOIN mem ON mem.platform = e.platform AND mem.account_id = e.b
        ), deg AS (
            SELECT platform, id, count(*) AS degree FROM ends GROUP BY ALL
        ), ranked AS (
            -- every cluster gets its share of the node budget, best-connected first
            SELECT mem.*, coalesce(deg.degree, 0) AS degree,
                   row_number() OVER (PARTITION BY mem.cluster_id
                       ORDER BY coalesce(deg.degree, 0) DESC, mem.score DESC,
                                mem.account_id) AS rk,
                   count(*) OVER (PARTITION BY mem.cluster_id) AS n_cluster,
                   count(*) OVER () AS n_all
            FROM mem LEFT JOIN deg ON deg.platform = mem.platform
                                  AND deg.id = mem.account_id
        )
        SELECT r.cluster_id, r.platform, r.account_id, r.score,
               coalesce(a.handle, a.display_name, r.account_id) AS label,
               coalesce(a.asset_type, 'account'), r.degree,
               x.account_id IS NOT NULL
        FROM ranked r
        LEFT JOIN accounts a ON a.platform = r.platform AND a.account_id = r.account_id
        LEFT JOIN review_exclusions x ON x.operation_id = ? AND x.platform = r.platform
             AND x.account_id = r.account_id
        WHERE r.rk <= greatest(3, ceil(? * r.n_cluster / r.n_all))
        ORDER BY r.degree DESC, r.score DESC, r.account_id
        LIMIT ?
        """,
        [operation_id, operation_id, max_nodes, max_nodes],
    ).fetchall()
    total = scalar(
        con, f"SELECT count(*) FROM ({_member_filter()})", [operation_id]
    )
    elements: list[dict] = []
    clusters = sorted({n[0] for n in nodes})
    for cid in clusters:
        elements.append({"data": {"id": f"c:{cid}", "label": cid, "kind": "cluster"}})
    shown = set()
    for cid, plat, acc, score, label, kind, degree, excluded in nodes:
        node_id = f"a:{plat}:{acc}"
        if (plat, acc) in shown:  # in two of the operation's clusters: drawn once
            continue
        shown.add((plat, acc))
        elements.append({"data": {
            "id": node_id, "parent": f"c:{cid}", "label": str(label), "platform": plat,
            "account_id": acc, "asset_type": kind, "score": float(score),
            "degree": int(degree), "excluded": bool(excluded), "kind": "asset",
        }})
    if shown:
        plats, ids = zip(*sorted(shown), strict=True)
        for plat, a, b, w in con.execute(
            """
            WITH x AS (SELECT unnest(?::VARCHAR[]) AS platform, unnest(?::VARCHAR[]) AS id)
            SELECT e.platform, e.a, e.b, e.weight FROM edges e
            SEMI JOIN x ON x.platform = e.platform AND x.id = e.a
            SEMI JOIN x AS y ON y.platform = e.platform AND y.id = e.b
            ORDER BY e.weight DESC LIMIT 4000
            """,
            [list(plats), list(ids)],
        ).fetchall():
            elements.append({"data": {
                "id": f"e:{plat}:{a}:{b}", "source": f"a:{plat}:{a}",
                "target": f"a:{plat}:{b}", "weight": float(w), "kind": "edge",
            }})
    for a, b, strength in con.execute(
        "SELECT cluster_a, cluster_b, strength FROM operation_links WHERE operation_id = ?",
        [operation_id],
    ).fetchall():
        if a in clusters and b in clusters:
            elements.append({"data": {
                "id": f"l:{a}:{b}", "source": f"c:{a}", "target": f"c:{b}",
                "weight": float(strength), "kind": "link",
            }})
    _layout(elements)
    return {"elements": elements, "nodes_shown": len(shown), "nodes_total": total}


def _layout(elements: list[dict], gap: float = 80.0, row_width: float = 1600.0) -> None:
    """Preset positions (networkx spring layout per cluster, clusters in rows, largest
    first), computed once per workspace version so the browser only draws."""
    import networkx as nx

    members: dict[str, list[str]] = {}
    graph = nx.Graph()
    for el in elements:
        d = el["data"]
        if d["kind"] == "asset":
            members.setdefault(d["parent"], []).append(d["id"])
            graph.add_node(d["id"])
        elif d["kind"] == "edge":
            graph.add_edge(d["source"], d["target"], weight=d["weight"])
    positions: dict[str, tuple[float, float]] = {}
    x0 = y0 = row_h = 0.0
    for ids in sorted(members.values(), key=len, reverse=True):
        radius = 25.0 * len(ids) ** 0.5 + 20.0
        if x0 > 0 and x0 + 2 * radius > row_width:
            x0, y0, row_h = 0.0, y0 + row_h + gap, 0.0
        pos = (nx.spring_layout(graph.subgraph(ids), seed=42, iterations=50, scale=radius)
               if len(ids) > 1 else {ids[0]: (0.0, 0.0)})
        for node, (x, y) in pos.items():
            positions[node] = (round(x0 + radius + float(x), 1), round(y0 + radius + float(y), 1))
        x0 += 2 * radius + gap
        row_h = max(row_h, 2 * radius)
    for el in elements:
        if el["data"]["id"] in positions:
            x, y = positions[el["data"]["id"]]
            el["position"] = {"x": x, "y": y}


# ---------------------------------------------------------------------------- clusters
def clusters(con: duckdb.DuckDBPyConnection, platform: str | None = None) -> list[dict]:
    where, params = ("WHERE c.platform = ?", [platform]) if platform else ("", [])
    return _rows(
        con,
        f"""
        SELECT c.cluster_id, c.platform, c.n_assets, c.score, oc.operation_id,
               (SELECT r.decision FROM reviews r WHERE r.target_type = 'cluster'
                AND r.target_id = c.cluster_id ORDER BY r.decided_at DESC LIMIT 1) AS status
        FROM clusters c LEFT JOIN operation_clusters oc USING (cluster_id)
        {where} ORDER BY c.n_assets DESC, c.cluster_id
        """,
        params,
    )


def cluster(con: duckdb.DuckDBPyConnection, cluster_id: str) -> dict:
    rows = _rows(
        con,
        "SELECT c.*, oc.operation_id, p.profile FROM clusters c "
        "LEFT JOIN operation_clusters oc USING (cluster_id) "
        "LEFT JOIN cluster_profiles p USING (cluster_id) WHERE c.cluster_id = ?",
        [cluster_id],
    )
    if not rows:
        raise NotFound(f"no cluster {cluster_id!r}")
    c = rows[0]
    c["evidence"] = _json(c["evidence"])
    c["profile"] = _json(c["profile"]) or {}
    c["members"] = _rows(
        con,
        """
        SELECT m.platform, m.account_id, m.score, m.reason, a.handle, a.display_name,
               coalesce(a.asset_type, 'account') AS asset_type
        FROM cluster_members m
        LEFT JOIN accounts a ON a.platform = m.platform AND a.account_id = m.account_id
        WHERE m.cluster_id = ? ORDER BY m.score DESC, m.account_id LIMIT 1000
        """,
        [cluster_id],
    )
    c["reviews"] = reviews(con, "cluster", cluster_id)
    return c


# ------------------------------------------------------------------------------ assets
def asset(con: duckdb.DuckDBPyConnection, platform: str, account_id: str, n_posts: int) -> dict:
    """Is it flagged, why (memberships, strongest edges and their keys), evidence posts."""
    acc = _rows(
        con,
        "SELECT * EXCLUDE (extra) FROM accounts WHERE platform = ? AND account_id = ?",
        [platform, account_id],
    )
    n_posts_total = scalar(
        con, "SELECT count(*) FROM posts WHERE platform = ? AND account_id = ?",
        [platform, account_id],
    )
    if not acc and not n_posts_total:
        raise NotFound(f"no asset {account_id!r} on {platform!r}")
    memberships = _rows(
        con,
        """
        SELECT m.cluster_id, oc.operation_id, m.score, m.reason,
               x.account_id IS NOT NULL AS excluded
        FROM cluster_members m LEFT JOIN operation_clusters oc USING (cluster_id)
        LEFT JOIN review_exclusions x ON x.operation_id = oc.operation_id
             AND x.platform = m.platform AND x.account_id = m.account_id
        WHERE m.platform = ? AND m.account_id = ?
        """,
        [platform, account_id],
    )
    edges = _rows(
        con,
        """
        SELECT CASE WHEN a = ? THEN b ELSE a END AS partner, weight, q_value, n_keys, signals
        FROM edges WHERE platform = ? AND (a = ? OR b = ?)
        ORDER BY weight DESC LIMIT 25
        """,
        [account_id, platform, account_id, account_id],
    )
    for e in edges:
        e["signals"] = _json(e["signals"])
    keys = _rows(
        con,
        """
        SELECT key_type, key, weight,
               CASE WHEN a = ? THEN b ELSE a END AS partner,
               CASE WHEN a = ? THEN post_a ELSE post_b END AS own_post,
               CASE WHEN a = ? THEN post_b ELSE post_a END AS partner_post
        FROM edge_evidence WHERE platform = ? AND (a = ? OR b = ?)
        ORDER BY weight DESC NULLS LAST LIMIT 50
        """,
        [account_id] * 3 + [platform, account_id, account_id],
    )
    posts = _rows(
        con,
        """
        WITH ev AS (
            SELECT CASE WHEN a = ? THEN post_a ELSE post_b END AS post_id,
                   max(weight) AS w
            FROM edge_evidence WHERE platform = ? AND (a = ? OR b = ?) GROUP BY 1
        )
        SELECT p.post_id, p.created_at, p.kind, p.text, p.title, p.urls, p.hashtags,
               ev.post_id IS NOT NULL AS evidence
        FROM posts p LEFT JOIN ev USING (post_id)
        WHERE p.platform = ? AND p.account_id = ?
        ORDER BY evidence DESC, ev.w DESC NULLS LAST, p.created_at DESC
        LIMIT ?
        """,
        [account_id, platform, account_id, account_id, platform, account_id, n_posts],
    )
    return {
        "platform": platform,
        "account_id": account_id,
        "account": acc[0] if acc else None,
        "posts_total": n_posts_total,
        "flagged": bool(memberships),
        "memberships": memberships,
        "edges": edges,
        "evidence_keys": keys,
        "posts": posts,
    }


# ------------------------------------------------------------------------------- posts
def search_posts(
    con: duckdb.DuckDBPyConnection,
    text: str | None = None,
    url: str | None = None,
    hashtag: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    platform: str | None = None,
    account_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict:
    """Posts matching every given filter, newest first; `has_more` instead of a count so
    that a broad search over millions of posts stays cheap."""
    where, params = [], []
    if text:
        where.append("(contains(lower(p.text), lower(?)) OR contains(lower(p.title), lower(?)))")
        params += [text, text]
    if url:
        where.append("contains(lower(array_to_string(p.urls, ' ')), lower(?))")
        params.append(url)
    if hashtag:
        where.append("list_contains(list_transform(p.hashtags, lambda h: lower(h)), lower(?))")
        params.append(hashtag.lstrip("#"))
    if since:
        where.append("p.created_at >= ?")
        params.append(since)
    if until:
        where.append("p.created_at < ?")
        params.append(until)
    if platform:
        where.append("p.platform = ?")
        params.append(platform)
    if account_id:
        where.append("p.account_id = ?")
        params.append(account_id)
    clause = "WHERE " + " AND ".join(where) if where else ""
    rows = _rows(
        con,
        f"""
        SELECT p.platform, p.post_id, p.account_id, a.handle, p.created_at, p.kind,
               p.text, p.title, p.urls, p.hashtags
        FROM posts p LEFT JOIN accounts a
             ON a.platform = p.platform AND a.account_id = p.account_id
        {clause} ORDER BY p.created_at DESC, p.platform, p.post_id LIMIT ? OFFSET ?
        """,
        [*params, limit + 1, offset],
    )
    return {
        "rows": rows[:limit], "has_more": len(rows) > limit, "limit": limit, "offset": offset,
    }


# ----------------------------------------------------------------------------- reviews
def reviews(con: duckdb.DuckDBPyConnection, target_type: str, target_id: str) -> list[dict]:
    return _rows(
        con,
        "SELECT decision, note, user_name, decided_at FROM reviews "
        "WHERE target_type = ? AND target_id = ? ORDER BY decided_at DESC",
        [target_type, target_id],
    )


def record_review(
    con: duckdb.DuckDBPyConnection,
    target_type: str,
    target_id: str,
    decision: str,
    note: str,
    user: str,
) -> dict:
    """Store a decision on an operation or cluster and audit it (same transaction)."""
    if target_type not in TARGET_TYPES:
        raise Invalid(f"target_type must be one of {', '.join(TARGET_TYPES)}")
    if decision not in DECISIONS:
        raise Invalid(f"decision must be one of {', '.join(DECISIONS)}")
    table, key = ("operations", "operation_id") if target_type == "operation" else (
        "clusters", "cluster_id")
    if not scalar(con, f"SELECT count(*) FROM {table} WHERE {key} = ?", [target_id]):
        raise NotFound(f"no {target_type} {target_id!r}")
    con.execute(
        "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [target_type, target_id, decision, note, user],
    )
    if target_type == "operation":
        con.execute(
            "UPDATE operations SET status = ? WHERE operation_id = ?", [decision, target_id]
        )
    audit.record(con, f"review.{decision}", f"{target_type}:{target_id}", note, user)
    return {"target_type": target_type, "target_id": target_id, "decision": decision,
            "note": note, "user": user}


def set_exclusion(
    con: duckdb.DuckDBPyConnection,
    operation_id: str,
    platform: str,
    account_id: str,
    excluded: bool,
    note: str,
    user: str,
) -> dict:
    """Take one asset out of an operation (or put it back) before confirming it."""
    if not scalar(con, f"SELECT count(*) FROM ({_member_filter()}) WHERE platform = ? "
                  "AND account_id = ?", [operation_id, platform, account_id]):
        raise NotFound(f"{platform}/{account_id} is not in operation {operation_id!r}")
    con.execute(
        "DELETE FROM review_exclusions WHERE operation_id = ? AND platform = ? "
        "AND account_id = ?",
        [operation_id, platform, account_id],
    )
    if excluded:
        con.execute(
            "INSERT INTO review_exclusions VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [operation_id, platform, account_id, user, note],
        )
    action = "review.exclude_asset" if excluded else "review.restore_asset"
    audit.record(
        con, action, f"operation:{operation_id}", f"{platform}/{account_id}: {note}", user
    )
    return {"operation_id": operation_id, "platform": platform, "account_id": account_id,
            "excluded": excluded}


def history(con: duckdb.DuckDBPyConnection, operation_id: str, limit: int = 200) -> list[dict]:
    """Audit entries about one operation (reviews, exclusions, exports of it), newest first."""
    return _rows(
        con,
        'SELECT seq, "at", user_name AS "user", action, target, detail FROM audit_log '
        "WHERE target = ? OR (action = 'export' AND (detail = ? OR starts_with(detail, ?))) "
        "ORDER BY seq DESC LIMIT ?",
        [f"operation:{operation_id}", f"operation={operation_id}",
         f"operation={operation_id};", limit],
    )


# ---------------------------------------------------------------------- enforcement
def enforcement(
    con: duckdb.DuckDBPyConnection, confirmed_only: bool = True, operation_id: str | None = None
) -> list[dict]:
    """The enforcement list of the report package: assets of confirmed operations, minus
    the exclusions analysts made here."""
    try:
        from cibwatch.report.enforcement import enforcement_rows
    except ImportError as exc:
        raise Unavailable(f"enforcement list not available: {exc}") from exc
    return enforcement_rows(con, confirmed_only=confirmed_only, operation_id=operation_id)


def tags(con: duckdb.DuckDBPyConnection, operation_id: str) -> dict | None:
    """Kill-chain and DISARM tags with their evidence, from the report package's findings
    (one source of truth with the published report); None when it is not installed."""
    try:
        from cibwatch.report.collect import operation_views
        from cibwatch.report.disarm import disarm_tags
        from cibwatch.report.findings import findings
        from cibwatch.report.killchain import killchain_tags
    except ImportError:
        return None
    try:
        views = operation_views(con, operation_id)
        found = findings(views[0]) if views else []
        return {"killchain": killchain_tags(found), "disarm": disarm_tags(found), "error": None}
    except Exception as exc:  # a report bug must not take the operation page down
        log.exception("tagging %s failed", operation_id)
        return {"killchain": [], "disarm": [], "error": f"{type(exc).__name__}: {exc}"}
