"""When an operation works: hour-of-week activity, the operators' UTC offset, their shifts.

Activity is binned in quarter hours of the week (672 bins, Monday 00:00 first). Each
candidate schedule (office shifts with a lunch break starting at noon, ordinary human
diurnal use, flat 24/7 automation) is a 672-bin template in local time; one matrix product
gives the multinomial log-likelihood of the histogram under every template, mixing weight
and UTC offset (half-hour steps) at once. The lunch break at noon and the night's sleep
are what pin the offset; work hours and breaks are then read off the local histogram.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from types import SimpleNamespace
from typing import Any

import duckdb
import holidays
import numpy as np
from scipy.special import logsumexp

from cibwatch.config import CharacteriseConfig

BINS = 672  # quarter hours in a week
DAY = 96  # quarter hours in a day
MONDAY_Q = 4 * DAY  # 1970-01-05, the first Monday after the epoch, in quarter hours

# Countries whose standard time is each offset: the holiday calendars worth checking.
OFFSET_COUNTRIES: dict[float, list[str]] = {
    -10.0: ["US"], -9.0: ["US"], -8.0: ["US", "MX"], -7.0: ["US", "MX", "CA"],
    -6.0: ["US", "MX", "CA"], -5.0: ["US", "CA", "CO", "PE", "CU"], -4.0: ["VE", "BO", "CL"],
    -3.0: ["BR", "AR"], -1.0: ["PT"], 0.0: ["GB", "PT", "GH", "IS"],
    1.0: ["FR", "DE", "ES", "IT", "PL", "NG", "RS"], 2.0: ["UA", "EG", "ZA", "IL", "RO", "GR"],
    3.0: ["RU", "TR", "SA", "BY", "IQ", "KE"], 3.5: ["IR"], 4.0: ["AE", "AZ", "GE", "AM"],
    4.5: ["AF"], 5.0: ["PK", "UZ"], 5.5: ["IN", "LK"], 6.0: ["BD", "KZ", "KG"], 6.5: ["MM"],
    7.0: ["TH", "VN", "ID"], 8.0: ["CN", "SG", "MY", "PH", "TW", "HK"], 9.0: ["JP", "KR"],
    9.5: ["AU"], 10.0: ["AU"], 12.0: ["NZ"],
}

# Relative posting rate of ordinary users by local hour (trough before dawn, evening peak),
# after published diurnal curves of Twitter/Facebook use.
HUMAN_HOURLY = np.array([
    0.90, 0.55, 0.33, 0.20, 0.15, 0.17, 0.30, 0.55, 0.80, 0.95, 1.00, 1.00,
    1.05, 1.00, 0.98, 0.98, 1.00, 1.05, 1.10, 1.20, 1.30, 1.35, 1.30, 1.15,
])


@dataclass
class Activity:
    """Quarter-hour activity of one group: week histogram and the dated series."""

    hist: np.ndarray  # (672,) UTC quarter hour of week counts
    quarters: np.ndarray  # epoch quarter-hour index of each non-empty quarter
    counts: np.ndarray  # posts in each of those quarters
    n_eff: int  # distinct (asset, hour) pairs: posts of one burst are not independent
    kinds: list[str] | str  # the post kinds the histogram counts ("all" when it fell back)


@dataclass
class Fit:
    offset: float | None
    confidence: float | None
    runner_up: tuple[float, float] | None
    schedule: str | None
    gain: dict[str, float]  # mean log-likelihood gain per post over flat, per family
    workweek: str | None  # the working week of the best template


def activities(
    con: duckdb.DuckDBPyConnection, members: str, cfg: CharacteriseConfig
) -> dict[str, Activity]:
    """Quarter-hour activity of every group of `members(gid, platform, account_id)`.

    Only `time_kinds` (original posts) count: operators write them on their schedule,
    while comments, shares and reactions follow other people's posts. A group with too
    few of them falls back to every kind (a re-share botnet writes no originals)."""
    kinds = ", ".join(f"'{k}'" for k in cfg.time_kinds)
    table = con.sql(
        f"""
        SELECT m.gid, (epoch(p.created_at) // 900)::BIGINT AS q,
               count(*) FILTER (p.kind IN ({kinds}))::BIGINT AS n_sel, count(*)::BIGINT AS n
        FROM posts p JOIN {members} m USING (platform, account_id)
        GROUP BY ALL ORDER BY 1, 2
        """
    ).to_arrow_table()
    n_eff = {g: (a, b) for g, a, b in con.execute(
        f"""
        SELECT m.gid,
               count(DISTINCT (p.platform, p.account_id, date_trunc('hour', p.created_at)))
                   FILTER (p.kind IN ({kinds})),
               count(DISTINCT (p.platform, p.account_id, date_trunc('hour', p.created_at)))
        FROM posts p JOIN {members} m USING (platform, account_id) GROUP BY 1
        """
    ).fetchall()}
    gids = table.column("gid").to_numpy(zero_copy_only=False)
    q = table.column("q").to_numpy()
    n_sel = table.column("n_sel").to_numpy()
    n_all = table.column("n").to_numpy()
    out: dict[str, Activity] = {}
    if len(gids) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, gids[1:] != gids[:-1]])
    ends = np.r_[starts[1:], len(gids)]
    for s, e in zip(starts, ends, strict=True):
        gid = str(gids[s])
        use_sel = n_sel[s:e].sum() >= cfg.time_min_posts
        ns = n_sel[s:e] if use_sel else n_all[s:e]
        keep = ns > 0
        qs, ns = q[s:e][keep], ns[keep]
        hist = np.bincount((qs - MONDAY_Q) % BINS, weights=ns, minlength=BINS)
        eff = n_eff.get(gid, (0, 0))[0 if use_sel else 1]
        out[gid] = Activity(hist, qs, ns, int(eff or ns.sum()),
                            list(cfg.time_kinds) if use_sel else "all")
    return out


# Working weeks: which days (0 = Monday) are workdays. Iran works Saturday to Wednesday,
# much of the Middle East Sunday to Thursday.
WORKWEEKS: dict[str, tuple[int, ...]] = {
    "Mon-Fri": (0, 1, 2, 3, 4), "Sun-Thu": (6, 0, 1, 2, 3), "Sat-Wed": (5, 6, 0, 1, 2),
}


def _week(blocks: list[tuple[float, float]], workdays: tuple[int, ...], off: float,
          ramp: float = 0.0) -> np.ndarray:
    """A 672-bin local week: each block on every day, off days scaled by `off`; blocks
    past midnight (a night shift, 21:00-29:00) run into the next day. Each block ramps
    up over its first `ramp` hours: people arrive, log in, then post at full pace."""
    day = np.zeros(2 * DAY)
    for start, end in blocks:
        a, b = int(round(start * 4)), int(round(end * 4))
        level = np.ones(b - a)
        r = min(int(round(ramp * 4)), b - a)
        if r:
            level[:r] = np.linspace(0.25, 1.0, r, endpoint=False) + 0.75 / (2 * r)
        day[a:b] = level
    week = np.zeros(BINS + DAY)
    for d in range(7):
        week[d * DAY:(d + 2) * DAY] += day * (1.0 if d in workdays else off)
    week[:DAY] += week[BINS:]
    return week[:BINS]


def templates(cfg: CharacteriseConfig) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Log-probabilities of every (template, mixing weight) in local time, the family of
    each row (0 office, 1 human) and what each row assumes. Built once per config."""
    names = ("office_starts", "office_starts_other_weeks", "office_start_usual",
             "office_start_usual_other_weeks", "office_start_sd", "office_lunch_starts",
             "office_ramp_hours", "office_lunch_lengths", "office_ends", "office_extra_blocks",
             "office_off_day_factors", "human_weekend_factors", "human_chronotype_hours",
             "human_chronotype_sd", "template_mix")
    return _templates(json.dumps({n: getattr(cfg, n) for n in names}))


@lru_cache(maxsize=4)
def _templates(key: str) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    cfg = SimpleNamespace(**json.loads(key))
    rows, meta = [], []
    for week_name, workdays in WORKWEEKS.items():
        starts = cfg.office_starts if week_name == "Mon-Fri" else cfg.office_starts_other_weeks
        usual = (cfg.office_start_usual if week_name == "Mon-Fri"
                 else cfg.office_start_usual_other_weeks)
        for start, lunch, lunch_len, end, extra, off in product(
            starts, cfg.office_lunch_starts, cfg.office_lunch_lengths, cfg.office_ends,
            cfg.office_extra_blocks, cfg.office_off_day_factors,
        ):
            blocks = [(start, lunch), (lunch + lunch_len, end), *extra]
            rows.append(_week(blocks, workdays, off, cfg.office_ramp_hours))
            meta.append({"family": "office", "workweek": week_name, "blocks": blocks,
                         "prior": -0.5 * ((start - usual) / cfg.office_start_sd) ** 2})
    for chrono in cfg.human_chronotype_hours:
        day = np.roll(np.repeat(HUMAN_HOURLY, 4), int(round(chrono * 4)))
        for off in cfg.human_weekend_factors:
            rows.append(np.concatenate([day] * 5 + [day * off] * 2))
            meta.append({"family": "human", "workweek": "Mon-Fri", "blocks": [],
                         "prior": -0.5 * (chrono / cfg.human_chronotype_sd) ** 2})
    shapes = np.array(rows)
    shapes /= shapes.sum(axis=1, keepdims=True)
    mix = np.asarray(cfg.template_mix)
    probs = mix[:, None, None] * shapes[None] + (1 - mix[:, None, None]) / BINS
    family = np.array([m["family"] == "human" for m in meta], dtype=int)
    # float32: the product below is the hot spot, and 7 digits are plenty for a log-lik.
    return (np.log(probs.reshape(-1, BINS)).astype(np.float32), np.tile(family, len(mix)),
            meta * len(mix))


def _prior(meta: list[dict[str, Any]]) -> np.ndarray:
    """Log prior weight of each template row (chronotype shifts of the human curve)."""
    return np.array([m.get("prior", 0.0) for m in meta])


def offsets(cfg: CharacteriseConfig) -> np.ndarray:
    return np.arange(cfg.offset_min, cfg.offset_max + 0.25, 0.5)


def local_hist(hist: np.ndarray, offset: float) -> np.ndarray:
    """The UTC week histogram seen in local time (UTC + offset)."""
    return np.roll(hist, int(round(offset * 4)))


def fit(act: Activity, cfg: CharacteriseConfig) -> Fit:
    """Most likely offset and schedule by template likelihood over all offsets at once."""
    n = float(act.hist.sum())
    if n < cfg.time_min_posts:
        return Fit(None, None, None, None, {}, None)
    offs = offsets(cfg)
    shifts = np.rint(offs * 4).astype(int)
    # local[o, b] = hist[(b - 4*o) % 672]: the histogram in each candidate local time.
    idx = (np.arange(BINS)[None, :] - shifts[:, None]) % BINS
    local = act.hist[idx]
    logp, family, meta = templates(cfg)
    ll = (local.astype(np.float32) @ logp.T).astype(float)  # every hypothesis at once
    flat_ll = n * np.log(1.0 / BINS)
    best: dict[str, np.ndarray] = {}
    best_row: dict[str, int] = {}
    for code, name in ((0, "office"), (1, "human")):
        sub = np.where(family == code, ll, -np.inf)
        best[name] = sub.max(axis=1)
        best_row[name] = int(np.unravel_index(np.argmax(sub), sub.shape)[1])
    gain = {f: float((v.max() - flat_ll) / n) for f, v in best.items()}
    if max(gain.values()) < cfg.automated_max_gain:
        return Fit(None, None, None, "automated", gain, None)
    name = "office" if gain["office"] > gain["human"] + cfg.office_margin else "human"
    # Posterior over offsets, summed over the family's templates (a night owl's curve at
    # one offset is an early bird's at the next, so that uncertainty shows) and tempered:
    # only n_eff of the n posts are independent observations.
    rows = family == (0 if name == "office" else 1)
    tempered = ll[:, rows] * (min(act.n_eff, n) / n) + _prior(meta)[rows][None, :]
    marginal = logsumexp(tempered, axis=1)
    post = np.exp(marginal - marginal.max())
    post /= post.sum()
    order = np.argsort(-post)
    runner = (float(offs[order[1]]), float(post[order[1]]))
    return Fit(float(offs[order[0]]), float(post[order[0]]), runner, name, gain,
               meta[best_row[name]]["workweek"])


def _clock(q: int) -> str:
    q %= DAY
    return f"{q // 4:02d}:{(q % 4) * 15:02d}"


def shifts(
    hist: np.ndarray, offset: float, cfg: CharacteriseConfig, workweek: str = "Mon-Fri"
) -> tuple[list[dict], list[dict]]:
    """Work blocks and breaks of workdays in local time, from the quarter-hour profile.

    A quarter hour is quiet when it falls below `active_level` of the busy level (90th
    percentile) or below `dip_level` of both the hour before and the hour after it (a
    lunch dip that never reaches zero). The longest quiet run is the night; quiet runs
    of `min_break_minutes` to `max_break_hours` inside the working span are breaks."""
    days = list(WORKWEEKS.get(workweek, WORKWEEKS["Mon-Fri"]))
    day = local_hist(hist, offset).reshape(7, DAY)[days].sum(axis=0)
    if day.sum() == 0:
        return [], []
    # Smooth more when counts are small: a sparse profile is mostly sampling noise.
    smooth = day.astype(float)
    typical = float(np.median(day[day > 0]))
    for _ in range(min(4, int(np.ceil(np.log2(max(cfg.break_min_bin_posts / typical, 1.0)))))):
        smooth = (np.roll(smooth, 1) + 2 * smooth + np.roll(smooth, -1)) / 4
    busy = np.percentile(smooth[smooth > 0], 90)
    window = np.arange(1, 5)
    before = smooth[(np.arange(DAY)[:, None] - window) % DAY].max(axis=1)
    after = smooth[(np.arange(DAY)[:, None] + window) % DAY].max(axis=1)
    quiet = (smooth < cfg.active_level * busy) | (
        smooth < cfg.dip_level * np.minimum(before, after))
    if quiet.all():
        return [], []
    if not quiet.any():
        return [{"start": "00:00", "end": "24:00"}], []
    night_start, night_len = max(_runs(quiet), key=lambda r: r[1])
    origin = (night_start + night_len) % DAY
    span = np.roll(quiet, -origin)[: DAY - night_len]  # the working span, night cut off
    min_gap, max_gap = cfg.min_break_minutes // 15, int(cfg.max_break_hours * 4)
    gaps = [(s, n) for s, n in _runs(span, circular=False) if min_gap <= n <= max_gap]
    edges = [0] + [x for s, n in gaps for x in (s, s + n)] + [len(span)]
    work = [{"start": _clock(origin + a), "end": _clock_end(origin + b)}
            for a, b in zip(edges[::2], edges[1::2], strict=True)]
    breaks = []
    for s_, n in gaps:
        mid = ((origin + s_ + n / 2) % DAY) / 4
        name = "lunch" if 10.5 <= mid < 15.5 else "supper" if 15.5 <= mid < 21.5 else "break"
        breaks.append({"name": name, "start": _clock(origin + s_),
                       "end": _clock_end(origin + s_ + n)})
    return work, breaks


def _clock_end(q: int) -> str:
    return "24:00" if q % DAY == 0 else _clock(q)


def _runs(mask: np.ndarray, circular: bool = True) -> list[tuple[int, int]]:
    """(start, length) of each run of True in a boolean day (circular: wraps midnight)."""
    padded = np.r_[False, mask, False].astype(int)
    diff = np.diff(padded)
    starts = np.flatnonzero(diff == 1)
    ends = np.flatnonzero(diff == -1)
    runs = [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]
    # Join a run touching midnight with the one at the start of the day (circular day).
    if circular and len(runs) > 1 and mask[0] and mask[-1]:
        first = runs.pop(0)
        last = runs.pop()
        runs.append((last[0], last[1] + first[1]))
    return runs


def quiet_holidays(
    act: Activity, offset: float, cfg: CharacteriseConfig, workweek: str = "Mon-Fri"
) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """Public holidays (of the countries the offset allows) on which a workday went quiet,
    and per country how many of its holidays were checked and quiet. The first and last
    days of the data are partial and never judged."""
    countries = OFFSET_COUNTRIES.get(offset, [])
    if not countries or len(act.quarters) == 0:
        return [], {}
    local_day = (act.quarters + int(round(offset * 4))) // DAY
    first, last = int(local_day.min()), int(local_day.max())
    per_day = np.bincount(local_day - first, weights=act.counts, minlength=last - first + 1)
    epoch = dt.date(1970, 1, 1)
    dates = [epoch + dt.timedelta(days=first + i) for i in range(len(per_day))]
    workdays = WORKWEEKS.get(workweek, WORKWEEKS["Mon-Fri"])
    weekday = np.array([d.weekday() in workdays for d in dates])
    years = sorted({d.year for d in dates})
    calendars = {}
    for code in countries:
        try:
            calendars[code] = holidays.country_holidays(code, years=years)
        except NotImplementedError:
            continue
    is_holiday = np.array([any(d in cal for cal in calendars.values()) for d in dates])
    ordinary = per_day[weekday & ~is_holiday]
    if len(ordinary) == 0:
        return [], {}
    baseline = float(np.median(ordinary))
    found, checked = [], {}
    for code, cal in calendars.items():
        tally = {"checked": 0, "quiet": 0}
        for i, d in enumerate(dates):
            inside = 0 < i < len(dates) - 1
            if d in cal and weekday[i] and inside and baseline >= cfg.holiday_min_baseline:
                tally["checked"] += 1
                if per_day[i] <= cfg.holiday_quiet_ratio * baseline:
                    tally["quiet"] += 1
                    found.append({"date": d.isoformat(), "name": cal.get(d), "country": code,
                                  "posts": int(per_day[i]), "usual_weekday_posts": baseline})
        checked[code] = tally
    # The country whose calendar explains most quiet days comes first.
    rank = {c: (-t["quiet"], -t["quiet"] / max(t["checked"], 1), c) for c, t in checked.items()}
    found.sort(key=lambda h: (rank[h["country"]], h["date"]))
    return found, dict(sorted(checked.items(), key=lambda kv: rank[kv[0]]))


def weekend_ratio(hist: np.ndarray, offset: float, workweek: str = "Mon-Fri") -> float | None:
    """Posts per off day / posts per workday, in local time and the given working week."""
    per_day = local_hist(hist, offset).reshape(7, DAY).sum(axis=1)
    work = np.isin(np.arange(7), WORKWEEKS.get(workweek, WORKWEEKS["Mon-Fri"]))
    weekday = per_day[work].mean()
    return round(float(per_day[~work].mean() / weekday), 4) if weekday else None


def hour_of_week(hist: np.ndarray) -> list[int]:
    return [int(x) for x in hist.reshape(168, 4).sum(axis=1)]


def time_profile(act: Activity, cfg: CharacteriseConfig) -> tuple[dict[str, Any], Fit]:
    """The `time` section of one group (docs/profile.md)."""
    f = fit(act, cfg)
    prof: dict[str, Any] = {
        "utc_offset_hours": f.offset, "offset_confidence": _r(f.confidence),
        "runner_up": ({"utc_offset_hours": f.runner_up[0], "confidence": _r(f.runner_up[1])}
                      if f.runner_up else None),
        "schedule": f.schedule, "shift_pattern": f.schedule == "office",
        "hour_of_week_utc": hour_of_week(act.hist),
        "hour_of_week_local": None, "work_hours": [], "active_hours": [], "breaks": [],
        "workweek": None, "weekend_ratio": None, "quiet_holidays": [], "holidays_checked": {},
        "holiday_country": None,
        "model_gain": {k: round(v, 4) for k, v in f.gain.items()},
        "posts": int(act.hist.sum()), "kinds": act.kinds, "clusters": {},
    }
    if f.offset is None:
        prof["evidence"] = _evidence(prof, act)
        return prof, f
    blocks, breaks = shifts(act.hist, f.offset, cfg, f.workweek or "Mon-Fri")
    prof["hour_of_week_local"] = hour_of_week(local_hist(act.hist, f.offset))
    prof["active_hours"] = blocks
    if f.schedule == "office":
        prof["work_hours"], prof["breaks"] = blocks, breaks
    prof["workweek"] = f.workweek
    prof["weekend_ratio"] = weekend_ratio(act.hist, f.offset, f.workweek or "Mon-Fri")
    prof["quiet_holidays"], prof["holidays_checked"] = quiet_holidays(
        act, f.offset, cfg, f.workweek or "Mon-Fri")
    quiet = [c for c, t in prof["holidays_checked"].items() if t["quiet"]]
    prof["holiday_country"] = quiet[0] if quiet else None
    prof["evidence"] = _evidence(prof, act)
    return prof, f


def cluster_shift(act: Activity, op_time: dict[str, Any], own: dict[str, Any],
                  cfg: CharacteriseConfig) -> dict[str, Any]:
    """One cluster's shift, in the operation's local time so clusters compare directly."""
    entry = {"utc_offset_hours": own.get("utc_offset_hours"), "schedule": own.get("schedule"),
             "posts": int(act.hist.sum()), "work_hours": [], "breaks": []}
    offset = op_time.get("utc_offset_hours")
    if offset is not None and act.hist.sum() >= cfg.time_min_posts:
        entry["work_hours"], entry["breaks"] = shifts(
            act.hist, offset, cfg, op_time.get("workweek") or "Mon-Fri")
    return entry


def shifts_differ(clusters: dict[str, dict[str, Any]]) -> bool:
    """True when clusters keep visibly different hours (Meta told Spamouflage's apart so)."""
    spans = {tuple((w["start"], w["end"]) for w in c["work_hours"])
             for c in clusters.values() if c["work_hours"]}
    return len(spans) > 1


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _evidence(p: dict[str, Any], act: Activity) -> str:
    n = int(act.hist.sum())
    if p["schedule"] is None:
        return f"{n} posts: too few to infer a schedule."
    if p["schedule"] == "automated":
        g = max(p["model_gain"].values())
        return (f"{n} posts spread over the clock: no office or human daily rhythm fits "
                f"better than flat 24/7 activity (best gain {g:.3f} nats/post); "
                "consistent with automation.")
    off = p["utc_offset_hours"]
    sign = "+" if off >= 0 else "-"
    hh, mm = int(abs(off)), int(round(abs(off) % 1 * 60))
    text = (f"{n} posts; activity fits a{'n office' if p['schedule'] == 'office' else ' human'}"
            f" schedule at UTC{sign}{hh}:{mm:02d} (posterior {p['offset_confidence']:.2f}; "
            f"runner-up UTC{p['runner_up']['utc_offset_hours']:+g}).")
    if p["work_hours"]:
        text += " Work hours " + ", ".join(f"{w['start']}-{w['end']}" for w in p["work_hours"])
    if p["breaks"]:
        text += "; breaks " + ", ".join(f"{b['name']} {b['start']}-{b['end']}"
                                        for b in p["breaks"])
    if p["weekend_ratio"] is not None:
        text += (f"; {p['workweek']} week, off days at {p['weekend_ratio']:.2f} of "
                 "workday activity")
    if p["quiet_holidays"]:
        text += "; quiet on " + ", ".join(f"{h['name']} ({h['country']} {h['date']})"
                                         for h in p["quiet_holidays"][:5])
    return text + "."
