"""From key-sharing pairs to a significance-tested, fused graph of assets.

For every pair of assets (a, b) and key type t the kernel gives c, the number of keys of
type t both used within the window. The null model asks how many such co-uses two
*independent* assets with the same activity would have by chance, given how popular
their keys are (a configuration model on the asset-key bipartite graph):

    lambda_ab = max(d_b * A_a, d_a * A_b) / S

d_a is the number of keys of type t that a used, S the total over all assets, and
A_a = sum over a's keys k of (n_k - 1) * f_k, with n_k the key's users and f_k the share
of the key's user pairs that fall inside the window. A hyperactive account (large d) or
one that only touches viral keys (large n_k) gets a large lambda, so it needs many more
co-uses to be flagged. The p-value is the Poisson tail P(X >= c | lambda); the edge's
p-value is the smallest over key types times the number of types (Bonferroni, valid
whatever the dependence between signals), and Benjamini-Hochberg keeps the edges whose
false-discovery rate is at most `graph.fdr`. Kept edges are weighted by the rarity
(IDF: ln(N_t / n_k)) of the keys they share, summed over all types: the fused graph.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from scipy.stats import poisson

from cibwatch.config import Config
from cibwatch.signals.kernel import run_kernel, windows


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """q-values (BH step-up adjusted p-values) for an array of p-values."""
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def _pair_stats(con: duckdb.DuckDBPyConnection, cap: int) -> pa.Table:
    """Per (platform, a, b, key_type): observed co-uses c, expected lambda, rarity weight."""
    return con.sql(
        f"""
        WITH kept AS (
            SELECT platform, key_type, key, account_id, least(n_users, {cap}) AS n_eff,
                   n_users
            FROM key_uses WHERE sample_rank <= {cap}
        ),
        within AS (
            SELECT platform, key_type, key, count(*) AS n_pairs
            FROM key_pairs GROUP BY ALL
        ),
        keyf AS (
            SELECT k.platform, k.key_type, k.key, any_value(k.n_eff) AS n_eff,
                   coalesce(any_value(w.n_pairs), 0)
                     / greatest(any_value(k.n_eff) * (any_value(k.n_eff) - 1) / 2, 1) AS f
            FROM kept k LEFT JOIN within w USING (platform, key_type, key)
            GROUP BY ALL
        ),
        acct AS (
            SELECT k.platform, k.key_type, k.account_id, count(*) AS d,
                   sum((f.n_eff - 1) * f.f) AS big_a
            FROM kept k JOIN keyf f USING (platform, key_type, key)
            GROUP BY ALL
        ),
        tot AS (
            SELECT platform, key_type, sum(d) AS s FROM acct GROUP BY ALL
        ),
        users AS (
            SELECT platform, key_type, count(DISTINCT account_id) AS n_t
            FROM key_uses GROUP BY ALL
        ),
        obs AS (
            SELECT p.platform, p.a, p.b, p.key_type, count(*) AS c,
                   sum(greatest(ln(u.n_t / p.n_users), 0)) AS idf
            FROM key_pairs p JOIN users u USING (platform, key_type)
            GROUP BY ALL
        )
        SELECT o.platform, o.a, o.b, o.key_type, o.c, o.idf,
               greatest(xa.d * yb.big_a, yb.d * xa.big_a) / t.s AS lam
        FROM obs o
        JOIN acct xa ON xa.platform = o.platform AND xa.key_type = o.key_type
                    AND xa.account_id = o.a
        JOIN acct yb ON yb.platform = o.platform AND yb.key_type = o.key_type
                    AND yb.account_id = o.b
        JOIN tot t ON t.platform = o.platform AND t.key_type = o.key_type
        """
    ).to_arrow_table()


def build_edges(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """Replace `edges` and `edge_evidence` with the FDR-controlled fused graph."""
    g = config.graph
    cap = int(config.signals.max_key_accounts)
    con.execute("DELETE FROM edge_evidence")
    con.execute("DELETE FROM edges")
    run_kernel(con, config.signals)
    stats = _pair_stats(con, cap)
    c = stats.column("c").to_numpy()
    lam = np.maximum(stats.column("lam").to_numpy(zero_copy_only=False), 1e-300)
    p = np.where(c >= g.min_shared_keys, poisson.sf(c - 1, lam), 1.0)
    stats = stats.append_column("p", pa.array(p))
    con.register("_pair_stats", stats)
    n_types = len(windows(config.signals))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE edge_tests AS
        SELECT platform, a, b, least(min(p) * {n_types}, 1.0) AS p_value,
               sum(idf) AS weight, sum(c) AS n_keys,
               to_json(map(list(key_type ORDER BY key_type),
                           list({{'count': c, 'expected': round(lam, 6),
                                 'p': p, 'weight': round(idf, 3)}} ORDER BY key_type)))
                   AS signals
        FROM _pair_stats GROUP BY platform, a, b
        """
    )
    con.unregister("_pair_stats")
    tests = con.sql(
        "SELECT platform, a, b, p_value FROM edge_tests ORDER BY platform, a, b"
    ).to_arrow_table()
    q = benjamini_hochberg(tests.column("p_value").to_numpy())
    con.register("_q", tests.append_column("q_value", pa.array(q)))
    con.execute(
        f"""
        INSERT INTO edges
        SELECT t.platform, t.a, t.b, t.weight, t.p_value, q.q_value, t.n_keys, t.signals
        FROM edge_tests t JOIN _q q USING (platform, a, b)
        WHERE q.q_value <= {float(g.fdr)}
        """
    )
    con.unregister("_q")
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
    con.execute("DROP TABLE edge_tests")
    con.execute("DROP TABLE key_pairs")
    con.execute("DROP TABLE key_uses")
    return int(con.execute("SELECT count(*) FROM edges").fetchall()[0][0])
