"""From key-sharing pairs to a significance-tested, fused graph of assets.

For every pair of assets (a, b) and key type t the kernel gives c, the number of keys of
type t both used within the window. The null model asks how many such co-uses two
*independent* assets with the same activity would have by chance, given how popular
their keys are (a configuration model on the asset-key bipartite graph):

    lambda_ab,t = max(d_b * A_a, d_a * A_b) / S * f_t

d_a is the number of keys of type t that a used, S the total over all assets,
A_a = sum over a's keys k of (n_k - 1) with n_k the key's users, and f_t the median over
the type's keys of the share of a key's user pairs that fall inside the window (a median,
so a coordinated minority of keys, all used in lock-step, cannot make lock-step look
ordinary). A hyperactive account (large d) or one that only touches viral keys (large
n_k) gets a large lambda, so it needs many more co-uses to be flagged.

A popular key keeps only its first `cap` users in one md5 order of accounts (the same
order on every key), so two accounts early in that order are sampled together on every
popular key they use, and co-occur there as completely as on the full keys. Their
expectation must be that of the full keys: A_a counts each key a is sampled on at its
full size n_k, but only the keys on which b could have been sampled too (b's md5 rank
at most the last sampled user's; `pop` and `extra`), and d and S count every use. At
10.8M posts, 17 hyperactive Reddit users early in the order were linked on 20 shared
`engage` keys against 2.8 expected with capped sizes (benchmarks/RESULTS.md, "False
positives at 10.8M posts").

Signals are then pooled per pair. Key types that one post produces together (text,
near-duplicate, hashtags, media; url and domain) form a family that counts once, with its
largest count and largest expectation; account-level facts (avatar, batch, handle, name)
add up; re-shares, comments, reactions and follows are families of their own. A re-share,
comment or reaction also gives an `engage` key of the post's author: a pair's co-use of
that key explained by its co-use of the author's post is the same event and is dropped
(`_explain_engagement`). The pair's
p-value is the Poisson tail P(X >= C | Lambda) of the summed counts against the summed
expectations. Co-uses with a time (texts, links, re-shares, comments...) that all fall on
fewer than `graph.min_days` distinct days count as one: a single moment, such as a viral
post that people share, link and comment on together, gives one co-use in several
families at once and is not a pattern. Benjamini-Hochberg keeps the pairs whose
false-discovery rate is at most `graph.fdr`. Kept edges are weighted by the rarity (IDF,
ln(N_t / n_k)) of the keys they share, summed over all types: the fused graph that Leiden
clusters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
from scipy.stats import poisson

from cibwatch.config import Config
from cibwatch.signals.kernel import decoded_pairs_sql, kernel_sql, run_kernel
from cibwatch.workspace import scalar

FAMILIES = {
    "text": "content", "neardup": "content", "hashtags": "content", "media": "content",
    "url": "link", "domain": "link",
    "share": "share", "reply": "reply", "react": "react",
    "avatar": "account", "batch": "account", "handle": "account", "name": "account",
    "follow": "follow", "engage": "engage",
}
# Families whose key types are separate facts about an asset: their counts add up. In
# the others one post yields several key types at once, so only the largest counts.
ADDITIVE = ("account",)
# Families whose key is a post engaged (re-shared, commented on, reacted to): the same
# event gives an `engage` key of the post's author, counted once (`_explain_engagement`).
POST_FAMILIES = ("share", "reply", "react")


def benjamini_hochberg(p: np.ndarray, m: int | None = None) -> np.ndarray:
    """q-values (BH step-up adjusted p-values) for an array of p-values; `m` (default
    len(p)) counts further tests left out because their p-value is 1: they rank last and
    change nothing but m."""
    n = len(p)
    if n == 0:
        return p.copy()
    m = n if m is None else max(int(m), n)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, n + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(n)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


# A pair of asset ids (a, b) as one BIGINT (aid is an INT, so it fits): the ~10M key
# pairs at 1.1M posts group and join on one integer column, cheaper than on two. `a`
# comes back exactly as (ab - b) / 2^32 (a multiple of 2^32 is exact in a double).
_SHIFT = 4294967296
_PAIR_ID = f"CAST(p.a AS BIGINT) * {_SHIFT} + p.b"


def pair_stats_steps(min_shared_keys: int | None = None) -> list[tuple[str, str]]:
    """The pair aggregation as named SQL steps over `key_uses` and `key_kinds` (integer
    ids, see `signals.kernel`). Four results: `users`, each key type's number of
    assets, `pair_tests`, the number of pairs (every pair is a test), `key_pairs`, the
    kernel's pairs of the candidate pairs only, and the last, `pair_stats`, per
    (a, b, kt) the co-uses c, rarity weight idf and expected lambda, only for pairs
    with at least `min_shared_keys` key pairs in all (fewer can never pool to that
    many co-uses, so their p-value is 1: most pairs share one follow or engage key).
    Plain SQL (median, equi-joins) that Spark SQL also runs.

    The kernel's pairs (~12M at 1.1M posts, ~90% of them pairs that share one key) are
    never stored: `pair_counts` counts them as the kernel's join streams them, which
    gives Benjamini-Hochberg's m exactly (every distinct pair), and the candidates;
    the kernel then runs again on the candidates' assets alone (a pair's key uses do
    not depend on other assets: popularity and sample rank are already in `key_uses`)
    and keeps the candidate pairs' rows: `key_pairs`, all that `obs` and the evidence
    read.

    `acct` holds per asset and type d (every use), hrank (its md5 rank) and A over its
    sampled keys that are not popular (one GROUP BY over `key_uses`: every asset of a
    type, so `users` counts its rows; an asset all of whose keys of a type are past
    the sample cap has a row no pair joins); `pop` its sampled popular keys with the rank of
    their last sampled user (`cut`); `extra` per candidate pair the popular keys' full
    sizes where the other asset's rank is within the cut (one step, read once: Spark's
    planner ran out of memory on the same as CTEs read twice).

    f_t, the chance that two uses of a key fall inside the window, is the median over
    the type's windowed keys, but never below 2 * window / time span (independent
    random times); keys with no window have every pair of users inside it."""
    if min_shared_keys is None:
        min_shared_keys = Config().graph.min_shared_keys
    cfg = Config().signals  # kernel_sql reads the windows and caps from key_kinds
    return [
        ("kept", """
            SELECT u.kid, u.kt, u.aid, u.hrank, u.n_users, least(u.n_users, k.cap) AS n_eff
            FROM key_uses u JOIN key_kinds k ON k.kt = u.kt
            WHERE u.sample_rank <= k.cap"""),
        ("within", f"""
            SELECT kid, count(*) AS n_pairs
            FROM ({kernel_sql(cfg, where="k.window_s IS NOT NULL")}) p GROUP BY kid"""),
        ("keyf", """
            SELECT k.kid, k.kt, k.n_eff, k.cut,
                   coalesce(w.n_pairs, 0) / (k.n_eff * (k.n_eff - 1) / 2) AS f
            FROM (SELECT kid, kt, max(n_eff) AS n_eff,
                         CASE WHEN max(n_users) > max(n_eff) THEN max(hrank) END AS cut
                  FROM kept GROUP BY kid, kt HAVING max(n_eff) >= 2) k
            LEFT JOIN within w ON w.kid = k.kid"""),
        ("acct", """
            SELECT u.kt, u.aid, any_value(u.hrank) AS hrank, count(*) AS d,
                   coalesce(sum(CASE WHEN u.sample_rank <= k.cap AND f.kid IS NOT NULL
                                          AND f.cut IS NULL
                                     THEN u.n_users - 1 END), 0) AS big_a
            FROM key_uses u JOIN key_kinds k ON k.kt = u.kt
            LEFT JOIN keyf f ON f.kid = u.kid
            GROUP BY u.kt, u.aid"""),
        ("pop", """
            SELECT k.kt, k.aid, k.n_users, f.cut
            FROM kept k JOIN keyf f ON f.kid = k.kid WHERE f.cut IS NOT NULL"""),
        ("tot", """
            WITH span AS (
                SELECT kt, greatest(epoch(max(ts)) - epoch(min(ts)), 1) AS span_s
                FROM key_uses GROUP BY kt
            )
            SELECT a.kt, a.s,
                   CASE WHEN k.window_s IS NULL THEN 1.0
                        ELSE greatest(coalesce(t.f_t, 0),
                                      least(2.0 * k.window_s / sp.span_s, 1.0)) END AS f_t
            FROM (SELECT kt, count(*) AS s FROM key_uses GROUP BY kt) a
            JOIN key_kinds k ON k.kt = a.kt
            LEFT JOIN (SELECT kt, least(median(f), 1.0) AS f_t FROM keyf GROUP BY kt) t
              ON t.kt = a.kt
            LEFT JOIN span sp ON sp.kt = a.kt"""),
        ("users", """
            SELECT kt, count(*) AS n_t FROM acct GROUP BY kt"""),
        ("pair_counts", f"""
            SELECT ab, CAST(count(*) AS INT) AS n
            FROM (SELECT {_PAIR_ID} AS ab FROM ({kernel_sql(cfg)}) p) GROUP BY ab"""),
        ("pair_tests", """
            SELECT count(*) AS n_tests FROM pair_counts"""),
        ("cand", f"""
            SELECT ab FROM pair_counts WHERE n >= {int(min_shared_keys)}"""),
        ("cand_assets", f"""
            SELECT DISTINCT aid FROM (
                SELECT CAST((ab - ab % {_SHIFT}) / {_SHIFT} AS INT) AS aid FROM cand
                UNION ALL
                SELECT CAST(ab % {_SHIFT} AS INT) AS aid FROM cand)"""),
        ("key_pairs", f"""
            SELECT p.*
            FROM ({kernel_sql(cfg, join="JOIN cand_assets s ON s.aid = u.aid")}) p
            JOIN cand x ON x.ab = {_PAIR_ID}"""),
        ("obs", """
            SELECT p.a, p.b, p.kt, count(*) AS c,
                   sum(greatest(ln(u.n_t / p.n_users), 0)) AS idf,
                   CASE WHEN count(p.ts_a) = 0 THEN 0
                        WHEN min(CAST(p.ts_a AS DATE)) = max(CAST(p.ts_a AS DATE)) THEN 1
                        ELSE 2 END AS days
            FROM key_pairs p
            JOIN users u ON u.kt = p.kt
            GROUP BY p.a, p.b, p.kt"""),
        ("extra", """
            SELECT a, b, kt, sum(ea) AS ea, sum(eb) AS eb FROM (
                SELECT o.a, o.b, o.kt, p.n_users - 1 AS ea, 0 AS eb
                FROM obs o JOIN pop p ON p.kt = o.kt AND p.aid = o.a
                JOIN acct x ON x.kt = o.kt AND x.aid = o.b
                WHERE x.hrank <= p.cut
                UNION ALL
                SELECT o.a, o.b, o.kt, 0, p.n_users - 1
                FROM obs o JOIN pop p ON p.kt = o.kt AND p.aid = o.b
                JOIN acct x ON x.kt = o.kt AND x.aid = o.a
                WHERE x.hrank <= p.cut
            ) GROUP BY a, b, kt"""),
        ("pair_stats", """
            SELECT o.a, o.b, o.kt, o.c, o.idf, o.days,
                   greatest(yb.d * (xa.big_a + coalesce(e.ea, 0)),
                            xa.d * (yb.big_a + coalesce(e.eb, 0))) / t.s * t.f_t AS lam
            FROM obs o
            JOIN acct xa ON xa.kt = o.kt AND xa.aid = o.a
            JOIN acct yb ON yb.kt = o.kt AND yb.aid = o.b
            JOIN tot t ON t.kt = o.kt
            LEFT JOIN extra e ON e.a = o.a AND e.b = o.b AND e.kt = o.kt"""),
    ]


# A kernel leaves in the workspace connection, as temp tables, the results of
# `pair_stats_steps` (`pair_stats`, `pair_tests`, `key_pairs`, the candidate pairs' key
# pairs, and `users`, each key type's number of assets, which the engagement and
# evidence steps read too), the dictionaries `key_accounts`, `key_kinds`, `key_ids` and
# `key_uses` (integer ids, see `signals.kernel`).
Kernel = Callable[[duckdb.DuckDBPyConnection, Config], None]
KERNEL_RESULTS = ("pair_tests", "pair_stats", "users", "key_pairs")
# The dictionaries `build_edges` leaves in the connection for the cluster stage, which
# reads them instead of hashing the millions of string key rows again, and drops them
# (`cluster._key_users`). `key_uses` is left with the columns that stage reads (kid, kt,
# aid, n_users): its post ids would have raised the stage's peak memory (+80 MB at 1.1M
# posts), and a copy of the four columns the graph stage's (+260 MB at 10.8M posts).
DICTIONARIES = ("key_accounts", "key_kinds", "key_ids", "key_clashes", "key_uses")


# Pairs (BIGINT pair ids) sorted per bucket of `a`, so no bucket is copied twice and
# two buckets sort at once (NumPy's sort releases the GIL).
_PAIR_BUCKETS = 4


def _count_pairs(
    con: duckdb.DuckDBPyConnection, config: Config, min_shared_keys: int
) -> None:
    """`pair_tests` (the number of distinct pairs) and `cand` (the pairs with at least
    `min_shared_keys` key pairs), as the `pair_counts`, `pair_tests` and `cand` steps
    of `pair_stats_steps` give them, from the kernel's pair ids streamed into NumPy and
    sorted: nearly every one of the ~11M pairs at 1.1M posts is a group of one, which
    DuckDB's hash aggregate paid for with a ~10M-entry table (2.6-2.9 CPU s; the join
    alone 0.4, the sort 0.3). Peak memory is the pair ids (8 bytes per key pair) and
    one bucket's copy."""
    n_assets = int(con.execute("SELECT count(*) FROM key_accounts").fetchall()[0][0])
    width = n_assets // _PAIR_BUCKETS + 1
    parts: list[list[np.ndarray]] = [[] for _ in range(_PAIR_BUCKETS)]
    reader = con.sql(
        f"SELECT {_PAIR_ID} AS ab FROM ({kernel_sql(config.signals)}) p"
    ).to_arrow_reader(1 << 20)
    for batch in reader:
        ab = batch.column(0).to_numpy()
        bucket = (ab >> 32) // width
        for i in range(_PAIR_BUCKETS):
            part = ab[bucket == i]
            if len(part):
                parts[i].append(part)
        del ab, bucket
    del reader

    def one(i: int) -> tuple[int, np.ndarray]:
        chunks, parts[i] = parts[i], []
        if not chunks:
            return 0, np.zeros(0, dtype=np.int64)
        ab = np.concatenate(chunks)
        del chunks
        ab.sort()
        new = np.empty(len(ab), dtype=bool)
        new[0] = True
        np.not_equal(ab[1:], ab[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        del new
        n = np.diff(starts, append=len(ab))
        return len(starts), ab[starts[n >= min_shared_keys]]

    with ThreadPoolExecutor(2) as pool:
        counted = list(pool.map(one, range(_PAIR_BUCKETS)))
    n_tests = sum(n for n, _ in counted)
    cand = pa.table({"ab": pa.array(np.concatenate([c for _, c in counted]), pa.int64())})
    con.execute(f"CREATE OR REPLACE TEMP TABLE pair_tests AS SELECT CAST({n_tests} AS BIGINT)"
                " AS n_tests")
    con.register("_cand_pairs", cand)
    con.execute("CREATE OR REPLACE TEMP TABLE cand AS SELECT ab FROM _cand_pairs")
    con.unregister("_cand_pairs")


def duckdb_kernel(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Kernel and pair statistics in DuckDB (the default engine), left in temp tables.
    Each step is its own temp table: planned whole as CTEs, DuckDB 2.0 picks a far
    slower join order. A step's table is dropped once no later step reads it, so the
    intermediate tables are not all held at once. The pairs are counted in NumPy
    (`_count_pairs`) instead of the `pair_counts` step's GROUP BY (same `pair_tests`
    and `cand`), unless there may be more than `graph.numpy_pairs_max` of them."""
    run_kernel(con, config.signals, pairs=False)
    min_shared = int(config.graph.min_shared_keys)
    every = dict(pair_stats_steps(min_shared))
    steps = [(name, sql) for name, sql in every.items()
             if name not in ("pair_counts", "pair_tests")]
    held: list[str] = []
    bound = 0
    for i, (name, sql) in enumerate(steps):
        if name != "cand":
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        elif bound <= config.graph.numpy_pairs_max:
            _count_pairs(con, config, min_shared)
        else:  # too many pairs to hold in memory: DuckDB's GROUP BY spills to disk
            for step in ("pair_counts", "pair_tests", "cand"):
                con.execute(f"CREATE OR REPLACE TEMP TABLE {step} AS {every[step]}")
            con.execute("DROP TABLE pair_counts")
        if name == "kept":
            # every pair of a key's kept users: the kernel's pairs, before the windows
            bound = int(scalar(con, "SELECT coalesce(sum((n_eff - 1) / 2.0), 0) FROM kept"
                                    " WHERE n_eff >= 2"))
        held.append(name)
        later = " ".join(s for _, s in steps[i + 1:])
        for done in [t for t in held if not re.search(rf"\b{t}\b", later)]:
            held.remove(done)
            if done not in KERNEL_RESULTS:
                con.execute(f"DROP TABLE {done}")


def _explain_engagement(con: duckdb.DuckDBPyConnection) -> None:
    """One comment, reaction or re-share of post P gives its author a post key (P) and
    an `engage` key (P's author X). When a pair co-uses P within its window and also
    X's engage key, the two are one event: the engage co-use is taken out of
    `pair_stats` (its count and rarity weight; its expectation stays, so the test only
    gets stricter) and listed in `engage_explained(a, b, kt, kid)` for the evidence.

    Computed on `key_uses` with the kernel's own rules (sample cap, at least 2 users,
    window), never on `key_pairs`, which the Spark engine returns cut to the evidence
    rows: both engines give the same result. Only pairs with an engage row in
    `pair_stats` are looked at."""
    post_types = ", ".join(f"'{t}'" for t, f in FAMILIES.items() if f in POST_FAMILIES)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE engage_explained AS
        WITH ep AS (
            SELECT DISTINCT s.a, s.b FROM pair_stats s
            JOIN key_kinds k ON k.kt = s.kt WHERE k.key_type = 'engage'
        ),
        side AS (SELECT a AS aid FROM ep UNION SELECT b FROM ep),
        pu AS (
            SELECT u.kid, u.aid, u.ts, k.window_s, k.platform
            FROM key_uses u JOIN key_kinds k ON k.kt = u.kt
            SEMI JOIN side d ON d.aid = u.aid
            WHERE k.key_type IN ({post_types}) AND u.n_users >= 2
              AND u.sample_rank <= k.cap
        ),
        co AS (
            SELECT DISTINCT x.aid AS a, y.aid AS b, x.platform, i.key AS post_id
            FROM pu x JOIN pu y ON y.kid = x.kid AND x.aid < y.aid
            SEMI JOIN ep e ON e.a = x.aid AND e.b = y.aid
            JOIN key_ids i ON i.kid = x.kid
            WHERE x.window_s IS NULL OR x.ts IS NULL OR y.ts IS NULL
               OR abs(epoch(x.ts) - epoch(y.ts)) <= x.window_s
        ),
        authors AS (
            SELECT DISTINCT co.a, co.b, co.platform, p.account_id AS author
            FROM co JOIN posts p ON p.platform = co.platform AND p.post_id = co.post_id
        ),
        eu AS (
            SELECT u.kid, u.kt, u.aid, u.n_users, k.platform, i.key AS author
            FROM key_uses u JOIN key_kinds k ON k.kt = u.kt
            JOIN key_ids i ON i.kid = u.kid
            WHERE k.key_type = 'engage' AND u.n_users >= 2 AND u.sample_rank <= k.cap
        )
        SELECT DISTINCT w.a, w.b, x.kt, x.kid, x.n_users
        FROM authors w
        JOIN eu x ON x.aid = w.a AND x.platform = w.platform AND x.author = w.author
        JOIN eu y ON y.aid = w.b AND y.kid = x.kid
        """
    )
    con.execute(
        """
        UPDATE pair_stats s
        SET c = s.c - e.n, idf = greatest(s.idf - e.idf, 0)
        FROM (
            SELECT x.a, x.b, x.kt, count(*) AS n,
                   sum(greatest(ln(t.n_t / x.n_users), 0)) AS idf
            FROM engage_explained x
            JOIN users t ON t.kt = x.kt
            GROUP BY x.a, x.b, x.kt
        ) e
        WHERE s.a = e.a AND s.b = e.b AND s.kt = e.kt
        """
    )


def build_edges(
    con: duckdb.DuckDBPyConnection, config: Config, kernel: Kernel = duckdb_kernel
) -> int:
    """Replace `edges` and `edge_evidence` with the FDR-controlled fused graph.

    `kernel` (see `cibwatch.engines`) leaves the `pair_stats_steps` results, the
    dictionaries and `key_uses` as temp tables (`key_pairs` holds the candidate pairs
    only, and may be cut further to the `evidence_per_type` rarest keys per pair and
    type: all the evidence step reads).
    Everything runs on integer ids; strings come back only for the rows written. The
    dictionaries (`DICTIONARIES`) stay in the connection for the cluster stage: run
    `build_edges` again after `keys` change (the edges would be stale too)."""
    g = config.graph
    con.execute("DELETE FROM edge_evidence")
    con.execute("DELETE FROM edges")
    kernel(con, config)
    _explain_engagement(con)
    families = sorted(set(FAMILIES.values()))
    fam = " ".join(
        f"WHEN '{k}' THEN {families.index(v) + 1}" for k, v in FAMILIES.items()
    )
    additive = ", ".join(str(families.index(f) + 1) for f in ADDITIVE)
    # a key type outside FAMILIES is a family of its own: a code past the named ones
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pair_families AS
        SELECT kt, coalesce(CASE key_type {fam} END, {len(families)} + kt) AS family
        FROM key_kinds
        """
    )
    m = int(g.min_days)
    # Every pair is a test (it counts in Benjamini-Hochberg's m: `pair_tests`), but only
    # pairs with `min_shared_keys` co-uses can get a p-value below 1: only those are kept
    # and sorted. Untested pairs (p = 1) rank after every tested one, so the q-values
    # are the same. Asset ids are in (platform, account_id) order, so rid is the string
    # order too.
    n_tests = int(con.execute("SELECT n_tests FROM pair_tests").fetchall()[0][0])
    con.execute("DROP TABLE pair_tests")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pooled_all AS
        SELECT a, b,
               CAST(CASE WHEN max(days) >= {m} THEN sum(c)
                         ELSE sum(c * (days = 0)::INT) + least(sum(c * (days > 0)::INT), 1)
                    END AS BIGINT) AS c,
               CAST(sum(lam) AS DOUBLE) AS lam
        FROM (
            SELECT s.a, s.b, f.family, max(s.days) AS days,
                   CASE WHEN f.family IN ({additive}) THEN sum(s.c) ELSE max(s.c) END AS c,
                   CASE WHEN f.family IN ({additive}) THEN sum(s.lam) ELSE max(s.lam) END
                       AS lam
            FROM pair_stats s JOIN pair_families f ON f.kt = s.kt
            GROUP BY s.a, s.b, f.family
        )
        GROUP BY a, b
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pooled AS
        SELECT row_number() OVER (ORDER BY a, b) AS rid, a, b, c, lam
        FROM pooled_all WHERE c >= {int(g.min_shared_keys)}
        """
    )
    con.execute("DROP TABLE pooled_all")
    con.execute("DROP TABLE pair_families")
    # only the numbers cross into NumPy (ids stay in DuckDB)
    nums = con.sql("SELECT c, lam FROM pooled ORDER BY rid").fetchnumpy()
    c = np.asarray(nums["c"], dtype=np.int64)
    lam = np.maximum(np.asarray(nums["lam"], dtype=np.float64), 1e-300)
    del nums
    p = poisson.sf(c - 1, lam)
    q = benjamini_hochberg(p, n_tests)
    keep = np.flatnonzero(q <= g.fdr)
    kept = pa.table({"rid": pa.array(keep + 1, pa.int64()), "p_value": pa.array(p[keep]),
                     "q_value": pa.array(q[keep])})
    del c, lam, p, q
    con.register("_kept_pairs", kept)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE edge_pairs AS
        SELECT o.a, o.b, o.c, t.p_value, t.q_value
        FROM pooled o JOIN _kept_pairs t ON t.rid = o.rid
        """
    )
    con.unregister("_kept_pairs")
    con.execute("DROP TABLE pooled")
    con.execute(
        """
        INSERT INTO edges
        SELECT xa.platform, xa.account_id, yb.account_id, s.weight, e.p_value, e.q_value,
               e.c, s.signals
        FROM edge_pairs e
        JOIN (
            SELECT t.a, t.b, sum(t.idf) AS weight,
                   to_json(map(list(k.key_type ORDER BY k.key_type),
                               list({'count': t.c, 'expected': round(t.lam, 6),
                                     'weight': round(t.idf, 3)} ORDER BY k.key_type)))
                       AS signals
            FROM pair_stats t
            JOIN key_kinds k ON k.kt = t.kt
            SEMI JOIN edge_pairs x ON x.a = t.a AND x.b = t.b
            GROUP BY t.a, t.b
        ) s ON s.a = e.a AND s.b = e.b
        JOIN key_accounts xa ON xa.aid = e.a
        JOIN key_accounts yb ON yb.aid = e.b
        """
    )
    con.execute("DROP TABLE pair_stats")
    per = int(g.evidence_per_type)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE edge_pairs_ev AS
        SELECT kid, kt, a, b, ts_a, ts_b, n_users FROM (
            SELECT p.*, row_number() OVER (PARTITION BY p.a, p.b, p.kt
                                           ORDER BY p.n_users, i.key) AS rk
            FROM key_pairs p
            SEMI JOIN edge_pairs e ON e.a = p.a AND e.b = p.b
            JOIN key_ids i ON i.kid = p.kid
        ) WHERE rk <= {per}
        """
    )
    con.execute(
        """
        DELETE FROM edge_pairs_ev e WHERE EXISTS (
            SELECT 1 FROM engage_explained x
            WHERE x.a = e.a AND x.b = e.b AND x.kid = e.kid)
        """
    )
    con.execute(
        f"""
        INSERT INTO edge_evidence
        SELECT d.platform, d.a, d.b, d.key_type, d.key,
               greatest(ln(u.n_t / d.n_users), 0) AS weight,
               d.post_a, d.ts_a, d.post_b, d.ts_b
        FROM ({decoded_pairs_sql("edge_pairs_ev")}) d
        JOIN (SELECT k.platform, k.key_type, s.n_t
              FROM users s JOIN key_kinds k ON k.kt = s.kt) u
          ON u.platform = d.platform AND u.key_type = d.key_type
        """
    )
    for name in ("users", "engage_explained", "edge_pairs_ev", "edge_pairs", "key_pairs"):
        con.execute(f"DROP TABLE {name}")
    # `key_uses` for the cluster stage: only the columns it reads (`DICTIONARIES`);
    # dropped in place, the others are not copied
    cols = [r[0] for r in con.execute("DESCRIBE key_uses").fetchall()]
    for col in cols:
        if col not in ("kid", "kt", "aid", "n_users"):
            con.execute(f"ALTER TABLE key_uses DROP COLUMN {col}")
    return int(con.execute("SELECT count(*) FROM edges").fetchall()[0][0])
