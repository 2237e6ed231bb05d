"""Join single-platform clusters into operations, from rarity-weighted shared evidence.

Every cluster is a node; so is every saved known operation (`known:NAME`, its keys read
from the signature). Two nodes are linked by the keys they share (see `features`), each
key weighted by how much it belongs to these two nodes alone:

    w(key) = (assets using the key that are in some cluster) / (all assets using it)

so a headline nobody else posted weighs 1 and a link shared with half the (unflagged)
world weighs almost 0; a key shared by more than `max_key_nodes` clusters is common
currency and ignored. Per evidence family the weights add up to `observed`; from it goes what chance
alone would give (two clusters that each re-share hundreds of popular posts share some
of them): a's m distinct keys, drawn at random by popularity, hit b's key k with
probability `1 - exp(-m * users_k / all uses)`; `expected` sums that, weighted like the observed
keys (the larger of both directions), `sd` is the spread of that sum of Bernoulli draws,
and `units = observed - expected - chance_margin * sd`. The
family's strength is `1 - (1 - p)^units` (p per family in `OperationsConfig`); families
combine by noisy-OR,
with the hour-of-week correlation as a capped supporting family. A link joins two nodes
when its strength passes the threshold for its kind (cross-platform, same-platform,
known operation) and it rests on at least `min_link_keys` independent keys. Links are
applied strongest first (links to saved operations before the rest); a union that would
put two known operations together is refused.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cibwatch.config import Config, OperationsConfig
from cibwatch.operations import history, signatures
from cibwatch.operations.features import (
    EXTRA_TABLE,
    KEYS_TABLE,
    REPEATED_TABLE,
    ROWS_TABLE,
    build_link_keys,
    sample_texts,
)

KNOWN_PREFIX = "known:"

FAMILY_LABELS = {
    "content": "shared texts",
    "neardup": "near-duplicate texts",
    "url": "shared links",
    "domain": "shared rare domains",
    "media": "shared images/videos",
    "xref": "links naming each other's assets",
    "handle": "same handles",
    "name": "same display names",
    "avatar": "same profile pictures",
    "engagement": "same posts re-shared or answered",
    "asset": "assets already in the saved operation",
}
# Families that measure the same thing: only the stronger of a group counts.
FAMILY_GROUP = {"neardup": "content"}
# Families whose key is worth quoting with a sample post text.
TEXT_FAMILIES = ("content", "neardup", "media")


def family_strengths(cfg: OperationsConfig) -> dict[str, float]:
    return {
        "content": cfg.content_key_strength,
        "neardup": cfg.content_key_strength,
        "url": cfg.url_key_strength,
        "domain": cfg.domain_key_strength,
        "media": cfg.media_key_strength,
        "xref": cfg.xref_key_strength,
        "handle": cfg.handle_key_strength,
        "name": cfg.name_key_strength,
        "avatar": cfg.avatar_key_strength,
        "engagement": cfg.engagement_key_strength,
        "asset": cfg.asset_key_strength,
    }


@dataclass
class FamilyScore:
    """One evidence family of a scored link; its examples are read when first needed."""

    family: str
    observed: float
    n_keys: int
    mean: float
    var: float
    units: float
    strength: float
    # The pairs query's `examples` column and this family's row in it.
    column: pa.ChunkedArray | pa.Array = field(repr=False)
    row: int = 0
    _examples: list[dict] | None = field(default=None, repr=False)

    @property
    def examples(self) -> list[dict]:
        if self._examples is None:
            self._examples = self.column[self.row].as_py() or []
        return self._examples


def _load_examples(links: list[Link]) -> None:
    """Read the examples of these links' families from the pairs queries' columns, one
    `take` per column instead of one Arrow scalar per family."""
    by_column: dict[int, list[FamilyScore]] = {}
    for link in links:
        for f in link.scores:
            if f._examples is None:
                by_column.setdefault(id(f.column), []).append(f)
    for scores in by_column.values():
        rows = pa.array([f.row for f in scores], pa.int64())
        for f, examples in zip(scores, scores[0].column.take(rows).to_pylist(), strict=True):
            f._examples = examples or []


class _Samples:
    """Verbatim texts quoted with text-family examples, read from `posts` only for the
    links whose evidence is shown, in one query for all links announced with `want`."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.texts: dict[tuple[str, str], str] = {}
        self.read: set[tuple[str, str]] = set()
        self.wanted: set[tuple[str, str]] = set()

    def want(self, link: Link) -> None:
        self.wanted.update(_sample_ids(link))

    def get(self, ids: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        missing = (ids | self.wanted) - self.read
        if missing:
            self.texts.update(sample_texts(self.con, sorted(missing)))
            self.read |= missing
            self.wanted.clear()
        return self.texts


def _sample_ids(link: Link) -> set[tuple[str, str]]:
    return {(ex["sp"], ex["spost"]) for f in link.scores if f.family in TEXT_FAMILIES
            for ex in f.examples if ex["spost"] is not None}


@dataclass
class Link:
    a: str
    b: str
    strength: float
    keys: float
    threshold: float
    kind: str
    scores: list[FamilyScore] = field(default_factory=list)
    time_correlation: float | None = None
    # The clusters each side stood for (a node is an operation-so-far after round one).
    nodes_a: list[str] = field(default_factory=list)
    nodes_b: list[str] = field(default_factory=list)
    samples: _Samples | None = field(default=None, repr=False)
    _families: list[dict] | None = field(default=None, repr=False)
    # (detail, evidence JSON) as `operation_links` stores them, once `_render`ed.
    rendered: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return self.strength >= self.threshold

    @property
    def families(self) -> list[dict]:
        """Per family: its figures and examples, strongest first (built when asked: most
        scored links are never shown)."""
        if self._families is None:
            samples = self.samples.get(_sample_ids(self)) if self.samples else {}
            self._families = sorted(
                (_family_evidence(f, samples) for f in self.scores),
                key=lambda f: (-f["strength"], f["family"]),
            )
        return self._families

    def evidence(self) -> dict:
        return {
            "strength": round(self.strength, 4),
            "threshold": self.threshold,
            "kind": self.kind,
            "independent_keys": round(self.keys, 2),
            "clusters_a": self.nodes_a,
            "clusters_b": self.nodes_b,
            "families": self.families,
            "time_correlation": None
            if self.time_correlation is None
            else round(self.time_correlation, 3),
        }


def _family_evidence(f: FamilyScore, samples: dict) -> dict:
    return {
        "family": f.family,
        "label": FAMILY_LABELS.get(f.family, f.family),
        "keys": int(f.n_keys),
        "weighted_keys": round(float(f.observed), 3),
        "expected_by_chance": round(f.mean, 3),
        "chance_sd": round(math.sqrt(f.var), 3),
        "units": round(f.units, 3),
        "strength": round(f.strength, 4),
        "examples": [
            {
                "key": ex["key"],
                "sample": samples.get((ex["sp"], ex["spost"]), "")[:160]
                if f.family in TEXT_FAMILIES
                else None,
                "assets_a": int(ex["n_a"]),
                "assets_b": int(ex["n_b"]),
                "others": int(ex["outside"]),
                "weight": round(float(ex["w"]), 3),
            }
            for ex in f.examples
        ],
    }


@dataclass
class Attribution:
    """New assets of this run attributed to a saved operation."""

    name: str
    operation_id: str
    assets: int
    new_assets: int
    strength: float

    def message(self) -> str:
        return (
            f"{self.new_assets} new assets attributed to {self.name} "
            f"(operation {self.operation_id}, {self.assets} assets, "
            f"match strength {self.strength:.2f})"
        )


@dataclass
class LinkSummary:
    operations: int
    clusters: int
    links: int
    attributions: list[Attribution] = field(default_factory=list)


def link_operations(con: duckdb.DuckDBPyConnection, config: Config) -> LinkSummary:
    """Fill operations, operation_clusters, operation_links and operation_evidence from
    clusters/cluster_members; match saved operations; keep ids; record history."""
    cfg = config.operations
    clusters = {
        cid: (platform, int(n), float(score), ev)
        for cid, platform, n, score, ev in con.execute(
            "SELECT cluster_id, platform, n_assets, score, evidence FROM clusters ORDER BY 1"
        ).fetchall()
    }
    known = signatures.load_known(con)
    groups_uf = _Groups(list(clusters))
    accepted: dict[tuple[str, str], Link] = {}
    samples = _Samples(con)
    if clusters:
        build_link_keys(con, cfg, with_assets=bool(known),
                        detection_min_chars=config.signals.min_text_chars)
    con.execute("DROP TABLE IF EXISTS _op_key_users")
    # An asset in one cluster only: a node's keys are then its parts' keys added up.
    disjoint = bool(clusters) and bool(con.execute(
        "SELECT count(*) = count(DISTINCT (platform, account_id)) FROM cluster_members"
    ).fetchall()[0][0])
    # A second connection works beside this one on what does not depend on how the
    # clusters join: each asset's posts per week for the history (while round one
    # scores, largely in Python), then the evidence of the links accepted in round one
    # (most of them, while the later rounds run, largely in SQL), then the history.
    aside = con.cursor()
    try:
        with ThreadPoolExecutor(1) as pool:
            weeks = pool.submit(history.asset_weeks, aside)
            rendering = None
            for round_ in range(max(1, cfg.link_rounds) if clusters else 0):
                # Each round compares what is joined so far (an operation's clusters as
                # one node), so fragments too weak to link pairwise join the operation
                # they belong to.
                nodes = groups_uf.nodes()
                _write_members(con, nodes)
                platform_of = {
                    rep: (p.pop() if len(p := {clusters[c][0] for c in cs}) == 1 else None)
                    for rep, cs in nodes.items()
                }
                merged = False
                scored = score_links(con, cfg, platform_of, known,
                                     reuse_key_users=round_ > 0, samples=samples,
                                     key_rows=True, merged_nodes=disjoint and round_ > 0)
                for link in _ordered(scored):
                    if not link.accepted:
                        continue
                    link.nodes_a = nodes.get(link.a, [link.a])
                    link.nodes_b = nodes.get(link.b, [link.b])
                    if groups_uf.union(link.a, link.b):
                        merged = True
                        accepted.setdefault((link.a, link.b), link)
                    elif len(link.nodes_a) == 1 and len(link.nodes_b) == 1:
                        accepted.setdefault((link.a, link.b), link)
                if not merged:
                    break
                if rendering is None:
                    rendering = pool.submit(_render, list(accepted.values()), clusters,
                                            _Samples(aside))
            weeks.result()
            if rendering is not None:
                rendering.result()
        groups = groups_uf.groups()
        links = list(accepted.values())
        rest = [link for link in links if link.rendered is None]
        _load_examples(rest)
        for link in rest:
            samples.want(link)
        members = _group_members(con, groups)
        ids = history.assign_ids(con, cfg, [members[i] for i in range(len(groups))])
        summary = _write(con, cfg, clusters, known, links, groups, members, ids, aside)
    finally:
        aside.close()
    for table in (KEYS_TABLE, ROWS_TABLE, EXTRA_TABLE, REPEATED_TABLE, "_op_node_keys",
                  "_op_shared", "_op_key_users", "_op_group_members", "_op_current",
                  "_op_members", "_op_member_keys", "_op_member_hours", "_op_totals",
                  "_op_node_map"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return summary


def score_links(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    platform_of: dict[str, str | None],
    known: dict[str, dict],
    reuse_key_users: bool = False,
    samples: _Samples | None = None,
    key_rows: bool = False,
    merged_nodes: bool = False,
) -> list[Link]:
    """Every candidate link between two nodes of `_op_members(node, platform,
    account_id)` or saved signatures, scored (accepted or not). Needs `_op_keys`
    (`features.build_asset_keys`) or, with `key_rows`, `features.build_link_keys`'
    tables. `platform_of`: a node's one platform, or None.
    `reuse_key_users`: keep what depends only on which assets are clustered (their keys
    and hours, each key's users) from the previous call, which is right when only the
    grouping of the same clusters into nodes changed (a later linking round).
    `samples`: where the quoted texts of the links' examples are read (one per run).
    `key_rows`: the keys are `features.build_link_keys`' tables, not `_op_keys`.
    `merged_nodes`: each node is a union of the previous call's nodes (`_op_node_map`
    maps their clusters to it) and no asset is in two clusters, so the nodes' keys are
    the previous call's added up, not regrouped from every clustered asset's keys."""
    members = "(SELECT DISTINCT platform, account_id FROM _op_members)"
    if not reuse_key_users:
        # The clustered assets' keys and posting hours, read once from the whole tables.
        if key_rows:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _op_member_keys AS
                WITH g AS (
                    SELECT r.platform, r.account_id, r.family, r.key, min(r.post_id) AS post_id
                    FROM {ROWS_TABLE} r
                    SEMI JOIN {members} m
                      ON m.platform = r.platform AND m.account_id = r.account_id
                    GROUP BY ALL)
                SELECT * FROM g
                UNION ALL
                SELECT e.* FROM {EXTRA_TABLE} e
                SEMI JOIN {members} m ON m.platform = e.platform AND m.account_id = e.account_id
                """
            )
        else:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _op_member_keys AS
                SELECT k.* FROM {KEYS_TABLE} k
                SEMI JOIN {members} m
                  ON m.platform = k.platform AND m.account_id = k.account_id
                """
            )
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _op_member_hours AS
            SELECT p.platform, p.account_id,
                   (isodow(p.created_at) - 1) * 24 + hour(p.created_at) AS how, count(*) AS n
            FROM posts p
            SEMI JOIN (SELECT DISTINCT platform, account_id FROM _op_members) m
              ON m.platform = p.platform AND m.account_id = p.account_id
            GROUP BY ALL
            """
        )
        if not key_rows:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _op_totals AS "
                f"SELECT family, count(*) AS n FROM {KEYS_TABLE} GROUP BY 1"
            )
    _node_keys(con, known, merged_nodes)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _op_shared AS
        SELECT family, key, count(*) AS n_nodes FROM _op_node_keys GROUP BY ALL
        HAVING count(*) BETWEEN 2 AND {int(cfg.max_key_nodes)}
        """
    )
    # Users of every key any node holds (everyone, clustered or not), and per node and
    # family its distinct keys (m) and their popularity: the chance model. Which keys
    # the nodes hold, and which assets are clustered, do not depend on the grouping.
    if not reuse_key_users:
        # With `key_rows`, `_op_keys`' rows of these keys: their `_op_rows`, one per
        # (asset, family, key), and their `_op_keys_extra` rows.
        # A row whose (family, h) no other row has is its (asset, family, key) alone.
        keys = (
            f"""(SELECT platform, account_id, family, key FROM hit
                 ANTI JOIN {REPEATED_TABLE} d ON d.family = hit.family AND d.h = hit.h
                 UNION ALL
                 SELECT DISTINCT platform, account_id, family, key FROM hit
                 SEMI JOIN {REPEATED_TABLE} d ON d.family = hit.family AND d.h = hit.h
                 UNION ALL
                 SELECT e.platform, e.account_id, e.family, e.key FROM {EXTRA_TABLE} e)"""
            if key_rows
            else KEYS_TABLE
        )
        hit = (
            f"""WITH hit AS MATERIALIZED (
                SELECT r.platform, r.account_id, r.family, r.key, r.h FROM {ROWS_TABLE} r
                SEMI JOIN _op_node_keys n ON n.family = r.family AND n.key = r.key)"""
            if key_rows
            else ""
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _op_key_users AS
            {hit}
            SELECT k.family, k.key, count(*) AS users, count(c.platform) AS clustered
            FROM {keys} k
            SEMI JOIN _op_node_keys n ON n.family = k.family AND n.key = k.key
            LEFT JOIN {members} c
              ON c.platform = k.platform AND c.account_id = k.account_id
            GROUP BY ALL
            """
        )
    totals = dict(con.execute("SELECT family, n FROM _op_totals").fetchall())
    # Per node and family: its number of distinct keys m, and its keys' (users, weight)
    # pairs, each distinct pair once with the number of keys that have it.
    profile: dict[tuple[str, str], tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}
    for node, family, m, users, weights, times in con.execute(
        f"""
        SELECT node, family, sum(c), list(users), list(w), list(c)
        FROM (SELECT n.node, n.family, coalesce(u.users, 0) AS users,
                     {_WEIGHT_SQL.format(n="n")} AS w, count(*) AS c
              FROM _op_node_keys n LEFT JOIN _op_key_users u USING (family, key)
              GROUP BY ALL)
        GROUP BY ALL
        """
    ).fetchall():
        profile[(node, family)] = (
            float(m), np.asarray(users, dtype=float), np.asarray(weights, dtype=float),
            np.asarray(times, dtype=float),
        )
    k = int(cfg.evidence_examples)
    table = con.sql(
        f"""
        WITH nk AS (
            SELECT * FROM _op_node_keys n
            SEMI JOIN _op_shared s ON s.family = n.family AND s.key = n.key
        ), pairs AS (
            SELECT a.node AS na, b.node AS nb, a.family, a.key,
                   a.n AS n_a, b.n AS n_b, coalesce(u.users, 0) AS users,
                   coalesce(u.users - u.clustered, 0) AS outside,
                   least(1.0, (coalesce(u.clustered, 0)
                               + CASE WHEN a.known THEN a.n ELSE 0 END
                               + CASE WHEN b.known THEN b.n ELSE 0 END)
                              / greatest(coalesce(u.users, 0), 1)) AS w,
                   coalesce(a.platform, b.platform) AS sp, coalesce(a.post_id, b.post_id) AS spost
            FROM nk a
            JOIN nk b ON a.family = b.family AND a.key = b.key AND a.node < b.node
            LEFT JOIN _op_key_users u ON u.family = a.family AND u.key = a.key
            WHERE NOT (a.known AND b.known)
        )
        SELECT na, nb, family, count(*) AS n_keys,
               list(users) AS users, list(n_a) AS n_a, list(n_b) AS n_b, list(w) AS w,
               -- the k heaviest keys, ties by key (keys are distinct in a row)
               min_by(struct_pack(key, w, n_a, n_b, outside, sp, spost),
                      struct_pack(nw := -w, key := key), {k}) AS examples
        FROM pairs GROUP BY ALL ORDER BY na, nb, family
        """
    ).to_arrow_table()
    shared = _Shared.from_arrow(table)
    chance = _chance(shared, profile, totals)
    vectors = {node: _centred(v) for node, v in _node_vectors(con).items()}
    for name, sig in known.items():
        vectors[KNOWN_PREFIX + name] = _centred(sig.get("time") or [0] * 168)
    return _score_pairs(cfg, shared, table.column("examples"), chance, vectors, platform_of,
                        samples)


def _node_vectors(con: duckdb.DuckDBPyConnection) -> dict[str, list[int]]:
    """`features.time_vectors` of `_op_members`, summed from `_op_member_hours`."""
    rows = con.execute(
        """
        SELECT m.node, h.how, sum(h.n) AS n
        FROM _op_member_hours h JOIN _op_members m USING (platform, account_id)
        GROUP BY ALL
        """
    ).fetchall()
    out: dict[str, list[int]] = {}
    for node, how, n in rows:
        out.setdefault(node, [0] * 168)[int(how)] = int(n)
    return out


@dataclass
class _Shared:
    """The pairs query's rows (one per pair of nodes and family), with the keys they
    share as flat arrays: row i's keys are `starts[i]:starts[i + 1]`."""

    na: list[str]
    nb: list[str]
    family: list[str]
    n_keys: list[int]
    starts: np.ndarray
    users: np.ndarray
    n_a: np.ndarray
    n_b: np.ndarray
    w: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> _Shared:
        """From tuples (na, nb, family, units, n_keys, users, n_a, n_b, w, ...)."""
        sizes = np.array([len(r[5]) for r in rows], dtype=np.int64)
        flat = [np.asarray([x for r in rows for x in r[c]], dtype=float) for c in (5, 6, 7, 8)]
        return cls([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                   [int(r[4]) for r in rows], _starts(np.append(sizes, 0)), *flat)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> _Shared:
        def flat(name: str) -> np.ndarray:
            col = table.column(name).combine_chunks()
            return np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=float)

        sizes = np.asarray(pc.list_value_length(table.column("users")).to_numpy(
            zero_copy_only=False), dtype=np.int64)
        return cls(table.column("na").to_pylist(), table.column("nb").to_pylist(),
                   table.column("family").to_pylist(), table.column("n_keys").to_pylist(),
                   _starts(np.append(sizes, 0)), *(flat(c) for c in ("users", "n_a", "n_b", "w")))


# Weight of a key of node `n` for the chance model: the clustered share of its users
# (a saved signature's own count counts as clustered).
_WEIGHT_SQL = (
    "least(1.0, (coalesce(u.clustered, 0) + CASE WHEN {n}.known THEN {n}.n ELSE 0 END)"
    " / greatest(coalesce(u.users, 0), 1))"
)


def _expected(rows: list[tuple], profile: dict, totals: dict) -> list[tuple[float, float]]:
    """`_chance` of rows given as tuples (na, nb, family, units, n_keys, users, n_a, n_b,
    w, ...), as the pairs query returns them."""
    return _chance(_Shared.from_rows(rows), profile, totals)


def _chance(shared: _Shared, profile: dict, totals: dict) -> list[tuple[float, float]]:
    """Per (pair, family) row: mean and variance of the weighted number of one node's keys
    the other would hit by chance, the larger of both directions. Node a draws its m
    distinct keys at random, proportionally to how many assets use each key, so b's key k
    is hit with probability p = 1 - exp(-m * users_k / total); on the keys they share,
    a's own users are taken out of the popularity first. A sum of weighted Bernoulli(p):
    mean sum(w p), variance sum(w^2 p (1 - p)), so keys everyone hits add to the mean but
    not to the doubt.

    Every row's terms are computed in a few array operations over all rows; sums are
    `math.fsum` per row (exact, so they do not depend on the order rows arrive in)."""
    nodes = list(profile)
    at = {key: i for i, key in enumerate(nodes)}
    m_of = np.array([profile[key][0] for key in nodes] + [0.0])
    length = np.array([len(profile[key][1]) for key in nodes] + [0], dtype=np.int64)
    first = _starts(length)
    flat = [np.concatenate([profile[key][j] for key in nodes] + [np.zeros(0)])
            for j in (1, 2, 3)]
    # Two calls per row: a -> b (a's own users are the row's n_a), then b -> a (n_b).
    # A row whose node has no profile (none in practice) expects nothing.
    a_of, b_of, row_of, total_of = [], [], [], []
    for i, (na, nb, family) in enumerate(zip(shared.na, shared.nb, shared.family,
                                             strict=True)):
        ia, ib = at.get((na, family)), at.get((nb, family))
        if ia is not None and ib is not None:
            total = max(1.0, float(totals.get(family, 1)))
            a_of += [ia, ib]
            b_of += [ib, ia]
            row_of += [i, i]
            total_of += [total, total]
    out = [(0.0, 0.0)] * len(shared.na)
    if not row_of:
        return out
    m_all, total_all = m_of[a_of], np.asarray(total_of)
    count_all = length[b_of]
    row_all = np.asarray(row_of, dtype=np.int64)
    sizes_all = np.diff(shared.starts)[row_all]
    # Calls are taken in slices of bounded work: every term of b's whole profile is
    # array elements and Python floats until summed, and all calls at once held over
    # 6 GB of them at 10M posts. Each call's exact sums are the same either way.
    for lo, hi in _slices((count_all + sizes_all).tolist(), _EXPECTED_TERMS):
        calls = np.arange(lo, hi)
        m_call, total_call = m_all[lo:hi], total_all[lo:hi]
        # b's whole key profile: each distinct (users, weight) once, with its key count.
        b_at = np.asarray(b_of[lo:hi], dtype=np.int64)
        count = count_all[lo:hi]
        which = np.repeat(np.arange(hi - lo), count)
        src = np.repeat(first[b_at] - _starts(count), count) + np.arange(count.sum())
        users_b, w_b, times_b = (f[src] for f in flat)
        hit = 1.0 - np.exp(-m_call[which] * users_b / total_call[which])
        b_mean, b_bounds = _exact_terms(w_b * hit, times_b, count)
        b_var, _ = _exact_terms(w_b**2 * hit * (1 - hit), times_b, count)
        del which, src, users_b, w_b, times_b, hit
        # The keys they share (the rows' users, n_a, n_b, w), once per call.
        here_rows = row_all[lo:hi]
        sizes = sizes_all[lo:hi]
        src = np.repeat(shared.starts[here_rows] - _starts(sizes), sizes) + np.arange(
            sizes.sum())
        users, n_a, n_b, w = (x[src] for x in (shared.users, shared.n_a, shared.n_b, shared.w))
        pick = np.repeat(np.arange(hi - lo), sizes)
        own = np.where(np.repeat(calls % 2 == 0, sizes), n_a, n_b)
        m, total = m_call[pick], total_call[pick]
        full = 1.0 - np.exp(-m * users / total)
        alone = 1.0 - np.exp(-m * np.maximum(users - own, 0.0) / total)
        s_mean = (w * (full - alone)).tolist()
        s_var = (w**2 * (full * (1 - full) - alone * (1 - alone))).tolist()
        bounds = _starts(np.append(sizes, 0)).tolist()
        fsum = math.fsum
        for j, i in enumerate(here_rows.tolist()):
            a, b = bounds[j], bounds[j + 1]
            p, q = b_bounds[j], b_bounds[j + 1]
            mean = fsum(b_mean[p:q]) - fsum(s_mean[a:b])
            var = fsum(b_var[p:q]) - fsum(s_var[a:b])
            # max(mean, 0.0) and max(out[i], here), without the calls' overhead.
            here = (0.0 if mean < 0.0 else mean, 0.0 if var < 0.0 else var)
            if (lo + j) % 2 == 0 or here > out[i]:
                out[i] = here
    return out


# Terms (profile keys plus shared keys) of the chance model computed at once: a few
# hundred MB of arrays and Python floats at most, whatever the number of pairs.
_EXPECTED_TERMS = 1_000_000


def _slices(work: list[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive (lo, hi) ranges of items whose work adds up to at most `limit`
    (an item over the limit alone)."""
    out, lo, acc = [], 0, 0
    for i, n in enumerate(work):
        if acc and acc + n > limit:
            out.append((lo, i))
            lo, acc = i, 0
        acc += n
    out.append((lo, len(work)))
    return out


def _starts(count: np.ndarray) -> np.ndarray:
    """Start of each segment in a flat array of segments of these lengths."""
    return np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)


# 2**27 + 1: Veltkamp's constant, splitting a double into two halves whose products
# are exact.
_SPLIT = 134217729.0


def _exact_terms(
    x: np.ndarray, times: np.ndarray, count: np.ndarray
) -> tuple[list[float], list[int]]:
    """Per segment (of `count` lengths), floats whose exact sum is that of every x[i]
    repeated times[i] times: each product x * times as its rounded value plus its
    rounding error (Dekker's two-product), so `math.fsum` of them is the fsum of the
    repeats, to the last bit. One flat list, segment j at `bounds[j]:bounds[j + 1]`
    (its products, then their errors)."""
    product = x * times
    xh = _SPLIT * x
    xh = xh - (xh - x)
    xl = x - xh
    th = _SPLIT * times
    th = th - (th - times)
    tl = times - th
    error = ((xh * th - product) + xh * tl + xl * th) + xl * tl
    starts = _starts(np.append(count, 0))
    pos = np.arange(len(x)) + np.repeat(starts[:-1], count)
    flat = np.empty(2 * len(x))
    flat[pos] = product
    flat[pos + np.repeat(count, count)] = error
    return flat.tolist(), (2 * starts).tolist()


def _node_keys(
    con: duckdb.DuckDBPyConnection, known: dict[str, dict], merged: bool = False
) -> None:
    """`_op_node_keys(node, known, family, key, n, platform, post_id)`: the keys of every
    cluster (n = its assets using the key) and every saved signature (n as saved).
    Reads `_op_member_keys` (the clustered assets' rows of `_op_keys`, a fraction of
    it), built by `score_links` once for all linking rounds. `merged`: the nodes are
    unions of the previous `_op_node_keys`' nodes over disjoint assets (see `score_links`),
    whose counts then add up and whose first platform and post are the least of theirs."""
    if merged:
        con.execute("ALTER TABLE _op_node_keys RENAME TO _op_node_keys_before")
        con.execute(
            """
            CREATE TEMP TABLE _op_node_keys AS
            SELECT m.node, false AS known, k.family, k.key, CAST(sum(k.n) AS BIGINT) AS n,
                   min(k.platform) AS platform, min(k.post_id) AS post_id
            FROM _op_node_keys_before k JOIN _op_node_map m ON m.cluster_id = k.node
            WHERE NOT k.known
            GROUP BY m.node, k.family, k.key
            """
        )
        con.execute("DROP TABLE _op_node_keys_before")
    else:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _op_node_keys AS
            SELECT m.node, false AS known, k.family, k.key, count(*) AS n,
                   min(k.platform) AS platform, min(k.post_id) AS post_id
            FROM _op_member_keys k JOIN _op_members m USING (platform, account_id)
            GROUP BY m.node, k.family, k.key
            """
        )
    rows: dict[str, list] = {"node": [], "family": [], "key": [], "n": []}
    for name, sig in known.items():
        for family, keys in sig["families"].items():
            for key, n in keys.items():
                rows["node"].append(KNOWN_PREFIX + name)
                rows["family"].append(family)
                rows["key"].append(key)
                rows["n"].append(int(n))
    con.register("_op_known_keys", pa.table(rows, schema=_KNOWN_SCHEMA))
    con.execute(
        """
        INSERT INTO _op_node_keys
        SELECT node, true, family, key, n, NULL, NULL FROM _op_known_keys
        """
    )
    con.unregister("_op_known_keys")


_KNOWN_SCHEMA = pa.schema(
    [("node", pa.string()), ("family", pa.string()), ("key", pa.string()), ("n", pa.int64())]
)


def _centred(vector: list[int]) -> tuple[float, float, np.ndarray]:
    """(posts, std, vector minus its mean) of an hour-of-week vector, once per node."""
    x = np.asarray(vector, dtype=float)
    return float(sum(vector)), float(x.std()), x - x.mean()


def _correlation(a: tuple | None, b: tuple | None, min_posts: int) -> float | None:
    """Pearson correlation of two `_centred` vectors: `np.corrcoef`'s own arithmetic
    (same bits), without re-centring each vector for every pair."""
    if a is None or b is None or a[0] < min_posts or b[0] < min_posts:
        return None
    if a[1] == 0 or b[1] == 0:
        return None
    x = np.empty((2, len(a[2])))
    x[0] = a[2]
    x[1] = b[2]
    # The same product as np.corrcoef's; the rest is the same IEEE arithmetic on floats.
    (c00, c01), (_, c11) = (x @ x.T).tolist()
    f = 1.0 / (x.shape[1] - 1)
    v0, v1 = c00 * f, c11 * f
    if v0 > 0.0 and v1 > 0.0:
        r = c01 * f / math.sqrt(v0) / math.sqrt(v1)
    else:  # numpy's inf and NaN, not Python's ZeroDivisionError
        with np.errstate(divide="ignore", invalid="ignore"):
            r = float(np.float64(c01 * f) / np.sqrt(v0) / np.sqrt(v1))
    # np.clip's result, without its per-call overhead (NaN stays NaN).
    return r if r != r else min(1.0, max(-1.0, r))


def _score_pairs(cfg, shared: _Shared, examples, chance, vectors, platform_of,
                 samples) -> list[Link]:
    """One `Link` per pair of nodes, from its rows (one per family, in family order)."""
    strengths = family_strengths(cfg)
    w = shared.w.tolist()
    starts = shared.starts.tolist()
    rows_of: dict[tuple[str, str], list[int]] = {}
    for i, pair in enumerate(zip(shared.na, shared.nb, strict=True)):
        rows_of.setdefault(pair, []).append(i)
    out = []
    for (na, nb), rows in sorted(rows_of.items()):
        group_best: dict[str, tuple[float, float]] = {}
        scores = []
        for r in rows:
            family = shared.family[r]
            p = strengths.get(family, 0.0)
            mean, var = chance[r]
            observed = math.fsum(w[starts[r]:starts[r + 1]])
            units = max(0.0, observed - mean - cfg.chance_margin * math.sqrt(var))
            s = 1.0 - (1.0 - p) ** units
            group = FAMILY_GROUP.get(family, family)
            if s > group_best.get(group, (-1.0, 0.0))[0]:
                group_best[group] = (s, float(units))
            scores.append(FamilyScore(family, observed, shared.n_keys[r], mean, var, units,
                                      s, examples, r))
        doubt = math.prod(1.0 - s for s, _ in group_best.values())
        keys = sum(u for _, u in group_best.values())
        corr = _correlation(vectors.get(na), vectors.get(nb), cfg.time_min_posts)
        if corr is not None and corr > cfg.time_min_correlation:
            span = max(1e-9, 1.0 - cfg.time_min_correlation)
            doubt *= 1.0 - cfg.time_max_strength * min(
                1.0, (corr - cfg.time_min_correlation) / span)
        strength = round(1.0 - doubt, 9)
        if na.startswith(KNOWN_PREFIX) or nb.startswith(KNOWN_PREFIX):
            kind, threshold = "known_operation", cfg.known_min_strength
        elif platform_of.get(na) is not None and platform_of.get(na) == platform_of.get(nb):
            kind, threshold = "same_platform", cfg.same_platform_min_strength
        else:
            kind, threshold = "cross_platform", cfg.min_link_strength
        if keys < cfg.min_link_keys:
            threshold = max(threshold, 1.0 + 1e-9)
        out.append(Link(na, nb, strength, keys, threshold, kind, scores, corr,
                        samples=samples))
    return out


def _ordered(links: list[Link]) -> list[Link]:
    """Attributions to saved operations first (an analyst's saved split stays split),
    then strongest first; ties by name, so the outcome is deterministic."""
    return sorted(links, key=lambda ln: (ln.kind != "known_operation", -ln.strength, ln.a, ln.b))


class _Groups:
    """Union-find over clusters and saved operations; never two saved operations in one
    group. A group's representative is its smallest cluster id."""

    def __init__(self, cluster_ids: list[str]):
        self.parent = {c: c for c in cluster_ids}
        self.known = {c: None for c in cluster_ids}

    def find(self, x: str) -> str:
        if x not in self.parent:
            self.parent[x] = x
            self.known[x] = x if x.startswith(KNOWN_PREFIX) else None
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        ka, kb = self.known[ra], self.known[rb]
        if ka and kb and ka != kb:
            return False
        # A cluster id sorts before "known:..." only by luck; prefer clusters as roots.
        root, child = sorted((ra, rb), key=lambda n: (n.startswith(KNOWN_PREFIX), n))
        self.parent[child] = root
        self.known[root] = ka or kb
        return True

    def nodes(self) -> dict[str, list[str]]:
        """Representative cluster -> its clusters (saved operations left out)."""
        out: dict[str, list[str]] = {}
        for node in sorted(self.parent):
            if not node.startswith(KNOWN_PREFIX):
                out.setdefault(self.find(node), []).append(node)
        return {min(cs): cs for cs in out.values()}

    def groups(self) -> list[list[str]]:
        """Clusters (sorted) then the saved operation, per group holding a cluster."""
        comps: dict[str, list[str]] = {}
        for node in sorted(self.parent):
            comps.setdefault(self.find(node), []).append(node)
        out = []
        for nodes in comps.values():
            clusters = [n for n in nodes if not n.startswith(KNOWN_PREFIX)]
            if clusters:
                out.append(clusters + [n for n in nodes if n.startswith(KNOWN_PREFIX)])
        return sorted(out, key=lambda g: g[0])


def _write_members(con: duckdb.DuckDBPyConnection, nodes: dict[str, list[str]]) -> None:
    """`_op_members(node, platform, account_id)` for the current grouping."""
    table = pa.table(
        {
            "cluster_id": [c for cs in nodes.values() for c in cs],
            "node": [rep for rep, cs in nodes.items() for _ in cs],
        },
        schema=pa.schema([("cluster_id", pa.string()), ("node", pa.string())]),
    )
    # Kept as a table: the next round's `_node_keys` maps this round's nodes through it.
    con.register("_op_node_arrow", table)
    con.execute("CREATE OR REPLACE TEMP TABLE _op_node_map AS SELECT * FROM _op_node_arrow")
    con.unregister("_op_node_arrow")
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _op_members AS
        SELECT DISTINCT n.node, m.platform, m.account_id
        FROM cluster_members m JOIN _op_node_map n USING (cluster_id)
        """
    )


def _group_members(con: duckdb.DuckDBPyConnection, groups: list[list[str]]) -> dict:
    """Group index -> sorted (platform, account_id) of its clusters' members."""
    table = pa.table(
        {
            "g": [i for i, g in enumerate(groups) for _ in g],
            "cluster_id": [n for g in groups for n in g],
        },
        schema=pa.schema([("g", pa.int64()), ("cluster_id", pa.string())]),
    )
    con.register("_op_groups", table)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _op_group_members AS
        SELECT DISTINCT g.g, m.platform, m.account_id
        FROM _op_groups g JOIN cluster_members m USING (cluster_id)
        """
    )
    con.unregister("_op_groups")
    members: dict[int, list] = {i: [] for i in range(len(groups))}
    for g, platform, account_id in con.execute(
        "SELECT g, platform, account_id FROM _op_group_members ORDER BY 1, 2, 3"
    ).fetchall():
        members[int(g)].append((platform, account_id))
    return members


def _node_label(node: str, clusters: dict[str, tuple], members: list[str]) -> str:
    if node.startswith(KNOWN_PREFIX):
        return f"saved operation {node[len(KNOWN_PREFIX):]}"
    more = len(members) - 1
    return f"{clusters[node][0]} cluster {node}" + (
        f" (with {more} clusters joined before)" if more > 0 else ""
    )


def link_detail(link: Link, clusters: dict[str, tuple]) -> str:
    """One sentence a reviewer can check: which clusters, how strong, on what."""
    parts = []
    for fam in link.families[:4]:
        ex = fam["examples"][0] if fam["examples"] else None
        text = f"{fam['keys']} {fam['label']}"
        if ex is not None:
            quoted = ex["sample"] or ex["key"]
            text += (
                f", e.g. \"{quoted[:80]}\" ({ex['assets_a']}+{ex['assets_b']} assets,"
                f" {ex['others']} others)"
            )
        parts.append(text)
    if link.time_correlation is not None:
        parts.append(f"hour-of-week correlation {link.time_correlation:.2f}")
    return (
        f"{_node_label(link.a, clusters, link.nodes_a)} <-> "
        f"{_node_label(link.b, clusters, link.nodes_b)} "
        f"(strength {link.strength:.2f}): " + "; ".join(parts)
    )


def _cluster_evidence(cid: str, cluster: tuple) -> list[tuple[str, float, str]]:
    platform, n, score, raw = cluster
    items = []
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        parsed = None
    for item in parsed or []:
        if isinstance(item, dict) and item.get("signal"):
            strength = item.get("strength")
            items.append(
                (
                    str(item["signal"]),
                    float(strength) if isinstance(strength, int | float) else score,
                    f"{platform} cluster {cid}: {item.get('detail') or item['signal']}",
                )
            )
    if not items:
        items.append(
            (
                "coordinated_cluster",
                score,
                f"{platform} cluster {cid}: {n} assets acting together (score {score:.2f})",
            )
        )
    return items


def _write(con, cfg, clusters, known, links, groups, members, ids, aside) -> LinkSummary:
    """Fill the operations tables and record history. History is SQL over operations,
    operation_clusters and `history.asset_weeks` alone: it runs on the second connection
    `aside` (a `con.cursor()`, which sees what `con` has committed: the stage runs in
    autocommit, as detect does) while Python builds the rest of the links' evidence."""
    op_rows, oc_rows = [], []
    for i, nodes in enumerate(groups):
        cids = [n for n in nodes if not n.startswith(KNOWN_PREFIX)]
        known_nodes = [n for n in nodes if n.startswith(KNOWN_PREFIX)]
        name = known_nodes[0][len(KNOWN_PREFIX):] if known_nodes else None
        op_rows.append((ids[i], name, max(clusters[c][2] for c in cids), name))
        oc_rows.extend((ids[i], c) for c in cids)
    con.execute("DELETE FROM operation_evidence")
    con.execute("DELETE FROM operation_links")
    con.execute("DELETE FROM operation_clusters")
    con.execute("DELETE FROM operations")
    _insert(con, "operations (operation_id, name, confidence, known_operation)", op_rows,
            [pa.string(), pa.string(), pa.float64(), pa.string()])
    _insert(con, "operation_clusters", oc_rows, [pa.string(), pa.string()])
    with ThreadPoolExecutor(1) as pool:
        recorded = pool.submit(history.record, aside, cfg, history.ASSET_WEEKS)
        link_rows, ev_rows, attributions = _evidence_rows(clusters, known, links, groups,
                                                          members, ids)
        _insert(con, "operation_links", link_rows,
                [pa.string(), pa.string(), pa.string(), pa.float64(), pa.string()])
        _insert(con, "operation_evidence", ev_rows,
                [pa.string(), pa.string(), pa.float64(), pa.string()])
        recorded.result()
    return LinkSummary(len(op_rows), len(oc_rows), len(link_rows), attributions)


def _evidence_rows(clusters, known, links, groups, members, ids):
    """operation_links and operation_evidence rows, and the attributions, per group."""
    by_pair = {(ln.a, ln.b): ln for ln in links}
    # Each group's links, in pair order: one pass over the links, not one per group.
    group_of = {n: i for i, nodes in enumerate(groups) for n in nodes}
    links_of: dict[int, list[Link]] = {}
    for (a, b), link in sorted(by_pair.items()):
        g = group_of.get(a)
        if g is not None and g == group_of.get(b):
            links_of.setdefault(g, []).append(link)
    link_rows, ev_rows = [], []
    attributions = []
    for i, nodes in enumerate(groups):
        op_id = ids[i]
        cids = [n for n in nodes if not n.startswith(KNOWN_PREFIX)]
        known_nodes = [n for n in nodes if n.startswith(KNOWN_PREFIX)]
        name = known_nodes[0][len(KNOWN_PREFIX):] if known_nodes else None
        for c in cids:
            ev_rows.extend((op_id, *item) for item in _cluster_evidence(c, clusters[c]))
        for link in links_of.get(i, []):
            detail, evidence = link.rendered or _rendered(link, clusters)
            link_rows.append((op_id, link.a, link.b, link.strength, evidence))
            ev_rows.append((op_id, f"{link.kind}_link", link.strength, detail))
        if name is not None:
            strength = max(
                (ln.strength for (a, b), ln in by_pair.items() if known_nodes[0] in (a, b)),
                default=0.0,
            )
            listed = set(known[name]["families"].get("asset", {}))
            assets = members[i]
            new = sum(1 for p, a in assets if f"{p}:{a}" not in listed)
            att = Attribution(name, op_id, len(assets), new, strength)
            attributions.append(att)
            ev_rows.append((op_id, "known_operation", strength, att.message()))
    return link_rows, ev_rows, attributions


def _rendered(link: Link, clusters: dict[str, tuple]) -> tuple[str, str]:
    """A link's sentence and its `operation_links.evidence` JSON."""
    detail = link_detail(link, clusters)
    return detail, json.dumps({"detail": detail, **link.evidence()}, ensure_ascii=False)


def _render(links: list[Link], clusters: dict[str, tuple], samples: _Samples) -> None:
    """Set `rendered` on these links, their quoted texts read through `samples` (on a
    connection this thread alone uses meanwhile)."""
    _load_examples(links)
    for link in links:
        samples.want(link)
    for link in links:
        link.samples = samples
        link.rendered = _rendered(link, clusters)


def _insert(con: duckdb.DuckDBPyConnection, target: str, rows: list[tuple], types) -> None:
    """Bulk insert through Arrow (row-by-row inserts are slow in DuckDB)."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    table = pa.table({f"c{i}": pa.array(col, t) for i, (col, t) in
                      enumerate(zip(columns, types, strict=True))})
    con.register("_op_insert", table)
    con.execute(f"INSERT INTO {target} SELECT * FROM _op_insert")
    con.unregister("_op_insert")
