"""Rarity weights, the null model and FDR control on a hand-built key table."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from scipy.stats import false_discovery_control

from cibwatch.config import Config
from cibwatch.graph import benjamini_hochberg, build_edges
from cibwatch.workspace import Workspace


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=500), rng.uniform(0, 1e-4, size=50)])
    assert np.allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"))


def background(
    con, n_accounts=400, keys_per_account=30, n_keys=3000, seed=1, key_type="share"
):
    """Organic activity: accounts pick keys independently (popularity skewed)."""
    con.execute(
        f"""
        INSERT INTO keys
        SELECT 'x', 'org' || a, '{key_type}',
               'k' || CAST(floor(pow(hash(a * 1000 + j + {seed}) % 100000 / 100000.0, 3)
                                 * {n_keys}) AS BIGINT),
               TIMESTAMP '2024-03-01' + INTERVAL (hash(a * 7 + j) % (30 * 86400)) SECOND,
               'p' || a || '_' || j
        FROM range({n_accounts}) s(a), range({keys_per_account}) t(j)
        """
    )


def test_operation_found_hyperactive_and_viral_not(tmp_path):
    ws = Workspace(tmp_path / "g.duckdb")
    con = ws.con
    background(con)
    # an operation: 6 accounts re-share the same 15 rare posts within seconds, daily
    con.execute(
        """
        INSERT INTO keys
        SELECT 'x', 'op' || a, 'share', 'opk' || j,
               TIMESTAMP '2024-03-02' + INTERVAL (j * 86400 + a * 5) SECOND, 'q' || a || j
        FROM range(6) s(a), range(15) t(j)
        """
    )
    # two hyperactive accounts that re-share a third of everything, all day long
    con.execute(
        """
        INSERT INTO keys
        SELECT 'x', 'hyper' || a, 'share', 'k' || j,
               TIMESTAMP '2024-03-01' + INTERVAL (hash(a * 7 + j) % (30 * 86400)) SECOND,
               'h' || a || j
        FROM range(2) s(a), range(0, 3000, 3) t(j)
        """
    )
    # a viral moment: 150 organic accounts share one post within an hour
    con.execute(
        """
        INSERT INTO keys
        SELECT 'x', 'org' || a, 'share', 'viral',
               TIMESTAMP '2024-03-05' + INTERVAL (a * 20) SECOND, 'v' || a
        FROM range(150) s(a)
        """
    )
    n = build_edges(con, Config())
    edges = con.execute("SELECT a, b, q_value, signals FROM edges").fetchall()
    assert n == len(edges)
    linked = {x for a, b, *_ in edges for x in (a, b)}
    assert linked == {f"op{i}" for i in range(6)}
    assert len(edges) == 15
    for _, _, q, signals in edges:
        assert q <= Config().graph.fdr
        s = json.loads(signals)["share"]
        assert s["count"] == 15 and s["expected"] < 1
    ev = con.execute(
        "SELECT count(*), count(DISTINCT key), min(ts_a) FROM edge_evidence "
        "WHERE a = 'op0' AND b = 'op1'"
    ).fetchall()[0]
    assert ev[0] == Config().graph.evidence_per_type and ev[1] == ev[0] and ev[2] is not None


def test_fdr_level_is_respected_on_pure_noise(tmp_path):
    ws = Workspace(tmp_path / "g.duckdb")
    background(ws.con, n_accounts=600, keys_per_account=40, n_keys=2000, seed=5)
    assert build_edges(ws.con, Config()) == 0
    # and a looser level is obeyed, not ignored
    loose = Config().with_overrides(["graph.fdr=0.5", "graph.min_shared_keys=1"])
    assert build_edges(ws.con, loose) >= 0
    q = ws.con.execute("SELECT max(q_value) FROM edges").fetchall()[0][0]
    assert q is None or q <= 0.5


def test_rerun_replaces_edges(tmp_path):
    ws = Workspace(tmp_path / "g.duckdb")
    con = ws.con
    con.execute(
        """
        INSERT INTO keys
        SELECT 'x', 'op' || a, 'text', 'fp' || j, TIMESTAMP '2024-03-02' + INTERVAL (j) DAY,
               'q' || a || j
        FROM range(4) s(a), range(8) t(j)
        """
    )
    background(con, n_accounts=200, keys_per_account=10, key_type="text")
    first = build_edges(con, Config())
    assert first == 6
    assert build_edges(con, Config()) == first
    assert con.execute("SELECT count(*) FROM edges").fetchall()[0][0] == first


def operation_in_background(tmp_path):
    """300 organic accounts and 5 operators re-sharing 12 rare posts within seconds."""
    con = Workspace(tmp_path / "g.duckdb").con
    background(con, n_accounts=300, keys_per_account=20)
    con.execute(
        """
        INSERT INTO keys
        SELECT 'x', 'op' || a, 'share', 'opk' || j,
               TIMESTAMP '2024-03-02' + INTERVAL (j * 86400 + a * 5) SECOND, 'q' || a || j
        FROM range(5) s(a), range(12) t(j)
        """
    )
    return con


def test_every_pair_is_a_test_but_only_possible_edges_are_scored(tmp_path):
    """Benjamini-Hochberg's m counts every pair that shares a key; only pairs with
    `min_shared_keys` key pairs get statistics, and only their key pairs are kept. The
    q-values of the edges are BH over the scored p-values with that m."""
    from scipy.stats import poisson

    from cibwatch.graph import duckdb_kernel
    from cibwatch.signals.kernel import kernel_sql

    con = operation_in_background(tmp_path)
    cfg = Config()
    duckdb_kernel(con, cfg)
    n_tests = con.execute("SELECT n_tests FROM pair_tests").fetchall()[0][0]
    every = f"({kernel_sql(cfg.signals)})"  # all the kernel's pairs, from key_uses
    pairs = con.execute(f"SELECT a, b, count(*) FROM {every} GROUP BY a, b").fetchall()
    assert n_tests == len(pairs)
    scored = con.execute("SELECT DISTINCT a, b FROM pair_stats ORDER BY a, b").fetchall()
    possible = sorted((a, b) for a, b, n in pairs if n >= cfg.graph.min_shared_keys)
    assert 10 <= len(scored) < n_tests
    assert scored == possible
    kept = f"SELECT * FROM {every} SEMI JOIN pair_stats s USING (a, b) ORDER BY ALL"
    assert con.execute("SELECT * FROM key_pairs ORDER BY ALL").fetchall() == (
        con.execute(kept).fetchall())
    edges = build_edges(con, cfg)
    assert edges >= 10  # the 5 x 4 / 2 pairs of the operation
    q_edges = sorted(r[0] for r in con.execute("SELECT q_value FROM edges").fetchall())
    # one key type, co-uses on 2+ days: a pair's pooled count is its share count
    duckdb_kernel(con, cfg)
    c, lam = (np.array(v) for v in zip(*con.execute(
        "SELECT c, lam FROM pair_stats WHERE days >= 2").fetchall(), strict=True))
    q = benjamini_hochberg(poisson.sf(c - 1, lam), n_tests)
    assert np.allclose(q_edges, np.sort(q[q <= cfg.graph.fdr]), rtol=1e-9)


def test_pairs_counted_in_numpy_equal_the_sql_steps(tmp_path):
    """The DuckDB kernel counts the kernel's pairs in NumPy (`_count_pairs`); the SQL
    steps it replaces (`pair_counts`, `pair_tests`, `cand`: what Spark runs) give the
    same number of tests and the same candidate pairs, over several platforms, key
    types with and without a window, and every `min_shared_keys`."""
    from cibwatch.graph import _count_pairs, pair_stats_steps
    from cibwatch.signals.kernel import run_kernel

    ws = Workspace(tmp_path / "g.duckdb")
    con = ws.con
    background(con, n_accounts=300, keys_per_account=20, key_type="share")
    background(con, n_accounts=250, keys_per_account=15, n_keys=400, seed=5,
               key_type="follow")
    con.execute("UPDATE keys SET ts = NULL WHERE key_type = 'follow'")
    con.execute(
        """
        INSERT INTO keys SELECT 'y', 'org' || (a % 50), 'text', 't' || (a % 7), NULL, NULL
        FROM range(200) s(a)
        """
    )
    cfg = Config()
    run_kernel(con, cfg.signals, pairs=False)
    for min_shared in (1, 2, 3, 5):
        steps = dict(pair_stats_steps(min_shared))
        for name in ("pair_counts", "pair_tests", "cand"):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {steps[name]}")
        want_tests = con.execute("SELECT n_tests FROM pair_tests").fetchall()[0][0]
        want = con.execute("SELECT ab FROM cand ORDER BY ab").fetchall()
        _count_pairs(con, cfg, min_shared)
        assert con.execute("SELECT n_tests FROM pair_tests").fetchall()[0][0] == want_tests
        assert con.execute("SELECT ab FROM cand ORDER BY ab").fetchall() == want
        assert want_tests > len(want) > 0 or min_shared == 1
    assert want_tests > 1000


def test_kernel_falls_back_to_sql_pair_counts_above_the_memory_bound(tmp_path):
    """Above `graph.numpy_pairs_max` possible pairs the DuckDB kernel counts them with
    the SQL steps (which spill to disk) instead of NumPy: the same tests, statistics and
    edges either way."""
    from cibwatch.graph import duckdb_kernel

    con = operation_in_background(tmp_path)
    results = []
    for limit in (Config().graph.numpy_pairs_max, 0):
        cfg = Config().updated({"graph": {"numpy_pairs_max": limit}})
        duckdb_kernel(con, cfg)
        tables = [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                  for t in ("pair_tests", "pair_stats", "key_pairs")]
        assert not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pair_counts'"
        ).fetchall()[0][0]
        results.append((tables, build_edges(con, cfg)))
    assert results[0] == results[1]
    assert results[0][1] >= 10


def test_one_comment_is_one_co_use_not_a_comment_and_an_engagement(tmp_path):
    """Two assets comment on the same post of X within minutes: that gives a co-used
    reply key and a co-used engage key of X, one event, counted once. Their
    engagement of Y on different posts is a separate fact and still counts."""
    from cibwatch.signals.engagement import extract_engagement_keys

    ws = Workspace(tmp_path / "g.duckdb")
    con = ws.con
    con.execute(
        """
        INSERT INTO posts (platform, post_id, account_id, created_at, kind, parent_id)
        VALUES ('x', 'px1', 'X', TIMESTAMP '2024-03-01 10:00', 'post', NULL),
               ('x', 'py1', 'Y', TIMESTAMP '2024-03-01 11:00', 'post', NULL),
               ('x', 'py2', 'Y', TIMESTAMP '2024-03-04 11:00', 'post', NULL),
               ('x', 'c1', 'u1', TIMESTAMP '2024-03-01 10:05', 'comment', 'px1'),
               ('x', 'c2', 'u2', TIMESTAMP '2024-03-01 10:07', 'comment', 'px1'),
               ('x', 'c3', 'u1', TIMESTAMP '2024-03-01 12:00', 'comment', 'py1'),
               ('x', 'c4', 'u2', TIMESTAMP '2024-03-04 12:00', 'comment', 'py2')
        """
    )
    cfg = Config()
    extract_engagement_keys(con, cfg.signals)
    everything = cfg.with_overrides(["graph.fdr=1.0", "graph.min_shared_keys=1"])
    build_edges(con, everything)
    rows = con.execute(
        "SELECT n_keys, signals FROM edges WHERE a = 'u1' AND b = 'u2'"
    ).fetchall()
    assert len(rows) == 1
    n_keys, signals = rows[0][0], json.loads(rows[0][1])
    assert signals["reply"]["count"] == 1
    # X's engage key is explained by the co-comment; Y's is not
    assert signals["engage"]["count"] == 1
    assert signals["engage"]["expected"] > 0  # the null keeps its expectation
    assert n_keys == 2  # one reply + one engagement (was 3: X's engage counted again)
    ev = con.execute(
        "SELECT key FROM edge_evidence WHERE a = 'u1' AND b = 'u2' "
        "AND key_type = 'engage'"
    ).fetchall()
    assert [k for (k,) in ev] == ["Y"]
    # an asset's engagement of the author itself is not a co-use of a post: untouched
    u1_x = con.execute(
        "SELECT signals FROM edges WHERE a = 'X' AND b = 'u1'"
    ).fetchall()
    assert json.loads(u1_x[0][0])["engage"]["count"] == 1


def test_popular_keys_count_at_full_size_where_both_can_be_sampled(tmp_path):
    """A popular key keeps its first users in one md5 order of accounts (the cap: 3
    here), so two accounts early in that order are sampled together on every popular
    key they share. Their expectation counts such a key at its full size (it is not a
    3-user key), and only where the other account could have been sampled with them:
    Q's sample stops before b, so Q does not count in a's expectation with b."""
    from cibwatch.graph import duckdb_kernel

    by_md5 = sorted((f"acct{i}" for i in range(200)),
                    key=lambda n: hashlib.md5(n.encode()).hexdigest())
    a, q1, q2, b = by_md5[:4]
    late = by_md5[-12:]
    ws = Workspace(tmp_path / "g.duckdb")
    con = ws.con
    rows = [(u, k) for k in ("P1", "P2", "P3") for u in [a, b, *late[:8]]]
    rows += [(u, "Q") for u in [a, q1, q2, *late]]
    # background: 40 two-user keys
    rows += [(u, f"R{i}") for i, u in enumerate(by_md5[20:60])]
    rows += [(u, f"R{i}") for i, u in enumerate(by_md5[60:100])]
    con.executemany(
        "INSERT INTO keys VALUES ('x', ?, 'engage', ?, NULL, NULL)", rows
    )
    cfg = Config().with_overrides(["signals.max_key_accounts_network=3"])
    duckdb_kernel(con, cfg)
    s = len(rows)  # every use of the type: the configuration model's S
    (lam,) = con.execute(
        "SELECT lam FROM pair_stats WHERE a = (SELECT aid FROM key_accounts "
        "WHERE account_id = ?) AND b = (SELECT aid FROM key_accounts WHERE account_id = ?)"
        " OR a = (SELECT aid FROM key_accounts WHERE account_id = ?) "
        "AND b = (SELECT aid FROM key_accounts WHERE account_id = ?)", [a, b, b, a]
    ).fetchall()[0]
    # d_a = 4 (P1-P3, Q), d_b = 3; A_a|b = A_b|a = 3 x 9 (P1-P3 at full size, Q left out)
    assert abs(lam - max(3 * 27, 4 * 27) / s) < 1e-12
