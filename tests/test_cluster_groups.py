"""Cluster groups in the attach key test, the repeated-co-use rule of corroboration and
clusters found through content on another platform, on hand-built edges and keys (the
graph stage is not run: these rules read its tables)."""

from __future__ import annotations

import json
from itertools import combinations

from cibwatch import cluster
from cibwatch.config import Config
from cibwatch.workspace import Workspace


def signals(**families: int) -> str:
    """An edge's per-type signals: count co-uses against an expectation of 0.001."""
    return json.dumps(
        {k: {"count": c, "expected": 0.001, "weight": 1.0} for k, c in families.items()}
    )


def add_edges(con, pairs, weight: float, sig: str) -> None:
    for a, b in pairs:
        a, b = sorted((a, b))
        con.execute(
            "INSERT INTO edges VALUES ('x', ?, ?, ?, 1e-9, 1e-6, 5, ?)", [a, b, weight, sig]
        )


def add_keys(con, account: str, keys: list[str], platform: str = "x",
             key_type: str = "text") -> None:
    con.execute(
        "INSERT INTO keys SELECT ?, ?, ?, unnest(?::VARCHAR[]), "
        "TIMESTAMP '2024-03-01', NULL",
        [platform, account, key_type, keys],
    )


def members(con) -> dict[str, str]:
    return dict(con.execute("SELECT account_id, cluster_id FROM cluster_members").fetchall())


def split_operation(con) -> None:
    """Two dense clusters of one operation (A and B, 6 assets each) joined by two light
    edges; an outside asset 'fringe' uses 12 keys: 2 of A's, 2 of B's, 8 of its own. 300
    organic assets use 10 keys each from a large pool."""
    a = [f"a{i}" for i in range(6)]
    b = [f"b{i}" for i in range(6)]
    dense = signals(share=4, react=3)
    add_edges(con, combinations(a, 2), 10.0, dense)
    add_edges(con, combinations(b, 2), 10.0, dense)
    add_edges(con, [("a0", "b0"), ("a1", "b1")], 0.1, signals(share=3))
    for i, m in enumerate(a):
        add_keys(con, m, [f"ka{j}" for j in range(10)] + [f"own_a{i}"])
    for i, m in enumerate(b):
        add_keys(con, m, [f"kb{j}" for j in range(10)] + [f"own_b{i}"])
    add_keys(con, "fringe", ["ka0", "ka1", "kb0", "kb1"] + [f"own_f{j}" for j in range(8)])
    for i in range(300):
        add_keys(con, f"o{i}", [f"pool{(i * 7 + j * 13) % 900}" for j in range(10)])


def test_fringe_asset_attached_through_the_cluster_group(tmp_path):
    con = Workspace(tmp_path / "g.duckdb").con
    split_operation(con)
    cluster.find_clusters(con, Config())
    found = members(con)
    core = {f"a{i}" for i in range(6)} | {f"b{i}" for i in range(6)}
    assert len({found[m] for m in core}) == 2  # Leiden keeps A and B apart
    # 2 keys with either cluster is below attach_min_keys; 4 of 12 with the group is not
    assert set(found) == core | {"fringe"}
    assert found["fringe"] in {found["a0"], found["b0"]}
    (reason,) = con.execute(
        "SELECT reason FROM cluster_members WHERE account_id = 'fringe'"
    ).fetchall()[0]
    assert "4 of its 12 keys are keys of this cluster and the 1 clusters linked to it" in reason
    # no organic asset rides along
    assert not any(a.startswith("o") for a in found)


def test_group_needs_enough_edges_between_its_clusters(tmp_path):
    con = Workspace(tmp_path / "g.duckdb").con
    split_operation(con)
    cluster.find_clusters(con, Config().with_overrides(["cluster.attach_group_min_edges=3"]))
    assert "fringe" not in members(con)


def test_single_co_uses_do_not_corroborate_a_small_cluster(tmp_path):
    """Four assets whose every edge is one co-re-share, one co-comment and one follow of
    the same account (one viral moment): no cluster; the same with two co-uses each is."""
    con = Workspace(tmp_path / "g.duckdb").con
    four = [f"v{i}" for i in range(4)]
    add_edges(con, combinations(four, 2), 5.0, signals(text=4, share=1, reply=1, follow=1))
    cluster.find_clusters(con, Config())
    assert members(con) == {}
    cluster.find_clusters(con, Config().with_overrides(["cluster.min_family_count=1"]))
    assert set(members(con)) == set(four)
    con.execute("DELETE FROM edges")
    add_edges(con, combinations(four, 2), 5.0, signals(text=4, share=2, reply=2))
    cluster.find_clusters(con, Config())
    assert set(members(con)) == set(four)


def test_engagement_needs_repeats_in_any_cluster(tmp_path):
    """Ten assets posting the same texts and once engaging the same author per pair (a
    real campaign around a popular account): no cluster, whatever its size; engaging the
    same authors again and again is a pattern."""
    con = Workspace(tmp_path / "g.duckdb").con
    ten = [f"c{i}" for i in range(10)]
    add_edges(con, combinations(ten, 2), 5.0, signals(text=5, engage=1))
    cluster.find_clusters(con, Config())
    assert members(con) == {}
    con.execute("DELETE FROM edges")
    add_edges(con, combinations(ten, 2), 5.0, signals(text=5, engage=3))
    cluster.find_clusters(con, Config())
    assert set(members(con)) == set(ten)


def operation_across_platforms(con, channels: int) -> None:
    """A 6-asset x cluster posting 20 texts; `channels` youtube channels each post 4 of
    those texts and 2 of their own; 200 organic youtube channels post 10 texts each from
    a common pool, and one of them also 2 of the operation's texts among 10."""
    op = [f"x{i}" for i in range(6)]
    add_edges(con, combinations(op, 2), 10.0, signals(share=4, react=3))
    for m in op:
        add_keys(con, m, [f"t{j}" for j in range(20)])
    for i in range(channels):
        own = [f"y{i}a", f"y{i}b"]
        add_keys(con, f"yt{i}", [f"t{(i * 3 + j) % 20}" for j in range(4)] + own,
                 platform="youtube")
    for i in range(200):
        add_keys(con, f"o{i}", [f"pool{(i * 7 + j * 13) % 700}" for j in range(10)],
                 platform="youtube")
    add_keys(con, "fan", ["t0", "t1"] + [f"pool{j}" for j in range(8)], platform="youtube")


def test_platform_group_found_through_a_cluster_on_another_platform(tmp_path):
    con = Workspace(tmp_path / "g.duckdb").con
    operation_across_platforms(con, channels=4)
    cluster.find_clusters(con, Config())
    rows = con.execute(
        "SELECT account_id, cluster_id, reason FROM cluster_members WHERE platform = 'youtube'"
    ).fetchall()
    assert {a for a, _, _ in rows} == {f"yt{i}" for i in range(4)}
    (cid,) = {c for _, c, _ in rows}
    assert cid == cluster.cluster_id("youtube", [f"yt{i}" for i in range(4)])
    x_cluster = members(con)["x0"]
    for _, _, reason in rows:
        assert reason.startswith("attached: 4 of its 6 texts, links and media are those of "
                                 f"cluster {x_cluster} on another platform")
    (n, score, evidence), = con.execute(
        "SELECT n_assets, score, evidence FROM clusters WHERE cluster_id = ?", [cid]
    ).fetchall()
    assert n == 4 and 0 < score <= 1
    (item,) = json.loads(evidence)
    assert item["signal"] == "content of a cluster on another platform"
    assert x_cluster in item["detail"]
    # switched off, the channels stay unflagged
    cluster.find_clusters(con, Config().with_overrides(["cluster.cross_platform=false"]))
    assert not any(a.startswith("yt") for a in members(con))


def test_too_few_assets_on_the_other_platform_make_no_cluster(tmp_path):
    """Two channels posting the operation's texts are a pair; one alone may be someone
    quoting them, and stays unflagged (`cross_min_cluster_size` = 2)."""
    con = Workspace(tmp_path / "g.duckdb").con
    operation_across_platforms(con, channels=1)
    cluster.find_clusters(con, Config())
    assert set(members(con)) == {f"x{i}" for i in range(6)}
    con.execute("DELETE FROM keys")
    con.execute("DELETE FROM edges")
    operation_across_platforms(con, channels=2)
    cluster.find_clusters(con, Config())
    assert set(members(con)) == {f"x{i}" for i in range(6)} | {"yt0", "yt1"}
    cluster.find_clusters(con, Config().with_overrides(["cluster.cross_min_cluster_size=3"]))
    assert set(members(con)) == {f"x{i}" for i in range(6)}


def test_a_key_type_too_rare_to_rate_takes_the_pooled_rate(tmp_path):
    """The channels also share 2 of the operation's near-duplicate groups each; the only
    other YouTube use of a near-duplicate key is one stray channel's, on the operation's
    too. 1 of 1 is no chance rate: the type takes the rate pooled over the content types,
    and the channels are found; rated on its own (pi = 1) it hides them."""
    con = Workspace(tmp_path / "g.duckdb").con
    operation_across_platforms(con, channels=4)
    near = [f"n{j}" for j in range(4)]
    for m in [f"x{i}" for i in range(6)]:
        add_keys(con, m, near, key_type="neardup")
    for i in range(4):
        add_keys(con, f"yt{i}", near[i % 2 * 2:i % 2 * 2 + 2], "youtube", "neardup")
    add_keys(con, "stray", ["n0"], "youtube", "neardup")
    add_keys(con, "stray", [f"pool{j}" for j in range(9)], "youtube")
    cluster.find_clusters(con, Config())
    youtube = {a for a, c in members(con).items() if c.startswith("youtube-")}
    assert youtube == {f"yt{i}" for i in range(4)}
    per_type = Config().with_overrides(["cluster.cross_min_type_uses=0"])
    cluster.find_clusters(con, per_type)
    assert not any(c.startswith("youtube-") for c in members(con).values())


def test_a_cluster_found_through_another_platform_is_a_source_in_the_next_round(tmp_path):
    """Three TikTok accounts post the YouTube channels' own texts and none of the X
    cluster's: the YouTube cluster is found in the first round, the TikTok accounts only
    against it, in the second."""
    con = Workspace(tmp_path / "g.duckdb").con
    operation_across_platforms(con, channels=4)
    own = [f"y{i}{s}" for i in range(4) for s in "ab"]
    for i in range(3):
        add_keys(con, f"tt{i}", own[i:i + 6] + [f"tt{i}own{j}" for j in range(2)], "tiktok")
    for i in range(100):
        add_keys(con, f"ot{i}", [f"pool{(i * 11 + j * 17) % 700}" for j in range(10)],
                 platform="tiktok")
    cluster.find_clusters(con, Config().with_overrides(["cluster.cross_rounds=1"]))
    assert not any(a.startswith("tt") for a in members(con))
    cluster.find_clusters(con, Config())
    found = members(con)
    assert {a for a in found if a.startswith("tt")} == {"tt0", "tt1", "tt2"}
    assert len({found[f"tt{i}"] for i in range(3)}) == 1
    assert found["tt0"].startswith("tiktok-")
    assert not any(a.startswith("ot") for a in found)
