"""The synthetic world has the properties the issue asks for, measured on the written files."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cibwatch.synth import generate

PLATFORMS = {"facebook", "instagram", "x", "youtube", "reddit", "tiktok"}
PLUS8_ORGANIC = ("Taipei", "Kaohsiung", "Taichung", "Hong Kong", "Kowloon", "Singapore",
                 "Manila", "Cebu", "Davao", "Perth", "Fremantle", "Kuala Lumpur", "Penang")


def _con(world: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("accounts", "posts", "follows", "labels", "hard_negatives"):
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{world.as_posix()}/{name}.csv', "
            "all_varchar = true)"
        )
    con.execute("CREATE TABLE p AS SELECT *, created_at::TIMESTAMP AS ts FROM posts")
    return con


@pytest.fixture(scope="module")
def world(small_world: Path) -> Path:
    return small_world


@pytest.fixture(scope="module")
def con(world):
    c = _con(world)
    yield c
    c.close()


@pytest.fixture(scope="module")
def truth(world) -> dict:
    return json.loads((world / "truth.json").read_text(encoding="utf-8"))


def q(con, sql: str):
    return con.execute(sql).fetchall()


def test_files_and_label_columns(world):
    for name in ("accounts.csv", "posts.csv", "follows.csv", "labels.csv",
                 "hard_negatives.csv", "truth.json"):
        assert (world / name).is_file(), name
    with (world / "labels.csv").open() as fh:
        assert next(csv.reader(fh)) == ["platform", "account_id", "operation_id", "role"]
    with (world / "hard_negatives.csv").open() as fh:
        assert next(csv.reader(fh)) == ["platform", "account_id", "group"]


def test_six_platforms_sixty_days_and_asset_types(con):
    plats = {r[0] for r in q(con, "SELECT DISTINCT platform FROM posts")}
    assert plats >= PLATFORMS
    span = q(con, "SELECT date_diff('day', min(ts), max(ts)) FROM p")[0][0]
    assert span >= 60
    types = set(q(con, "SELECT DISTINCT platform, asset_type FROM accounts"))
    for t in (("facebook", "account"), ("facebook", "page"), ("facebook", "group"),
              ("youtube", "channel")):
        assert t in types
    kinds = {r[0] for r in q(con, "SELECT DISTINCT kind FROM posts")}
    assert kinds == {"post", "comment", "reply", "share", "reaction"}


def test_every_operation_and_negative_group_present_at_small_scale(con, truth):
    ops = dict(q(con, "SELECT operation_id, count(*) FROM labels WHERE role = 'operator' "
                      "GROUP BY 1"))
    assert set(ops) == {"spamouflage", "persona", "botnet", "small_a", "small_b"}
    assert 8 <= ops["small_a"] <= 15 and 8 <= ops["small_b"] <= 15
    assert truth["operations"]["small_a"]["utc_offset_hours"] == 3.5
    fakes = q(con, "SELECT count(*) FROM labels WHERE role = 'fake_follower'")[0][0]
    assert fakes >= 20
    groups = {r[0] for r in q(con, "SELECT DISTINCT \"group\" FROM hard_negatives")}
    assert groups == {"viral", "activist", "chain_message", "hyperactive"}
    # Labels and negatives name real accounts, and never the same one.
    assert q(con, "SELECT count(*) FROM labels l ANTI JOIN accounts a "
                  "USING (platform, account_id)")[0][0] == 0
    assert q(con, "SELECT count(*) FROM hard_negatives n JOIN labels l "
                  "USING (platform, account_id)")[0][0] == 0
    # Operators are a small minority of the accounts that post.
    share = q(con, "SELECT avg((l.account_id IS NOT NULL)::INT) FROM "
                   "(SELECT DISTINCT platform, account_id FROM posts) a "
                   "LEFT JOIN labels l USING (platform, account_id)")[0][0]
    assert share < 0.35


def test_truth_lists_what_evaluation_needs(truth):
    for name, op in truth["operations"].items():
        for key in ("utc_offset_hours", "shift_pattern", "schedule", "breaks",
                    "echo_chamber_ratio", "inauthentic_follower_share", "assets",
                    "platforms", "narratives", "clusters"):
            assert key in op, (name, key)
        assert all(n["label"] and n["keywords"] for n in op["narratives"])
    spam = truth["operations"]["spamouflage"]
    assert spam["utc_offset_hours"] == 8.0 and spam["shift_pattern"] is True
    assert len(spam["clusters"]) >= 3
    assert len({c["shift_variant"] for c in spam["clusters"]}) == len(spam["clusters"])
    assert {b["name"] for b in spam["breaks"]} == {"lunch", "supper"}
    assert truth["operations"]["botnet"]["schedule"] == "automated"
    assert truth["operations"]["persona"]["utc_offset_hours"] == 3.0
    assert set(spam["platforms"]) == PLATFORMS
    assert spam["assets"]["facebook"]["account"] > sum(
        v for p, t in spam["assets"].items() if p != "facebook" for v in t.values()
    )


def _local_hours(con, op: str, offset: float, kinds="('post')") -> list[tuple]:
    return q(con, f"""
        SELECT ts + INTERVAL ({int(offset * 60)}) MINUTE AS lt FROM p
        JOIN labels l USING (platform, account_id)
        WHERE l.operation_id = '{op}' AND kind IN {kinds}""")


def test_office_shift_profile_versus_organic_plus8(con, truth):
    """Spamouflage posts in Beijing office hours: none in the lunch break, almost none
    at weekends; organic people at UTC+8 post through lunch and at weekends."""
    spam = q(con, """
        WITH x AS (SELECT ts + INTERVAL 8 HOUR AS lt FROM p JOIN labels l
                   USING (platform, account_id)
                   WHERE operation_id = 'spamouflage' AND role = 'operator' AND kind = 'post')
        SELECT count(*),
               avg((hour(lt) * 60 + minute(lt) BETWEEN 12 * 60 + 35 AND 12 * 60 + 55)::INT),
               avg((isodow(lt) >= 6)::INT),
               avg((hour(lt) BETWEEN 1 AND 6)::INT)
        FROM x""")[0]
    n, lunch, weekend, night = spam
    assert n > 100
    assert lunch < 0.005 and weekend < 0.06 and night == 0
    organic = q(con, f"""
        WITH x AS (SELECT ts + INTERVAL 8 HOUR AS lt FROM p
                   JOIN accounts a USING (platform, account_id)
                   WHERE a.claimed_location IN {PLUS8_ORGANIC} AND kind = 'post')
        SELECT count(*), avg((hour(lt) = 12)::INT), avg((isodow(lt) >= 6)::INT) FROM x""")[0]
    assert organic[0] > 50
    assert organic[1] > 0.01 and organic[2] > 0.2
    # Quiet public holidays: Labour Day week (1-3 May) is almost empty for the operation.
    hol = q(con, """SELECT count(*) FROM p JOIN labels l USING (platform, account_id)
                    WHERE operation_id = 'spamouflage' AND kind = 'post'
                    AND (ts + INTERVAL 8 HOUR)::DATE BETWEEN DATE '2024-05-01'
                    AND DATE '2024-05-03'""")[0][0]
    assert hol <= 0.01 * n


def test_botnet_runs_round_the_clock_and_reshares_within_seconds(con):
    from scipy.stats import chisquare

    def hours(op: str) -> list[int]:
        got = dict(q(con, f"""SELECT hour(ts), count(*) FROM p JOIN labels l
                               USING (platform, account_id) WHERE operation_id = '{op}'
                               AND kind = 'post' GROUP BY 1"""))
        return [got.get(h, 0) for h in range(24)]

    # Round the clock: its own posts are consistent with a uniform hour of day, which
    # an office shift is not by far.
    assert sum(hours("botnet")) >= 60
    assert chisquare(hours("botnet")).pvalue > 1e-3
    assert chisquare(hours("spamouflage")).pvalue < 1e-9
    delay = q(con, """SELECT quantile_cont(date_diff('second', s.ts, r.ts), 0.9)
                      FROM p r JOIN p s ON r.platform = s.platform AND r.shared_id = s.post_id
                      JOIN labels l ON l.platform = r.platform AND l.account_id = r.account_id
                      WHERE l.operation_id = 'botnet' AND r.kind = 'share'
                      AND s.account_id IN (SELECT account_id FROM labels
                                           WHERE operation_id = 'botnet')""")[0][0]
    assert delay <= 45


def test_echo_chamber_ratios_match_truth(con, truth):
    rows = q(con, """
        SELECT lt.operation_id,
               count(*) AS received,
               sum((le.operation_id = lt.operation_id AND le.role = 'operator')::INT) AS own
        FROM p e
        JOIN p t ON t.platform = e.platform AND t.post_id = coalesce(e.parent_id, e.shared_id)
        JOIN labels lt ON lt.platform = t.platform AND lt.account_id = t.account_id
                      AND lt.role = 'operator'
        LEFT JOIN labels le ON le.platform = e.platform AND le.account_id = e.account_id
        WHERE e.kind IN ('comment', 'reply', 'share', 'reaction')
        GROUP BY 1""")
    measured = {op: own / received for op, received, own in rows}
    for op, ratio in measured.items():
        assert ratio == pytest.approx(truth["operations"][op]["echo_chamber_ratio"])
    assert measured["spamouflage"] > 0.8
    assert measured["botnet"] > 0.9
    assert measured["persona"] < 0.7


def test_inauthentic_follower_share_matches_truth(con, truth):
    rows = q(con, """
        WITH f AS (SELECT DISTINCT lt.operation_id, f.platform, f.follower_id
                   FROM follows f JOIN labels lt ON lt.platform = f.platform
                   AND lt.account_id = f.followee_id AND lt.role = 'operator')
        SELECT f.operation_id, avg((l.account_id IS NOT NULL)::INT) FROM f
        LEFT JOIN (SELECT DISTINCT platform, account_id FROM labels) l
          ON l.platform = f.platform AND l.account_id = f.follower_id
        GROUP BY 1""")
    for op, share in rows:
        assert share == pytest.approx(truth["operations"][op]["inauthentic_follower_share"])
    assert dict(rows)["spamouflage"] > 0.5


def test_fake_followers_created_and_following_in_bursts_and_silent(con):
    made = [r[0] for r in q(con, """SELECT a.created_at::TIMESTAMP FROM accounts a
                                   JOIN labels l USING (platform, account_id)
                                   WHERE role = 'fake_follower' ORDER BY 1""")]
    # Bursts: every fake follower was made within 2 hours of at least 5 others.
    dense = sum(
        1 for t in made
        if sum(abs((u - t).total_seconds()) <= 7200 for u in made) >= 6
    )
    assert dense == len(made)
    posting = q(con, """SELECT count(DISTINCT account_id) FROM posts
                        JOIN labels l USING (platform, account_id)
                        WHERE role = 'fake_follower'""")[0][0]
    assert posting <= 0.05 * len(made) + 1
    hours = q(con, """SELECT count(DISTINCT date_trunc('hour', f.created_at::TIMESTAMP))
                      FROM follows f JOIN labels l ON l.platform = f.platform
                      AND l.account_id = f.follower_id WHERE role = 'fake_follower'""")[0][0]
    assert hours <= 4 * 4  # four bursts of at most ~3 hours each


def test_batch_creation_templated_handles_and_reused_avatars(con):
    rows = q(con, """SELECT count(*), count(DISTINCT avatar_hash)
                     FROM accounts JOIN labels l USING (platform, account_id)
                     WHERE operation_id = 'spamouflage' AND role = 'operator'
                     AND asset_type = 'account' AND platform = 'facebook'""")[0]
    assert rows[1] < 0.7 * rows[0]
    handles = [r[0] for r in q(con, """SELECT handle FROM accounts
                                     JOIN labels l USING (platform, account_id)
                                     WHERE operation_id = 'spamouflage'
                                     AND role = 'operator' AND asset_type = 'account'""")]
    templates = [r"^[a-z]+\d{4,}$", r"^[a-z]+_[a-z]+\d{3,}$", r"^[a-z]+\d{2}[a-z]{2}\d*$",
                 r"^[a-z]+\.[a-z]+\.\d{4,}$"]
    matched = sum(any(re.match(t, h) for t in templates) for h in handles)
    assert matched >= 0.95 * len(handles)
    # Batch creation: each account was made within 20 minutes of two others.
    lonely = q(con, """
        WITH o AS (SELECT platform, account_id, created_at::TIMESTAMP AS c FROM accounts
                   JOIN labels l USING (platform, account_id)
                   WHERE operation_id = 'spamouflage' AND role = 'operator'
                   AND asset_type = 'account' AND platform = 'facebook')
        SELECT count(*) FROM (SELECT a.account_id FROM o a JOIN o b
               ON abs(date_diff('second', a.c, b.c)) <= 1200 AND a.account_id <> b.account_id
               GROUP BY a.account_id HAVING count(*) < 2)""")[0][0]
    assert lonely == 0
    organic = q(con, """SELECT count(*), count(DISTINCT avatar_hash) FROM accounts
                        ANTI JOIN labels USING (platform, account_id)
                        WHERE avatar_hash IS NOT NULL AND avatar_hash <> 'f0f0f0f0f0f0f0f0'
                        """)[0]
    assert organic[1] == organic[0]
    # Organic people are not created in batches: no two share a creation minute.
    same_minute = q(con, """SELECT max(n) FROM (SELECT count(*) AS n FROM accounts
                            ANTI JOIN labels USING (platform, account_id)
                            GROUP BY platform, left(created_at, 16))""")[0][0]
    assert same_minute <= 2


def test_dormant_operators_have_at_most_three_posts(con, truth):
    counts = q(con, """SELECT count(p.post_id) FROM labels l
                       LEFT JOIN posts p USING (platform, account_id)
                       WHERE l.operation_id = 'spamouflage' AND role = 'operator'
                       GROUP BY l.platform, l.account_id HAVING count(p.post_id) <= 3""")
    assert len(counts) >= truth["operations"]["spamouflage"]["dormant_operators"] * 0.5
    assert len(counts) >= 3


def test_hostile_payloads_in_operation_posts(con):
    n = q(con, """SELECT count(*) FROM posts JOIN labels USING (platform, account_id)
                  WHERE text LIKE '%<script>%' OR text LIKE '%onerror=%'
                  OR text LIKE '=HYPERLINK(%' OR text LIKE '+cmd%' OR text LIKE '@SUM(%'""")
    assert n[0][0] > 0


def test_naive_signals_hit_organic_people(con):
    """Organic people re-share the same post within 60 s and post the same URL: a
    "same URL / same re-share within 60 s" rule must flag many of them."""
    organic_pairs = q(con, """
        WITH s AS (SELECT platform, account_id, shared_id, ts FROM p
                   ANTI JOIN labels USING (platform, account_id)
                   WHERE kind = 'share')
        SELECT count(DISTINCT a.account_id) FROM s a JOIN s b
          ON a.platform = b.platform AND a.shared_id = b.shared_id
         AND a.account_id <> b.account_id
         AND abs(date_diff('second', a.ts, b.ts)) <= 60""")[0][0]
    assert organic_pairs >= 40
    url_people = q(con, """
        SELECT count(*) FROM (SELECT u FROM (SELECT unnest(string_split(urls, ' ')) u,
                              account_id FROM posts ANTI JOIN labels
                              USING (platform, account_id) WHERE urls IS NOT NULL)
                              GROUP BY u HAVING count(DISTINCT account_id) >= 5)""")[0][0]
    assert url_people >= 3


def test_plus8_is_crowded_with_organic_people(con):
    n = q(con, f"SELECT count(*) FROM accounts WHERE claimed_location IN {PLUS8_ORGANIC}")
    assert n[0][0] >= 20


def test_ids_are_strings_with_leading_zeros(con):
    assert q(con, "SELECT count(*) FROM accounts WHERE account_id LIKE '0%'")[0][0] > 0
    assert q(con, "SELECT count(*) FROM posts WHERE post_id LIKE '0%'")[0][0] > 0
    dup = q(con, "SELECT count(*) - count(DISTINCT (platform, post_id)) FROM posts")[0][0]
    assert dup == 0


def test_deterministic_for_a_seed(tmp_path, world):
    again = tmp_path / "again"
    generate(again, scale=0.05, seed=3)
    for name in ("accounts.csv", "posts.csv", "follows.csv", "labels.csv",
                 "hard_negatives.csv"):
        assert (again / name).read_bytes() == (world / name).read_bytes(), name
    other = tmp_path / "other"
    generate(other, scale=0.05, seed=4)
    assert (other / "posts.csv").read_bytes() != (world / "posts.csv").read_bytes()


def test_size_grows_linearly_with_scale(tmp_path):
    sizes = {}
    for s in (0.2, 0.4):
        summary = generate(tmp_path / str(s), scale=s, seed=1)
        sizes[s] = summary["posts"]
    assert sizes[0.4] / sizes[0.2] == pytest.approx(2.0, rel=0.12)


def test_persona_day_and_night_shift_at_utc_plus_3(con):
    rows = q(con, """
        WITH x AS (SELECT ts + INTERVAL 3 HOUR AS lt FROM p JOIN labels l
                   USING (platform, account_id)
                   WHERE operation_id = 'persona' AND kind = 'post')  -- hashtag games too
        SELECT count(*), avg((hour(lt) BETWEEN 22 AND 23 OR hour(lt) BETWEEN 0 AND 4)::INT),
               sum((hour(lt) BETWEEN 18 AND 20)::INT) FROM x""")[0]
    n, night, change = rows
    assert n > 50 and night > 0.2 and change == 0


def test_nothing_happens_before_an_account_exists(con):
    early = q(con, """SELECT count(*) FROM p JOIN accounts a USING (platform, account_id)
                      WHERE p.ts < a.created_at::TIMESTAMP""")[0][0]
    assert early == 0
    early = q(con, """SELECT count(*) FROM follows f JOIN accounts a
                      ON a.platform = f.platform AND a.account_id = f.follower_id
                      WHERE f.created_at::TIMESTAMP < a.created_at::TIMESTAMP""")[0][0]
    assert early == 0
    replies = q(con, """SELECT count(*) FROM p e JOIN p t ON t.platform = e.platform
                        AND t.post_id = coalesce(e.parent_id, e.shared_id)
                        WHERE e.ts < t.ts""")[0][0]
    assert replies == 0


def test_narrative_keywords_occur_in_the_operations_posts(con, truth):
    for name, op in truth["operations"].items():
        for narrative in op["narratives"]:
            for word in narrative["keywords"]:
                n = q(con, f"""SELECT count(*) FROM posts JOIN labels l
                               USING (platform, account_id)
                               WHERE l.operation_id = '{name}' AND role = 'operator'
                               AND lower(coalesce(text, '') || ' ' || coalesce(title, ''))
                                   LIKE '%{word}%'""")[0][0]
                assert n > 0, (name, narrative["label"], word)


def test_cluster_tallies_add_up_to_the_operation_tally(truth):
    for name, op in truth["operations"].items():
        total: dict = {}
        for cluster in op["clusters"]:
            for platform, types in cluster["tally"].items():
                for kind, n in types.items():
                    total.setdefault(platform, {}).setdefault(kind, 0)
                    total[platform][kind] += n
        assert total == op["assets"], name
    offices = truth["operations"]["spamouflage"]["clusters"]
    assert all(c["utc_offset_hours"] == 8.0 for c in offices)
    lunches = {next(b["start"] for b in c["breaks"] if b["name"] == "lunch") for c in offices}
    assert len(lunches) >= 3  # the offices keep different lunch hours


def test_organic_pages_and_groups_have_organic_followers_and_posts(con):
    rows = q(con, """
        SELECT a.asset_type, count(DISTINCT a.account_id),
               count(DISTINCT f.follower_id) FILTER (WHERE lf.account_id IS NULL)
        FROM accounts a ANTI JOIN labels l USING (platform, account_id)
        LEFT JOIN follows f ON f.platform = a.platform AND f.followee_id = a.account_id
        LEFT JOIN labels lf ON lf.platform = f.platform AND lf.account_id = f.follower_id
        WHERE a.asset_type IN ('page', 'group', 'channel')
        GROUP BY 1""")
    by_type = {t: (n, followers) for t, n, followers in rows}
    for t in ("page", "group", "channel"):
        n, followers = by_type[t]
        assert n >= 3 and followers >= 5 * n, t
    posting = q(con, """SELECT count(DISTINCT account_id) FROM posts
                        JOIN accounts a USING (platform, account_id)
                        ANTI JOIN labels USING (platform, account_id)
                        WHERE a.asset_type = 'page'""")[0][0]
    assert posting >= by_type["page"][0] // 2


def test_organic_texts_are_unique_apart_from_the_hard_negatives(con):
    """Two unrelated people never write the same text by accident; the only organic
    copies are the chain messages, activist slogans and viral headlines."""
    dup = q(con, """
        SELECT count(*) FROM (
          SELECT text FROM posts ANTI JOIN labels USING (platform, account_id)
          ANTI JOIN hard_negatives USING (platform, account_id)
          WHERE length(text) >= 25 AND kind <> 'share'
          GROUP BY text HAVING count(DISTINCT account_id) > 1)""")[0][0]
    assert dup == 0


def test_truth_clusters_cover_every_operator_once(world, con, truth):
    con.execute(f"""CREATE OR REPLACE TABLE tc AS SELECT * FROM
                    read_csv('{world.as_posix()}/truth_clusters.csv', all_varchar = true)""")
    missing = q(con, """SELECT count(*) FROM labels l ANTI JOIN tc USING (platform, account_id)
                        WHERE role = 'operator'""")[0][0]
    assert missing == 0
    assert q(con, "SELECT count(*) - count(DISTINCT (platform, account_id)) FROM tc")[0][0] == 0
    sizes = dict(q(con, "SELECT cluster, count(*) FROM tc GROUP BY 1"))
    for op in truth["operations"].values():
        for cluster in op["clusters"]:
            assert sizes[cluster["cluster"]] == cluster["assets"]


def test_hard_negative_groups_behave_as_described(con, truth):
    # Activists: accounts older than three years, several places, slogans over days.
    act = q(con, """
        SELECT min(date_diff('day', a.created_at::TIMESTAMP, TIMESTAMP '2024-03-11')),
               count(DISTINCT a.claimed_location),
               date_diff('hour', min(p.ts), max(p.ts))
        FROM hard_negatives n JOIN accounts a USING (platform, account_id)
        JOIN p USING (platform, account_id)
        WHERE n."group" = 'activist' AND p.hashtags LIKE '%SaveTheMekong%'""")[0]
    assert act[0] >= 3 * 365 and act[1] >= 4 and act[2] >= 4 * 24
    # Chain messages: verbatim copies by many people, spread over days.
    for chain in truth["hard_negatives"]["chain_message"]:
        copies = con.execute(
            "SELECT count(DISTINCT account_id), date_diff('hour', min(ts), max(ts)) "
            "FROM p WHERE text = ?", [chain["text"]]).fetchall()[0]
        assert copies[0] == chain["size"] and copies[1] >= 48
    # Hyperactive: far more rows per day than any ordinary person.
    rates = q(con, """SELECT n."group" IS NOT NULL, max(c) FROM (
                        SELECT platform, account_id, count(*) / 70.0 AS c FROM posts
                        ANTI JOIN labels USING (platform, account_id)
                        JOIN accounts a USING (platform, account_id)
                        WHERE a.asset_type = 'account' GROUP BY ALL) x
                      LEFT JOIN hard_negatives n USING (platform, account_id)
                      WHERE n."group" IS NULL OR n."group" = 'hyperactive'
                      GROUP BY 1""")
    rate = dict(rates)
    assert rate[True] >= 1.0


def test_same_video_links_on_several_platforms_and_bought_page_followers(con):
    spread = q(con, """
        SELECT max(n) FROM (
          SELECT u, count(DISTINCT platform) AS n FROM (
            SELECT platform, unnest(string_split(urls, ' ')) AS u FROM posts
            JOIN labels l USING (platform, account_id)
            WHERE operation_id = 'spamouflage' AND role = 'operator' AND urls IS NOT NULL)
          WHERE u LIKE 'https://www.youtube.com/watch?v=%' GROUP BY u)""")[0][0]
    assert spread >= 3
    followed = q(con, """
        SELECT DISTINCT a.asset_type, lt.operation_id FROM follows f
        JOIN labels lf ON lf.platform = f.platform AND lf.account_id = f.follower_id
        JOIN accounts a ON a.platform = f.platform AND a.account_id = f.followee_id
        LEFT JOIN labels lt ON lt.platform = f.platform AND lt.account_id = f.followee_id
        WHERE lf.role = 'fake_follower'""")
    assert followed == [("page", "spamouflage")]


def test_each_office_keeps_its_own_lunch_break(world, con, truth):
    con.execute(f"""CREATE OR REPLACE TABLE tc2 AS SELECT * FROM
                    read_csv('{world.as_posix()}/truth_clusters.csv', all_varchar = true)""")
    minutes = q(con, """SELECT c.cluster, (hour(p.ts + INTERVAL 8 HOUR) * 60
                                  + minute(p.ts + INTERVAL 8 HOUR)) AS m
                        FROM p JOIN tc2 c USING (platform, account_id)
                        WHERE c.operation_id = 'spamouflage' AND p.kind = 'post'""")
    by_cluster: dict[str, list[int]] = {}
    for cluster, m in minutes:
        by_cluster.setdefault(cluster, []).append(m)

    def hm(text: str) -> int:
        h, m = text.split(":")
        return int(h) * 60 + int(m)

    for office in truth["operations"]["spamouflage"]["clusters"]:
        lunch = next(b for b in office["breaks"] if b["name"] == "lunch")
        # Inside the break, after the last drop of the morning has been posted (<= 40 min).
        lo, hi = hm(lunch["start"]) + 40, hm(lunch["end"]) - 5
        own = by_cluster[office["cluster"]]
        assert sum(lo <= m <= hi for m in own) <= 0.01 * len(own), office["cluster"]
        others = [m for c, ms in by_cluster.items() if c != office["cluster"] for m in ms]
        assert sum(lo <= m <= hi for m in others) > 0, office["cluster"]


def _quarters(spans: list[dict]) -> set[int]:
    """Local quarter hours of the day covered by {"start", "end"} spans (wrapping)."""
    out = set()
    for s in spans:
        a = int(s["start"][:2]) * 4 + int(s["start"][3:]) // 15
        b = int(s["end"][:2]) * 4 + int(s["end"][3:]) // 15
        out |= {q % 96 for q in range(a, b if b > a else b + 96)}
    return out


def test_operation_breaks_are_the_hours_most_offices_break(truth):
    """docs/synth.md: an operation-level break is a quarter hour in which at least half
    of the offices (truth `clusters`) are on a break; recomputed from the clusters."""
    for name, op in truth["operations"].items():
        offices = [c for c in op["clusters"] if c["breaks"]]
        if not offices:
            assert op["breaks"] == [], name
            continue
        votes = {q: sum(q in _quarters(c["breaks"]) for c in offices) for q in range(96)}
        expected = {q for q, v in votes.items() if 2 * v >= len(offices)}
        assert _quarters(op["breaks"]) == expected, name
        worked = {q: sum(q in _quarters(c["work_hours"]) for c in offices) for q in range(96)}
        assert _quarters(op["work_hours"]) == {q for q, v in worked.items()
                                               if 2 * v > len(offices)}, name
    spam = truth["operations"]["spamouflage"]
    supper = next(b for b in spam["breaks"] if b["name"] == "supper")
    # Variants A-D sup 17:30, 17:00, 18:00 and 17:00: half of them are off from 17:00.
    assert (supper["start"], supper["end"]) == ("17:00", "19:00")


def test_office_blocks_work_up_to_their_breaks_with_bursts_on_top():
    """Staff post until a scheduled break (a working level over the whole block), with the
    bursts on top: the hour before each break keeps at least half of its block's mean
    pace (a burst alone: 0.1-0.5), the hour around the peak is still busier by a third or
    more (a flat block: no more), and nothing falls in a break."""
    from cibwatch.synth.rhythms import (
        DAY,
        HOUR,
        OFFICE_VARIANTS,
        PERSONA_SHIFT,
        SMALL_OFFICE_SHIFT,
        Calendar,
        office_times,
    )

    cal = Calendar(start=1_710_115_200, days=70)  # Monday 2024-03-11, the world's start
    rng = np.random.default_rng(0)
    for shift in (*OFFICE_VARIANTS, PERSONA_SHIFT, SMALL_OFFICE_SHIFT):
        hour = ((office_times(rng, cal, shift, 0.0, 60_000) - cal.start) % DAY) / HOUR
        for block in shift.blocks:
            start, end = block.start % 24, block.start % 24 + block.end - block.start
            inside = (hour - start) % 24 < end - start
            mean = inside.sum() / (end - start)
            last = ((hour - (end - 1)) % 24 < 1).sum()
            peak = ((hour - (block.peak - 0.5)) % 24 < 1).sum()
            assert last >= 0.5 * mean, (shift.name, block)
            assert peak >= 1.3 * last, (shift.name, block)
        for _, s, e in shift.breaks:
            assert not ((hour - s % 24) % 24 < e - s).any(), (shift.name, s)


def test_operator_delays_count_working_time_only():
    """An operator's reply waits out breaks, nights and days off (`on_shift_after`): 30
    minutes before lunch plus 30 after it, a night block's last half hour plus the next
    morning's first, Friday's last 10 minutes then Monday."""
    from cibwatch.synth.rhythms import (
        HOUR,
        OFFICE_VARIANTS,
        PERSONA_SHIFT,
        Calendar,
        on_shift_after,
    )

    cal = Calendar(start=1_710_115_200, days=70)  # Monday 2024-03-11
    a = OFFICE_VARIANTS[0]  # A: 9-12, 13:30-17:30, 19-21:30 (UTC+8)

    def local(day: float, hour: float, offset: float) -> int:
        return cal.start + round(day * 86_400 + (hour - offset) * HOUR)

    got = on_shift_after(cal, a, 8.0,
                         np.array([local(0, 11.5, 8), local(4, 21 + 20 / 60, 8),
                                   local(0, 12.5, 8)]),
                         np.array([3600, 1800, 600]))
    assert list(got) == [local(0, 14.0, 8), local(7, 9 + 20 / 60, 8),
                         local(0, 13.5 + 10 / 60, 8)]
    # Persona (UTC+3): 17:30 + 1 h -> 21:30 (the shift change is skipped); 04:30 on the
    # night block (26-29 = 02:00-05:00 the next day) + 1 h -> 09:30.
    got = on_shift_after(cal, PERSONA_SHIFT, 3.0,
                         np.array([local(0, 17.5, 3), local(1, 4.5, 3)]), np.array([3600, 3600]))
    assert list(got) == [local(0, 21.5, 3), local(1, 9.5, 3)]
    # Inside work, a plain delay to the second; past the world's end, cal.end.
    assert on_shift_after(cal, a, 8.0, np.array([local(0, 9.5, 8) + 7]), np.array([601]))[0] \
        == local(0, 9.5, 8) + 608
    assert on_shift_after(cal, a, 8.0, np.array([cal.end - HOUR]), np.array([4 * HOUR]))[0] \
        == cal.end


def test_operators_engage_on_their_own_shift(world, con, truth):
    """The operation's own comments, reactions and shares come while the acting account's
    office is at work: none in its breaks (Spamouflage offices), none in the persona's
    18:00-21:00 shift change."""
    con.execute(f"""CREATE OR REPLACE TABLE tc3 AS SELECT * FROM
                    read_csv('{world.as_posix()}/truth_clusters.csv', all_varchar = true)""")
    rows = q(con, """SELECT c.cluster, hour(p.ts + INTERVAL 8 HOUR) * 60
                            + minute(p.ts + INTERVAL 8 HOUR)
                     FROM p JOIN tc3 c USING (platform, account_id)
                     WHERE c.operation_id = 'spamouflage' AND p.kind <> 'post'""")
    assert len(rows) > 100
    for office in truth["operations"]["spamouflage"]["clusters"]:
        spans = [(int(b["start"][:2]) * 60 + int(b["start"][3:]),
                  int(b["end"][:2]) * 60 + int(b["end"][3:])) for b in office["breaks"]]
        mine = [m for c, m in rows if c == office["cluster"]]
        assert mine, office["cluster"]
        assert not [m for m in mine if any(s <= m < e for s, e in spans)], office["cluster"]
    n, change = q(con, """SELECT count(*),
                                 sum((hour(p.ts + INTERVAL 3 HOUR) BETWEEN 18 AND 20)::INT)
                          FROM p JOIN labels l USING (platform, account_id)
                          WHERE l.operation_id = 'persona' AND p.kind <> 'post'""")[0]
    assert n > 50 and change == 0
