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
many clusters). The ties and key tests go through one Benjamini-Hochberg; the shared
account-key test's p is already a false-discovery share over every outsider looked at
(`_shared_keys`) and stands as its q. Engaging a cluster's posts
and assets is what its real audience does: in the key tests those keys count only when
they and the rest make most of the asset's keys, and the asset's own engagement of the
cluster attaches it alone only when it is a practice (`attach_min_out_ties`).

Cluster ids are `PLATFORM-c` + a hash of the sorted core member set: stable for
unchanged data, whatever the order rows were loaded in.

The attach tests run on integer ids (`_key_users`): hashed assets and keys, a small id
per platform and key type and per cluster, so their joins and GROUP BYs over millions of
key uses and actions never compare strings; names come back only for the assets
attached. The key test's Poisson mean is computed only where p can be below 1 or a
reason quotes it. DuckDB builds these tables while Leiden runs, and the stage's
independent steps run at once on cursors of their own (Leiden's clusters and the
key-use tables; the action test and the key tests of each attach round).
"""

from __future__ import annotations

import hashlib
import json
import random
from concurrent.futures import ThreadPoolExecutor

import duckdb
import igraph as ig
import numpy as np
import pyarrow as pa
from scipy.stats import binom, poisson

from cibwatch.config import ClusterConfig, Config
from cibwatch.graph import ADDITIVE, DICTIONARIES, FAMILIES, benjamini_hochberg
from cibwatch.signals.kernel import run_kernel
from cibwatch.workspace import scalar

ACCOUNT_KEY_TYPES = ("avatar", "batch", "handle", "name")
# An in-memory database of the stage's tables that more than one cursor reads (temp
# tables are a connection's own), attached for the stage's run.
SCRATCH = "_cibwatch_clusters"
CONTENT_FAMILIES = {"content", "link"}
# Digits kept of values that come out of parallel float sums (edge weights, the shared
# account-key test's E, member and cluster scores): their last bits vary run to run, and
# neither Leiden's moves, nor ties between candidates, nor the files written may.
STABLE_DIGITS = 9
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
    ig.set_random_number_generator(random.Random(cc.seed))
    part = g.community_leiden(
        objective_function="CPM",
        weights="weight",
        resolution=cc.min_density * float(np.median(w)),
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


def _leiden_tasks(con: duckdb.DuckDBPyConnection) -> list[tuple[str, pa.Table]]:
    """Each platform's edges for Leiden, the platform with most edges first."""
    platforms = [r[0] for r in con.execute(
        "SELECT platform FROM edges GROUP BY ALL ORDER BY count(*) DESC, platform"
    ).fetchall()]
    return [
        (platform, con.sql(
            # rounded (`STABLE_DIGITS`): Leiden's moves, and so the cluster ids, must not
            # follow the weights' last bits
            f"SELECT a, b, round(weight, {STABLE_DIGITS}) AS weight FROM edges "
            "WHERE platform = ? ORDER BY a, b",
            params=[platform],
        ).to_arrow_table())
        for platform in platforms
    ]


def _leiden_and_tables(con: duckdb.DuckDBPyConnection, core: duckdb.DuckDBPyConnection,
                       acts: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Leiden on every platform's edges and the core clusters (`_write_core`, on cursor
    `core`), and meanwhile, in other threads, the attach rounds' tables (they need no
    clusters): `_key_users` on `con`, `_actions` on cursor `acts`. igraph holds Python's
    GIL but runs on one core; DuckDB releases it while a statement runs, on its own
    threads. Temp tables are a connection's own: `_pa`, read on both, is in the
    `SCRATCH` database."""
    tasks = _leiden_tasks(con)
    with ThreadPoolExecutor(2) as pool:

        def tables() -> object:
            _post_authors(con)
            actions = pool.submit(_actions, acts)
            _key_users(con, config)
            _edge_ids(con)
            return actions

        keys = pool.submit(tables)
        found = [_leiden(platform, edges, config) for platform, edges in tasks]
        _write_core(core, config, sorted(zip([t[0] for t in tasks], found, strict=True)))
        keys.result().result()


def _write_core(con: duckdb.DuckDBPyConnection, config: Config,
                found: list[tuple[str, dict[str, list[str]]]]) -> None:
    """Leiden's clusters (`found`: per platform, cluster id -> members) that pass
    corroboration, into cluster_members with their member scores."""
    rows: dict[str, list] = {"cluster_id": [], "platform": [], "account_id": []}
    for platform, clusters in found:
        for cid, members in clusters.items():
            rows["cluster_id"] += [cid] * len(members)
            rows["platform"] += [platform] * len(members)
            rows["account_id"] += members
    con.register("_core", pa.table(rows, schema=pa.schema(
        [("cluster_id", pa.string()), ("platform", pa.string()), ("account_id", pa.string())]
    )))
    con.execute("CREATE OR REPLACE TEMP TABLE _core_t AS SELECT * FROM _core")
    con.unregister("_core")
    # the signals of each cluster's internal edges (`_isig`) and their count (`_ien`),
    # parsed once for corroboration and evidence
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _ie AS
        SELECT x.cluster_id, e.a, e.b, e.signals FROM edges e
        JOIN _core_t x ON x.platform = e.platform AND x.account_id = e.a
        JOIN _core_t y ON y.platform = e.platform AND y.account_id = e.b
                      AND y.cluster_id = x.cluster_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _isig AS
        SELECT cluster_id, a, b, s.key AS key_type, s.value.count AS c,
               s.value.expected AS lam
        FROM (
            -- parsed to a map in one pass (three times faster than json_each and ->>)
            SELECT cluster_id, a, b, unnest(map_entries(json_transform(
                signals, '"MAP(VARCHAR, STRUCT(count DOUBLE, expected DOUBLE))"'))) AS s
            FROM _ie
        )
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ien AS SELECT cluster_id, count(*) AS n FROM _ie "
        "GROUP BY ALL"
    )
    con.execute("DROP TABLE _ie")
    dropped = _uncorroborated(con, config) if config.cluster.require_corroboration else []
    for t in ("_isig", "_ien"):
        con.execute(f"DELETE FROM {t} WHERE list_contains(?, cluster_id)", [dropped])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _core AS SELECT * FROM _core_t "
        "WHERE NOT list_contains(?, cluster_id)",
        [dropped],
    )
    con.execute("DROP TABLE _core_t")
    # Member score: share of its edge weight inside the cluster times 1 - its best q,
    # rounded (`STABLE_DIGITS`): a rerun on the same data writes the same files.
    con.execute(
        f"""
        INSERT INTO cluster_members
        WITH e AS (
            SELECT platform, a AS x, b AS y, weight, q_value FROM edges
            UNION ALL SELECT platform, b, a, weight, q_value FROM edges
        )
        SELECT m.cluster_id, m.platform, m.account_id,
               round(coalesce(sum(CASE WHEN o.account_id IS NOT NULL THEN e.weight ELSE 0 END)
                              / nullif(sum(e.weight), 0), 1.0)
                     * (1 - coalesce(min(CASE WHEN o.account_id IS NOT NULL
                                              THEN e.q_value END), 1.0)), {STABLE_DIGITS}) AS score,
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
        WITH sig AS (
            SELECT cluster_id, a, b, CASE key_type {fam} ELSE key_type END AS family, c, lam
            FROM _isig
        )
        SELECT cluster_id, a, b, family,
               CASE WHEN family IN ({additive}) THEN sum(c) ELSE max(c) END AS c,
               CASE WHEN family IN ({additive}) THEN sum(lam) ELSE max(lam) END AS lam
        FROM sig GROUP BY cluster_id, a, b, family
        """
    ).to_arrow_table()
    n_edges = dict(con.execute("SELECT cluster_id, n FROM _ien").fetchall())
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
    """Integer ids for the attach rounds, built once, so that every later join and GROUP
    BY runs on integers, not on string ids. An asset's aid is a 64-bit hash of (platform,
    account_id) and a key's kid one of (key_type, key) (the same key on every platform:
    the cross-platform test joins on it); among the 2 million keys of a 1M-post world two
    share a hash about once in 10 million runs, and would count as one key. DuckDB's
    hash does clash on real ids (two follow keys among the 20M of the 10.8M-post world,
    the graph stage's `key_clashes`): those keys are numbered by the hash of their md5
    instead.

    The uses come from the graph stage's dictionaries (`graph.DICTIONARIES`: one row
    per distinct use of a key by an asset, with the key's number of users), so only the
    distinct keys and assets are hashed, not the millions of string key rows; they are
    built here when absent (clusters run on their own) and dropped once read.

    Reads `SCRATCH._pa` (`_post_authors`).

    - `_kk` (kt, platform, key_type): one kt per platform and key type (`key_kinds`);
    - `_ku` (kt, kid, aid, target): the distinct (key, asset) uses for the key tests.
      Keys above the popular-key cap are left out (they say nothing and cost the most).
      `target` is the aid of the account a use engages: the author engaged or followed
      (`engage`, `follow`) or the author of the post re-shared, commented on or reacted
      to (`share`, `reply`, `react`); NULL for other key types;
    - `_ak` (kt, aid, kid): account-level key uses, uncapped;
    - `_amask` (aid, platform, mask): the account-level key types an asset has values of,
      one bit per type of `ACCOUNT_KEY_TYPES`;
    - `_kdeg` (kt, aid, d): the count of `_ku` uses per asset and kt (the key test's d)."""
    cap = int(config.signals.max_key_accounts)
    posts_t = ", ".join(f"'{t}'" for t in POST_KEY_TYPES)
    account_t = ", ".join(f"'{t}'" for t in ACCOUNT_KEY_TYPES)
    _dictionaries(con, config)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kk AS SELECT kt, platform, key_type FROM key_kinds"
    )
    # per dictionary key (k): its kid and the aid its uses engage (h: the hash of the
    # engaged account or post)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _kid AS
        SELECT i.k, i.kid,
               CASE WHEN i.key_type IN ('engage', 'follow') THEN i.h ELSE p.aid END
                   AS target
        FROM (
            SELECT i.kid AS k,
                   CASE WHEN i.h IN (SELECT h FROM key_clashes)
                        THEN hash(md5(k.key_type || ':' || i.key))
                        ELSE hash(k.key_type, i.key) END AS kid, k.key_type,
                   CASE WHEN k.key_type IN ('engage', 'follow', {posts_t})
                        THEN hash(k.platform, i.key) END AS h
            FROM key_ids i JOIN key_kinds k USING (kt)
        ) i
        LEFT JOIN {SCRATCH}._pa p ON p.ph = CASE WHEN i.key_type IN ({posts_t}) THEN i.h END
        """
    )
    uses = """
        FROM key_uses u JOIN _kid x ON x.k = u.kid
        JOIN (SELECT aid AS a, hash(platform, account_id) AS aid FROM key_accounts) a
          ON a.a = u.aid"""
    # keys above the popular-key cap left out by their number of users (`n_users`)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ku AS SELECT u.kt, x.kid, a.aid, x.target {uses} "
        f"WHERE u.n_users <= {cap}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ak AS SELECT u.kt, a.aid, x.kid {uses} "
        f"WHERE u.kt IN (SELECT kt FROM _kk WHERE key_type IN ({account_t}))"
    )
    _drop(con, "_kid", *DICTIONARIES)
    _account_masks(con)
    # per asset and kt: its d for the key test (outsiders' rows taken per round)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kdeg AS SELECT kt, aid, count(*) AS d FROM _ku "
        "GROUP BY ALL"
    )


def _open_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Attach a new, empty `SCRATCH` database (one a failed run left is replaced)."""
    con.execute(f"DETACH DATABASE IF EXISTS {SCRATCH}")
    con.execute(f"ATTACH ':memory:' AS {SCRATCH}")


def _post_authors(con: duckdb.DuckDBPyConnection) -> None:
    """`SCRATCH._pa` (ph, aid): a post's author, ph the hash of (platform, post_id)."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {SCRATCH}._pa AS
        SELECT hash(platform, post_id) AS ph, any_value(hash(platform, account_id)) AS aid
        FROM posts GROUP BY ALL
        """
    )


def _dictionaries(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """The graph stage's dictionaries of `keys` (`graph.DICTIONARIES`), built from `keys`
    when the connection does not hold them all (clusters of hand-built edges, or run
    again without the graph stage)."""
    held = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary"
    ).fetchall()}
    if not set(DICTIONARIES) <= held:
        run_kernel(con, config.signals, pairs=False)


def _account_masks(con: duckdb.DuckDBPyConnection) -> None:
    """`_amask` (aid, platform, mask) from `_ak` (see `_key_users`)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _amask AS
        SELECT ak.aid, any_value(kk.platform) AS platform,
               bit_or(DISTINCT {_type_bit("kk.key_type")}) AS mask
        FROM _ak ak JOIN _kk kk USING (kt) GROUP BY ak.aid
        """
    )


def _type_bit(column: str) -> str:
    """SQL: the bit of an account-level key type (`ACCOUNT_KEY_TYPES` order), for masks."""
    cases = " ".join(f"WHEN '{t}' THEN {1 << i}" for i, t in enumerate(ACCOUNT_KEY_TYPES))
    return f"CASE {column} {cases} END"


def _kts(types: tuple[str, ...] | str) -> str:
    """The kts of these key types, as an SQL subquery for `IN`."""
    types = (types,) if isinstance(types, str) else types
    listed = ", ".join(f"'{t}'" for t in types)
    return f"(SELECT kt FROM _kk WHERE key_type IN ({listed}))"


def _drop(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Drop these temp tables (one call)."""
    con.execute("; ".join(f"DROP TABLE IF EXISTS {t}" for t in tables))


def _names(con: duckdb.DuckDBPyConnection, aids: str) -> None:
    """`_nm` (aid, platform, account_id): the names of the aids in table `aids`, from
    accounts, or for an asset not there (an unknown author, a followee) from keys,
    posts and follows. Only the few assets attached are named, not every asset.

    An aid two assets share (a 64-bit hash clash: `facebook` accounts `100036401185672`
    and `100031871185629` of the 10.8M-post world, an operator and an ordinary person)
    names neither: the attach tests counted both assets' keys as one asset's, so
    neither is attached on them."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _nm AS
        SELECT DISTINCT * FROM (
            SELECT hash(platform, account_id) AS aid, platform, account_id FROM accounts
        ) SEMI JOIN {aids} USING (aid)
        """
    )
    if scalar(con, f"SELECT count(*) FROM (SELECT aid FROM {aids} ANTI JOIN _nm USING (aid))"):
        con.execute(
            f"""
            INSERT INTO _nm
            SELECT DISTINCT * FROM (
                SELECT hash(platform, account_id) AS aid, platform, account_id FROM (
                    SELECT platform, account_id FROM keys
                    UNION ALL SELECT platform, account_id FROM posts
                    UNION ALL SELECT platform, follower_id FROM follows
                    UNION ALL SELECT platform, followee_id FROM follows)
            ) SEMI JOIN (SELECT aid FROM {aids} ANTI JOIN _nm USING (aid)) USING (aid)
            """
        )
    con.execute(
        "DELETE FROM _nm WHERE aid IN (SELECT aid FROM _nm GROUP BY aid HAVING count(*) > 1)"
    )


def _members(con: duckdb.DuckDBPyConnection) -> None:
    """`_cl` (cid, cluster_id), cid in cluster_id order, and `_m` (cid, platform, aid):
    the clusters and members so far, on integer ids."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _cl AS SELECT CAST(row_number() OVER "
        "(ORDER BY cluster_id) AS INT) AS cid, cluster_id "
        "FROM (SELECT DISTINCT cluster_id FROM cluster_members)"
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _m AS
        SELECT c.cid, m.platform, hash(m.platform, m.account_id) AS aid
        FROM cluster_members m JOIN _cl c USING (cluster_id)
        """
    )


def _groups(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """`_grp` (gid, cid, n_c) and `_mg` (its members): cluster groups are the connected
    components of one platform's clusters joined by at least `attach_group_min_edges`
    significant edges between their members (gid: its smallest cid, n_c: its clusters).
    A large operation splits into many dense clusters (offices, teams, shifts); an asset
    on its fringe shares a few keys with each, too few with any one of them, but most of
    its keys with the group. Only groups of two or more clusters are listed (a lone
    cluster is tested already)."""
    links = con.execute(
        f"""
        SELECT x.cid, y.cid FROM _eid e
        JOIN _m x ON x.aid = e.a
        JOIN _m y ON y.aid = e.b
        WHERE x.cid <> y.cid
        GROUP BY ALL HAVING count(*) >= {int(config.cluster.attach_group_min_edges)}
        ORDER BY 1, 2
        """
    ).fetchall()
    names = sorted({c for pair in links for c in pair})
    index = {n: i for i, n in enumerate(names)}
    g = ig.Graph(n=len(names), edges=[(index[x], index[y]) for x, y in links])
    rows: dict[str, list[int]] = {"gid": [], "cid": [], "n_c": []}
    for comp in g.connected_components():
        ids = sorted(names[i] for i in comp)
        rows["gid"] += [ids[0]] * len(ids)
        rows["cid"] += ids
        rows["n_c"] += [len(ids)] * len(ids)
    con.register("_grp_a", pa.table(rows, schema=pa.schema(
        [("gid", pa.int32()), ("cid", pa.int32()), ("n_c", pa.int64())])))
    con.execute("CREATE OR REPLACE TEMP TABLE _grp AS SELECT * FROM _grp_a")
    con.unregister("_grp_a")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mg AS SELECT g.gid AS cid, m.platform, m.aid "
        "FROM _m m JOIN _grp g USING (cid)"
    )


def _key_ties(con: duckdb.DuckDBPyConnection, members: str, keys: str, name: str,
              cc: ClusterConfig) -> None:
    """Group-level key test for assets outside clusters: of the d keys an asset used,
    y are keys that members of cluster C used too, against mu = sum over key types of
    d_t * pi_C,t, where pi_C,t is the share of all outsiders' uses of type t that fall
    on C's keys (Poisson). An operation's drops put 6-18 of 150 accounts on each key,
    so one pair shares little but each asset shares most of its keys with the cluster.
    Reads `_ku` (see `_key_users`); `members` maps C to its members (`_m` for clusters,
    `_mg` for cluster groups) and `keys` (cid, kt, kid) to their keys; outsiders are
    assets outside every cluster (`_m`), their counts of uses per key type `_otot`, per
    asset and key type `_odeg` and per asset `_odt`, built once per attach round by
    `_attach_keys`. Only uses of C's keys are read, so `_ku` is joined to C's keys first
    and outsiders kept after.

    The asset's engagement of C's members (co-reactions, co-comments, co-re-shares on
    their posts, engaging or following them) is what C's real audience does: its keys
    count only when all the keys it shares with C make at least
    `attach_audience_key_share` of the d keys it used (most of what it does is C's);
    otherwise only its other keys count (`own`). Either way p is 1 below
    `attach_min_keys` shared keys or `attach_min_key_share` d.

    Writes `name` (aid, cid, y, d, own, mu, p) and `name`_pi (cid, kt, pi, pi_own). mu
    is computed only where p can be below 1 (most of the tests are 1 or 2 shared keys
    out of many); `_fill_mu` adds it where a reason quotes it."""
    # `own`: the use is not the outsider's engagement of one of C's members (a re-share,
    # comment or reaction on their posts, engaging or following them); C's members
    # engaging the outsider (target = the outsider) is the operation's, so it is own.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _hit AS
        SELECT c.cid, o.kt, o.aid, o.target, t.aid IS NULL AS own
        FROM _ku o JOIN {keys} c ON c.kt = o.kt AND c.kid = o.kid
        LEFT JOIN {members} t ON t.cid = c.cid AND t.aid = o.target AND o.target <> o.aid
        WHERE NOT EXISTS (SELECT 1 FROM _m x WHERE x.aid = o.aid)
        """
    )
    # One reaction, comment or re-share gives a post key and an `engage` key of its
    # author: when both match C they are one coincidence, counted once (the post's).
    con.execute(
        f"""
        DELETE FROM _hit h WHERE h.kt IN {_kts('engage')} AND EXISTS (
            SELECT 1 FROM _hit x
            WHERE x.cid = h.cid AND x.aid = h.aid AND x.kt IN {_kts(POST_KEY_TYPES)}
              AND x.target = h.target)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {name}_pi AS
        SELECT h.cid, h.kt, count(*) / any_value(t.n) AS pi,
               count(*) FILTER (WHERE h.own) / any_value(t.n) AS pi_own
        FROM _hit h JOIN _otot t USING (kt)
        GROUP BY h.cid, h.kt
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        WITH y AS (SELECT cid, aid, count(*) AS y, count(*) FILTER (WHERE own) AS y_own
                   FROM _hit GROUP BY cid, aid),
        o AS (SELECT y.*, g.d, y.y < {_dbl(cc.attach_audience_key_share)} * g.d AS own
              FROM y JOIN _odt g USING (aid))
        SELECT aid, cid, CASE WHEN own THEN y_own ELSE y END AS y, d, own,
               CAST(NULL AS DOUBLE) AS mu, CAST(1.0 AS DOUBLE) AS p
        FROM o
        """
    )
    con.execute("DROP TABLE _hit")
    ok = (f"x.y >= {int(cc.attach_min_keys)} "
          f"AND x.y >= {_dbl(cc.attach_min_key_share)} * x.d")
    _fill_mu(con, name, ok)
    rows = con.sql(f"SELECT aid, cid, y, mu FROM {name} x WHERE {ok}").to_arrow_table()
    p = poisson.sf(rows.column("y").to_numpy() - 1,
                   np.maximum(rows.column("mu").to_numpy(zero_copy_only=False), 1e-300))
    _set_p(con, name, rows.select(["aid", "cid"]), p)


def _dbl(x: float) -> str:
    """A config share as an SQL DOUBLE (compared as NumPy would: no DECIMAL)."""
    return f"CAST({float(x)!r} AS DOUBLE)"


def _fill_mu(con: duckdb.DuckDBPyConnection, name: str, where: str) -> None:
    """Set mu (see `_key_ties`) on the rows x of key test `name` that match `where`."""
    con.execute(
        f"""
        UPDATE {name} t SET mu = f.mu FROM (
            SELECT x.aid, x.cid,
                   CAST(coalesce(sum(g.d * CASE WHEN x.own THEN pi.pi_own ELSE pi.pi END), 0)
                        AS DOUBLE) AS mu
            FROM {name} x JOIN _odeg g USING (aid)
            LEFT JOIN {name}_pi pi ON pi.cid = x.cid AND pi.kt = g.kt
            WHERE {where}
            GROUP BY x.aid, x.cid
        ) f
        WHERE t.aid = f.aid AND t.cid = f.cid
        """
    )


def _set_p(con: duckdb.DuckDBPyConnection, name: str, keys: pa.Table, p: np.ndarray) -> None:
    """Set p on the rows of test table `name` that match `keys` (the others keep 1)."""
    if len(p) == 0:
        return
    con.register("_p_a", keys.append_column("p_new", pa.array(p, pa.float64())))
    on = " AND ".join(f"t.{c} = s.{c}" for c in keys.column_names)
    con.execute(f"UPDATE {name} t SET p = s.p_new FROM _p_a s WHERE {on}")
    con.unregister("_p_a")


def _actions(con: duckdb.DuckDBPyConnection) -> None:
    """`_actions` (platform, actor, target): every re-share, comment and follow of another
    account (aids), built once for every attach round (posts and follows do not change),
    with its counts per asset and platform (`_aout`, `_ain`, `_atot`)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _actions AS
        SELECT p.platform, p.aid AS actor, t.aid AS target
        FROM (SELECT platform, hash(platform, account_id) AS aid,
                     hash(platform, coalesce(shared_id, parent_id)) AS ph
              FROM posts WHERE coalesce(shared_id, parent_id) IS NOT NULL) p
        JOIN {SCRATCH}._pa t USING (ph)
        WHERE p.aid <> t.aid
        UNION ALL
        SELECT platform, hash(platform, follower_id), hash(platform, followee_id)
        FROM follows WHERE follower_id <> followee_id
        """
    )
    # per asset the actions it made and received, and per platform all actions: each
    # round reads only the actions of and on cluster members
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _aout AS SELECT actor AS aid, count(*) AS x "
        "FROM _actions GROUP BY actor"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ain AS SELECT target AS aid, count(*) AS x "
        "FROM _actions GROUP BY target"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _atot AS SELECT platform, count(*) AS n "
        "FROM _actions GROUP BY platform"
    )


def _edge_ids(con: duckdb.DuckDBPyConnection) -> None:
    """`_eid` (a, b): the edges on aids."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _eid AS
        SELECT hash(platform, a) AS a, hash(platform, b) AS b FROM edges
        """
    )


def _attach(con: duckdb.DuckDBPyConnection, acts: duckdb.DuckDBPyConnection,
            config: Config) -> None:
    """Attach unclustered assets with significant ties to a cluster (see module doc).
    Reads `_ku`, `_ak`, `_kdeg` (see `_key_users`); the action test runs meanwhile, in
    another thread, on cursor `acts`, which holds `_actions` (see `_actions`)."""
    cc = config.cluster
    with ThreadPoolExecutor(1) as pool:
        ties = pool.submit(_action_ties_on, acts, cc)
        _attach_keys(con, cc, config)
        con.register("_ties_a", ties.result())
    con.execute("CREATE OR REPLACE TEMP TABLE _ties AS SELECT * FROM _ties_a")
    con.unregister("_ties_a")
    _attach_winners(con, cc)


def _attach_keys(con: duckdb.DuckDBPyConnection, cc: ClusterConfig, config: Config) -> None:
    """The shared account-key test (`_shared`), and the key tests of clusters (`_keyed`)
    and of cluster groups (`_gk`, `_grp`, named by `_grouped`)."""
    _members(con)
    _shared_keys(con, cc)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _odeg AS SELECT k.* FROM _kdeg k ANTI JOIN _m m USING (aid)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _odt AS SELECT aid, CAST(sum(d) AS BIGINT) AS d "
        "FROM _odeg GROUP BY aid"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _otot AS SELECT kt, CAST(sum(d) AS BIGINT) AS n "
        "FROM _odeg GROUP BY kt"
    )
    # the keys of each cluster, and of each group (the union of its clusters' keys)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ck AS SELECT DISTINCT m.cid, k.kt, k.kid "
        "FROM _ku k JOIN _m m USING (aid)"
    )
    _key_ties(con, "_m", "_ck", "_keyed", cc)
    _groups(con, config)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ckg AS SELECT DISTINCT g.gid AS cid, c.kt, c.kid "
        "FROM _ck c JOIN _grp g USING (cid)"
    )
    _key_ties(con, "_mg", "_ckg", "_gk", cc)
    _drop(con, "_mg", "_ck", "_ckg")
    # a group's test names the group's cluster with which the asset shares most keys
    # (the smallest cid of those)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _grouped AS
        SELECT g.aid, arg_min(k.cid, (-k.y, k.cid)) AS cid, g.cid AS gid,
               any_value(gr.n_c) AS n_c, any_value(g.p) AS p
        FROM _gk g
        JOIN _grp gr ON gr.gid = g.cid
        JOIN _keyed k ON k.aid = g.aid AND k.cid = gr.cid
        GROUP BY g.aid, g.cid
        """
    )
    con.execute("DROP TABLE _grp")


def _attach_winners(con: duckdb.DuckDBPyConnection, cc: ClusterConfig) -> None:
    """The assets whose best test passes Benjamini-Hochberg, into cluster_members."""
    # Every (asset, cluster) candidate of the ties and key tests is a test of one BH
    # (Bonferroni over the four tests: min p x 4), but only those with 4 * min(p) < 1 can
    # pass: only they get reason texts (the slow part: each test's rows are cut to them
    # before their texts are built); the others count in BH's m. The
    # shared account-key test's p is already a false-discovery share over every outsider
    # looked at (`_shared_keys`): it is not put through BH a second time.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _cand_keep AS
        SELECT aid, cid, 4 * min(p) < 1.0 AS open, bool_or(NOT shared) AS tested
        FROM (SELECT aid, cid, p, false AS shared FROM _ties
              UNION ALL SELECT aid, cid, p, true FROM _shared
              UNION ALL SELECT aid, cid, p, false FROM _keyed
              UNION ALL SELECT aid, cid, p, false FROM _grouped)
        GROUP BY ALL
        """
    )
    n_tests = int(scalar(con, "SELECT count(*) FROM _cand_keep WHERE tested"))
    con.execute("DELETE FROM _cand_keep WHERE NOT open")
    # the key tests' mu where a reason quotes it
    _fill_mu(con, "_keyed", "x.mu IS NULL AND EXISTS (SELECT 1 FROM _cand_keep c "
             "WHERE c.aid = x.aid AND c.cid = x.cid)")
    _fill_mu(con, "_gk", "x.mu IS NULL AND EXISTS (SELECT 1 FROM _grouped g "
             "JOIN _cand_keep c USING (aid, cid) WHERE g.aid = x.aid AND g.gid = x.cid)")
    cand = con.sql(
        """
        SELECT aid, cid, least(4 * min(p) FILTER (WHERE NOT shared), 1.0) AS p,
               least(4 * min(p) FILTER (WHERE shared), 1.0) AS q_shared,
               string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reason
        FROM (
            SELECT aid, cid, p, false AS shared,
                   CASE WHEN direction = 'out'
                        THEN y || ' of its ' || x || ' engagements/follows go to the cluster'
                        ELSE y || ' of the ' || x || ' engagements/follows it received come '
                             || 'from the cluster' END AS reason
            FROM _ties SEMI JOIN _cand_keep USING (aid, cid)
            UNION ALL
            SELECT aid, cid, p, true,
                   'shares ' || array_to_string(kt, ', ') || ' with members' AS reason
            FROM _shared SEMI JOIN _cand_keep USING (aid, cid)
            UNION ALL
            SELECT aid, cid, p, false,
                   y || ' of its ' || d || ' keys are the cluster''s'
                   || CASE WHEN own THEN ' besides its engagement of it' ELSE '' END
                   || ' (' || round(mu, 2) || ' expected)' AS reason
            FROM _keyed SEMI JOIN _cand_keep USING (aid, cid)
            UNION ALL
            SELECT g.aid, g.cid, x.p, false,
                   x.y || ' of its ' || x.d || ' keys are keys of this cluster and the '
                   || g.n_c - 1 || ' clusters linked to it'
                   || CASE WHEN x.own THEN ' besides its engagement of them' ELSE '' END
                   || ' (' || round(x.mu, 2) || ' expected)' AS reason
            FROM (SELECT * FROM _grouped SEMI JOIN _cand_keep USING (aid, cid)) g
            JOIN _gk x ON x.aid = g.aid AND x.cid = g.gid
        )
        GROUP BY ALL ORDER BY aid, cid
        """
    ).to_arrow_table()
    _drop(con, "_ties", "_shared", "_keyed", "_keyed_pi", "_gk", "_gk_pi", "_grouped",
          "_cand_keep", "_odeg", "_odt", "_otot")
    p = cand.column("p").to_numpy(zero_copy_only=False).astype(np.float64)
    tested = ~np.isnan(p)
    q = cand.column("q_shared").to_numpy(zero_copy_only=False).astype(np.float64)
    q = np.nan_to_num(q, nan=1.0)
    q[tested] = np.minimum(q[tested], benjamini_hochberg(p[tested], n_tests))
    con.register("_cand", cand.append_column("q", pa.array(q, pa.float64())))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _win AS
        SELECT aid, cid, q, reason FROM _cand WHERE q <= {float(cc.attach_fdr)}
        QUALIFY row_number() OVER (PARTITION BY aid ORDER BY q, cid) = 1
        """
    )
    con.unregister("_cand")
    _names(con, "_win")
    con.execute(
        f"""
        INSERT INTO cluster_members
        SELECT c.cluster_id, a.platform, a.account_id, round(1 - x.q, {STABLE_DIGITS}),
               'attached: ' || x.reason
        FROM _win x JOIN _nm a USING (aid) JOIN _cl c USING (cid)
        """
    )
    con.execute("DROP TABLE _win")


def _action_ties(con: duckdb.DuckDBPyConnection, cc: ClusterConfig) -> None:
    """`_ties` (aid, cid, y, x, pi, direction, p): the binomial test of an outside asset's
    actions. Outgoing: of the x actions an outside asset made, y went to cluster C, whose
    share of all outside actions is pi. Incoming: of the x actions an outside asset
    received, y came from C, whose share of all actions is pi. The asset's own
    engagement of the cluster needs `attach_min_out_ties`: a reader who found an
    operation's posts engages it a few times, and mostly it; the cluster's engagement of
    the asset needs `attach_min_in_ties`: an operation answers real people too."""
    # actions annotated with the cluster of actor and of target (NULL = none)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _act AS
        SELECT a.platform, a.actor, a.target, ma.cid AS c_actor, mt.cid AS c_target
        FROM _actions a
        LEFT JOIN _m ma ON ma.aid = a.actor
        LEFT JOIN _m mt ON mt.aid = a.target
        WHERE ma.cid IS NOT NULL OR mt.cid IS NOT NULL
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _ties AS
        WITH out_tot AS (
            SELECT t.platform, CAST(any_value(t.n) - coalesce(sum(o.x), 0) AS BIGINT) AS n
            FROM _atot t LEFT JOIN (SELECT m.platform, o.x FROM _m m JOIN _aout o USING (aid)) o
              USING (platform)
            GROUP BY t.platform
        ),
        out_base AS (
            SELECT a.c_target AS cid, count(*) / any_value(t.n) AS pi
            FROM _act a JOIN out_tot t ON t.platform = a.platform
            WHERE a.c_actor IS NULL AND a.c_target IS NOT NULL
            GROUP BY a.c_target
        ),
        out_x AS (SELECT aid AS actor, x FROM _aout),
        out_y AS (SELECT actor, c_target AS cid, count(*) AS y FROM _act
                  WHERE c_actor IS NULL AND c_target IS NOT NULL
                  GROUP BY actor, c_target),
        in_tot AS (SELECT platform, n FROM _atot),
        in_base AS (
            SELECT a.c_actor AS cid, count(*) / any_value(t.n) AS pi
            FROM _act a JOIN in_tot t ON t.platform = a.platform
            WHERE a.c_actor IS NOT NULL GROUP BY a.c_actor
        ),
        in_x AS (SELECT aid AS target, x FROM _ain),
        in_y AS (SELECT target, c_actor AS cid, count(*) AS y FROM _act
                 WHERE c_target IS NULL AND c_actor IS NOT NULL
                 GROUP BY target, c_actor)
        SELECT y.actor AS aid, y.cid, y.y, x.x, b.pi, 'out' AS direction,
               CAST(1.0 AS DOUBLE) AS p
        FROM out_y y JOIN out_x x USING (actor)
        JOIN out_base b USING (cid)
        UNION ALL
        SELECT y.target, y.cid, y.y, x.x, b.pi, 'in', 1.0
        FROM in_y y JOIN in_x x USING (target)
        JOIN in_base b USING (cid)
        """
    )
    con.execute("DROP TABLE _act")
    least_out = max(cc.attach_min_ties, cc.attach_min_out_ties)
    least_in = max(cc.attach_min_ties, cc.attach_min_in_ties)
    rows = con.sql(
        f"""
        SELECT aid, cid, direction, y, x, pi FROM _ties
        WHERE y >= CASE WHEN direction = 'out' THEN {int(least_out)}
                        ELSE {int(least_in)} END
          AND y >= {_dbl(cc.attach_min_share)} * x
        """
    ).to_arrow_table()
    p = binom.sf(rows.column("y").to_numpy() - 1, rows.column("x").to_numpy(),
                 rows.column("pi").to_numpy())
    _set_p(con, "_ties", rows.select(["aid", "cid", "direction"]), p)


def _action_ties_on(acts: duckdb.DuckDBPyConnection, cc: ClusterConfig) -> pa.Table:
    """`_action_ties` on cursor `acts` (it holds `_actions`; `_m` of its own): `_ties`."""
    _members(acts)
    _action_ties(acts, cc)
    ties = acts.sql("SELECT * FROM _ties").to_arrow_table()
    acts.execute("DROP TABLE _ties")
    return ties


def _shared_keys(con: duckdb.DuckDBPyConnection, cc: ClusterConfig) -> None:
    """`_shared` (aid, cid, k, p, kt): outside assets sharing at least
    `attach_min_account_keys` account-level key types with a cluster's members.

    For one outsider, the chance of holding one of the cluster's values of type t is
    q_t, the share of the platform's outsiders with a value of that type that hold one;
    over a set S of types (independent coincidences) it is r = the product of q_t. Every
    outsider holding values of all of S is looked at, but only those that match become
    tests (BH's m counts candidates only), so the chance must be that of the search: E =
    N_S r outsiders are expected to match as rarely, N_S the outsiders with values of
    every type in S. p is E over K, the cluster's candidates at least as unexpected (the
    share of them chance explains, capped at 1). One outsider sharing a common name and
    creation batch among 393,000 (E = 0.35) is chance, and was attached on r alone at
    10.8M posts (benchmarks/RESULTS.md, "False positives at 10.8M posts"); four dormant
    assets sharing a cluster's handle family, name and batch are not."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _shared AS
        WITH kbit AS (
            SELECT kt, platform, key_type, {_type_bit("key_type")} AS bit FROM _kk
            WHERE key_type IN ({", ".join(f"'{t}'" for t in ACCOUNT_KEY_TYPES)})
        ),
        cvals AS (
            SELECT DISTINCT m.cid, ak.kt, ak.kid FROM _ak ak JOIN _m m USING (aid)
        ),
        masks AS (
            SELECT platform, mask, count(*) AS n FROM _amask ANTI JOIN _m USING (aid)
            GROUP BY ALL
        ),
        typed AS (
            SELECT b.kt, sum(m.n) AS n FROM kbit b
            JOIN masks m ON m.platform = b.platform AND (m.mask & b.bit) = b.bit
            GROUP BY b.kt
        ),
        holders AS (
            SELECT DISTINCT c.cid, ak.kt, ak.aid
            FROM cvals c JOIN _ak ak USING (kt, kid) ANTI JOIN _m m USING (aid)
        ),
        q AS (
            SELECT h.cid, h.kt, count(*) / any_value(t.n) AS q
            FROM holders h JOIN typed t USING (kt) GROUP BY ALL
        ),
        r AS (
            SELECT h.aid, h.cid, any_value(b.platform) AS platform, count(*) AS k,
                   exp(sum(ln(q.q))) AS r, bit_or(b.bit) AS mask,
                   list(b.key_type ORDER BY b.key_type) AS kt
            FROM holders h JOIN q USING (cid, kt) JOIN kbit b USING (kt)
            GROUP BY h.aid, h.cid
            HAVING count(*) >= {int(cc.attach_min_account_keys)}
        ),
        -- E rounded (`STABLE_DIGITS` decimals of its log): the candidates that share the
        -- same types tie, and their parallel float sums must not break the tie
        -- differently in every run (K would change with it)
        e AS (
            SELECT r.aid, r.cid, r.k, r.kt,
                   exp(round(ln(r.r * sum(m.n)), {STABLE_DIGITS})) AS e
            FROM r JOIN masks m ON m.platform = r.platform AND (m.mask & r.mask) = r.mask
            GROUP BY r.aid, r.cid, r.k, r.kt, r.r
        )
        SELECT aid, cid, k,
               least(1.0, e / count(*) OVER (PARTITION BY cid ORDER BY e
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS p, kt
        FROM e
        """
    )


def _cross_uses(con: duckdb.DuckDBPyConnection) -> None:
    """`_xku` (platform, kt, kid, aid): the uses of `CROSS_KEY_TYPES` keys for every
    round of `_cross_platform` (`_ku` already holds the distinct uses under the
    popular-key cap, per key)."""
    types = ", ".join(f"'{t}'" for t in CROSS_KEY_TYPES)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _xku AS
        SELECT kk.platform, k.kt, k.kid, k.aid FROM _ku k JOIN _kk kk USING (kt)
        WHERE kk.key_type IN ({types})
        """
    )


def _cross_platform(con: duckdb.DuckDBPyConnection, config: Config) -> int:
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
    they are at least `cross_min_cluster_size`."""
    cc = config.cluster
    _members(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _xou AS SELECT k.* FROM _xku k ANTI JOIN _m m USING (aid)"
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _xhit AS
        WITH ck AS (
            SELECT DISTINCT m.cid, m.platform AS c_platform, k.kid
            FROM _xku k JOIN _m m USING (aid)
        )
        SELECT c.cid, o.platform, o.kt, o.aid
        FROM _xou o JOIN ck c ON c.kid = o.kid
        WHERE c.c_platform <> o.platform
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _xdeg AS SELECT platform, aid, kt, count(*) AS d "
        "FROM _xou GROUP BY ALL"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _xy AS
        SELECT h.cid, h.platform, h.aid, count(*) AS y, any_value(g.d) AS d,
               count(*) >= {int(cc.attach_min_keys)}
                 AND count(*) >= {float(cc.attach_min_key_share)} * any_value(g.d) AS cand
        FROM _xhit h
        JOIN (SELECT aid, sum(d) AS d FROM _xdeg GROUP BY ALL) g USING (aid)
        GROUP BY h.cid, h.platform, h.aid
        """
    )
    min_uses = int(cc.cross_min_type_uses)
    _names(con, "_xy")
    tests = con.sql(
        f"""
        WITH cand AS (SELECT cid, aid FROM _xy WHERE cand),
        tot AS (SELECT platform, kt, count(*) AS n FROM _xou GROUP BY ALL),
        -- per cluster: outsider uses and hits on its keys, its candidates left out
        hits AS (
            SELECT h.cid, h.platform, h.kt, count(*) AS k FROM _xhit h
            ANTI JOIN cand USING (cid, aid)
            GROUP BY ALL
        ),
        own AS (
            SELECT c.cid, g.platform, g.kt, sum(g.d) AS d
            FROM cand c JOIN _xdeg g USING (aid) GROUP BY ALL
        ),
        base AS (
            SELECT c.cid, t.platform, t.kt, coalesce(h.k, 0) AS k,
                   greatest(t.n - coalesce(o.d, 0), 0) AS m
            FROM (SELECT DISTINCT cid, platform FROM _xy) c
            JOIN tot t USING (platform)
            LEFT JOIN hits h USING (cid, platform, kt)
            LEFT JOIN own o USING (cid, platform, kt)
        ),
        -- a type with too few uses outside the candidates has no rate of its own: it
        -- takes the cluster's rate over all these key types on that platform
        pi AS (
            SELECT cid, platform, kt,
                   CASE WHEN m >= {min_uses} THEN k / greatest(m, 1)
                        ELSE sum(k) OVER w / greatest(sum(m) OVER w, 1) END AS pi
            FROM base WINDOW w AS (PARTITION BY cid, platform)
        ),
        t AS (
            SELECT y.aid, y.cid, y.y, y.d, y.cand,
                   CAST(coalesce(sum(g.d * pi.pi), 0) AS DOUBLE) AS mu
            FROM _xy y JOIN _xdeg g USING (aid)
            LEFT JOIN pi ON pi.cid = y.cid AND pi.platform = g.platform AND pi.kt = g.kt
            GROUP BY y.aid, y.cid, y.y, y.d, y.cand
        )
        SELECT a.platform, a.account_id, c.cluster_id, t.y, t.d, t.cand, t.mu
        FROM t JOIN _nm a USING (aid) JOIN _cl c USING (cid)
        ORDER BY a.platform, a.account_id, c.cluster_id
        """
    ).to_arrow_table()
    _drop(con, "_xou", "_xhit", "_xdeg", "_xy")
    y = tests.column("y").to_numpy()
    mu = np.maximum(tests.column("mu").to_numpy(zero_copy_only=False), 1e-300)
    cand = tests.column("cand").to_numpy(zero_copy_only=False)
    p = np.where(cand, poisson.sf(y - 1, mu), 1.0)
    q = benjamini_hochberg(p)
    keep = np.flatnonzero(q <= cc.attach_fdr)
    if len(keep) == 0:
        return 0
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
            if len(accounts) < cc.cross_min_cluster_size:
                continue
            new_id = cluster_id(platform, accounts)
            for a in sorted(accounts):
                i = best[(platform, a)]
                rows["cluster_id"].append(new_id)
                rows["platform"].append(platform)
                rows["account_id"].append(a)
                rows["score"].append(round(float(1 - q[i]), STABLE_DIGITS))
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
    return len(rows["account_id"])


def _evidence(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """clusters rows: size, score, and the top signals as evidence JSON."""
    # `_isig`, `_ien`: the Leiden members' internal edges (see `_write_core`)
    sig = con.sql("SELECT cluster_id, key_type, c, lam FROM _isig").df()
    n_edges = dict(con.execute("SELECT cluster_id, n FROM _ien").fetchall())
    _drop(con, "_isig", "_ien")
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
        f"""
        INSERT INTO clusters
        SELECT m.cluster_id, any_value(m.platform), count(*),
               round(coalesce(avg(m.score) FILTER (WHERE m.reason = 'edges'),
                              avg(m.score)), {STABLE_DIGITS}),
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
    _open_scratch(con)
    core, acts = con.cursor(), con.cursor()
    try:
        _leiden_and_tables(con, core, acts, config)
        for _ in range(config.cluster.attach_rounds):
            _attach(con, acts, config)
        if config.cluster.cross_platform:
            _cross_uses(con)
            # a cluster found through another platform is itself a source for the next
            # round
            for _ in range(config.cluster.cross_rounds):
                if not _cross_platform(con, config):
                    break
        _drop(con, "_ku", "_xku", "_kdeg", "_ak", "_amask", "_kk", "_eid", "_m", "_cl", "_nm")
        _evidence(core, config)
    finally:
        core.close()
        acts.close()
        con.execute(f"DETACH DATABASE IF EXISTS {SCRATCH}")
    return int(con.execute("SELECT count(*) FROM clusters").fetchall()[0][0])

