"""Time profiles on hand-built activity with known offsets, schedules and breaks."""

from __future__ import annotations

import dataclasses
import datetime as dt

import holidays
import numpy as np
import pyarrow as pa
import pytest

import cibwatch
from cibwatch.characterise import build_profiles
from cibwatch.characterise import time as T
from cibwatch.config import Config

START = dt.datetime(2024, 4, 1)  # a Monday
CFG = Config().characterise


def _workspace(tmp_path, times_by_account: dict[str, list[dt.datetime]]):
    ws = cibwatch.open(tmp_path / "ws.duckdb")
    rows = pa.table({
        "account_id": [acc for acc, times in times_by_account.items() for _ in times],
        "post_id": [f"{acc}-{i}" for acc, times in times_by_account.items()
                    for i in range(len(times))],
        "created_at": pa.array([t for times in times_by_account.values() for t in times],
                               pa.timestamp("us")),
    })
    ws.con.register("new_posts", rows)
    ws.con.execute("INSERT INTO posts (platform, post_id, account_id, created_at) "
                   "SELECT 'x', post_id, account_id, created_at FROM new_posts")
    ws.con.executemany("INSERT INTO accounts (platform, account_id) VALUES ('x', ?)",
                       [[a] for a in times_by_account])
    ws.con.execute("INSERT INTO clusters VALUES ('c1', 'x', 1, 1.0, NULL)")
    ws.con.executemany("INSERT INTO cluster_members VALUES ('c1', 'x', ?, 1.0, NULL)",
                       [[a] for a in times_by_account])
    ws.con.execute("INSERT INTO operations (operation_id, confidence) VALUES ('op', 1.0)")
    ws.con.execute("INSERT INTO operation_clusters VALUES ('op', 'c1')")
    return ws


def _office(offset: float, weeks: int = 4, skip: set[dt.date] = frozenset(),
            blocks=((9.0, 12.0), (13.0, 17.5))) -> list[dt.datetime]:
    """A post every 10 minutes inside the blocks, Monday-Friday local time."""
    out = []
    for d in range(weeks * 7):
        day = START + dt.timedelta(days=d)
        if day.weekday() >= 5 or day.date() in skip:
            continue
        for a, b in blocks:
            for minute in range(int(a * 60), int(b * 60), 10):
                local = day + dt.timedelta(minutes=minute)
                out.append(local - dt.timedelta(hours=offset))
    return out


def _spans(breaks: list[dict]) -> list[tuple[str, str, str]]:
    return [(b["name"], b["start"], b["end"]) for b in breaks]


@pytest.mark.parametrize("offset", [8.0, 5.5, 3.5, -5.0])
def test_office_offset_found_exactly_in_half_hours(tmp_path, offset):
    ws = _workspace(tmp_path, {"a1": _office(offset), "a2": _office(offset)})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["utc_offset_hours"] == offset
    assert prof["schedule"] == "office" and prof["shift_pattern"] is True
    assert prof["offset_confidence"] > 0.9
    assert prof["runner_up"]["utc_offset_hours"] != offset
    assert prof["weekend_ratio"] == 0.0
    assert _spans(prof["breaks"]) == [("lunch", "12:00", "13:00")]
    assert prof["breaks"][0]["start_range"] == ["12:00", "12:00"]  # a sharp edge
    assert prof["work_hours"] == [{"start": "09:00", "end": "12:00"},
                                  {"start": "13:00", "end": "17:30"}]
    assert sum(prof["hour_of_week_utc"]) == prof["posts"]
    assert "UTC" in prof["evidence"]


def test_quiet_public_holidays_point_to_the_country(tmp_path):
    # An office in Beijing: off on Qingming (4-5 April) and Labour Day (1-3 May 2024).
    off = {d for d in holidays.country_holidays("CN", years=2024)
           if dt.date(2024, 4, 2) <= d <= dt.date(2024, 5, 10)}
    times = {f"a{i}": _office(8.0, weeks=6, skip=off) for i in range(3)}
    ws = _workspace(tmp_path, times)
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["utc_offset_hours"] == 8.0
    cn = [h["date"] for h in prof["quiet_holidays"] if h["country"] == "CN"]
    assert cn == sorted(d.isoformat() for d in off if d.weekday() < 5)
    assert prof["holiday_country"] == "CN"
    assert prof["holidays_checked"]["CN"] == {"checked": len(cn), "quiet": len(cn)}


def test_round_the_clock_activity_is_automated(tmp_path):
    times = [START + dt.timedelta(minutes=7 * i) for i in range(4 * 7 * 24 * 60 // 7)]
    ws = _workspace(tmp_path, {"bot": times})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["schedule"] == "automated"
    assert prof["shift_pattern"] is False
    assert prof["utc_offset_hours"] is None


def test_human_diurnal_use_is_human_at_its_offset(tmp_path):
    rng = np.random.default_rng(1)
    p = T.HUMAN_HOURLY / T.HUMAN_HOURLY.sum()
    hours = rng.choice(24, size=6000, p=p) + rng.random(6000)
    days = rng.integers(0, 28, 6000)
    local = [START + dt.timedelta(days=int(d), hours=float(h))
             for d, h in zip(days, hours, strict=True)]
    utc = [t - dt.timedelta(hours=-5.0) for t in local]
    ws = _workspace(tmp_path, {f"u{i}": utc[i::10] for i in range(10)})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["schedule"] == "human"
    assert prof["shift_pattern"] is False
    assert prof["utc_offset_hours"] == -5.0
    assert prof["breaks"] == []


def test_too_few_posts_give_no_offset(tmp_path):
    ws = _workspace(tmp_path, {"a": _office(8.0)[:10]})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["utc_offset_hours"] is None and prof["schedule"] is None
    assert prof["shift_pattern"] is False


def test_clusters_on_different_shifts_are_told_apart(tmp_path):
    ws = _workspace(tmp_path, {"d1": _office(8.0), "n1": _office(8.0, blocks=((21.0, 25.0),))})
    ws.con.execute("INSERT INTO clusters VALUES ('c2', 'x', 1, 1.0, NULL)")
    ws.con.execute("UPDATE cluster_members SET cluster_id = 'c2' WHERE account_id = 'n1'")
    ws.con.execute("INSERT INTO operation_clusters VALUES ('op', 'c2')")
    profiles = build_profiles(ws.con, Config())
    shifts = profiles["o:op"]["time"]["clusters"]
    assert shifts["c1"]["work_hours"] == [{"start": "09:00", "end": "12:00"},
                                          {"start": "13:00", "end": "17:30"}]
    assert shifts["c2"]["work_hours"] != shifts["c1"]["work_hours"]
    assert profiles["o:op"]["time"]["cluster_shifts_differ"] is True
    assert profiles["c:c1"]["time"]["utc_offset_hours"] == 8.0


def test_shifts_reads_breaks_from_a_profile():
    hist = np.zeros(T.BINS)
    for d in range(5):
        for a, b in ((36, 48), (54, 70), (76, 84)):  # 09-12, 13:30-17:30, 19-21
            hist[d * T.DAY + a:d * T.DAY + b] = 40
    work, breaks = T.shifts(hist, 0.0, CFG)
    assert [(b["name"], b["start"], b["end"]) for b in breaks] == [
        ("lunch", "12:00", "13:30"), ("supper", "17:30", "19:00")]
    assert work[0] == {"start": "09:00", "end": "12:00"}


def test_fitted_office_starts_make_an_ambiguous_offset_honest(tmp_path):
    """An office opening at 09:30 with a late lunch in UTC+8 looks much like an ordinary
    office half an hour or more away. With only the usual 09:00 start modelled the
    answer is wrong and sure of it; with starts fitted (prior around 09:00) the
    confidence is shared, and the truth is the answer or the runner-up."""
    from dataclasses import replace

    blocks = ((9.5, 12.5), (14.0, 18.0))
    ws = _workspace(tmp_path, {"a1": _office(8.0, blocks=blocks),
                               "a2": _office(8.0, blocks=blocks)})
    fixed = build_profiles(ws.con, Config())["o:op"]["time"]
    fitted_cfg = replace(Config(), characterise=replace(
        CFG, office_starts=(8.0, 8.5, 9.0, 9.5, 10.0)))
    fitted = build_profiles(ws.con, fitted_cfg)["o:op"]["time"]
    assert fixed["utc_offset_hours"] != 8.0 and fixed["offset_confidence"] > 0.9
    assert fitted["offset_confidence"] < 0.6
    assert 8.0 in {fitted["utc_offset_hours"], fitted["runner_up"]["utc_offset_hours"]}
    assert fitted["runner_up"]["confidence"] > 0.1


def _teams(tmp_path, lunches: dict[str, tuple[float, float]], per_team: int = 2):
    """One cluster per team, each of `per_team` accounts on a 09:00-17:30 UTC+8 day with
    the team's own lunch."""
    times = {f"{team}-{i}": _office(8.0, blocks=((9.0, a), (b, 17.5)))
             for team, (a, b) in lunches.items() for i in range(per_team)}
    ws = _workspace(tmp_path, times)
    ws.con.execute("DELETE FROM operation_clusters")
    ws.con.execute("DELETE FROM clusters")
    ws.con.execute("UPDATE cluster_members SET cluster_id = split_part(account_id, '-', 1)")
    for team in lunches:
        ws.con.execute("INSERT INTO clusters VALUES (?, 'x', 1, 1.0, NULL)", [team])
        ws.con.execute("INSERT INTO operation_clusters VALUES ('op', ?)", [team])
    return ws


def test_teams_breaks_are_when_half_of_them_are_away(tmp_path):
    """Two offices lunch 11:30-13:00, two 12:30-14:00. The merged histogram only goes
    quiet 12:30-13:00, when all are away; at least half of the offices are away
    11:30-14:00, which each office's own histogram shows."""
    ws = _teams(tmp_path, {"a": (11.5, 13.0), "b": (11.5, 13.0),
                           "c": (12.5, 14.0), "d": (12.5, 14.0)})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["utc_offset_hours"] == 8.0 and prof["schedule"] == "office"
    # a and b (c and d) post at the same times: one team each, found from the accounts.
    assert prof["breaks_from_teams"] == 2
    assert sorted(sorted(t["clusters"].items()) for t in prof["teams"]) == [
        [("a", 2), ("b", 2)], [("c", 2), ("d", 2)]]
    assert prof["breaks"] == [{"name": "lunch", "start": "11:30", "end": "14:00"}]
    assert prof["work_hours"] == [{"start": "09:00", "end": "11:30"},
                                  {"start": "14:00", "end": "17:30"}]
    merged = T.shifts(np.sum([h for h in T.activities(ws.con, "(SELECT 'o:op' AS gid, "
                                                      "platform, account_id FROM accounts)",
                                                      CFG)["o:op"].parts.values()], axis=0),
                      8.0, CFG)[1]
    assert merged != prof["breaks"]
    assert prof["clusters"]["a"]["own_hours"] is True
    assert prof["clusters"]["a"]["breaks"] == [
        {"name": "lunch", "start": "11:30", "end": "13:00"}]
    assert prof["clusters"]["c"]["breaks"] == [
        {"name": "lunch", "start": "12:30", "end": "14:00"}]
    assert prof["cluster_shifts_differ"] is True


def test_a_team_never_away_while_others_break_has_no_vote(tmp_path):
    """Offices lunch 11:30-13:00 and 12:30-14:00; a third cluster never breaks (as a
    detected cluster mixing offices, whose members cover each other's lunch). Its vote
    would keep half the teams at work all but 12:30-13:00; without it, at least half of
    the offices are away 11:30-14:00."""
    ws = _teams(tmp_path, {"a": (11.5, 13.0), "c": (12.5, 14.0), "m": (12.0, 12.0)})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["breaks_from_teams"] == 2 and len(prof["teams"]) == 3
    assert [t["breaks"] for t in prof["teams"] if t["clusters"] == {"m": 2}] == [[]]
    assert prof["clusters"]["m"]["breaks"] == []
    assert prof["breaks"] == [{"name": "lunch", "start": "11:30", "end": "14:00"}]
    readings = [T.shifts(h, 8.0, CFG, team=True) for h in T.activities(
        ws.con, "(SELECT 'o:op' AS gid, platform, account_id FROM accounts)",
        CFG)["o:op"].parts.values()]
    assert _spans(T.consensus(readings)[1]) == [("lunch", "12:30", "13:00")]


def test_clusters_splitting_one_workforce_are_read_together(tmp_path):
    """Two clusters of one office (as when detection splits by platform) keep the same
    hours: no separate teams, breaks from the merged histogram."""
    ws = _teams(tmp_path, {"a": (12.0, 13.0), "b": (12.0, 13.0)})
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["cluster_hours_p"] > 0.5 and prof["breaks_from_teams"] == 0
    assert prof["teams"] == []
    assert _spans(prof["breaks"]) == [("lunch", "12:00", "13:00")]
    assert prof["cluster_shifts_differ"] is False


def _drops(rng: np.random.Generator, lunch: tuple[float, float], accounts: int,
           weeks: int = 8) -> list[list[dt.datetime]]:
    """One office's accounts (UTC+8, 09:00-17:30 with its own lunch): the office drops
    posts at 3 random quarter hours of its working time each workday, and each account
    joins each drop with probability one half, a few minutes after it."""
    work = [q for q in range(36, 70) if not lunch[0] * 4 <= q < lunch[1] * 4]
    out: list[list[dt.datetime]] = [[] for _ in range(accounts)]
    for d in range(weeks * 7):
        day = START + dt.timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for q in rng.choice(work, 3, replace=False):
            for acc in np.flatnonzero(rng.random(accounts) < 0.5):
                minute = 15 * int(q) + int(rng.integers(0, 10))
                out[acc].append(day + dt.timedelta(minutes=minute) - dt.timedelta(hours=8))
    return out


def _offices(tmp_path, lunches: dict[str, tuple[float, float]], accounts: int = 12):
    """One operation of offices that detection did not part: two clusters, each mixing
    every office's accounts (account `OFFICE-i`)."""
    rng = np.random.default_rng(7)
    times = {f"{office}-{i}": t for office, lunch in lunches.items()
             for i, t in enumerate(_drops(rng, lunch, accounts))}
    ws = _workspace(tmp_path, times)
    ws.con.execute("INSERT INTO clusters VALUES ('c2', 'x', 1, 1.0, NULL)")
    ws.con.execute("INSERT INTO operation_clusters VALUES ('op', 'c2')")
    ws.con.execute("UPDATE cluster_members SET cluster_id = 'c2' "
                   "WHERE split_part(account_id, '-', 2)::INT % 2 = 1")
    return ws


def test_teams_are_found_from_when_their_accounts_post(tmp_path):
    """Four offices' accounts, mixed in two clusters: the accounts of each office post in
    the same hours of the same days (its drops), so the mixture finds the four offices,
    even two that keep the same hours (on different days)."""
    lunches = {"a": (11.5, 13.0), "b": (11.5, 13.0), "c": (12.5, 14.0), "d": (13.0, 14.0)}
    ws = _offices(tmp_path, lunches)
    act = T.activities(ws.con, "(SELECT 'o:op' AS gid, platform, account_id FROM accounts)",
                       CFG)["o:op"]
    labels = T.teams(act.accounts, CFG)
    # Accounts are indexed in account-id order (a-0, a-1, a-10, a-11, a-2, ..., b-0, ...).
    office = np.repeat(np.arange(4), 12)
    assert len(set(labels.tolist())) == 4
    assert all(len(set(labels[office == o].tolist())) == 1 for o in range(4))
    # One office alone is one team.
    ws1 = _offices(tmp_path / "one", {"a": (11.5, 13.0)})
    one = T.activities(ws1.con, "(SELECT 'o:op' AS gid, platform, account_id FROM accounts)",
                       CFG)["o:op"]
    assert set(T.teams(one.accounts, CFG).tolist()) == {0}


def test_breaks_are_when_at_least_half_of_the_teams_are_away(tmp_path):
    """The truth's rule, 2 of 4 offices away: lunch 11:30-13:30 (a and b leave at 11:30, d
    at 12:00, c at 12:30; a is back at 13:00, b and d at 13:30), though all four are
    away only 12:30-13:00: the clusters, each mixing all four offices, read it wrong."""
    lunches = {"a": (11.5, 13.0), "b": (11.5, 13.5), "c": (12.5, 14.0), "d": (12.0, 13.5)}
    ws = _offices(tmp_path, lunches)
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["utc_offset_hours"] == 8.0 and prof["schedule"] == "office"
    assert prof["breaks_from_teams"] == 4
    assert [t["accounts"] for t in prof["teams"]] == [12, 12, 12, 12]
    assert all(t["clusters"] == {"c1": 6, "c2": 6} for t in prof["teams"])
    assert sorted(_spans(t["breaks"]) for t in prof["teams"]) == [
        [("lunch", "11:30", "13:00")], [("lunch", "11:30", "13:30")],
        [("lunch", "12:00", "13:30")], [("lunch", "12:30", "14:00")]]
    assert _spans(prof["breaks"]) == [("lunch", "11:30", "13:30")]
    assert "4 teams" in prof["evidence"]
    assert len(prof["clusters"]) == 2
    assert all(c["breaks"] != prof["breaks"] for c in prof["clusters"].values())


def test_teams_that_keep_the_same_hours_read_as_one(tmp_path):
    """Two offices (or one in two rotas) on the same hours, found apart by the days they
    post: one schedule, so no team vote; the merged histogram shows the lunch."""
    ws = _offices(tmp_path, {"a": (12.0, 13.0), "b": (12.0, 13.0)})
    act = T.activities(ws.con, "(SELECT 'o:op' AS gid, platform, account_id FROM accounts)",
                       CFG)["o:op"]
    assert len(set(T.teams(act.accounts, CFG).tolist())) == 2
    prof = build_profiles(ws.con, Config())["o:op"]["time"]
    assert prof["teams"] == [] and prof["breaks_from_teams"] == 0
    assert _spans(prof["breaks"]) == [("lunch", "12:00", "13:00")]


def test_a_drop_posted_by_many_accounts_is_one_observation(tmp_path):
    """Ten accounts posting the same drops within the same minutes show the schedule no
    better than one account: the offset's tempering counts each quarter hour once."""
    drops = _office(8.0)[::3]
    ws = _workspace(tmp_path, {f"a{i}": [t + dt.timedelta(minutes=i % 5) for t in drops]
                               for i in range(10)})
    act = T.activities(ws.con, "(SELECT 'o:op' AS gid, platform, account_id FROM accounts)",
                       CFG)["o:op"]
    assert act.hist.sum() == 10 * len(drops)
    assert act.n_eff == len({t.replace(minute=t.minute // 15 * 15) for t in drops})


def test_offsets_nobody_keeps_are_unlikely_but_half_hours_stay_reachable():
    now = T.inhabited_offsets(2024, 2024)
    assert {3.5, 5.5, 9.5, -3.5, 8.0, 1.0} <= now
    assert not {1.5, 8.5, 7.5} & now
    assert 8.5 in T.inhabited_offsets(2016, 2016)  # Pyongyang time, 2015-2018
    offs = T.offsets(CFG)
    q = np.array([(dt.datetime(2024, 4, 1) - dt.datetime(1970, 1, 1)) // dt.timedelta(minutes=15)])
    prior = T.offset_prior(T.Activity(np.zeros(T.BINS), q, np.ones(1), 1, ["post"]), offs, CFG)
    assert prior[offs == 8.5][0] == pytest.approx(np.log(CFG.uninhabited_offset_prior))
    assert prior[offs == 5.5][0] == 0.0


def _day_week(day: np.ndarray) -> np.ndarray:
    """A UTC week histogram (offset 0) with the same quarter-hour day on Monday-Friday."""
    hist = np.zeros(T.BINS)
    for d in range(5):
        hist[d * T.DAY:(d + 1) * T.DAY] = day
    return hist


def _rates(*spans: tuple[float, float, float]) -> np.ndarray:
    """Expected posts per quarter hour of a day: (start hour, end hour, rate) spans."""
    day = np.zeros(T.DAY)
    for a, b, rate in spans:
        day[int(a * 4):int(b * 4)] = rate
    return day


def test_segments_put_boundaries_where_the_rate_changes():
    rng = np.random.default_rng(0)
    expected = _rates((9, 11.5, 30), (11.5, 12.25, 12), (13, 17, 25))
    segs = T.segments(rng.poisson(expected).astype(float))
    assert [(T._clock(a), T._clock(b)) for a, b, _ in segs] == [
        ("00:00", "09:00"), ("09:00", "11:30"), ("11:30", "12:15"), ("12:15", "13:00"),
        ("13:00", "17:00"), ("17:00", "00:00")]
    # Tempering (few independent observations) asks more before a boundary is drawn.
    assert len(T.segments(rng.poisson(expected).astype(float), weight=0.002)) < len(segs)


def test_a_thin_tail_of_work_is_not_read_as_a_break():
    """Posting thins out over the last hour before lunch (a third of the pace) and stops
    at 12:00: the lunch starts where posting stops, not where it thinned."""
    rng = np.random.default_rng(1)
    day = rng.poisson(_rates((9, 11, 30), (11, 12, 10), (13, 17.5, 30))).astype(float)
    work, breaks = T.shifts(_day_week(day) / 5, 0.0, CFG)
    assert _spans(breaks) == [("lunch", "12:00", "13:00")]
    assert work == [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:30"}]


def test_most_of_the_workforce_away_is_a_break():
    """Nine in ten staff lunch 11:30-12:30, the rest 12:30-13:00: the break is 11:30-13:00
    (at least half are away), not only the half hour when all are."""
    rng = np.random.default_rng(2)
    day = rng.poisson(_rates((9, 11.5, 40), (11.5, 12.5, 4), (13, 17.5, 40))).astype(float)
    assert _spans(T.shifts(_day_week(day) / 5, 0.0, CFG)[1]) == [("lunch", "11:30", "13:00")]


def test_boundary_ranges_cover_the_truth_and_widen_with_fewer_posts():
    """Each break boundary comes with the quarter hours it could sit at (profile
    likelihood, 95%): over repeated Poisson days the true boundary is inside about 95% of
    the time, and the range is wider when fewer posts show the step."""
    widths, covered, judged = {}, 0, 0
    for scale in (1, 10):
        widths[scale] = []
        for seed in range(40):
            rng = np.random.default_rng(seed)
            day = rng.poisson(_rates((9, 12, 6 * scale), (12, 13, scale),
                                     (13, 17.5, 6 * scale))).astype(float)
            breaks = T.shifts(_day_week(day) / 5, 0.0, CFG)[1]
            if len(breaks) != 1:
                continue
            for key, truth in (("start_range", "12:00"), ("end_range", "13:00")):
                lo, hi = (T._q(x) for x in breaks[0][key])
                covered += lo <= T._q(truth) <= hi
                judged += 1
                widths[scale].append(hi - lo)
    assert judged >= 120 and covered / judged >= 0.9
    assert np.mean(widths[1]) > np.mean(widths[10])


def test_row_logsumexp_matches_scipy_bit_for_bit():
    """The offset posterior's logsumexp is a copy of scipy's arithmetic (to skip its
    second pass); it must give the very same bits, ties at the maximum included."""
    from scipy.special import logsumexp

    rng = np.random.default_rng(5)
    for scale, cols in ((1.0, 1), (10.0, 45), (1e3, 135), (1e5, 4000)):
        a = rng.normal(-3e5, scale, size=(53, cols))
        a[::7, 0] = a.max(axis=1)[::7]  # a tie with the row maximum
        assert np.array_equal(T._logsumexp_rows(a), logsumexp(a, axis=1))


def test_holiday_calendar_is_the_holidays_package_calendar():
    cal = T._calendar("CN", (2023, 2024))
    expected = holidays.country_holidays("CN", years=[2023, 2024])
    epoch = dt.date(1970, 1, 1)
    assert cal == {(d - epoch).days: expected.get(d) for d in expected}
    assert T._calendar("XX", (2024,)) is None


def _drawn(local_day: np.ndarray, offset: float, seed: int, off_day: float = 0.03,
           weeks: int = 8) -> T.Activity:
    """Poisson counts of a local workday rate profile (posts per quarter hour), weekends at
    `off_day` of it, seen in UTC."""
    week = np.concatenate([local_day] * 5 + [local_day * off_day] * 2)
    counts = np.random.default_rng(seed).poisson(np.tile(np.roll(week, -int(offset * 4)),
                                                          weeks))
    q = np.flatnonzero(counts) + T.MONDAY_Q + 2800 * T.BINS
    n = counts[counts > 0].astype(float)
    hist = np.bincount((q - T.MONDAY_Q) % T.BINS, weights=n, minlength=T.BINS)
    return T.Activity(hist, q, n, int(n.sum()), ["post"])


def _office_day(start: float) -> np.ndarray:
    """Posts per quarter hour of an office opening at `start`: 3 h, lunch, 4 h, supper,
    an evening of 2.5 h."""
    return _rates((start, start + 3, 1.5), (start + 4.5, start + 8.5, 1.5),
                  (start + 10, start + 12.5, 1.5))


def test_spread_edges_stay_in_place():
    week = T._week([(9.0, 12.0)], (0, 1, 2, 3, 4), 0.0)
    for hours in (0.5, 1.0):
        spread = T._spread(week, hours)
        assert spread.sum() == pytest.approx(week.sum())
        # Symmetric about each edge: as much of the block leaks before 09:00 as is
        # missing after it, and the edge's quarter hours straddle half the level.
        assert spread[36 - 4:36].sum() == pytest.approx(4 - spread[36:36 + 4].sum())
        assert spread[35] + spread[36] == pytest.approx(1.0)
        assert spread[35] > 0 and spread[47] < 1
    assert np.array_equal(T._spread(week, 0.0), week)


def test_dispersion_counts_a_misfit_not_poisson_scatter():
    """Counts drawn from a template's own shape leave Poisson scatter (dispersion 1);
    four offices opening 08:30-09:30, which no single office template is, leave several
    times more, and the offset's confidence is then divided down by it."""
    logp = T.templates(CFG)[0]

    def dispersion(act: T.Activity) -> float:
        ll = T._local(act.hist, CFG) @ logp.T
        o, r = divmod(int(np.argmax(ll)), ll.shape[1])
        return T._dispersion(act.hist, float(T.offsets(CFG)[o]), logp[r], 1.0)

    one = _drawn(_office_day(9.0), 8.0, seed=1)
    staggered = _drawn((_office_day(8.5) + 2 * _office_day(9.0) + _office_day(9.5)) / 2,
                       8.0, seed=2)
    human = _drawn(np.repeat(T.HUMAN_HOURLY, 4) * 0.3, 1.0, seed=3, off_day=1.0)
    assert dispersion(one) == 1.0 and dispersion(human) == 1.0
    assert dispersion(staggered) > 3.0
    fit = T.fit(staggered, CFG)
    assert fit.offset == 8.0 and fit.schedule == "office"


def test_folded_product_is_the_full_week_product():
    """`loglik` folds the week into four day types before its product; every template
    row must get the log-likelihood the full 672-bin product gives (night shifts that run
    into the next day and Sunday-Thursday weeks included)."""
    key = T._template_key(CFG)
    assert T._folded(key) is not None
    logp = T._templates(key)[0]
    rng = np.random.default_rng(2)
    for hist in (rng.poisson(3.0, T.BINS).astype(float),
                 _drawn(_office_day(8.0), 3.5, seed=4).hist):
        full = T._local(hist, CFG) @ logp.T
        assert np.allclose(T.loglik(hist, CFG), full, rtol=1e-12, atol=1e-9)


def test_family_products_are_the_whole_products_to_the_bit():
    """`fit` takes each family's columns from products split by family and working week;
    they must be `loglik`'s columns exactly (same bits), or an offset's confidence and
    the best template's ties could move with the split."""
    key = T._template_key(CFG)
    assert T._family_folded(key) is not None
    rng = np.random.default_rng(5)
    for hist in (rng.poisson(2.0, T.BINS).astype(float),
                 _drawn(_office_day(8.0), 3.5, seed=6).hist,
                 _drawn(np.repeat(T.HUMAN_HOURLY, 4) * 0.3, -5.0, seed=7, off_day=1.0).hist):
        whole = T.loglik(hist, CFG)
        split = T._family_loglik(hist, CFG)
        for name, fam in T._families(key).items():
            assert np.array_equal(split[name], whole[:, fam.rows])


def test_an_assets_burst_in_one_hour_is_one_observation(tmp_path):
    """One account posting every five minutes for an hour, once a day: each hour is one
    observation (fewer than its quarter hours), whichever kinds the histogram counts."""
    times = [START + dt.timedelta(days=d, hours=9, minutes=5 * i)
             for d in range(10) for i in range(12)]
    ws = _workspace(tmp_path, {"a": times})
    members = "(SELECT 'o:op' AS gid, platform, account_id FROM accounts)"
    act = T.activities(ws.con, members, CFG)["o:op"]
    assert act.kinds != "all" and act.n_eff == 10
    ws.con.execute("UPDATE posts SET kind = 'comment' WHERE minute(created_at) >= 30")
    act = T.activities(ws.con, members, dataclasses.replace(CFG, time_min_posts=100))["o:op"]
    assert act.kinds == "all" and act.hist.sum() == 120 and act.n_eff == 10


def test_chronotype_steps_let_the_nearer_offset_win():
    """A group that fits the human curve best a quarter hour past +1 (+1:30 is nobody's
    time) is +1 with a quarter-hour chronotype shift or +2 with three quarters: quarter-
    hour steps say +1 at about e:1 odds. Half-hour steps priced both at one half-hour
    shift, and the answer was a coin flip."""
    coarse = dataclasses.replace(CFG, human_chronotype_hours=(-1.0, -0.5, 0.0, 0.5, 1.0))
    fine, flips = [], []
    for seed in range(4):
        act = _drawn(np.repeat(T.HUMAN_HOURLY, 4) * 0.3, 1.25, seed=seed, off_day=1.0)
        fit = T.fit(act, CFG)
        assert fit.schedule == "human" and fit.offset == 1.0 and fit.runner_up[0] == 2.0
        fine.append(fit.confidence)
        flips.append(T.fit(act, coarse).confidence)
    assert min(fine) > 0.65
    assert np.mean(flips) < np.mean(fine) - 0.05
