"""Leiden clusters, member rules, low-activity assets and cluster evidence on a small
hand-built world (organic background, one operation with dormant assets, hyperactive
users and a viral moment)."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from cibwatch import cluster, graph, signals
from cibwatch.config import Config
from cibwatch.workspace import Workspace

T0 = datetime(2024, 3, 1)
WORDS = [
    "rain", "sun", "city", "vote", "bus", "school", "market", "game", "team", "coffee",
    "music", "film", "park", "road", "news", "friday", "work", "family", "dinner", "train",
    "price", "book", "river", "beach", "phone", "garden", "party",
]


def build_world(con, seed: int = 7) -> dict[str, list[str]]:
    """Insert a small world; returns the account ids of each group."""
    rnd = random.Random(seed)
    accounts, posts, follows = [], [], []

    def acct(aid, handle, name, created, avatar=None):
        accounts.append(dict(platform="x", account_id=aid, handle=handle, display_name=name,
                             created_at=created, avatar_hash=avatar))

    def post(aid, ts, kind="post", text=None, urls=None, shared=None, parent=None):
        pid = f"p{len(posts)}"
        posts.append(dict(platform="x", post_id=pid, account_id=aid, created_at=ts, kind=kind,
                          text=text, urls=urls, shared_id=shared, parent_id=parent))
        return pid

    organic = [f"o{i}" for i in range(300)]
    for i, a in enumerate(organic):
        acct(a, f"{rnd.choice(WORDS)}{rnd.choice(WORDS)}{i}", f"Person {i}",
             T0 - timedelta(days=rnd.randint(200, 3000), minutes=rnd.randint(0, 1440)))
    org_posts = []
    for a in organic:
        for _ in range(12):
            ts = T0 + timedelta(seconds=rnd.randint(0, 30 * 86400))
            text = " ".join(rnd.choice(WORDS) for _ in range(14))
            url = [f"https://www.site{rnd.randint(0, 40)}.com/a{rnd.randint(0, 10**6)}"]
            org_posts.append(post(a, ts, text=text, urls=url))
    for a in organic:
        for _ in range(8):
            ts = T0 + timedelta(seconds=rnd.randint(0, 30 * 86400))
            kind = rnd.choice(["share", "comment", "reaction"])
            target = rnd.choice(org_posts)
            if kind == "share":
                post(a, ts, "share", shared=target)
            else:
                post(a, ts, kind, text=" ".join(rnd.choice(WORDS) for _ in range(6)),
                     parent=target)
        for f in rnd.sample(organic, 5):
            if f != a:
                follows.append(dict(platform="x", follower_id=a, followee_id=f))
    # hyperactive: share a fifth of all organic posts, around the clock
    hyper = ["o0", "o1"]
    for a in hyper:
        for target in rnd.sample(org_posts, len(org_posts) // 5):
            post(a, T0 + timedelta(seconds=rnd.randint(0, 30 * 86400)), "share", shared=target)
    # viral: 120 organic accounts share one post within an hour
    viral = organic[10:130]
    for j, a in enumerate(viral):
        post(a, T0 + timedelta(days=3, seconds=30 * j), "share", shared=org_posts[5])
    # the operation: 15 accounts made in one sitting post 30 supplied texts over hours
    ops = [f"op{i}" for i in range(15)]
    made = T0 - timedelta(days=40)
    for i, a in enumerate(ops):
        acct(a, f"harbour_voice{1000 + i}", "Harbour Voice", made + timedelta(seconds=20 * i),
             "a1b2c3")
    op_posts = []
    for k in range(30):
        base = T0 + timedelta(days=k, hours=1)
        text = f"The harbour project no. {k} brings jobs and pride to our province {k * 13}"
        for a in rnd.sample(ops, 8):
            op_posts.append(post(a, base + timedelta(minutes=rnd.randint(0, 480)), text=text,
                                 urls=[f"https://harbour-news.cn/story/{k}?utm_source=op"]))
    # the echo chamber: each operator comments on or reacts to its colleagues' posts
    for a in ops:
        for target in rnd.sample(op_posts, 12):
            if posts[int(target[1:])]["account_id"] != a:
                post(a, posts[int(target[1:])]["created_at"] + timedelta(minutes=30),
                     rnd.choice(["comment", "reaction"]), text="so true, share this", parent=target)
    # dormant assets of the same sitting: no posts of their own, a few comments on the op
    dormant = [f"op_d{i}" for i in range(4)]
    for i, a in enumerate(dormant):
        acct(a, f"harbour_voice{2000 + i}", "Harbour Voice",
             made + timedelta(seconds=400 + 20 * i), "a1b2c3")
        for target in rnd.sample(op_posts, 3):
            post(a, T0 + timedelta(days=31), "comment", text="great", parent=target)
    con.register("_a", pd.DataFrame(accounts))
    con.execute("INSERT INTO accounts BY NAME SELECT * FROM _a")
    df = pd.DataFrame(posts)
    con.register("_p", df)
    con.execute("INSERT INTO posts BY NAME SELECT * FROM _p")
    con.register("_f", pd.DataFrame(follows))
    con.execute("INSERT INTO follows BY NAME SELECT DISTINCT * FROM _f")
    for name in ("_a", "_p", "_f"):
        con.unregister(name)
    return {"organic": organic, "hyper": hyper, "viral": viral, "ops": ops, "dormant": dormant}


def detect_clusters(con, config: Config | None = None) -> None:
    cfg = config or Config()
    signals.extract_keys(con, cfg)
    graph.build_edges(con, cfg)
    cluster.find_clusters(con, cfg)


def members(con) -> dict[str, str]:
    return dict(con.execute("SELECT account_id, cluster_id FROM cluster_members").fetchall())


def test_operation_found_whole_and_nothing_else(tmp_path):
    ws = Workspace(tmp_path / "c.duckdb")
    groups = build_world(ws.con)
    detect_clusters(ws.con)
    found = members(ws.con)
    assert set(found) == set(groups["ops"]) | set(groups["dormant"])
    assert len(set(found.values())) == 1
    reasons = dict(ws.con.execute("SELECT account_id, reason FROM cluster_members").fetchall())
    for a in groups["dormant"]:
        assert reasons[a].startswith("attached:")
    for a in groups["ops"]:
        assert reasons[a] == "edges"
    scores = [s for (s,) in ws.con.execute("SELECT score FROM cluster_members").fetchall()]
    assert all(0 < s <= 1 for s in scores)


def test_cluster_evidence_and_stable_ids(tmp_path):
    ws = Workspace(tmp_path / "c.duckdb")
    groups = build_world(ws.con)
    detect_clusters(ws.con)
    (cid, platform, n, score, evidence), = ws.con.execute("SELECT * FROM clusters").fetchall()
    assert platform == "x" and n == len(groups["ops"]) + len(groups["dormant"])
    assert cid == cluster.cluster_id("x", groups["ops"])
    assert 0 < score <= 1
    items = json.loads(evidence)
    assert {"signal", "strength", "detail"} <= set(items[0])
    signals_seen = {i["signal"] for i in items}
    assert "identical text" in signals_seen
    assert "ties of low-activity assets" in signals_seen
    assert items[0]["strength"] > 0.5
    # a second run on unchanged data gives the same ids and members
    before = members(ws.con)
    detect_clusters(ws.con)
    assert members(ws.con) == before


def test_the_stage_leaves_the_connection_as_it_found_it(tmp_path):
    """The stage works on three cursors and an attached scratch database: once done,
    or failed, none of it is left (no database, no temp table but the graph's), and a
    run after a failed one gives the same clusters."""
    ws = Workspace(tmp_path / "c.duckdb")
    build_world(ws.con)
    cfg = Config()
    signals.extract_keys(ws.con, cfg)
    graph.build_edges(ws.con, cfg)

    def databases() -> set[str]:
        return {r[0] for r in ws.con.execute(
            "SELECT database_name FROM duckdb_databases()").fetchall()}

    before, temp = databases(), _temp_tables(ws.con) - set(graph.DICTIONARIES)
    cluster.find_clusters(ws.con, cfg)
    found = members(ws.con)
    assert found and databases() == before and _temp_tables(ws.con) == temp
    # a failure in the attach rounds (the action table missing from its cursor)
    real = cluster._actions
    cluster._actions = lambda con: None
    try:
        with pytest.raises(duckdb.Error):
            cluster.find_clusters(ws.con, cfg)
    finally:
        cluster._actions = real
    assert databases() == before
    cluster.find_clusters(ws.con, cfg)
    assert members(ws.con) == found


def test_min_cluster_size_respected(tmp_path):
    ws = Workspace(tmp_path / "c.duckdb")
    build_world(ws.con)
    detect_clusters(ws.con, Config().with_overrides(["cluster.min_cluster_size=16"]))
    core = ws.con.execute(
        "SELECT count(*) FROM cluster_members WHERE reason = 'edges'"
    ).fetchall()[0][0]
    assert core == 0


def test_content_only_cluster_needs_corroboration(tmp_path):
    """Five accounts that share the same texts on many days and nothing else: a real
    campaign does that too, so no cluster unless corroboration is switched off."""
    from test_graph import background

    ws = Workspace(tmp_path / "c.duckdb")
    con = ws.con
    background(con, n_accounts=300, keys_per_account=10, key_type="text")
    con.execute(
        """
        INSERT INTO keys
        SELECT 'x', 'camp' || a, 'text', 'slogan' || j,
               TIMESTAMP '2024-03-02' + INTERVAL (j) DAY + INTERVAL (a) HOUR, 'q' || a || j
        FROM range(5) s(a), range(8) t(j)
        """
    )
    graph.build_edges(con, Config())
    assert con.execute("SELECT count(*) FROM edges").fetchall()[0][0] == 10
    cluster.find_clusters(con, Config())
    assert members(con) == {}
    cluster.find_clusters(con, Config().with_overrides(["cluster.require_corroboration=false"]))
    assert set(members(con)) == {f"camp{i}" for i in range(5)}


def _shared_world(con, dormant: int) -> None:
    """Cluster 1 (assets 1-3: name 10, batch 20, avatar 30) and 1,000 outsiders (100-1099)
    with names and batches of their own, except `dormant` of them (from 101) holding the
    cluster's name and batch, and ten more (1090-1099) holding only its name. Only the
    dormant ones have an avatar, the cluster's."""
    con.execute("CREATE OR REPLACE TEMP TABLE _kk AS SELECT * FROM (VALUES (1, 'x', 'name'), "
                "(2, 'x', 'batch'), (3, 'x', 'avatar')) t(kt, platform, key_type)")
    con.execute("CREATE OR REPLACE TEMP TABLE _m AS SELECT 1 AS cid, 'x' AS platform, aid "
                "FROM range(1, 4) t(aid)")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ak AS
        SELECT 1 AS kt, aid, 10 AS kid FROM range(1, 4) t(aid)
        UNION ALL SELECT 2, aid, 20 FROM range(1, 4) t(aid)
        UNION ALL SELECT 3, aid, 30 FROM range(1, 4) t(aid)
        UNION ALL SELECT 1, aid, CASE WHEN aid BETWEEN 101 AND {100 + dormant}
                                      OR aid >= 1090 THEN 10 ELSE 1000 + aid END
        FROM range(100, 1100) t(aid)
        UNION ALL SELECT 2, aid, CASE WHEN aid BETWEEN 101 AND {100 + dormant}
                                      THEN 20 ELSE 5000 + aid END
        FROM range(100, 1100) t(aid)
        UNION ALL SELECT 3, aid, 30 FROM range(101, {101 + dormant}) t(aid)
        """
    )
    cluster._account_masks(con)


def test_shared_account_keys_count_every_outsider_looked_at():
    """Two account-level coincidences with a cluster are rare for one asset but not
    among 1,000 looked at: p is the expected number of outsiders matching so by chance
    over the number that do."""
    con = duckdb.connect()
    _shared_world(con, dormant=1)
    cluster._shared_keys(con, Config().cluster)
    rows = con.execute("SELECT aid, cid, k, p, kt FROM _shared").fetchall()
    assert [(a, c, k) for a, c, k, _, _ in rows] == [(101, 1, 3)]
    assert rows[0][4] == ["avatar", "batch", "name"]
    # name 11/1000, batch 1/1000, avatar 1/1 (no other outsider has one): of the one
    # outsider with all three types, 1 x 0.011 x 0.001 x 1 expected
    assert math.isclose(rows[0][3], 1 * (11 / 1000) * (1 / 1000), rel_tol=1e-8)
    con.execute("DELETE FROM _ak WHERE kt = 3")
    cluster._account_masks(con)
    cluster._shared_keys(con, Config().cluster)
    (p,) = con.execute("SELECT p FROM _shared").fetchall()[0]
    # name and batch: all 1,000 outsiders hold both types
    assert math.isclose(p, 1000 * (11 / 1000) * (1 / 1000), rel_tol=1e-8)
    _shared_world(con, dormant=4)
    con.execute("DELETE FROM _ak WHERE kt = 3")
    cluster._account_masks(con)
    cluster._shared_keys(con, Config().cluster)
    rows = con.execute("SELECT aid, p FROM _shared ORDER BY aid").fetchall()
    assert [a for a, _ in rows] == [101, 102, 103, 104]
    expected = 1000 * (14 / 1000) * (4 / 1000) / 4
    assert all(math.isclose(p, expected, rel_tol=1e-8) for _, p in rows)


def _ties_world(con, answers: int) -> None:
    """Cluster 1 (assets 1-10) and 100,000 outsiders (1000-100999) on one platform: each
    outsider follows the next one, the cluster's members follow each other, and members
    1..`answers` answer outsider 5000, whose only other received action is one follow (from 4999).
    Beside 100,000 actions, any two of the cluster's are rare for one outsider."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _actions AS
        SELECT 'x' AS platform, a AS actor, a + 1 AS target FROM range(1000, 101000) t(a)
        UNION ALL SELECT 'x', a, b FROM range(1, 11) s(a), range(1, 11) t(b) WHERE a <> b
        UNION ALL SELECT 'x', a, 5000 FROM range(1, {1 + answers}) t(a)
        """
    )
    con.execute("CREATE OR REPLACE TEMP TABLE _m AS SELECT 1 AS cid, 'x' AS platform, aid "
                "FROM range(1, 11) t(aid)")
    for name, col in (("_aout", "actor"), ("_ain", "target")):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {col} AS aid, "
                    f"count(*) AS x FROM _actions GROUP BY {col}")
    con.execute("CREATE OR REPLACE TEMP TABLE _atot AS SELECT platform, count(*) AS n "
                "FROM _actions GROUP BY platform")


def test_an_operation_answering_a_person_twice_does_not_make_it_an_asset():
    """The ties an outsider received from a cluster count only from
    `attach_min_in_ties` on: an operation answering a real person twice (2 of the 3
    actions it received: binomial p 2.5e-6 at the cluster's share of all actions,
    9.2e-4) marks a target, not an asset; a third one is tested."""
    con = duckdb.connect()
    cc = Config().cluster
    assert cc.attach_min_in_ties == 3
    _ties_world(con, answers=2)
    cluster._action_ties(con, cc)
    rows = con.execute("SELECT y, x, p FROM _ties WHERE aid = 5000 AND direction = 'in'"
                       ).fetchall()
    assert [(y, x) for y, x, _ in rows] == [(2, 3)] and rows[0][2] == 1.0
    looser = Config().updated({"cluster": {"attach_min_in_ties": 2}}).cluster
    cluster._action_ties(con, looser)
    (p,) = con.execute("SELECT p FROM _ties WHERE aid = 5000 AND direction = 'in'"
                       ).fetchall()[0]
    assert 1e-6 < p < 1e-5
    _ties_world(con, answers=3)
    cluster._action_ties(con, cc)
    (p,) = con.execute("SELECT p FROM _ties WHERE aid = 5000 AND direction = 'in'"
                       ).fetchall()[0]
    assert p < 1e-8


def _temp_tables(con) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}


def _rows(con, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def test_key_uses_from_the_graph_dictionaries_equal_those_of_the_key_rows(tmp_path):
    """The attach tables come from the graph stage's dictionaries (distinct uses on
    integer ids), or are built from `keys` when the graph did not run: both give what
    hashing every string row of `keys` gives (a small cap, so popular keys are left
    out of `_ku` but not of `_ak`)."""
    ws = Workspace(tmp_path / "c.duckdb")
    con = ws.con
    build_world(con)
    cfg = Config().with_overrides(["signals.max_key_accounts=5"])
    signals.extract_keys(con, cfg)
    graph.build_edges(con, cfg)
    assert set(graph.DICTIONARIES) <= _temp_tables(con)
    posts_t = ", ".join(f"'{t}'" for t in cluster.POST_KEY_TYPES)
    account_t = ", ".join(f"'{t}'" for t in cluster.ACCOUNT_KEY_TYPES)
    every = f"""
        WITH kk AS (
            SELECT CAST(row_number() OVER (ORDER BY platform, key_type) AS INT) AS kt,
                   platform, key_type FROM (SELECT DISTINCT platform, key_type FROM keys)
        ),
        pa AS (SELECT hash(platform, post_id) AS ph, hash(platform, account_id) AS aid
               FROM posts)
        SELECT DISTINCT t.kt, t.key_type, hash(k.key_type, k.key) AS kid,
               hash(k.platform, k.account_id) AS aid,
               CASE WHEN k.key_type IN ('engage', 'follow') THEN hash(k.platform, k.key)
                    WHEN k.key_type IN ({posts_t}) THEN p.aid END AS target
        FROM keys k JOIN kk t USING (platform, key_type)
        LEFT JOIN pa p ON p.ph = hash(k.platform, k.key) AND k.key_type IN ({posts_t})
        """
    ku = f"""
        SELECT kt, kid, aid, target FROM ({every})
        QUALIFY count(*) OVER (PARTITION BY kt, kid) <= 5
        """
    ak = f"SELECT kt, aid, kid FROM ({every}) WHERE key_type IN ({account_t})"
    want_ku, want_ak = _rows(con, ku), _rows(con, ak)
    n_all = con.execute(f"SELECT count(*) FROM ({every})").fetchall()[0][0]
    # the cap leaves some keys out; engaged accounts and authors are named
    assert 0 < len(want_ku) < n_all
    assert any(t is not None for *_, t in want_ku)
    assert want_ak
    cluster._open_scratch(con)
    cluster._post_authors(con)
    for built_by in ("graph", "keys"):
        cluster._key_users(con, cfg)
        assert not set(graph.DICTIONARIES) & _temp_tables(con), built_by
        assert _rows(con, "SELECT kt, kid, aid, target FROM _ku") == want_ku, built_by
        assert _rows(con, "SELECT kt, aid, kid FROM _ak") == want_ak, built_by
        assert _rows(con, "SELECT kt, aid, d FROM _kdeg") == _rows(
            con, f"SELECT kt, aid, count(*) FROM ({ku}) GROUP BY ALL"), built_by


def test_two_assets_whose_ids_clash_are_never_attached(tmp_path):
    """The cluster stage numbers assets by a 64-bit hash of (platform, account_id); two
    real accounts of the 10.8M-post world share one. An attached aid that two assets
    share names neither (its keys were both assets'), and other aids keep their name."""
    ws = Workspace(tmp_path / "w.duckdb")
    one, two = "100036401185672", "100031871185629"
    same = ws.con.execute(
        "SELECT hash('facebook', ?) = hash('facebook', ?)", [one, two]
    ).fetchall()[0][0]
    assert same, "this DuckDB hashes them apart: pick another clash"
    ws.con.executemany(
        "INSERT INTO accounts (platform, account_id, handle) VALUES ('facebook', ?, ?)",
        [(one, "op"), (two, "person"), ("42", "other")],
    )
    ws.con.execute(
        "CREATE TEMP TABLE _win AS SELECT DISTINCT hash(platform, account_id) AS aid "
        "FROM accounts"
    )
    cluster._names(ws.con, "_win")
    assert ws.con.execute("SELECT platform, account_id FROM _nm").fetchall() == [
        ("facebook", "42")
    ]


def test_keys_whose_hashes_clash_are_two_keys_in_the_key_tests(tmp_path):
    """The key tests number keys by a 64-bit hash of (key_type, key); two follow keys of
    the 10.8M-post world share one and must stay two keys there too."""
    ws = Workspace(tmp_path / "w.duckdb")
    one, two = "100036401185672", "100031871185629"
    ws.con.executemany(
        "INSERT INTO keys VALUES ('facebook', ?, 'follow', ?, NULL, NULL)",
        [("a", one), ("b", one), ("c", two), ("d", two)],
    )
    cluster._open_scratch(ws.con)
    cluster._post_authors(ws.con)
    cluster._key_users(ws.con, Config())
    kids = ws.con.execute(
        "SELECT kid, count(*) FROM _ku GROUP BY kid ORDER BY 2"
    ).fetchall()
    assert [n for _, n in kids] == [2, 2]
