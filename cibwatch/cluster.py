"""Clusters: Leiden communities of the fused graph, one platform at a time, plus the
low-activity assets tied to them.

Leiden (constant Potts model) runs on the FDR-controlled edges (weight =
rarity-weighted shared keys). A member
must keep most of its edge weight and at least two edges inside its cluster. Then assets
with too little activity to make edges of their own (operators with 0-3 posts, bought
followers) are attached when their ties to a cluster are significant: their comments,
replies, reactions, shares and follows go to the cluster far more than chance would send
them (binomial test against the share of all such actions the cluster receives), or they
share two or more independent account-level keys (creation batch, avatar, handle family,
display name) with the cluster's members, or a large share of the keys they used are the
cluster's, or those of the group of clusters linked to it (a large operation splits into
many clusters). All tests go through one Benjamini-Hochberg. Engaging a cluster's posts
and assets is what its real audience does: in the key tests those keys count only when
they and the rest make most of the asset's keys, and the asset's own engagement of the
cluster attaches it alone only when it is a practice (`attach_min_out_ties`).

Cluster ids are `PLATFORM-c` + a hash of the sorted core member set: stable for
unchanged data, whatever the order rows were loaded in.
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import igraph as ig
import leidenalg
import numpy as np
import pyarrow as pa
from scipy.stats import binom, poisson

from cibwatch.config import ClusterConfig, Config
from cibwatch.graph import ADDITIVE, FAMILIES, benjamini_hochberg

ACCOUNT_KEY_TYPES = ("avatar", "batch", "handle", "name")
CONTENT_FAMILIES = {"content", "link"}
# Key types whose value means the same on every platform (text fingerprint, near-duplicate
# group, canonical link, media hash): the cross-platform key test reads only these.
CROSS_KEY_TYPES = ("text", "neardup", "url", "media")
CROSS_REASON = "on another platform"
# Key types whose value is a post id: the engaged account is that post's author.
POST_KEY_TYPES = ("share", "reply", "react")
# Families whose single co-use supports no cluster of any size: co-engaging an author
# once is what two people who answer the same popular post do (the same moment also
# gives a co-comment or co-re-share); engaging the same authors again and again is not.
REPEAT_FAMILIES = {"engage"}

SIGNAL_LABELS = {
    "text": "identical text",
    "neardup": "near-duplicate text",
    "url": "same link",
    "domain": "same rare domain",
    "share": "co-re-share",
    "reply": "co-comment",
    "react": "co-reaction",
    "hashtags": "same hashtag sequence",
    "media": "same media",
    "avatar": "same avatar",
    "batch": "creation batch",
    "handle": "handle family",
    "name": "same display name",
    "follow": "follows of each other or the same accounts",
    "engage": "engagement with each other or the same authors",
    "attach": "ties of low-activity assets",
    "cross": "content of a cluster on another platform",
}


def cluster_id(platform: str, members: list[str]) -> str:
    digest = hashlib.sha1("\n".join(sorted(members)).encode("utf-8")).hexdigest()[:10]
    return f"{platform}-c{digest}"


def _leiden(platform: str, edges: pa.Table, config: Config) -> dict[str, list[str]]:
    """Leiden communities of one platform's edges, filtered by member rules."""
    cc = config.cluster
    a = edges.column("a").to_pylist()
    b = edges.column("b").to_pylist()
    w = edges.column("weight").to_numpy()
    names = sorted(set(a) | set(b))
    index = {n: i for i, n in enumerate(names)}
    g = ig.Graph(n=len(names), edges=[(index[x], index[y]) for x, y in zip(a, b, strict=True)])
    g.es["weight"] = np.maximum(w, 1e-6).tolist()
    # Constant Potts model: a community must have a weighted density of at least
    # `min_density` typical edges. Unlike modularity it does not split a lone clique
    # just because it is the whole graph.
    part = leidenalg.find_partition(
        g,
        leidenalg.CPMVertexPartition,
        weights="weight",
        resolution_parameter=cc.min_density * float(np.median(w)),
        seed=cc.seed,
        n_iterations=-1,
    )
    membership = np.asarray(part.membership)
    src = np.array([index[x] for x in a], dtype=np.int64)
    dst = np.array([index[y] for y in b], dtype=np.int64)
    inside = membership[src] == membership[dst]
    n = len(names)
    strength = np.bincount(src, w, n) + np.bincount(dst, w, n)
    inner = np.bincount(src[inside], w[inside], n) + np.bincount(dst[inside], w[inside], n)
    degree_in = np.bincount(src[inside], minlength=n) + np.bincount(dst[inside], minlength=n)
    keep = (inner >= cc.min_internal_share * strength) & (degree_in >= cc.min_member_edges)
    groups: dict[int, list[str]] = {}
    for i in np.flatnonzero(keep):
        groups.setdefault(int(membership[i]), []).append(names[i])
    out = {}
    for members in groups.values():
        if len(members) >= cc.min_cluster_size:
            out[cluster_id(platform, members)] = sorted(members)
    return out


def _write_core(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    platforms = [r[0] for r in con.execute("SELECT DISTINCT platform FROM edges ORDER BY 1")
                 .fetchall()]
    rows: dict[str, list] = {"cluster_id": [], "platform": [], "account_id": []}
    for platform in platforms:
        edges = con.sql(
            # rounded: the weights are parallel float sums whose last bits vary from run
            # to run, and Leiden's moves (and so the cluster ids) must not
            "SELECT a, b, round(weight, 9) AS weight FROM edges WHERE platform = ? "
            "ORDER BY a, b",
            params=[platform],
        ).to_arrow_table()
        for cid, members in _leiden(platform, edges, config).items():
            rows["cluster_id"] += [cid] * len(members)
            rows["platform"] += [platform] * len(members)
            rows["account_id"] += members
    con.register("_core", pa.table(rows, schema=pa.schema(
        [("cluster_id", pa.string()), ("platform", pa.string()), ("account_id", pa.string())]
    )))
    con.execute("CREATE OR REPLACE TEMP TABLE _core_t AS SELECT * FROM _core")
    con.unregister("_core")
    dropped = _uncorroborated(con, config) if config.cluster.require_corroboration else []
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _core AS SELECT * FROM _core_t "
        "WHERE NOT list_contains(?, cluster_id)",
        [dropped],
    )
    con.execute("DROP TABLE _core_t")
    # Member score: share of its edge weight inside the cluster times 1 - its best q.
    con.execute(
        """
        INSERT INTO cluster_members
        WITH e AS (
            SELECT platform, a AS x, b AS y, weight, q_value FROM edges
            UNION ALL SELECT platform, b, a, weight, q_value FROM edges
        )
        SELECT m.cluster_id, m.platform, m.account_id,
               coalesce(sum(CASE WHEN o.account_id IS NOT NULL THEN e.weight ELSE 0 END)
                        / nullif(sum(e.weight), 0), 1.0)
                 * (1 - coalesce(min(CASE WHEN o.account_id IS NOT NULL
                                          THEN e.q_value END), 1.0)) AS score,
               'edges' AS reason
        FROM _core m
        JOIN e ON e.platform = m.platform AND e.x = m.account_id
        LEFT JOIN _core o ON o.cluster_id = m.cluster_id AND o.account_id = e.y
        GROUP BY m.cluster_id, m.platform, m.account_id
        """
    )
    con.execute("DROP TABLE _core")


def _uncorroborated(con: duckdb.DuckDBPyConnection, config: Config) -> list[str]:
    """Clusters held together by shared content alone: dropped.

    A family of evidence supports a cluster when, on at least `min_family_share` of its
    internal edges, the family's own count is significant (Poisson p <= 0.01). Copying
    the same texts and links is what real campaigns, chain letters, viral moments and a
    party's page network do; a cluster must also show a family beyond content and links
    (co-re-shares, comments, reactions, engagement, follows, account-level keys).
    In a cluster of fewer than `small_cluster` members, and for the engagement family
    everywhere, an edge counts only with `min_family_count` co-uses of the family: a
    single one is one moment (one viral post gives one re-share, one follow and one
    engagement of its author at once), and a few chance edges make a small cluster."""
    fam = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in FAMILIES.items())
    additive = ", ".join(f"'{f}'" for f in ADDITIVE)
    rows = con.sql(
        f"""
        WITH inner_e AS (
            SELECT x.cluster_id, e.a, e.b, e.signals FROM edges e
            JOIN _core_t x ON x.platform = e.platform AND x.account_id = e.a
            JOIN _core_t y ON y.platform = e.platform AND y.account_id = e.b
                          AND y.cluster_id = x.cluster_id
        ),
        sig AS (
            SELECT cluster_id, a, b, CASE s.key {fam} ELSE s.key END AS family,
                   CAST(s.value->>'count' AS DOUBLE) AS c,
                   CAST(s.value->>'expected' AS DOUBLE) AS lam
            FROM inner_e, json_each(inner_e.signals) s
        )
        SELECT cluster_id, a, b, family,
               CASE WHEN family IN ({additive}) THEN sum(c) ELSE max(c) END AS c,
               CASE WHEN family IN ({additive}) THEN sum(lam) ELSE max(lam) END AS lam
        FROM sig GROUP BY cluster_id, a, b, family
        """
    ).to_arrow_table()
    n_edges = dict(
        con.execute(
            """
            SELECT x.cluster_id, count(*) FROM edges e
            JOIN _core_t x ON x.platform = e.platform AND x.account_id = e.a
            JOIN _core_t y ON y.platform = e.platform AND y.account_id = e.b
                          AND y.cluster_id = x.cluster_id
            GROUP BY ALL
            """
        ).fetchall()
    )
    c = rows.column("c").to_numpy()
    lam = np.maximum(rows.column("lam").to_numpy(zero_copy_only=False), 1e-12)
    present = poisson.sf(c - 1, lam) <= 0.01
    repeated = c >= config.cluster.min_family_count
    sizes = dict(
        con.execute("SELECT cluster_id, count(*) FROM _core_t GROUP BY ALL").fetchall()
    )
    counts: dict[str, dict[str, int]] = {}
    for cid, family, ok, again in zip(
        rows.column("cluster_id").to_pylist(), rows.column("family").to_pylist(), present,
        repeated, strict=True,
    ):
        big = sizes.get(cid, 0) >= config.cluster.small_cluster
        if ok and (again or (big and family not in REPEAT_FAMILIES)):
            fams = counts.setdefault(cid, {})
            fams[family] = fams.get(family, 0) + 1
    share = config.cluster.min_family_share
    dropped = []
    for cid in con.execute("SELECT DISTINCT cluster_id FROM _core_t ORDER BY 1").fetchall():
        cid = cid[0]
        total = n_edges.get(cid, 0)
        support = [f for f, n in counts.get(cid, {}).items() if n >= max(share * total, 2)]
        beyond = set(support) - CONTENT_FAMILIES
        small = sizes.get(cid, 0) < config.cluster.small_cluster
        if len(beyond) < (2 if small else 1):
            dropped.append(cid)
    return dropped


def _key_users(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """`_ku`: the distinct (key, asset) uses for the group-level key test, and `_kdeg`,
    their count per asset and key type, built once for every attach round. Keys above
    the popular-key cap are left out (they say nothing and cost the most). `target` is
    the account a use engages: the author engaged or followed (`engage`, `follow`) or
    the author of the post re-shared, commented on or reacted to (`share`, `reply`,
    `react`); NULL for other key types."""
    cap = int(config.signals.max_key_accounts)
    types = ", ".join(f"'{t}'" for t in POST_KEY_TYPES)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ku AS
        WITH d AS MATERIALIZED (
            SELECT DISTINCT platform, key_type, key, account_id FROM keys
        ),
        k AS MATERIALIZED (
            SELECT d.* FROM d SEMI JOIN (
                SELECT platform, key_type, key FROM d GROUP BY ALL HAVING count(*) <= {cap}
            ) USING (platform, key_type, key)
        )
        SELECT platform, key_type, key, account_id,
               CASE WHEN key_type IN ('engage', 'follow') THEN key END AS target
        FROM k WHERE key_type NOT IN ({types})
        UNION ALL
        SELECT k.platform, k.key_type, k.key, k.account_id, t.account_id
        FROM k LEFT JOIN (SELECT platform, post_id, any_value(account_id) AS account_id
                          FROM posts GROUP BY ALL) t
          ON t.platform = k.platform AND t.post_id = k.key
        WHERE k.key_type IN ({types})
        """
    )
    # per asset and key type: its d for the key test (outsiders' rows taken per round)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kdeg AS SELECT platform, account_id, key_type, "
        "count(*) AS d FROM _ku GROUP BY platform, account_id, key_type"
    )


def _groups(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """`_grp` (group_id, cluster_id) and `_mg` (its members): cluster groups are the
    connected components of one platform's clusters joined by at least
    `attach_group_min_edges` significant edges between their members (group id: its
    smallest cluster id + '+'). A large operation splits into many dense clusters
    (offices, teams, shifts); an asset on its fringe shares a few keys with each, too few
    with any one of them, but most of its keys with the group. Only groups of two or more
    clusters are listed (a lone cluster is tested already)."""
    links = con.execute(
        f"""
        SELECT x.cluster_id, y.cluster_id FROM edges e
        JOIN _m x ON x.platform = e.platform AND x.account_id = e.a
        JOIN _m y ON y.platform = e.platform AND y.account_id = e.b
        WHERE x.cluster_id <> y.cluster_id
        GROUP BY ALL HAVING count(*) >= {int(config.cluster.attach_group_min_edges)}
        ORDER BY 1, 2
        """
    ).fetchall()
    names = sorted({c for pair in links for c in pair})
    index = {n: i for i, n in enumerate(names)}
    g = ig.Graph(n=len(names), edges=[(index[x], index[y]) for x, y in links])
    rows: dict[str, list[str]] = {"group_id": [], "cluster_id": []}
    for comp in g.connected_components():
        ids = sorted(names[i] for i in comp)
        rows["group_id"] += [ids[0] + "+"] * len(ids)
        rows["cluster_id"] += ids
    con.register("_grp_a", pa.table(rows, schema=pa.schema(
        [("group_id", pa.string()), ("cluster_id", pa.string())])))
    con.execute("CREATE OR REPLACE TEMP TABLE _grp AS SELECT * FROM _grp_a")
    con.unregister("_grp_a")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mg AS SELECT g.group_id AS cluster_id, m.platform, "
        "m.account_id FROM _m m JOIN _grp g USING (cluster_id)"
    )


def _key_ties(con: duckdb.DuckDBPyConnection, members: str = "_m") -> pa.Table:
    """Group-level key test for assets outside clusters: of the d keys an asset used,
    y are keys that members of cluster C used too, against mu = sum over key types of
    d_t * pi_C,t, where pi_C,t is the share of all outsiders' uses of type t that fall
    on C's keys (Poisson). An operation's drops put 6-18 of 150 accounts on each key,
    so one pair shares little but each asset shares most of its keys with the cluster.
    Reads `_ku` (see `_key_users`); `members` maps C to its members (`_m` for clusters,
    `_mg` for cluster groups); outsiders are assets outside every cluster (`_m`), their
    counts of uses per key type `_otot` and per asset and key type `_odeg`, both built
    once per attach round by `_attach`. Only uses of C's keys are read, so `_ku` is
    joined to C's keys first and outsiders kept after."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ck AS
        SELECT DISTINCT m.cluster_id, k.platform, k.key_type, k.key
        FROM _ku k JOIN {members} m
          ON m.platform = k.platform AND m.account_id = k.account_id
        """
    )
    # `own`: the use is not the outsider's engagement of one of C's members (a re-share,
    # comment or reaction on their posts, engaging or following them); C's members
    # engaging the outsider (target = the outsider) is the operation's, so it is own.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _hit AS
        SELECT c.cluster_id, o.platform, o.key_type, o.account_id, o.target,
               t.account_id IS NULL AS own
        FROM _ku o JOIN _ck c
          ON c.platform = o.platform AND c.key_type = o.key_type AND c.key = o.key
        LEFT JOIN {members} t ON t.cluster_id = c.cluster_id AND t.platform = o.platform
                            AND t.account_id = o.target AND o.target <> o.account_id
        WHERE NOT EXISTS (SELECT 1 FROM _m x
                          WHERE x.platform = o.platform AND x.account_id = o.account_id)
        """
    )
    # One reaction, comment or re-share gives a post key and an `engage` key of its
    # author: when both match C they are one coincidence, counted once (the post's).
    types = ", ".join(f"'{t}'" for t in POST_KEY_TYPES)
    con.execute(
        f"""
        DELETE FROM _hit h WHERE h.key_type = 'engage' AND EXISTS (
            SELECT 1 FROM _hit x
            WHERE x.cluster_id = h.cluster_id AND x.platform = h.platform
              AND x.account_id = h.account_id AND x.key_type IN ({types})
              AND x.target = h.target)
        """
    )
    out = con.sql(
        """
        WITH pi AS (
            SELECT h.cluster_id, h.platform, h.key_type, count(*) / any_value(t.n) AS pi,
                   count(*) FILTER (WHERE h.own) / any_value(t.n) AS pi_own
            FROM _hit h JOIN _otot t ON t.platform = h.platform AND t.key_type = h.key_type
            GROUP BY h.cluster_id, h.platform, h.key_type
        ),
        y AS (SELECT cluster_id, platform, account_id, count(*) AS y,
                     count(*) FILTER (WHERE own) AS y_own
              FROM _hit GROUP BY cluster_id, platform, account_id)
        SELECT y.platform, y.account_id, y.cluster_id, y.y, any_value(y.y_own) AS y_own,
               CAST(sum(g.d) AS BIGINT) AS d,
               CAST(coalesce(sum(g.d * pi.pi), 0) AS DOUBLE) AS mu,
               CAST(coalesce(sum(g.d * pi.pi_own), 0) AS DOUBLE) AS mu_own
        FROM y
        JOIN _odeg g ON g.platform = y.platform AND g.account_id = y.account_id
        LEFT JOIN pi ON pi.cluster_id = y.cluster_id AND pi.platform = g.platform
                    AND pi.key_type = g.key_type
        GROUP BY y.platform, y.account_id, y.cluster_id, y.y
        """
    ).to_arrow_table()
    for t in ("_ck", "_hit"):
        con.execute(f"DROP TABLE {t}")
    return out


def _key_p(keyed: pa.Table, cc: ClusterConfig) -> pa.Table:
    """The key test's p, with the y and mu its reason quotes. The asset's engagement of
    C's members (co-reactions, co-comments, co-re-shares on their posts, engaging or
    following them) is what C's real audience does: its keys count only when all the
    keys it shares with C make at least `attach_audience_key_share` of the d keys it
    used (most of what it does is C's); otherwise only its other keys count (`own`).
    Either way p is 1 below `attach_min_keys` shared keys or `attach_min_key_share` d."""
    d = keyed.column("d").to_numpy()
    y_all = keyed.column("y").to_numpy()
    own = y_all < cc.attach_audience_key_share * d
    y = np.where(own, keyed.column("y_own").to_numpy(), y_all)
    mu = np.where(own, keyed.column("mu_own").to_numpy(zero_copy_only=False),
                  keyed.column("mu").to_numpy(zero_copy_only=False))
    ok = (y >= cc.attach_min_keys) & (y >= cc.attach_min_key_share * d)
    p = np.where(ok, poisson.sf(y - 1, np.maximum(mu, 1e-300)), 1.0)
    return (keyed.drop_columns(["y", "mu"])
            .append_column("y", pa.array(y))
            .append_column("mu", pa.array(mu, pa.float64()))
            .append_column("own", pa.array(own))
            .append_column("p", pa.array(p, pa.float64())))


def _actions(con: duckdb.DuckDBPyConnection) -> None:
    """`_actions` (platform, actor, target): every re-share, comment and follow of another
    account, built once for every attach round (posts and follows do not change)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _actions AS
        SELECT p.platform, p.account_id AS actor, t.account_id AS target
        FROM posts p
        JOIN posts t ON t.platform = p.platform
                    AND t.post_id = coalesce(p.shared_id, p.parent_id)
        WHERE coalesce(p.shared_id, p.parent_id) IS NOT NULL AND p.account_id <> t.account_id
        UNION ALL
        SELECT platform, follower_id, followee_id FROM follows
        WHERE follower_id <> followee_id
        """
    )


def _attach(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Attach unclustered assets with significant ties to a cluster (see module doc).
    Reads `_actions` (see `_actions`) and `_ku` (see `_key_users`)."""
    cc = config.cluster
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _m AS "
        "SELECT cluster_id, platform, account_id FROM cluster_members"
    )
    # actions annotated with the cluster of actor and of target (NULL = none)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _act AS
        SELECT a.platform, a.actor, a.target, ma.cluster_id AS c_actor, mt.cluster_id AS c_target
        FROM _actions a
        LEFT JOIN _m ma ON ma.platform = a.platform AND ma.account_id = a.actor
        LEFT JOIN _m mt ON mt.platform = a.platform AND mt.account_id = a.target
        """
    )
    # Outgoing: of the x actions an outside asset made, y went to cluster C, whose share
    # of all outside actions is pi. Incoming: of the x actions an outside asset received,
    # y came from C, whose share of all actions is pi.
    ties = con.sql(
        """
        WITH out_tot AS (SELECT platform, count(*) AS n FROM _act WHERE c_actor IS NULL
                         GROUP BY platform),
        out_base AS (
            SELECT a.platform, a.c_target AS cluster_id, count(*) / any_value(t.n) AS pi
            FROM _act a JOIN out_tot t ON t.platform = a.platform
            WHERE a.c_actor IS NULL AND a.c_target IS NOT NULL
            GROUP BY a.platform, a.c_target
        ),
        out_x AS (SELECT platform, actor, count(*) AS x FROM _act WHERE c_actor IS NULL
                  GROUP BY platform, actor),
        out_y AS (SELECT platform, actor, c_target AS cluster_id, count(*) AS y FROM _act
                  WHERE c_actor IS NULL AND c_target IS NOT NULL
                  GROUP BY platform, actor, c_target),
        in_tot AS (SELECT platform, count(*) AS n FROM _act GROUP BY platform),
        in_base AS (
            SELECT a.platform, a.c_actor AS cluster_id, count(*) / any_value(t.n) AS pi
            FROM _act a JOIN in_tot t ON t.platform = a.platform
            WHERE a.c_actor IS NOT NULL GROUP BY a.platform, a.c_actor
        ),
        in_x AS (SELECT platform, target, count(*) AS x FROM _act WHERE c_target IS NULL
                 GROUP BY platform, target),
        in_y AS (SELECT platform, target, c_actor AS cluster_id, count(*) AS y FROM _act
                 WHERE c_target IS NULL AND c_actor IS NOT NULL
                 GROUP BY platform, target, c_actor)
        SELECT y.platform, y.actor AS account_id, y.cluster_id, y.y, x.x, b.pi,
               'out' AS direction
        FROM out_y y JOIN out_x x ON x.platform = y.platform AND x.actor = y.actor
        JOIN out_base b ON b.platform = y.platform AND b.cluster_id = y.cluster_id
        UNION ALL
        SELECT y.platform, y.target, y.cluster_id, y.y, x.x, b.pi, 'in'
        FROM in_y y JOIN in_x x ON x.platform = y.platform AND x.target = y.target
        JOIN in_base b ON b.platform = y.platform AND b.cluster_id = y.cluster_id
        """
    ).to_arrow_table()
    con.execute("DROP TABLE _act")
    types = ", ".join(f"'{t}'" for t in ACCOUNT_KEY_TYPES)
    shared = con.sql(
        f"""
        WITH ak AS (SELECT DISTINCT platform, account_id, key_type, key FROM keys
                    WHERE key_type IN ({types})),
        m AS (SELECT cluster_id, platform, account_id FROM cluster_members),
        cvals AS (
            SELECT DISTINCT m.cluster_id, ak.platform, ak.key_type, ak.key
            FROM ak JOIN m USING (platform, account_id)
        ),
        outside AS (SELECT ak.* FROM ak ANTI JOIN m USING (platform, account_id)),
        typed AS (SELECT platform, key_type, count(DISTINCT account_id) AS n
                  FROM outside GROUP BY ALL),
        holders AS (
            SELECT c.cluster_id, o.platform, o.key_type, o.account_id
            FROM cvals c JOIN outside o USING (platform, key_type, key)
        ),
        q AS (
            SELECT h.cluster_id, h.platform, h.key_type,
                   count(DISTINCT h.account_id) / any_value(t.n) AS q
            FROM holders h JOIN typed t USING (platform, key_type) GROUP BY ALL
        )
        SELECT h.platform, h.account_id, h.cluster_id, count(DISTINCT h.key_type) AS k,
               exp(sum(ln(q.q))) AS p, list(DISTINCT h.key_type ORDER BY h.key_type) AS kt
        FROM (SELECT DISTINCT * FROM holders) h
        JOIN q USING (cluster_id, platform, key_type)
        GROUP BY ALL
        HAVING count(DISTINCT h.key_type) >= {int(cc.attach_min_account_keys)}
        """
    ).to_arrow_table()
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _odeg AS
        SELECT k.* FROM _kdeg k
        ANTI JOIN _m m ON m.platform = k.platform AND m.account_id = k.account_id
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _otot AS SELECT platform, key_type, "
        "CAST(sum(d) AS BIGINT) AS n FROM _odeg GROUP BY platform, key_type"
    )
    keyed = _key_p(_key_ties(con), cc)
    con.register("_keyed", keyed)
    _groups(con, config)
    grouped = _key_p(_key_ties(con, "_mg"), cc)
    con.execute("DROP TABLE _mg")
    for t in ("_otot", "_odeg"):
        con.execute(f"DROP TABLE {t}")
    con.register("_grouped_raw", grouped)
    # a group's test names the group's cluster with which the asset shares most keys
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _grouped AS
        SELECT g.platform, g.account_id, k.cluster_id, g.y, g.d, g.mu, g.own, g.p,
               (SELECT count(*) FROM _grp n WHERE n.group_id = g.cluster_id) AS n_c
        FROM _grouped_raw g
        JOIN _grp gr ON gr.group_id = g.cluster_id
        JOIN _keyed k ON k.platform = g.platform AND k.account_id = g.account_id
                     AND k.cluster_id = gr.cluster_id
        QUALIFY row_number() OVER (PARTITION BY g.platform, g.account_id, g.cluster_id
                                   ORDER BY k.y DESC, k.cluster_id) = 1
        """
    )
    con.unregister("_grouped_raw")
    con.execute("DROP TABLE _grp")
    y = ties.column("y").to_numpy()
    x = ties.column("x").to_numpy()
    pi = ties.column("pi").to_numpy()
    # the asset's own engagement of the cluster needs `attach_min_out_ties`: a reader who
    # found an operation's posts engages it a few times, and mostly it
    out = (ties.column("direction").to_numpy(zero_copy_only=False) == "out")
    least = np.where(out, max(cc.attach_min_ties, cc.attach_min_out_ties), cc.attach_min_ties)
    p_ties = np.where((y >= least) & (y >= cc.attach_min_share * x), binom.sf(y - 1, x, pi), 1.0)
    con.register("_ties", ties.append_column("p", pa.array(p_ties, pa.float64())))
    con.register("_shared", shared)
    # Every (asset, cluster) candidate is a test (Bonferroni over its four: min p x 4),
    # but only those with 4 * min(p) < 1 can pass: only they get reason texts (the slow
    # part); the others count in BH's m.
    tests = """
        SELECT platform, account_id, cluster_id, p FROM _ties
        UNION ALL SELECT platform, account_id, cluster_id, p FROM _shared
        UNION ALL SELECT platform, account_id, cluster_id, p FROM _keyed
        UNION ALL SELECT platform, account_id, cluster_id, p FROM _grouped
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _cand_keep AS
        SELECT platform, account_id, cluster_id, 4 * min(p) < 1.0 AS open
        FROM ({tests}) GROUP BY ALL
        """
    )
    n_tests = int(con.execute("SELECT count(*) FROM _cand_keep").fetchall()[0][0])
    con.execute("DELETE FROM _cand_keep WHERE NOT open")
    cand = con.sql(
        """
        SELECT platform, account_id, cluster_id,
               least(4 * min(p), 1.0) AS p,
               string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reason
        FROM (
            SELECT platform, account_id, cluster_id, p,
                   CASE WHEN direction = 'out'
                        THEN y || ' of its ' || x || ' engagements/follows go to the cluster'
                        ELSE y || ' of the ' || x || ' engagements/follows it received come '
                             || 'from the cluster' END AS reason
            FROM _ties
            UNION ALL
            SELECT platform, account_id, cluster_id, p,
                   'shares ' || array_to_string(kt, ', ') || ' with members' AS reason
            FROM _shared
            UNION ALL
            SELECT platform, account_id, cluster_id, p,
                   y || ' of its ' || d || ' keys are the cluster''s'
                   || CASE WHEN own THEN ' besides its engagement of it' ELSE '' END
                   || ' (' || round(mu, 2) || ' expected)' AS reason
            FROM _keyed
            UNION ALL
            SELECT platform, account_id, cluster_id, p,
                   y || ' of its ' || d || ' keys are keys of this cluster and the ' || n_c - 1
                   || ' clusters linked to it'
                   || CASE WHEN own THEN ' besides its engagement of them' ELSE '' END
                   || ' (' || round(mu, 2) || ' expected)' AS reason
            FROM _grouped
        ) SEMI JOIN _cand_keep USING (platform, account_id, cluster_id)
        GROUP BY ALL ORDER BY platform, account_id, cluster_id
        """
    ).to_arrow_table()
    con.unregister("_ties")
    con.unregister("_shared")
    con.unregister("_keyed")
    con.execute("DROP TABLE _grouped")
    con.execute("DROP TABLE _cand_keep")
    q = benjamini_hochberg(cand.column("p").to_numpy(), n_tests)
    con.register("_cand", cand.append_column("q", pa.array(q, pa.float64())))
    con.execute(
        f"""
        INSERT INTO cluster_members
        SELECT cluster_id, platform, account_id, 1 - q, 'attached: ' || reason
        FROM (
            SELECT *, row_number() OVER (PARTITION BY platform, account_id
                                         ORDER BY q, cluster_id) AS rk
            FROM _cand WHERE q <= {float(cc.attach_fdr)}
        ) WHERE rk = 1
        """
    )
    con.unregister("_cand")


def _cross_platform(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """New clusters of assets whose content is that of a cluster on another platform.

    Clusters are built per platform, so an operation's handful of assets on a minor
    platform (a few YouTube channels, persona accounts on Reddit) has too few pairs to
    pass the FDR there. The key test of `_key_ties` is run across platforms on the key
    types whose value means the same everywhere (`CROSS_KEY_TYPES`): of the d such keys
    an asset outside every cluster used, y are keys that members of cluster C on another
    platform used, against mu = sum over types of d_t x pi, pi the share of its
    platform's outsider uses of type t that fall on C's keys. pi leaves out the uses of
    the candidates themselves (y >= `attach_min_keys` and >= `attach_min_key_share` d):
    an operation's own copies on that platform would otherwise count as chance. Tests
    go through Benjamini-Hochberg at `attach_fdr`; the assets of one platform joined
    through their significant clusters (connected components) make a new cluster when
    they are at least `min_cluster_size`."""
    cc = config.cluster
    types = ", ".join(f"'{t}'" for t in CROSS_KEY_TYPES)
    # `_ku` already holds the distinct uses under the popular-key cap, per key
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _xku AS
        SELECT platform, key_type, key, account_id FROM _ku WHERE key_type IN ({types})
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _xou AS
        SELECT k.* FROM _xku k
        ANTI JOIN cluster_members m ON m.platform = k.platform AND m.account_id = k.account_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _xhit AS
        WITH ck AS (
            SELECT DISTINCT m.cluster_id, m.platform AS c_platform, k.key_type, k.key
            FROM _xku k
            JOIN cluster_members m ON m.platform = k.platform AND m.account_id = k.account_id
        )
        SELECT c.cluster_id, o.platform, o.key_type, o.account_id
        FROM _xou o JOIN ck c ON c.key_type = o.key_type AND c.key = o.key
        WHERE c.c_platform <> o.platform
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _xdeg AS SELECT platform, account_id, key_type, "
        "count(*) AS d FROM _xou GROUP BY ALL"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _xy AS
        SELECT h.cluster_id, h.platform, h.account_id, count(*) AS y, any_value(g.d) AS d,
               count(*) >= {int(cc.attach_min_keys)}
                 AND count(*) >= {float(cc.attach_min_key_share)} * any_value(g.d) AS cand
        FROM _xhit h
        JOIN (SELECT platform, account_id, sum(d) AS d FROM _xdeg GROUP BY ALL) g
          USING (platform, account_id)
        GROUP BY h.cluster_id, h.platform, h.account_id
        """
    )
    min_uses = int(cc.cross_min_type_uses)
    tests = con.sql(
        f"""
        WITH cand AS (SELECT cluster_id, platform, account_id FROM _xy WHERE cand),
        tot AS (SELECT platform, key_type, count(*) AS n FROM _xou GROUP BY ALL),
        -- per cluster: outsider uses and hits on its keys, its candidates left out
        hits AS (
            SELECT h.cluster_id, h.platform, h.key_type, count(*) AS k FROM _xhit h
            ANTI JOIN cand USING (cluster_id, platform, account_id)
            GROUP BY ALL
        ),
        own AS (
            SELECT c.cluster_id, g.platform, g.key_type, sum(g.d) AS d
            FROM cand c JOIN _xdeg g USING (platform, account_id) GROUP BY ALL
        ),
        base AS (
            SELECT c.cluster_id, t.platform, t.key_type, coalesce(h.k, 0) AS k,
                   greatest(t.n - coalesce(o.d, 0), 0) AS m
            FROM (SELECT DISTINCT cluster_id, platform FROM _xy) c
            JOIN tot t USING (platform)
            LEFT JOIN hits h USING (cluster_id, platform, key_type)
            LEFT JOIN own o USING (cluster_id, platform, key_type)
        ),
        -- a type with too few uses outside the candidates has no rate of its own: it
        -- takes the cluster's rate over all these key types on that platform
        pi AS (
            SELECT cluster_id, platform, key_type,
                   CASE WHEN m >= {min_uses} THEN k / greatest(m, 1)
                        ELSE sum(k) OVER w / greatest(sum(m) OVER w, 1) END AS pi
            FROM base WINDOW w AS (PARTITION BY cluster_id, platform)
        )
        SELECT y.platform, y.account_id, y.cluster_id, y.y, y.d, y.cand,
               CAST(coalesce(sum(g.d * pi.pi), 0) AS DOUBLE) AS mu
        FROM _xy y JOIN _xdeg g USING (platform, account_id)
        LEFT JOIN pi ON pi.cluster_id = y.cluster_id AND pi.platform = g.platform
                    AND pi.key_type = g.key_type
        GROUP BY ALL
        ORDER BY y.platform, y.account_id, y.cluster_id
        """
    ).to_arrow_table()
    for t in ("_xku", "_xou", "_xhit", "_xdeg", "_xy"):
        con.execute(f"DROP TABLE {t}")
    y = tests.column("y").to_numpy()
    mu = np.maximum(tests.column("mu").to_numpy(zero_copy_only=False), 1e-300)
    cand = tests.column("cand").to_numpy(zero_copy_only=False)
    p = np.where(cand, poisson.sf(y - 1, mu), 1.0)
    q = benjamini_hochberg(p)
    keep = np.flatnonzero(q <= cc.attach_fdr)
    if len(keep) == 0:
        return
    plat = tests.column("platform").to_pylist()
    acct = tests.column("account_id").to_pylist()
    cid = tests.column("cluster_id").to_pylist()
    assets = sorted({(plat[i], acct[i]) for i in keep})
    targets = sorted({cid[i] for i in keep})
    index = {a: i for i, a in enumerate(assets)}
    tindex = {c: len(assets) + i for i, c in enumerate(targets)}
    g = ig.Graph(n=len(assets) + len(targets),
                 edges=[(index[(plat[i], acct[i])], tindex[cid[i]]) for i in keep])
    best: dict[tuple[str, str], int] = {}
    for i in keep:
        a = (plat[i], acct[i])
        if a not in best or q[i] < q[best[a]]:
            best[a] = i
    rows: dict[str, list] = {k: [] for k in
                             ("cluster_id", "platform", "account_id", "score", "reason")}
    for comp in g.connected_components():
        by_platform: dict[str, list[str]] = {}
        for v in comp:
            if v < len(assets):
                by_platform.setdefault(assets[v][0], []).append(assets[v][1])
        for platform, accounts in sorted(by_platform.items()):
            if len(accounts) < cc.min_cluster_size:
                continue
            new_id = cluster_id(platform, accounts)
            for a in sorted(accounts):
                i = best[(platform, a)]
                rows["cluster_id"].append(new_id)
                rows["platform"].append(platform)
                rows["account_id"].append(a)
                rows["score"].append(float(1 - q[i]))
                rows["reason"].append(
                    f"attached: {y[i]} of its {tests.column('d')[i].as_py()} texts, links "
                    f"and media are those of cluster {cid[i]} {CROSS_REASON} "
                    f"({mu[i]:.2f} expected)"
                )
    con.register("_cross", pa.table(rows, schema=pa.schema([
        ("cluster_id", pa.string()), ("platform", pa.string()), ("account_id", pa.string()),
        ("score", pa.float64()), ("reason", pa.string())])))
    con.execute("INSERT INTO cluster_members SELECT * FROM _cross")
    con.unregister("_cross")


def _evidence(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """clusters rows: size, score, and the top signals as evidence JSON."""
    sig = con.sql(
        """
        WITH m AS (SELECT cluster_id, platform, account_id FROM cluster_members
                   WHERE reason = 'edges'),
        inner_e AS (
            SELECT x.cluster_id, e.* FROM edges e
            JOIN m x ON x.platform = e.platform AND x.account_id = e.a
            JOIN m y ON y.platform = e.platform AND y.account_id = e.b
                    AND y.cluster_id = x.cluster_id
        )
        SELECT cluster_id, s.key AS key_type,
               CAST(s.value->>'count' AS DOUBLE) AS c,
               CAST(s.value->>'expected' AS DOUBLE) AS lam
        FROM inner_e, json_each(inner_e.signals) s
        """
    ).df()
    n_edges = dict(
        con.execute(
            """
            SELECT x.cluster_id, count(*) FROM edges e
            JOIN cluster_members x ON x.platform = e.platform AND x.account_id = e.a
            JOIN cluster_members y ON y.platform = e.platform AND y.account_id = e.b
                 AND y.cluster_id = x.cluster_id
            WHERE x.reason = 'edges' AND y.reason = 'edges'
            GROUP BY ALL
            """
        ).fetchall()
    )
    # a signal is strong on an edge when its own Poisson tail is at most 1%
    sig["strong"] = poisson.sf(sig["c"] - 1, sig["lam"].clip(lower=1e-12)) <= 0.01
    agg = (
        sig.groupby(["cluster_id", "key_type"])
        .agg(pairs=("c", "size"), strong=("strong", "sum"), med_c=("c", "median"),
             med_lam=("lam", "median"))
        .reset_index()
        .sort_values(["cluster_id", "strong", "pairs", "key_type"],
                     ascending=[True, False, False, True])
    )
    rows = [
        (r.cluster_id, r.key_type, int(r.pairs), int(r.strong), n_edges[r.cluster_id],
         r.med_c, r.med_lam)
        for r in agg.itertuples()
    ]
    windows = _window_text(config)
    evidence: dict[str, list[dict]] = {}
    for cid, kt, pairs, strong, n_edges, med_c, med_lam in rows:
        items = evidence.setdefault(cid, [])
        if len(items) >= config.cluster.evidence_signals:
            continue
        label = SIGNAL_LABELS.get(kt, kt)
        items.append(
            {
                "signal": label,
                "strength": round(strong / n_edges, 4),
                "detail": (
                    f"{pairs} of {n_edges} linked pairs share {label} keys"
                    f"{windows.get(kt, '')}; median {med_c:g} shared vs {med_lam:.3g} "
                    f"expected by chance; {strong} pairs significant on this signal alone"
                ),
            }
        )
    attached = con.execute(
        rf"""
        SELECT cluster_id, reason LIKE '%{CROSS_REASON}%' AS cross, count(*),
               list(DISTINCT regexp_extract(reason, 'cluster (\S+) on another', 1))
        FROM cluster_members WHERE reason LIKE 'attached:%'
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    sizes = dict(
        con.execute("SELECT cluster_id, count(*) FROM cluster_members GROUP BY ALL").fetchall()
    )
    for cid, cross, n, sources in attached:
        if cross:
            item = {
                "signal": SIGNAL_LABELS["cross"],
                "strength": round(n / sizes[cid], 4),
                "detail": f"{n} assets whose texts, links and media are mostly those of "
                + (f"cluster {sources[0]} on another platform" if len(sources) == 1 else
                   f"clusters {', '.join(sorted(sources))} on other platforms"),
            }
        else:
            item = {
                "signal": SIGNAL_LABELS["attach"],
                "strength": round(n / sizes[cid], 4),
                "detail": f"{n} low-activity assets attached by engagement, follow or "
                "account-level ties to the cluster",
            }
        evidence.setdefault(cid, []).append(item)
    con.register(
        "_ev",
        pa.table({"cluster_id": list(evidence),
                  "evidence": [json.dumps(v, ensure_ascii=False) for v in evidence.values()]}),
    )
    con.execute(
        """
        INSERT INTO clusters
        SELECT m.cluster_id, any_value(m.platform), count(*),
               coalesce(avg(m.score) FILTER (WHERE m.reason = 'edges'), avg(m.score)),
               any_value(ev.evidence)
        FROM cluster_members m LEFT JOIN _ev ev USING (cluster_id)
        GROUP BY m.cluster_id
        """
    )
    con.unregister("_ev")


def _window_text(config: Config) -> dict[str, str]:
    from cibwatch.signals.kernel import windows

    out = {}
    for kt, w in windows(config.signals).items():
        if w is None:
            continue
        out[kt] = f" within {w // 3600} h" if w >= 3600 else f" within {w} s"
    return out


def find_clusters(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """Replace `clusters` and `cluster_members`; returns the number of clusters."""
    con.execute("DELETE FROM cluster_members")
    con.execute("DELETE FROM clusters")
    _write_core(con, config)
    _key_users(con, config)
    _actions(con)
    for _ in range(config.cluster.attach_rounds):
        _attach(con, config)
    con.execute("DROP TABLE _actions")
    if config.cluster.cross_platform:
        _cross_platform(con, config)
    con.execute("DROP TABLE _ku")
    con.execute("DROP TABLE _kdeg")
    _evidence(con, config)
    return int(con.execute("SELECT count(*) FROM clusters").fetchall()[0][0])

