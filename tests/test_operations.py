"""Cross-platform linking, stable ids, history (hand-built world, real DuckDB file)."""

from __future__ import annotations

import json

import pytest
import test_operations_world as world

import cibwatch
from cibwatch.config import Config
from cibwatch.operations import history, link_operations
from cibwatch.operations.features import build_asset_keys, build_link_keys
from cibwatch.operations.linking import _write_members, score_links

OP_TABLES = (
    "operations", "operation_clusters", "operation_links", "operation_evidence",
    "operation_history", "operation_assets",
)


@pytest.fixture
def ws(tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as w:
        world.build(w)
        yield w


def groups(con) -> set[frozenset[str]]:
    rows = con.execute("SELECT operation_id, cluster_id FROM operation_clusters").fetchall()
    out: dict[str, set[str]] = {}
    for op, c in rows:
        out.setdefault(op, set()).add(c)
    return {frozenset(v) for v in out.values()}


def snapshot(con) -> dict[str, list]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in OP_TABLES}


def test_clusters_of_one_operation_share_one_id_across_platforms(ws):
    summary = link_operations(ws.con, Config())
    assert groups(ws.con) == {frozenset({"fa", "xa", "ya"}), frozenset({"fb", "xb"})}
    assert summary.operations == 2
    # Organic accounts posting the same viral texts are in no operation.
    flagged = ws.con.execute(
        "SELECT count(*) FROM cluster_members m JOIN operation_clusters USING (cluster_id) "
        "WHERE account_id LIKE 'org%'"
    ).fetchall()[0][0]
    assert flagged == 0


def test_every_link_and_operation_carries_evidence(ws):
    link_operations(ws.con, Config())
    links = ws.con.execute(
        "SELECT cluster_a, cluster_b, strength, evidence FROM operation_links"
    ).fetchall()
    assert {(a, b) for a, b, _, _ in links} >= {("fa", "xa"), ("fa", "ya"), ("fb", "xb")}
    for _, _, strength, evidence in links:
        ev = json.loads(evidence)
        assert strength >= ev["threshold"] and ev["families"]
        assert all(f["examples"] and f["strength"] > 0 for f in ev["families"])
    fa_ya = json.loads(next(e for a, b, _, e in links if (a, b) == ("fa", "ya")))
    xref = next(f for f in fa_ya["families"] if f["family"] == "xref")
    # The facebook cluster links to the youtube cluster's own channel.
    assert xref["examples"][0]["key"] == "youtube:truthchannel_asia"
    rows = ws.con.execute(
        "SELECT operation_id, list(signal), min(strength) FROM operation_evidence GROUP BY 1"
    ).fetchall()
    assert len(rows) == 2
    for _, signals, strength in rows:
        assert "text" in signals and "cross_platform_link" in signals and strength > 0
    confidence = ws.con.execute("SELECT min(confidence) FROM operations").fetchall()[0][0]
    assert confidence == pytest.approx(0.9)


def test_weak_and_common_evidence_does_not_join_operations(ws):
    cfg = Config()
    con = ws.con
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _op_members AS "
        "SELECT cluster_id AS node, platform, account_id FROM cluster_members"
    )
    platform_of = dict(con.execute("SELECT cluster_id, platform FROM clusters").fetchall())
    build_asset_keys(con, cfg.operations)
    links = {(ln.a, ln.b): ln for ln in score_links(con, cfg.operations, platform_of, {})}
    weak = links[("fa", "fb")]
    assert not weak.accepted
    families = {f["family"]: f for f in weak.families}
    # One rare coincidence is one key; the viral texts are shared with 30 organic
    # accounts and weigh almost nothing.
    assert weak.keys < cfg.operations.min_link_keys
    viral = [ex for ex in families["content"]["examples"] if ex["others"] > 0]
    assert viral and all(ex["weight"] < 0.3 for ex in viral)
    assert links[("fa", "xa")].accepted and links[("fa", "xa")].kind == "cross_platform"


def test_link_keys_give_what_scoring_reads_of_all_asset_keys(ws):
    """Linking reads `build_link_keys`' rows (no GROUP BY over every asset's keys): the
    clustered assets' keys, each key's users, the rows per family and every scored link
    are those `build_asset_keys`' table gives, duplicates and account keys included."""
    cfg = Config()
    con = ws.con
    # A saved signature's keys are scored too (their users are counted as well).
    known = {"saved": {"families": {"asset": {"facebook:fa0": 1}, "xref": {"youtube:x": 2}}}}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _op_members AS "
        "SELECT cluster_id AS node, platform, account_id FROM cluster_members"
    )
    platform_of = dict(con.execute("SELECT cluster_id, platform FROM clusters").fetchall())
    tables = ("_op_member_keys", "_op_totals", "_op_key_users")
    out = []
    for key_rows in (False, True):
        build = build_link_keys if key_rows else build_asset_keys
        build(con, cfg.operations, with_assets=True,
              detection_min_chars=cfg.signals.min_text_chars)
        links = score_links(con, cfg.operations, platform_of, known, key_rows=key_rows)
        out.append((
            [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables],
            sorted((ln.a, ln.b, ln.strength, ln.keys, json.dumps(ln.families))
                   for ln in links),
        ))
    # Assets repeating a key, and account-level keys, are both in this world.
    repeated = con.execute(
        "SELECT count(*) FROM (SELECT family, h FROM _op_rows GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()[0][0]
    families = {f for f, _ in out[0][0][1]}
    assert repeated > 0 and {"xref", "handle", "asset", "content"} <= families
    assert out[0][0][0] and out[0][1]
    assert out[1] == out[0]


def test_a_later_round_sums_the_previous_rounds_node_keys(ws):
    """With no asset in two clusters, a later round adds up the previous round's node
    keys (`merged_nodes`): the same `_op_node_keys` and scored links as regrouping every
    clustered asset's keys for the merged nodes."""
    cfg = Config()
    con = ws.con
    single = {c: [c] for c in ("fa", "fb", "xa", "xb", "ya")}
    merged = {"fa": ["fa", "xa", "ya"], "fb": ["fb"], "xb": ["xb"]}
    platform_of = {"fa": None, "fb": "facebook", "xb": "x"}
    build_link_keys(con, cfg.operations, detection_min_chars=cfg.signals.min_text_chars)
    out = []
    for sum_previous in (False, True):
        _write_members(con, single)
        score_links(con, cfg.operations, dict(con.execute(
            "SELECT cluster_id, platform FROM clusters").fetchall()), {}, key_rows=True)
        _write_members(con, merged)
        links = score_links(con, cfg.operations, platform_of, {}, reuse_key_users=True,
                            key_rows=True, merged_nodes=sum_previous)
        out.append((
            con.execute("SELECT * FROM _op_node_keys ORDER BY ALL").fetchall(),
            con.execute("SELECT typeof(n) FROM _op_node_keys LIMIT 1").fetchall(),
            sorted((ln.a, ln.b, ln.strength, ln.keys, json.dumps(ln.families))
                   for ln in links),
        ))
    nodes = {row[0] for row in out[0][0]}
    assert nodes == {"fa", "fb", "xb"} and out[0][2]
    # fa's keys come from three clusters: some key is held by assets of several.
    assert max(row[4] for row in out[0][0] if row[0] == "fa") > 1
    assert out[1] == out[0]


def test_same_platform_clusters_join_only_on_strong_evidence(ws):
    members = dict(
        (c, (p, [a for _, a in rows]))
        for c, p, rows in [
            ("fa1", "facebook", [(0, "fa0"), (0, "fa1")]),
            ("fa2", "facebook", [(0, "fa2"), (0, "fa3")]),
            ("xa", "x", [(0, f"xa{i}") for i in range(3)]),
            ("ya", "youtube", [(0, "ya0"), (0, "ya1")]),
            ("fb", "facebook", [(0, f"fb{i}") for i in range(4)]),
            ("xb", "x", [(0, f"xb{i}") for i in range(3)]),
        ]
    )
    world.write_clusters(ws, members)
    link_operations(ws.con, Config())
    assert frozenset({"fa1", "fa2", "xa", "ya"}) in groups(ws.con)
    kinds = {
        (a, b): json.loads(e)["kind"]
        for a, b, e in ws.con.execute(
            "SELECT cluster_a, cluster_b, evidence FROM operation_links").fetchall()
    }
    assert kinds[("fa1", "fa2")] == "same_platform"
    # With a bar no evidence can reach, the two offices stay apart (once no other
    # platform's cluster joins both).
    world.write_clusters(ws, {c: members[c] for c in ("fa1", "fa2", "fb", "xb")})
    link_operations(ws.con, Config())
    assert frozenset({"fa1", "fa2"}) in groups(ws.con)
    strict = Config().with_overrides(["operations.same_platform_min_strength=1.0"])
    link_operations(ws.con, strict)
    assert {frozenset({"fa1"}), frozenset({"fa2"})} <= groups(ws.con)


def test_rerun_on_unchanged_data_changes_nothing(ws):
    link_operations(ws.con, Config())
    first = snapshot(ws.con)
    link_operations(ws.con, Config())
    assert snapshot(ws.con) == first
    assert all(first[t] for t in OP_TABLES if t != "operation_links") and first["operation_links"]


def test_ids_stay_when_new_data_arrives_and_history_grows(ws):
    link_operations(ws.con, Config())
    before = {
        c: op for op, c in ws.con.execute(
            "SELECT operation_id, cluster_id FROM operation_clusters").fetchall()
    }
    # Three more weeks, two new assets per cluster; detection renames every cluster.
    world.build(ws, start_week=3, extra_accounts=2)
    members = ws.con.execute(
        "SELECT cluster_id, platform, list(account_id ORDER BY account_id) "
        "FROM cluster_members GROUP BY 1, 2"
    ).fetchall()
    world.write_clusters(ws, {"new-" + c: (p, ids) for c, p, ids in members})
    link_operations(ws.con, Config())
    after = {
        c[len("new-"):]: op for op, c in ws.con.execute(
            "SELECT operation_id, cluster_id FROM operation_clusters").fetchall()
    }
    assert after == before
    op_a = before["fa"]
    hist = ws.con.execute(
        "SELECT week, assets, new_assets FROM operation_history WHERE operation_id = ? "
        "ORDER BY week", [op_a]
    ).fetchall()
    assert len(hist) == 6
    assert hist[0][2] == 9 and hist[3][2] == 6  # 9 assets at first, 3 clusters x 2 new
    assert [h[1] for h in hist] == [9, 9, 9, 15, 15, 15]
    first_seen, last_seen = ws.con.execute(
        "SELECT first_seen, last_seen FROM operations WHERE operation_id = ?", [op_a]
    ).fetchall()[0]
    assert first_seen.isoformat().startswith("2024-01-01")
    assert last_seen.isoformat() > "2024-02-"


def test_quiet_assets_are_counted(ws):
    # fa3 stops posting after the first week.
    ws.con.execute(
        "DELETE FROM posts WHERE account_id = 'fa3' AND created_at >= TIMESTAMP '2024-01-08'"
    )
    link_operations(ws.con, Config())
    quiet = ws.con.execute(
        "SELECT list(quiet_assets ORDER BY week) FROM operation_history h "
        "JOIN operation_clusters c USING (operation_id) WHERE c.cluster_id = 'fa'"
    ).fetchall()[0][0]
    assert quiet == [0, 1, 1]


def test_no_clusters_no_operations(tmp_path):
    with cibwatch.open(tmp_path / "empty.duckdb") as w:
        summary = link_operations(w.con, Config())
        assert summary.operations == 0
        assert w.con.execute("SELECT count(*) FROM operations").fetchall()[0][0] == 0


def test_a_crowd_cluster_is_not_linked_by_popular_keys(ws):
    # Detection wrongly flags the organic x accounts (who all post the viral texts):
    # the operations post those texts too, but as often as chance says they would.
    members = dict(
        ws.con.execute(
            "SELECT cluster_id, (any_value(platform), list(account_id)) FROM cluster_members "
            "GROUP BY 1"
        ).fetchall()
    )
    for platform in ("x", "facebook"):
        members[f"crowd-{platform}"] = (platform, [
            r[0] for r in ws.con.execute(
                "SELECT account_id FROM accounts WHERE account_id LIKE 'org%' AND platform = ?",
                [platform],
            ).fetchall()
        ])
    world.write_clusters(ws, {c: (p, ids) for c, (p, ids) in members.items()})
    link_operations(ws.con, Config())
    # Everybody in the crowds posted all six viral texts, and so did every operation:
    # as many shared keys as chance gives, so no link.
    found = groups(ws.con)
    assert frozenset({"crowd-x"}) in found and frozenset({"crowd-facebook"}) in found
    assert frozenset({"fa", "xa", "ya"}) in found and frozenset({"fb", "xb"}) in found


def test_an_asset_that_moves_leaves_its_old_operation(ws):
    link_operations(ws.con, Config())
    ops = dict(ws.con.execute(
        "SELECT cluster_id, operation_id FROM operation_clusters").fetchall())
    # Detection now puts fa0 into cluster fb (of the other operation).
    ws.con.execute("UPDATE cluster_members SET cluster_id = 'fb' WHERE account_id = 'fa0'")
    history.record(ws.con, Config().operations)
    owners = ws.con.execute(
        "SELECT operation_id FROM operation_assets WHERE account_id = 'fa0'").fetchall()
    assert owners == [(ops["fb"],)]
    assert ws.con.execute(
        "SELECT count(*) FROM operation_assets WHERE operation_id = ?", [ops["fa"]]
    ).fetchall()[0][0] == 8


def test_an_unrelated_operation_gets_a_new_id(ws):
    link_operations(ws.con, Config())
    old_ids = {r[0] for r in ws.con.execute("SELECT operation_id FROM operations").fetchall()}
    # A cluster of assets no earlier operation had never inherits an id.
    world.write_clusters(ws, {"new": ("x", ["org0", "org2", "org4"])})
    link_operations(ws.con, Config())
    [(new_id,)] = ws.con.execute("SELECT operation_id FROM operations").fetchall()
    assert new_id not in old_ids and new_id.startswith("op-")


def test_a_small_overlap_does_not_carry_an_id(ws):
    link_operations(ws.con, Config())
    op_a = ws.con.execute(
        "SELECT operation_id FROM operation_clusters WHERE cluster_id = 'fa'"
    ).fetchall()[0][0]
    # One of operation A's nine assets among ten others: 1 < id_min_overlap * 9.
    world.write_clusters(ws, {"mix": ("facebook", ["fa0"] + [f"org{i}" for i in range(1, 20, 2)])})
    link_operations(ws.con, Config())
    [(new_id,)] = ws.con.execute("SELECT operation_id FROM operations").fetchall()
    assert new_id != op_a


def test_a_low_overlap_bar_carries_the_id(ws):
    link_operations(ws.con, Config())
    op_a = ws.con.execute(
        "SELECT operation_id FROM operation_clusters WHERE cluster_id = 'fa'"
    ).fetchall()[0][0]
    world.write_clusters(ws, {"mix": ("facebook", ["fa0"] + [f"org{i}" for i in range(1, 20, 2)])})
    link_operations(ws.con, Config().with_overrides(["operations.id_min_overlap=0.1"]))
    [(kept,)] = ws.con.execute("SELECT operation_id FROM operations").fetchall()
    assert kept == op_a


def test_chance_model_sums_equal_plain_fsums_to_the_last_bit():
    """`_expected` counts each distinct (users, weight) of a node's keys once, times its
    number of keys; its sums must still be exactly `math.fsum` over every key."""
    import math

    import numpy as np

    from cibwatch.operations.linking import _expected

    rng = np.random.default_rng(3)
    keys = {}
    profile = {}
    for node in ("a", "b", "c"):
        users = rng.integers(1, 40, 500).astype(float)
        weights = np.round(rng.random(500), 1) / 3
        keys[node] = (users, weights)
        pairs, times = np.unique(np.stack([users, weights]), axis=1, return_counts=True)
        profile[(node, "content")] = (500.0, pairs[0], pairs[1], times.astype(float))
    rows = [("a", "b", "content", 0, 2, [3, 9], [1, 2], [2, 1], [0.5, 1 / 3]),
            ("a", "c", "content", 0, 1, [17], [4], [5], [0.7]),
            ("b", "x", "content", 0, 1, [2], [1], [1], [1.0])]
    total = 20_000.0

    def plain(a, b, shared, own):
        users_b, w_b = keys[b]
        hit = 1.0 - np.exp(-500.0 * users_b / total)
        users, w = (np.asarray(v, float) for v in shared)
        full = 1.0 - np.exp(-500.0 * users / total)
        alone = 1.0 - np.exp(-500.0 * np.maximum(users - np.asarray(own, float), 0.0) / total)
        mean = math.fsum(w_b * hit) - math.fsum(w * (full - alone))
        var = math.fsum(w_b**2 * hit * (1 - hit)) - math.fsum(
            w**2 * (full * (1 - full) - alone * (1 - alone)))
        return max(mean, 0.0), max(var, 0.0)

    got = _expected(rows, profile, {"content": total})
    for row, result in zip(rows[:2], got, strict=False):
        _, b, _, _, _, users, n_a, n_b, w = row
        want = max(plain(row[0], b, (users, w), n_a), plain(b, row[0], (users, w), n_b))
        assert result == want and result[0] > 0
    assert got[2] == (0.0, 0.0)  # node x has no keys of this family


def test_batched_normalising_and_chance_model_give_the_same_tables(tmp_path, monkeypatch):
    """Texts are normalised, and chance terms computed, in bounded batches (memory at
    10M posts): batches of a few items must give the tables one batch gives."""
    from cibwatch.operations import features, linking

    snapshots = []
    for name, batch, terms in (("one", 10**6, 10**6), ("tiny", 3, 1)):
        monkeypatch.setattr(features, "_NORMALISE_BATCH", batch)
        monkeypatch.setattr(linking, "_EXPECTED_TERMS", terms)
        with cibwatch.open(tmp_path / f"{name}.duckdb") as w:
            world.build(w)
            n_strings = w.con.execute(
                "SELECT count(*) FROM (SELECT text FROM posts UNION SELECT title FROM posts)"
            ).fetchall()[0][0]
            link_operations(w.con, Config())
            snapshots.append(snapshot(w.con))
    assert n_strings > 3
    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["operation_links"]


def test_content_keys_read_from_detection_keys_are_the_keys_computed_afresh(ws):
    """A title-less post's whole-text key is detection's own `text` key, and a text
    without a sentence break is not normalised again: the keys must be the same as
    when every text is normalised and fingerprinted here."""
    from cibwatch.signals import extract_keys

    con = ws.con
    texts = [
        ("Ｆｕｌｌｗｉｄｔｈ ｓｔｏｐｓ ｓｐｌｉｔ ｔｈｉｓ ｈｅａｄｌｉｎｅ．"
         "Second part of the same post is long", None),
        ("一个没有空格的中文句子也足够长可以成为一个内容键了吧。"
         "第二句同样足够长可以成为键的", None),
        ("no break at all in this long enough text https://example.com/a.b?c=d", None),
        ("line one is long enough to be its own key\nline two is long enough as well", None),
        ("Subscribe for more videos on this channel today", "A title long enough to be a key"),
        ("short", "Title. With a break inside it that is long enough"),
        ("ⅠⅡⅢ roman numerals and ligature ﬁne words make this long enough", None),
    ]
    con.executemany(
        "INSERT INTO posts (platform, post_id, account_id, created_at, text, title) "
        "VALUES ('facebook', ?, ?, TIMESTAMP '2024-01-01 10:00:00', ?, ?)",
        [(f"odd{i}-{a}", a, t, h) for i, (t, h) in enumerate(texts) for a in ("fa0", "org1")],
    )
    cfg = Config()
    extract_keys(con, cfg)
    tables = []
    for detection_min_chars in (None, cfg.signals.min_text_chars):
        build_asset_keys(con, cfg.operations, detection_min_chars=detection_min_chars)
        tables.append(con.execute("SELECT * FROM _op_keys ORDER BY ALL").fetchall())
    assert tables[0] == tables[1]
    content = [r for r in tables[0] if r[2] == "content"]
    assert len({r[3] for r in content if r[4] and r[4].startswith("odd0-")}) == 3


def test_may_break_lists_every_character_whose_nfkc_form_holds_a_break():
    """Texts are normalised only when `MAY_BREAK` (matched by DuckDB) says their NFKC
    form may hold a sentence break: it must match exactly the characters whose NFKC
    form (Arrow's, as the pipeline computes it) holds one, over every code point."""
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from cibwatch.operations.features import _BREAKS, MAY_BREAK

    points = np.concatenate([np.arange(0, 0xD800), np.arange(0xE000, 0x110000)])
    chars = pa.array(list(points.astype("<u4").tobytes().decode("utf-32-le")), pa.string())
    breaks = pc.match_substring_regex(pc.utf8_normalize(chars, form="NFKC"), _BREAKS)
    con = duckdb.connect()
    texts = pa.table({"s": pa.concat_arrays([chars, pa.array(
        ["no break here", "ｆｕｌｌ．ｓｔｏｐ", "tab\tonly", "㏂ time", ""])])})
    con.register("texts", texts)
    found = con.sql(f"SELECT regexp_matches(s, '{MAY_BREAK}') AS m FROM texts").to_arrow_table()
    found = found.column("m").combine_chunks()
    assert found.slice(0, len(chars)).equals(breaks)
    assert 50 <= pc.sum(breaks).as_py() < 100  # ".", "．", "…", "⒈", "㏂", ...
    assert found.slice(len(chars)).to_pylist() == [False, True, False, True, False]
