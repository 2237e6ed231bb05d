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

Signals are then pooled per pair. Key types that one post produces together (text,
near-duplicate, hashtags, media; url and domain) form a family that counts once, with its
largest count and largest expectation; account-level facts (avatar, batch, handle, name)
add up; re-shares, comments, reactions and follows are families of their own. The pair's
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

from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa
from scipy.stats import poisson

from cibwatch.config import Config
from cibwatch.signals.kernel import NETWORK_KEY_TYPES, run_kernel
from cibwatch.signals.kernel import windows as key_windows

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


def pair_stats_steps(
    cap: int, windows: dict[str, int | None], network_cap: int | None = None
) -> list[tuple[str, str]]:
    """The pair aggregation as named SQL steps over `key_uses` and `key_pairs`; the last
    gives per (platform, a, b, key_type) the co-uses c, rarity weight idf and expected
    lambda. Plain SQL (median, equi-joins) that Spark SQL also runs.

    f_t, the chance that two uses of a key fall inside the window, is the median over
    the type's keys, but never below 2 * window / time span (independent random times)."""
    if network_cap is None:
        network_cap = Config().signals.max_key_accounts_network
    win = ", ".join(f"('{k}', {'NULL' if w is None else int(w)})" for k, w in windows.items())
    network = ", ".join(f"'{k}'" for k in NETWORK_KEY_TYPES)
    cap_t = f"(CASE WHEN key_type IN ({network}) THEN {int(network_cap)} ELSE {int(cap)} END)"
    return [
        ("kept", f"""
            SELECT platform, key_type, key, account_id, least(n_users, {cap_t}) AS n_eff
            FROM key_uses WHERE sample_rank <= {cap_t}"""),
        ("within", """
            SELECT platform, key_type, key, count(*) AS n_pairs
            FROM key_pairs GROUP BY platform, key_type, key"""),
        ("keyf", """
            SELECT k.platform, k.key_type, k.key, k.n_eff,
                   coalesce(w.n_pairs, 0) / (k.n_eff * (k.n_eff - 1) / 2) AS f
            FROM (SELECT platform, key_type, key, max(n_eff) AS n_eff FROM kept
                  GROUP BY platform, key_type, key HAVING max(n_eff) >= 2) k
            LEFT JOIN within w
              ON w.platform = k.platform AND w.key_type = k.key_type AND w.key = k.key"""),
        ("acct", """
            SELECT k.platform, k.key_type, k.account_id, count(*) AS d,
                   coalesce(sum(f.n_eff - 1), 0) AS big_a
            FROM kept k LEFT JOIN keyf f
              ON f.platform = k.platform AND f.key_type = k.key_type AND f.key = k.key
            GROUP BY k.platform, k.key_type, k.account_id"""),
        ("tot", f"""
            WITH win(key_type, window_s) AS (VALUES {win}),
            span AS (
                SELECT platform, key_type,
                       greatest(epoch(max(ts)) - epoch(min(ts)), 1) AS span_s
                FROM key_uses GROUP BY platform, key_type
            )
            SELECT a.platform, a.key_type, a.s,
                   CASE WHEN w.window_s IS NULL THEN 1.0
                        ELSE greatest(coalesce(t.f_t, 0),
                                      least(2.0 * w.window_s / sp.span_s, 1.0)) END AS f_t
            FROM (SELECT platform, key_type, sum(d) AS s FROM acct
                  GROUP BY platform, key_type) a
            LEFT JOIN (SELECT platform, key_type, least(median(f), 1.0) AS f_t FROM keyf
                       GROUP BY platform, key_type) t
              ON t.platform = a.platform AND t.key_type = a.key_type
            LEFT JOIN win w ON w.key_type = a.key_type
            LEFT JOIN span sp ON sp.platform = a.platform AND sp.key_type = a.key_type"""),
        ("users", """
            SELECT platform, key_type, count(DISTINCT account_id) AS n_t
            FROM key_uses GROUP BY platform, key_type"""),
        ("obs", """
            SELECT p.platform, p.a, p.b, p.key_type, count(*) AS c,
                   sum(greatest(ln(u.n_t / p.n_users), 0)) AS idf,
                   CASE WHEN count(p.ts_a) = 0 THEN 0
                        WHEN min(CAST(p.ts_a AS DATE)) = max(CAST(p.ts_a AS DATE)) THEN 1
                        ELSE 2 END AS days
            FROM key_pairs p
            JOIN users u ON u.platform = p.platform AND u.key_type = p.key_type
            GROUP BY p.platform, p.a, p.b, p.key_type"""),
        ("pair_stats", """
            SELECT o.platform, o.a, o.b, o.key_type, o.c, o.idf, o.days,
                   greatest(xa.d * yb.big_a, yb.d * xa.big_a) / t.s * t.f_t AS lam
            FROM obs o
            JOIN acct xa ON xa.platform = o.platform AND xa.key_type = o.key_type
                        AND xa.account_id = o.a
            JOIN acct yb ON yb.platform = o.platform AND yb.key_type = o.key_type
                        AND yb.account_id = o.b
            JOIN tot t ON t.platform = o.platform AND t.key_type = o.key_type"""),
    ]


def pair_stats_sql(cap: int, windows: dict[str, int | None] | None = None) -> str:
    """`pair_stats_steps` as one query (CTEs), for engines that plan it whole."""
    steps = pair_stats_steps(cap, windows or key_windows(Config().signals))
    ctes = ",\n".join(f"{name} AS ({sql})" for name, sql in steps[:-1])
    return f"WITH {ctes}\n{steps[-1][1]}"


# A kernel returns the pair statistics as Arrow, or None when it left them in the
# temp table `pair_stats` of the workspace connection.
Kernel = Callable[[duckdb.DuckDBPyConnection, Config], pa.Table | None]


def duckdb_kernel(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Kernel and pair statistics in DuckDB (the default engine), left in the temp table
    `pair_stats` (no copy through Python). Each step is its own temp table: planned
    whole as CTEs, DuckDB 2.0 picks a far slower join order."""
    run_kernel(con, config.signals)
    steps = pair_stats_steps(
        int(config.signals.max_key_accounts),
        key_windows(config.signals),
        int(config.signals.max_key_accounts_network),
    )
    for name, sql in steps:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    for name, _ in steps[:-1]:
        con.execute(f"DROP TABLE {name}")


def build_edges(
    con: duckdb.DuckDBPyConnection, config: Config, kernel: Kernel = duckdb_kernel
) -> int:
    """Replace `edges` and `edge_evidence` with the FDR-controlled fused graph.

    `kernel` (see `cibwatch.engines`) returns the `pair_stats_sql` rows and leaves the
    `key_uses` and `key_pairs` temp tables (key_pairs may be cut to the
    `evidence_per_type` rarest keys per pair and type: all the evidence step reads)."""
    g = config.graph
    con.execute("DELETE FROM edge_evidence")
    con.execute("DELETE FROM edges")
    stats = kernel(con, config)
    if stats is not None:
        con.execute("CREATE OR REPLACE TEMP TABLE pair_stats AS SELECT * FROM stats")
    del stats
    fam = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in FAMILIES.items())
    additive = ", ".join(f"'{f}'" for f in ADDITIVE)
    m = int(g.min_days)
    # Every pair is a test (it counts in Benjamini-Hochberg's m), but only pairs with
    # `min_shared_keys` co-uses can get a p-value below 1: only those are kept and sorted.
    # Untested pairs (p = 1) rank after every tested one, so the q-values are the same.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pooled_all AS
        SELECT platform, a, b,
               CAST(CASE WHEN max(days) >= {m} THEN sum(c)
                         ELSE sum(c * (days = 0)::INT) + least(sum(c * (days > 0)::INT), 1)
                    END AS BIGINT) AS c,
               CAST(sum(lam) AS DOUBLE) AS lam
        FROM (
            SELECT platform, a, b, family, max(days) AS days,
                   CASE WHEN family IN ({additive}) THEN sum(c) ELSE max(c) END AS c,
                   CASE WHEN family IN ({additive}) THEN sum(lam) ELSE max(lam) END AS lam
            FROM (SELECT *, CASE key_type {fam} ELSE key_type END AS family
                  FROM pair_stats)
            GROUP BY platform, a, b, family
        )
        GROUP BY platform, a, b
        """
    )
    n_tests = int(con.execute("SELECT count(*) FROM pooled_all").fetchall()[0][0])
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pooled AS
        SELECT row_number() OVER (ORDER BY platform, a, b) AS rid, platform, a, b, c, lam
        FROM pooled_all WHERE c >= {int(g.min_shared_keys)}
        """
    )
    con.execute("DROP TABLE pooled_all")
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
        INSERT INTO edges
        SELECT k.platform, k.a, k.b, s.weight, k.p_value, k.q_value, k.c, s.signals
        FROM (SELECT o.platform, o.a, o.b, o.c, t.p_value, t.q_value
              FROM pooled o JOIN _kept_pairs t USING (rid)) k
        JOIN (
            SELECT t.platform, t.a, t.b, sum(t.idf) AS weight,
                   to_json(map(list(t.key_type ORDER BY t.key_type),
                               list({'count': t.c, 'expected': round(t.lam, 6),
                                     'weight': round(t.idf, 3)} ORDER BY t.key_type)))
                       AS signals
            FROM pair_stats t
            SEMI JOIN (SELECT o.platform, o.a, o.b FROM pooled o JOIN _kept_pairs USING (rid)) x
                 USING (platform, a, b)
            GROUP BY ALL
        ) s USING (platform, a, b)
        """
    )
    con.unregister("_kept_pairs")
    con.execute("DROP TABLE pooled")
    con.execute("DROP TABLE pair_stats")
    per = int(g.evidence_per_type)
    con.execute(
        f"""
        INSERT INTO edge_evidence
        SELECT platform, a, b, key_type, key, weight, post_a, ts_a, post_b, ts_b
        FROM (
            SELECT p.platform, p.a, p.b, p.key_type, p.key,
                   greatest(ln(u.n_t / p.n_users), 0) AS weight,
                   p.post_a, p.ts_a, p.post_b, p.ts_b,
                   row_number() OVER (PARTITION BY p.platform, p.a, p.b, p.key_type
                                      ORDER BY p.n_users, p.key) AS rk
            FROM key_pairs p
            JOIN edges e ON e.platform = p.platform AND e.a = p.a AND e.b = p.b
            JOIN (SELECT platform, key_type, count(DISTINCT account_id) AS n_t
                  FROM key_uses GROUP BY ALL) u
              ON u.platform = p.platform AND u.key_type = p.key_type
        ) WHERE rk <= {per}
        """
    )
    con.execute("DROP TABLE key_pairs")
    con.execute("DROP TABLE key_uses")
    return int(con.execute("SELECT count(*) FROM edges").fetchall()[0][0])
