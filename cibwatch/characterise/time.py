"""When an operation works: hour-of-week activity, the operators' UTC offset, their shifts.

Activity is binned in quarter hours of the week (672 bins, Monday 00:00 first). Each
candidate schedule (office shifts with a lunch break starting at noon, ordinary human
diurnal use, flat 24/7 automation) is a 672-bin template in local time; one matrix product
gives the multinomial log-likelihood of the histogram under every template, mixing weight
and UTC offset (half-hour steps) at once. The lunch break at noon and the night's sleep
are what pin the offset; the offset's confidence is tempered by how many posts are
independent and by how badly even the best template fits (quasi-likelihood dispersion).
Work hours and breaks are then read off the local day profile:
cut where its rate changes (piecewise-constant Poisson, BIC), each piece judged at work or
away by likelihood, each boundary with the range it could take. An operation run by
several teams on staggered shifts (offices) has its teams found from when its accounts
post (`teams`: a mixture of multinomials over dated hours), and its breaks are when at
least half of the teams are away, each team read on its own histogram.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import duckdb
import holidays
import numpy as np
from scipy import sparse
from scipy.stats import chi2_contingency
from threadpoolctl import ThreadpoolController

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
    n_eff: int  # independent observations: posts of one drop or burst count once
    kinds: list[str] | str  # the post kinds the histogram counts ("all" when it fell back)
    # An operation's clusters, each its own week histogram of the same kinds (UTC): an
    # office's breaks show on its own histogram, blurred in the merged one.
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    # An operation's timed posts per account, where its teams are looked for (`teams`).
    accounts: AccountPosts | None = None


@dataclass
class AccountPosts:
    """Timed posts of one operation's accounts: one row per account and quarter hour."""

    account: np.ndarray  # index of the row's account (0..n-1)
    quarters: np.ndarray  # epoch quarter hour
    counts: np.ndarray  # posts in it
    cluster: np.ndarray  # each account's cluster (object, by account index)


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
    # floor, not `//`: DuckDB divides a DOUBLE epoch exactly, and a cast then rounds a
    # post at 09:08 into the 09:15 quarter.
    table = con.sql(
        f"""
        SELECT m.gid, floor(epoch(p.created_at) / 900)::BIGINT AS q,
               count(*) FILTER (p.kind IN ({kinds}))::BIGINT AS n_sel, count(*)::BIGINT AS n
        FROM posts p JOIN {members} m USING (platform, account_id)
        GROUP BY ALL ORDER BY 1, 2
        """
    ).to_arrow_table()
    # Independent observations of the schedule: one asset's posts in one hour are one (a
    # burst), and so are all posts in one quarter hour of one day (a drop that a network
    # posts within minutes); the smaller count bounds both dependences. The asset-hours
    # are counted here, the quarter hours (rows of `table`) below.
    hours = {g: (a, b) for g, a, b in con.execute(
        f"""
        SELECT gid, count(*) FILTER (sel), count(*)
        FROM (SELECT m.gid, p.platform, p.account_id, date_trunc('hour', p.created_at),
                     bool_or(p.kind IN ({kinds})) AS sel
              FROM posts p JOIN {members} m USING (platform, account_id) GROUP BY ALL)
        GROUP BY gid
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
        quarters = (int(np.count_nonzero(n_sel[s:e])), e - s)
        n_eff = tuple(min(h, k) for h, k in zip(hours.get(gid, (0, 0)), quarters, strict=True))
        use_sel = n_sel[s:e].sum() >= cfg.time_min_posts
        ns = n_sel[s:e] if use_sel else n_all[s:e]
        keep = ns > 0
        qs, ns = q[s:e][keep], ns[keep]
        hist = np.bincount((qs - MONDAY_Q) % BINS, weights=ns, minlength=BINS)
        eff = n_eff[0 if use_sel else 1]
        out[gid] = Activity(hist, qs, ns, int(eff or ns.sum()),
                            list(cfg.time_kinds) if use_sel else "all")
    _cluster_parts(con, members, out, cfg)
    _account_posts(con, members, out, cfg)
    return out


def _cluster_parts(con: duckdb.DuckDBPyConnection, members: str,
                   out: dict[str, Activity], cfg: CharacteriseConfig) -> None:
    """Week histograms of each cluster of every operation group (`o:ID`, the
    characterise convention) with more than one cluster, counting the kinds its
    operation's histogram counts."""
    kinds = ", ".join(f"'{k}'" for k in cfg.time_kinds)
    rows = con.execute(
        f"""
        WITH multi AS (
            SELECT operation_id FROM operation_clusters GROUP BY 1 HAVING count(*) > 1
        )
        SELECT 'o:' || oc.operation_id AS gid, oc.cluster_id,
               (floor(epoch(p.created_at) / 900)::BIGINT - {MONDAY_Q}) % {BINS} AS b,
               count(*) FILTER (p.kind IN ({kinds}))::BIGINT, count(*)::BIGINT
        FROM posts p JOIN cluster_members cm USING (platform, account_id)
        JOIN operation_clusters oc USING (cluster_id)
        WHERE oc.operation_id IN (SELECT operation_id FROM multi)
          AND 'o:' || oc.operation_id IN (SELECT DISTINCT gid FROM {members})
        GROUP BY ALL
        """
    ).fetchall()
    for gid, cluster, b, n_sel, n in rows:
        act = out.get(gid)
        if act is None:
            continue
        hist = act.parts.setdefault(str(cluster), np.zeros(BINS))
        hist[int(b)] += n_sel if act.kinds != "all" else n


def _account_posts(con: duckdb.DuckDBPyConnection, members: str,
                   out: dict[str, Activity], cfg: CharacteriseConfig) -> None:
    """Timed posts per account and quarter hour of every operation group (`o:ID`) that
    times `time_kinds`: where `teams` looks for the operation's teams."""
    kinds = ", ".join(f"'{k}'" for k in cfg.time_kinds)
    gids = [g for g, a in out.items() if g.startswith("o:") and a.kinds != "all"]
    if not gids:
        return
    table = con.sql(
        f"""
        WITH acc AS (
            SELECT m.gid, m.platform, m.account_id, min(cm.cluster_id) AS cluster
            FROM {members} m JOIN cluster_members cm USING (platform, account_id)
            JOIN operation_clusters oc USING (cluster_id)
            WHERE m.gid IN (SELECT unnest(?::VARCHAR[]))
              AND m.gid = 'o:' || oc.operation_id
            GROUP BY ALL
        ), timed AS (
            SELECT acc.gid, acc.platform, acc.account_id, any_value(acc.cluster) AS cluster,
                   floor(epoch(p.created_at) / 900)::BIGINT AS q, count(*)::BIGINT AS n
            FROM posts p JOIN acc USING (platform, account_id)
            WHERE p.kind IN ({kinds})
            GROUP BY ALL
        )
        SELECT gid, dense_rank() OVER (PARTITION BY gid ORDER BY platform, account_id) - 1
               AS a, cluster, q, n
        FROM timed ORDER BY gid, a, q
        """, params=[gids]
    ).to_arrow_table()
    gid = table.column("gid").to_numpy(zero_copy_only=False)
    if len(gid) == 0:
        return
    a = table.column("a").to_numpy()
    cluster = table.column("cluster").to_numpy(zero_copy_only=False)
    q = table.column("q").to_numpy()
    n = table.column("n").to_numpy()
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(gid)], strict=True):
        acc = a[s:e]
        first = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
        out[str(gid[s])].accounts = AccountPosts(acc, q[s:e], n[s:e], cluster[s:e][first])


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


def _spread(week: np.ndarray, hours: float) -> np.ndarray:
    """A week template whose every edge is spread evenly over `hours` around its time
    (a moving average): staff or teams that do not all arrive, eat and leave on the
    same minute. Symmetric, so an edge's middle stays where the schedule puts it (the
    width is rounded to whole half hours, an even number of quarter hours, for that)."""
    width = 2 * int(round(hours * 2))
    if width < 1:
        return week
    kernel = np.r_[0.5, np.ones(width - 1), 0.5] / width
    half = width // 2
    padded = np.r_[week[-half:], week, week[:half]]
    return np.convolve(padded, kernel, "valid")[: BINS]


def templates(cfg: CharacteriseConfig) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Log-probabilities of every (template, mixing weight) in local time, the family of
    each row (0 office, 1 human) and what each row assumes. Built once per config."""
    return _templates(_template_key(cfg))


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
            week = _week(blocks, workdays, off, cfg.office_ramp_hours)
            for spread in cfg.office_edge_spread_hours:
                rows.append(_spread(week, spread))
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
    # float64: the product below costs about what float32 did, and its sums do not
    # change in the 4th digit of a confidence with the BLAS library's thread count.
    return (np.log(probs.reshape(-1, BINS)), np.tile(family, len(mix)),
            meta * len(mix))


def _prior(meta: list[dict[str, Any]]) -> np.ndarray:
    """Log prior weight of each template row (chronotype shifts of the human curve)."""
    return np.array([m.get("prior", 0.0) for m in meta])


@dataclass(frozen=True)
class _Family:
    rows: np.ndarray  # template rows of the family, ascending
    prior: np.ndarray  # their log prior weights


@lru_cache(maxsize=4)
def _families(key: str) -> dict[str, _Family]:
    """Each family's template rows and priors, built once per template set (`key` as
    `_templates`')."""
    _, family, meta = _templates(key)
    prior = _prior(meta)
    return {name: _Family(np.flatnonzero(family == code), prior[family == code])
            for code, name in ((0, "office"), (1, "human"))}


def _template_key(cfg: CharacteriseConfig) -> str:
    names = ("office_starts", "office_starts_other_weeks", "office_start_usual",
             "office_start_usual_other_weeks", "office_start_sd", "office_lunch_starts",
             "office_ramp_hours", "office_edge_spread_hours", "office_lunch_lengths",
             "office_ends", "office_extra_blocks",
             "office_off_day_factors", "human_weekend_factors", "human_chronotype_hours",
             "human_chronotype_sd", "template_mix")
    return json.dumps({n: getattr(cfg, n) for n in names})


def offsets(cfg: CharacteriseConfig) -> np.ndarray:
    return np.arange(cfg.offset_min, cfg.offset_max + 0.25, 0.5)


def local_hist(hist: np.ndarray, offset: float) -> np.ndarray:
    """The UTC week histogram seen in local time (UTC + offset)."""
    return np.roll(hist, int(round(offset * 4)))


@lru_cache(maxsize=8)
def inhabited_offsets(first_year: int, last_year: int) -> frozenset[float]:
    """UTC offsets (hours) that some place kept, in standard or daylight time, in the
    given years: the IANA time zone database (zoneinfo, from the system or the tzdata
    package), sampled mid-month. +8:30 is in it for 2015-2018 (Pyongyang), not since."""
    out = set()
    for name in available_timezones():
        if "/" not in name or name.startswith(("Etc/", "SystemV/")):
            continue  # aliases (UTC, EST) and the fixed-offset zones nobody lives in
        zone = ZoneInfo(name)
        for year in range(first_year, last_year + 1):
            for month in range(1, 13):
                off = dt.datetime(year, month, 15, 12, tzinfo=zone).utcoffset()
                out.add(off.total_seconds() / 3600 if off is not None else 0.0)
    return frozenset(out)


def offset_prior(act: Activity, offs: np.ndarray, cfg: CharacteriseConfig) -> np.ndarray:
    """Log prior of each candidate offset: 0 where people kept that time while the data
    were posted, log(uninhabited_offset_prior) elsewhere."""
    if len(act.quarters) == 0 or cfg.uninhabited_offset_prior >= 1.0:
        return np.zeros(len(offs))
    epoch = dt.datetime(1970, 1, 1)
    first = (epoch + dt.timedelta(minutes=15 * int(act.quarters.min()))).year
    last = (epoch + dt.timedelta(minutes=15 * int(act.quarters.max()))).year
    kept = _inhabited(first, last, tuple(offs.tolist()))
    return np.where(kept, 0.0, np.log(cfg.uninhabited_offset_prior))


@lru_cache(maxsize=64)
def _inhabited(first_year: int, last_year: int, offs: tuple[float, ...]) -> np.ndarray:
    """Which of `offs` some place kept in those years (once per run, not per group)."""
    return np.isin(np.array(offs), list(inhabited_offsets(first_year, last_year)))


def fit(act: Activity, cfg: CharacteriseConfig) -> Fit:
    """Most likely offset and schedule by template likelihood over all offsets at once."""
    if act.hist.sum() < cfg.time_min_posts:
        return Fit(None, None, None, None, {}, None)
    return _decide(act, _family_loglik(act.hist, cfg), cfg)


def loglik(hist: np.ndarray, cfg: CharacteriseConfig) -> np.ndarray:
    """Log-likelihood of a UTC week histogram under every (offset, template row): one
    matrix product per working week, every hypothesis at once. A template's day depends
    only on whether that day and the day before are workdays (a night shift runs into
    the next day), so the histogram is folded into those four day types first."""
    key = _template_key(cfg)
    local = _local(hist, cfg)
    folded = _folded(key)
    # One BLAS thread: a product this small gains nothing from more on a busy machine
    # (twice the CPU time), and the sums then round the same way everywhere.
    with _blas().limit(limits=1, user_api="blas"):
        if folded is None:
            return local @ _templates(key)[0].T
        days = local.reshape(len(local), 7, DAY)
        ll = np.empty((len(local), len(_templates(key)[2])))
        for rows, day_type, logp in folded:
            types = np.stack([days[:, day_type == t].sum(axis=1) for t in range(4)], axis=1)
            ll[:, rows] = types.reshape(len(local), 4 * DAY) @ logp.T
        return ll


def _family_loglik(hist: np.ndarray, cfg: CharacteriseConfig) -> dict[str, np.ndarray]:
    """`loglik`'s columns of each family (`_families`' rows, in their order), each family
    a contiguous matrix of its own: the same products, split by family, so the decision
    reads them without copying columns out of the whole matrix."""
    key = _template_key(cfg)
    parts = _family_folded(key)
    families = _families(key)
    if parts is None:
        ll = loglik(hist, cfg)
        return {name: ll[:, fam.rows] for name, fam in families.items()}
    local = _local(hist, cfg)
    days = local.reshape(len(local), 7, DAY)
    out = {name: np.empty((len(local), len(fam.rows))) for name, fam in families.items()}
    with _blas().limit(limits=1, user_api="blas"):
        for day_type, chunks in parts:
            types = np.stack([days[:, day_type == t].sum(axis=1) for t in range(4)], axis=1)
            types = types.reshape(len(local), 4 * DAY)
            for name, cols, logp in chunks:
                np.matmul(types, logp.T, out=out[name][:, cols])
    return out


@lru_cache(maxsize=4)
def _family_folded(key: str) -> list[tuple[np.ndarray, list[tuple[str, slice, np.ndarray]]]] | None:
    """`_folded` with each working week's rows split by family: per week its day types
    and, per run of its rows that are adjacent among a family's columns, the family, the
    run's columns and their log-probabilities per day type."""
    folded = _folded(key)
    if folded is None:
        return None
    out = []
    for rows, day_type, logp in folded:
        chunks = []
        for name, fam in _families(key).items():
            inside = np.flatnonzero(np.isin(rows, fam.rows))
            cols = np.searchsorted(fam.rows, rows[inside])
            cuts = np.flatnonzero(np.diff(cols) != 1) + 1
            for run, at in zip(np.split(inside, cuts), np.split(cols, cuts), strict=True):
                if len(run):
                    chunks.append((name, slice(int(at[0]), int(at[-1]) + 1),
                                   np.ascontiguousarray(logp[run])))
        out.append((day_type, chunks))
    return out


def one_blas_thread():
    """A context in which BLAS runs on one thread (`loglik`): held around every thread
    that fits, so one thread's fit ending does not lift the limit under another's."""
    return _blas().limit(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@lru_cache(maxsize=4)
def _folded(key: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Per working week: its template rows, each weekday's type (2 x the day before is a
    workday + the day is one) and the rows' log-probabilities per type (4 x 96). None
    when some template is not made of such days: `loglik` then takes the full week."""
    logp, _, meta = _templates(key)
    out, covered = [], 0
    for name, workdays in WORKWEEKS.items():
        rows = np.array([i for i, m in enumerate(meta) if m["workweek"] == name], dtype=int)
        if len(rows) == 0:
            continue
        work = np.isin(np.arange(7), workdays).astype(int)
        day_type = 2 * np.roll(work, 1) + work
        if len(set(day_type.tolist())) < 4:
            return None
        first = [int(np.flatnonzero(day_type == t)[0]) for t in range(4)]
        week = logp[rows].reshape(len(rows), 7, DAY)
        per_type = week[:, first]
        if not np.array_equal(per_type[:, day_type], week):
            return None
        out.append((rows, day_type, np.ascontiguousarray(per_type.reshape(len(rows), -1))))
        covered += len(rows)
    return out if covered == len(meta) else None


def _local(hist: np.ndarray, cfg: CharacteriseConfig) -> np.ndarray:
    """local[o, b] = hist[(b - 4*o) % 672]: the histogram in each candidate local time."""
    shifts = np.rint(offsets(cfg) * 4).astype(int)
    idx = (np.arange(BINS)[None, :] - shifts[:, None]) % BINS
    return hist[idx].astype(float)


def _decide(act: Activity, sub: dict[str, np.ndarray], cfg: CharacteriseConfig) -> Fit:
    """The `Fit` from the log-likelihood of every (offset, template row), per family
    (`_family_loglik`)."""
    n = float(act.hist.sum())
    offs = offsets(cfg)
    key = _template_key(cfg)
    meta = _templates(key)[2]
    families = _families(key)
    flat_ll = n * np.log(1.0 / BINS)
    gain = {name: float((v.max() - flat_ll) / n) for name, v in sub.items()}
    if max(gain.values()) < cfg.automated_max_gain:
        return Fit(None, None, None, "automated", gain, None)
    name = "office" if gain["office"] > gain["human"] + cfg.office_margin else "human"
    # The best row (first in offset-major order, as argmax over the whole matrix).
    best_off, best_col = divmod(int(np.argmax(sub[name])), sub[name].shape[1])
    best_row = int(families[name].rows[best_col])
    # Posterior over offsets, summed over the family's templates (a night owl's curve at
    # one offset is an early bird's at the next, so that uncertainty shows) and tempered:
    # only n_eff of the n posts are independent observations, and a template's misfit is
    # scatter, not evidence (`_dispersion`).
    weight = min(act.n_eff, n) / n
    weight /= _dispersion(act.hist, offs[best_off], _templates(key)[0][best_row], weight)
    tempered = sub[name] * weight + families[name].prior[None, :]
    marginal = _logsumexp_rows(tempered) + offset_prior(act, offs, cfg)
    post = np.exp(marginal - marginal.max())
    post /= post.sum()
    order = np.argsort(-post)
    runner = (float(offs[order[1]]), float(post[order[1]]))
    return Fit(float(offs[order[0]]), float(post[order[0]]), runner, name, gain,
               meta[best_row]["workweek"])


def _dispersion(hist: np.ndarray, offset: float, logp: np.ndarray, weight: float) -> float:
    """Quasi-likelihood dispersion of the best template: Pearson chi-square per degree of
    freedom of the (tempered) counts, at least 1. A template that misfits (offices
    whose edges are staggered, a curve that is not the group's) leaves more than Poisson
    scatter, and the log-likelihood differences between offsets are then divided by it,
    as a quasi-Poisson model does: otherwise thousands of posts make a misfit certain."""
    expected = np.exp(logp) * hist.sum()
    x2 = float((((local_hist(hist, offset) - expected) ** 2) / expected).sum())
    return max(1.0, weight * x2 / (BINS - 1))


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """`scipy.special.logsumexp(a, axis=1)` for a finite real matrix, step for step the
    same arithmetic (same bits), without its second pass for infinite inputs."""
    a_max = a.max(axis=1, keepdims=True)
    at_max = a == a_max
    m = at_max.astype(a.dtype).sum(axis=1, keepdims=True, dtype=a.dtype)
    # scipy sets the maxima to -inf before exp(a - a_max); zeroing their exp is the same.
    terms = np.exp(a - a_max)
    terms[at_max] = 0.0
    total = terms.sum(axis=1, keepdims=True, dtype=a.dtype)
    total = np.where(total == 0, total, total / m)
    return (np.log1p(total) + np.log(m) + a_max)[:, 0]


def _clock(q: int) -> str:
    q %= DAY
    return f"{q // 4:02d}:{(q % 4) * 15:02d}"


def shifts(
    hist: np.ndarray, offset: float, cfg: CharacteriseConfig, workweek: str = "Mon-Fri",
    team: bool = False, weight: float = 1.0,
) -> tuple[list[dict], list[dict]]:
    """Work blocks and breaks of workdays in local time, from the quarter-hour profile.

    The day is cut where its rate changes (`segments`: piecewise-constant Poisson, BIC)
    and each segment is judged at work or away (`_away`); the longest away run is the
    night, away runs of `min_break_minutes` to `max_break_hours` inside the working span
    are breaks, each with the span its start and end could take (`start_range`,
    `end_range`: profile likelihood). `weight` is the share of posts that are independent
    observations (n_eff / n). A `team` (one office: a cluster whose hours differ from its
    operation's other clusters) is read by `_team_quiet` instead."""
    days = list(WORKWEEKS.get(workweek, WORKWEEKS["Mon-Fri"]))
    day = local_hist(hist, offset).reshape(7, DAY)[days].sum(axis=0).astype(float)
    if day.sum() == 0:
        return [], []
    max_gap = int(cfg.max_break_hours * 4)
    bounds: dict[int, tuple[int, int]] = {}
    if team:
        quiet = _team_quiet(day, cfg)
    else:
        # Cut the day in the middle of its quietest stretch, far from any boundary.
        window = np.convolve(np.r_[day, day[:max_gap]], np.ones(max_gap), "valid")[:DAY]
        origin = (int(np.argmin(window)) + max_gap // 2) % DAY
        segs = segments(np.roll(day, -origin), weight, cfg.break_segment_penalty)
        away = _away(_circular(segs), max_gap, cfg.break_floor_posts)
        if len(segs) > 1:  # the first and last segments were judged as one
            away = np.r_[away[-1], away]
        quiet = np.zeros(DAY, dtype=bool)
        for (a, b, _), aw in zip(segs, away, strict=True):
            quiet[a:b] = aw
        quiet = np.roll(quiet, origin)
        bounds = {(origin + q) % DAY: (origin + lo, origin + hi) for q, (lo, hi) in
                  _boundary_ranges(np.roll(day, -origin), segs, away, weight,
                                   cfg.break_floor_posts).items()}
    if quiet.all():
        return [], []
    if not quiet.any():
        return [{"start": "00:00", "end": "24:00"}], []
    night_start, night_len = max(_runs(quiet), key=lambda r: r[1])
    origin = (night_start + night_len) % DAY
    span = np.roll(quiet, -origin)[: DAY - night_len]  # the working span, night cut off
    min_gap = cfg.min_break_minutes // 15
    gaps = [(s, n) for s, n in _runs(span, circular=False) if min_gap <= n <= max_gap]
    edges = [0] + [x for s, n in gaps for x in (s, s + n)] + [len(span)]
    work = [{"start": _clock(origin + a), "end": _clock_end(origin + b)}
            for a, b in zip(edges[::2], edges[1::2], strict=True)]
    breaks = []
    for s_, n in gaps:
        mid = ((origin + s_ + n / 2) % DAY) / 4
        name = "lunch" if 10.5 <= mid < 15.5 else "supper" if 15.5 <= mid < 21.5 else "break"
        brk = {"name": name, "start": _clock(origin + s_), "end": _clock_end(origin + s_ + n)}
        for key, q in (("start_range", origin + s_), ("end_range", origin + s_ + n)):
            if q % DAY in bounds:
                lo, hi = bounds[q % DAY]
                brk[key] = [_clock(lo), _clock_end(hi)]
        breaks.append(brk)
    return work, breaks


def segments(day: np.ndarray, weight: float = 1.0,
             penalty: float | None = None) -> list[tuple[int, int, float]]:
    """(start, end, posts per bin) of the most likely piecewise-constant Poisson rate of a
    count series, each extra segment paying `penalty` nats (None: BIC, log of the number
    of bins); the log-likelihood is tempered by `weight`. Optimal partitioning, O(n^2)."""
    n = len(day)
    pen = float(np.log(n)) if penalty is None else penalty
    cum = np.r_[0.0, np.cumsum(day)]
    best = np.full(n + 1, np.inf)
    best[0] = -pen
    back = np.zeros(n + 1, dtype=int)
    for j in range(1, n + 1):
        total, length = cum[j] - cum[:j], j - np.arange(j)
        ll = total * np.log(np.maximum(total, 1e-300) / length) - total
        cost = best[:j] - weight * ll + pen
        back[j] = int(np.argmin(cost))
        best[j] = cost[back[j]]
    edges = [n]
    while edges[-1] > 0:
        edges.append(int(back[edges[-1]]))
    edges.reverse()
    return [(a, b, float((cum[b] - cum[a]) / (b - a)))
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _circular(segs: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Segments of a day cut at midnight-of-the-profile, the last joined with the first
    (the cut is no rate change): its end runs past DAY."""
    if len(segs) < 2:
        return segs
    (a0, b0, r0), (a1, b1, r1) = segs[0], segs[-1]
    joined = (a1, b0 + DAY, (r0 * (b0 - a0) + r1 * (b1 - a1)) / (b0 - a0 + b1 - a1))
    return [*segs[1:-1], joined]


def _away(segs: list[tuple[int, int, float]], reach: int, floor_posts: float) -> np.ndarray:
    """Which segments of a (circular) day are away from work.

    A segment's working level is the busiest segment within `reach` quarter hours on
    each side, the lower of the two; its break level is the floor of the valley it sits
    in (walking downhill), with `floor_posts` added so an empty stretch has a rate. A
    valley is a break only when its floor is at most half the working level (at least
    half the workforce away, the consensus definition); a segment in it is away when its
    posts are likelier at the break level than at the working level (two-state Poisson:
    rate below the logarithmic mean of the two), so a thin tail of work stays work."""
    rates = np.array([r for _, _, r in segs])
    starts = np.array([a for a, _, _ in segs])
    ends = np.array([b for _, b, _ in segs])
    k = len(segs)
    away = np.zeros(k, dtype=bool)
    for i in range(k):
        others = np.arange(k) != i
        left = others & ((starts[i] - ends) % DAY < reach)
        right = others & ((starts - ends[i]) % DAY < reach)
        level = min(rates[left].max(initial=0.0), rates[right].max(initial=0.0))
        j = i
        for _ in range(k):
            nxt = min((j - 1) % k, (j + 1) % k, key=lambda x: rates[x])
            if rates[nxt] >= rates[j]:
                break
            j = nxt
        floor = rates[j] + floor_posts / (ends[j] - starts[j])
        if level <= 0:  # nothing posted around it: the night
            away[i] = rates[i] == 0
            continue
        if floor > level / 2:
            continue
        away[i] = rates[i] <= (level - floor) / np.log(level / floor)
    return away


def _boundary_ranges(day: np.ndarray, segs: list[tuple[int, int, float]], away: np.ndarray,
                     weight: float, floor_posts: float) -> dict[int, tuple[int, int]]:
    """For each boundary between a working and an away segment: the quarter hours it
    could move to within 1.92 nats of tempered profile log-likelihood (a 95% interval),
    the two segments' rates refitted at each position (with `floor_posts` added, so a
    stray post in an empty break is unlikely, not impossible)."""
    cum = np.r_[0.0, np.cumsum(day)]

    def ll(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        total, length = cum[b] - cum[a], np.maximum(b - a, 1)
        return total * np.log((total + floor_posts) / length) - total

    out = {}
    for i in range(len(segs) - 1):
        if away[i] == away[i + 1]:
            continue
        a, _, _ = segs[i]
        _, b, _ = segs[i + 1]
        x = np.arange(a + 1, b)
        prof = weight * (ll(np.full_like(x, a), x) + ll(x, np.full_like(x, b)))
        inside = x[prof >= prof.max() - 1.92]
        out[segs[i][1]] = (int(inside.min()), int(inside.max()))
    return out


def _team_quiet(day: np.ndarray, cfg: CharacteriseConfig) -> np.ndarray:
    """Quarter hours a team is away: below `team_active_level` of its busy level (90th
    percentile of the profile, smoothed more when counts are small): its last
    stragglers before a break are still at work, and partial dips are other teams'
    breaks, which a single team does not have."""
    smooth = day.copy()
    typical = float(np.median(day[day > 0]))
    for _ in range(min(4, int(np.ceil(np.log2(max(cfg.break_min_bin_posts / typical, 1.0)))))):
        smooth = (np.roll(smooth, 1) + 2 * smooth + np.roll(smooth, -1)) / 4
    busy = np.percentile(smooth[smooth > 0], 90)
    return smooth < cfg.team_active_level * busy


def _quarters(spans: list[dict[str, str]]) -> np.ndarray:
    """Quarter hours of a local day covered by `{"start", "end"}` clock spans (a span
    whose end is before its start runs past midnight)."""
    day = np.zeros(DAY, dtype=bool)
    for span in spans:
        a, b = _q(span["start"]), _q(span["end"])
        day[np.arange(a, b if b > a else b + DAY) % DAY] = True
    return day


def _q(clock: str) -> int:
    h, m = clock.split(":")
    return int(h) * 4 + int(m) // 15


def consensus(readings: list[tuple[list[dict], list[dict]]]) -> tuple[list[dict], list[dict]]:
    """Operation-level (work hours, breaks) from its clusters' own (work, breaks).

    Each cluster (an office, a team) counts once: a quarter hour is a break when at
    least half the clusters are on a break then, and worked when more than half are
    inside their work hours, so the two never overlap. A break takes the name most
    clusters give the hours it covers."""
    on_break = np.array([_quarters(b) for _, b in readings])
    working = np.array([_quarters(w) for w, _ in readings])
    half = len(readings) / 2
    work = [{"start": _clock(a), "end": _clock_end(a + n)}
            for a, n in _runs(working.sum(axis=0) > half)]
    breaks = []
    for a, n in _runs(on_break.sum(axis=0) >= half):
        span = np.arange(a, a + n) % DAY
        votes: dict[str, int] = {}
        for _, brk in readings:
            for b in brk:
                votes[b["name"]] = votes.get(b["name"], 0) + int(_quarters([b])[span].sum())
        name = max(votes, key=lambda k: (votes[k], k))
        breaks.append({"name": name, "start": _clock(a), "end": _clock_end(a + n)})
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
    days of the data are partial and never judged. Countries half an hour either side
    are checked too: an office that opens half an hour off the usual hour reads half an
    hour away, and its holidays still tell where it is."""
    countries = list(dict.fromkeys(OFFSET_COUNTRIES.get(offset, [])
                                   + OFFSET_COUNTRIES.get(offset - 0.5, [])
                                   + OFFSET_COUNTRIES.get(offset + 0.5, [])))
    if not countries or len(act.quarters) == 0:
        return [], {}
    local_day = (act.quarters + int(round(offset * 4))) // DAY
    first, last = int(local_day.min()), int(local_day.max())
    per_day = np.bincount(local_day - first, weights=act.counts, minlength=last - first + 1)
    epoch = dt.date(1970, 1, 1)
    dates = [epoch + dt.timedelta(days=first + i) for i in range(len(per_day))]
    workdays = WORKWEEKS.get(workweek, WORKWEEKS["Mon-Fri"])
    weekday = np.array([d.weekday() in workdays for d in dates])
    years = tuple(sorted({d.year for d in dates}))
    calendars = {code: cal for code in countries
                 if (cal := _calendar(code, years)) is not None}
    # Each calendar's holidays as indices into `dates`, in date order.
    on = {code: sorted(i for i in (day - first for day in cal) if 0 <= i < len(dates))
          for code, cal in calendars.items()}
    is_holiday = np.zeros(len(dates), dtype=bool)
    for idx in on.values():
        is_holiday[idx] = True
    ordinary = per_day[weekday & ~is_holiday]
    if len(ordinary) == 0:
        return [], {}
    baseline = float(np.median(ordinary))
    found, checked = [], {}
    for code, cal in calendars.items():
        tally = {"checked": 0, "quiet": 0}
        for i in on[code]:
            inside = 0 < i < len(dates) - 1
            if weekday[i] and inside and baseline >= cfg.holiday_min_baseline:
                tally["checked"] += 1
                if per_day[i] <= cfg.holiday_quiet_ratio * baseline:
                    tally["quiet"] += 1
                    found.append({"date": dates[i].isoformat(), "name": cal[first + i],
                                  "country": code, "posts": int(per_day[i]),
                                  "usual_weekday_posts": baseline})
        checked[code] = tally
    # The country whose calendar explains most quiet days comes first.
    rank = {c: (-t["quiet"], -t["quiet"] / max(t["checked"], 1), c) for c, t in checked.items()}
    found.sort(key=lambda h: (rank[h["country"]], h["date"]))
    return found, dict(sorted(checked.items(), key=lambda kv: rank[kv[0]]))


@lru_cache(maxsize=256)
def _calendar(code: str, years: tuple[int, ...]) -> dict[int, str] | None:
    """A country's public holidays in `years` as {days since 1970-01-01: name} (None when
    the holidays package has no calendar for it); built once per run, not per group."""
    try:
        cal = holidays.country_holidays(code, years=list(years))
    except NotImplementedError:
        return None
    epoch = dt.date(1970, 1, 1)
    return {(d - epoch).days: cal.get(d) for d in sorted(cal)}


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
        "teams": [], "breaks_from_teams": 0, "cluster_hours_p": None,
    }
    if f.offset is None:
        prof["evidence"] = _evidence(prof, act)
        return prof, f
    blocks, breaks = shifts(act.hist, f.offset, cfg, f.workweek or "Mon-Fri",
                            weight=_weight(act))
    prof["hour_of_week_local"] = hour_of_week(local_hist(act.hist, f.offset))
    prof["active_hours"] = blocks
    if f.schedule == "office":
        prof["work_hours"], prof["breaks"] = blocks, breaks
    workweek = f.workweek or "Mon-Fri"
    parts = [h for h in act.parts.values() if h.sum() >= cfg.break_cluster_min_posts]
    prof["cluster_hours_p"] = _r(hours_differ_p(parts, f.offset, workweek))
    if f.schedule == "office" and act.accounts is not None:
        # Teams that keep different hours (Meta told Spamouflage's offices apart by their
        # shifts): the operation's breaks are when at least half of them are away, each
        # read on its own histogram, not on the merged one where staggered breaks blur.
        labels = teams(act.accounts, cfg)
        hists, members, readings = merge_teams(
            team_hists(act.accounts, labels),
            [np.flatnonzero(labels == t) for t in range(int(labels.max()) + 1)],
            f.offset, workweek, cfg)
        if len(hists) > 1:
            # A team never away while others break is not an office without breaks but
            # accounts of several offices the search did not part: no vote.
            voters = [r for r in readings if r[1]] or readings
            prof["work_hours"], prof["breaks"] = consensus(voters)
            prof["breaks_from_teams"] = len(voters)
            prof["teams"] = sorted((_team_entry(h, m, r, act.accounts, cfg) for h, m, r
                                    in zip(hists, members, readings, strict=True)),
                                   key=lambda t: -t["accounts"])
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
    p = op_time.get("cluster_hours_p")
    entry["own_hours"] = p is not None and p < cfg.cluster_hours_max_p
    if offset is not None and act.hist.sum() >= cfg.time_min_posts:
        entry["work_hours"], entry["breaks"] = shifts(
            act.hist, offset, cfg, op_time.get("workweek") or "Mon-Fri",
            team=entry["own_hours"], weight=_weight(act))
    return entry


def shifts_differ(clusters: dict[str, dict[str, Any]]) -> bool:
    """True when clusters keep different hours beyond chance (the homogeneity test of
    `hours_differ_p`; Meta told Spamouflage's offices apart so)."""
    return any(c.get("own_hours") for c in clusters.values())


def hours_differ_p(parts: list[np.ndarray], offset: float | None,
                   workweek: str = "Mon-Fri") -> float | None:
    """p-value that clusters share one daily schedule: chi-square test of homogeneity of
    their workday half-hour counts (local time). Clusters that merely split one mixed
    workforce (by platform, say) pass it; offices on shifts half an hour apart fail it
    by hundreds of orders of magnitude. None with fewer than two clusters."""
    if offset is None or len(parts) < 2:
        return None
    days = list(WORKWEEKS.get(workweek, WORKWEEKS["Mon-Fri"]))
    table = np.array([local_hist(h, offset).reshape(7, DAY)[days].sum(axis=0)
                      .reshape(DAY // 2, 2).sum(axis=1) for h in parts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return None
    return float(chi2_contingency(table)[1])


def teams(posts: AccountPosts, cfg: CharacteriseConfig) -> np.ndarray:
    """Each account's team (-1: too few timed posts to place), found from when the
    accounts post: a team works the same hours of the same days (one shift, one office's
    holidays and overtime, the drops it posts together), so each account's timed posts by
    dated `team_bin_minutes` bin are a draw from its team's own multinomial. A mixture of
    multinomials is fitted by EM for 1, 2, ... teams; how many is chosen by two-fold
    held-out likelihood (alternate accounts in two halves, each half's fit scoring the
    other half), stopping at the first extra team that does not raise it, or at
    `team_max`. Detected clusters are not the teams: a cluster mixes offices or splits
    one, and voting by clusters counts them wrong."""
    acc, n = posts.account, posts.counts.astype(float)
    labels = np.full(len(posts.cluster), -1)
    placed = np.bincount(acc, weights=n, minlength=len(labels)) >= cfg.team_account_min_posts
    keep = placed[acc]
    if placed.sum() < 2 or n[keep].sum() < 2 * cfg.break_cluster_min_posts:
        return labels  # not two teams that could each read their breaks
    rows = np.cumsum(placed) - 1
    acc_k, q_k, n_k = rows[acc[keep]], posts.quarters[keep], n[keep]
    _, col = np.unique(q_k // (cfg.team_bin_minutes // 15), return_inverse=True)
    shape = (int(placed.sum()), int(col.max()) + 1)
    x = sparse.csr_matrix((n_k, (acc_k, col)), shape=shape)
    # The halves: alternate accounts. Accounts are the mixture's independent draws, so a
    # fit is judged on accounts it has not seen (an account's own bursts cannot help).
    halves = (x[0::2], x[1::2])
    rng = np.random.default_rng(0)
    prior = cfg.team_prior_posts
    fits: dict[int, list[_Mixture]] = {}
    scores: list[float] = []
    last: list[np.ndarray | None] = [None, None]
    for k in range(1, cfg.team_max + 1):
        fits[k] = []
        for i, fit_on in enumerate(halves):
            mix = _em(fit_on, k, rng, prior, grow=last[i])
            last[i] = mix.resp
            fits[k].append(mix)
        scores.append(sum(f.heldout(other) for f, other in
                          zip(fits[k], halves[::-1], strict=True)))
        if k > 1 and scores[-1] <= scores[-2]:
            break
    best = int(np.argmax(scores)) + 1
    if best == 1:
        labels[placed] = 0
        return labels
    mix = _em(x, best, rng, prior, starts=[f.posterior(x) for f in fits[best]])
    labels[placed] = mix.resp.argmax(axis=1)
    return labels


@dataclass
class _Mixture:
    """A fitted mixture of multinomials: log weights, log bin probabilities per team
    (k x bins) and each account's team probabilities."""

    log_weight: np.ndarray
    log_theta: np.ndarray
    resp: np.ndarray
    loglik: float

    def posterior(self, x: sparse.csr_matrix) -> np.ndarray:
        """Team probabilities of each account of `x` under this fit."""
        return _normalise(self.log_weight + x @ self.log_theta.T)[0]

    def heldout(self, x: sparse.csr_matrix) -> float:
        """Log-likelihood of accounts `x` the fit has not seen (without the multinomial
        coefficients, which are the same under every fit)."""
        return float(_normalise(self.log_weight + x @ self.log_theta.T)[1].sum())


def _normalise(log_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised probabilities of row log-weights, and each row's log total."""
    top = log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p - top)
    total = p.sum(axis=1, keepdims=True)
    return p / total, (np.log(total) + top)[:, 0]


def _em(x: sparse.csr_matrix, k: int, rng: np.random.Generator, prior: float,
        grow: np.ndarray | None = None, starts: list[np.ndarray] = (),
        iterations: int = 200, tol: float = 1e-5) -> _Mixture:
    """EM for a k-team mixture of multinomials, the best of several starts: `starts`
    (team probabilities), else one random hard split and, from a (k-1)-team fit's
    `grow`, each of its two largest teams cut in two at random (EM from random starts
    alone often leaves two offices in one team)."""
    inits = list(starts)
    if not inits:
        inits.append(np.eye(k)[rng.integers(0, k, x.shape[0])])
        if grow is not None:
            for j in np.argsort(-grow.sum(axis=0))[:2]:
                init = np.c_[grow, np.zeros(len(grow))]
                move = rng.random(len(grow)) < 0.5
                init[move, k - 1], init[move, j] = init[move, j], 0.0
                inits.append(init)
    xt = x.T.tocsr()
    best: _Mixture | None = None
    for resp in inits:
        previous = -np.inf
        for _ in range(iterations):
            weight = resp.mean(axis=0)
            theta = np.asarray(xt @ resp).T + prior
            log_theta = np.log(theta / theta.sum(axis=1, keepdims=True))
            log_weight = np.log(np.maximum(weight, 1e-300))
            resp, rows = _normalise(log_weight + x @ log_theta.T)
            ll = float(rows.sum())
            if ll - previous <= tol * abs(ll):
                break
            previous = ll
        if best is None or ll > best.loglik:
            best = _Mixture(log_weight, log_theta, resp, ll)
    assert best is not None
    return best


def team_hists(posts: AccountPosts, labels: np.ndarray) -> list[np.ndarray]:
    """UTC week histogram of each team's timed posts (team 0, 1, ...)."""
    team = labels[posts.account]
    sel = team >= 0
    if not sel.any():
        return []
    flat = team[sel] * BINS + (posts.quarters[sel] - MONDAY_Q) % BINS
    size = (int(team.max()) + 1) * BINS
    return list(np.bincount(flat, weights=posts.counts[sel], minlength=size).reshape(-1, BINS))


Reading = tuple[list[dict], list[dict]]  # (work hours, breaks) of `shifts`


def merge_teams(hists: list[np.ndarray], members: list[np.ndarray], offset: float,
                workweek: str, cfg: CharacteriseConfig
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[Reading]]:
    """Teams with their own readings (`shifts` as one team): those too small to read
    (below `break_cluster_min_posts` timed posts) dropped, then any two that read the
    same work blocks, every edge within `team_same_minutes`, merged and read again:
    teams told apart by the days they work (one office in two rotas, or cut in two by
    the search) that keep one schedule vote once. `members` are each team's accounts."""
    kept = [(h, m) for h, m in zip(hists, members, strict=True)
            if h.sum() >= cfg.break_cluster_min_posts]
    hists, members = [h for h, _ in kept], [m for _, m in kept]
    readings = [shifts(h, offset, cfg, workweek, team=True) for h in hists]
    while True:
        pair = next(((i, j) for i in range(len(hists)) for j in range(i + 1, len(hists))
                     if _same_blocks(readings[i][0], readings[j][0], cfg.team_same_minutes)),
                    None)
        if pair is None:
            return hists, members, readings
        i, j = pair
        hists[i], members[i] = hists[i] + hists[j], np.r_[members[i], members[j]]
        readings[i] = shifts(hists[i], offset, cfg, workweek, team=True)
        del hists[j], members[j], readings[j]


def _same_blocks(a: list[dict], b: list[dict], minutes: int) -> bool:
    """Two readings' work blocks are the same, each edge within `minutes`."""
    if len(a) != len(b):
        return False
    return all(_minutes_apart(x[k], y[k]) <= minutes
               for x, y in zip(a, b, strict=True) for k in ("start", "end"))


def _minutes_apart(a: str, b: str) -> int:
    d = abs(_q(a) - _q(b)) * 15 % 1440
    return min(d, 1440 - d)


def _team_entry(hist: np.ndarray, members: np.ndarray, reading: tuple[list, list],
                posts: AccountPosts, cfg: CharacteriseConfig) -> dict[str, Any]:
    """One team as the profile shows it: size, hours, and the clusters its accounts are in."""
    names, counts = np.unique(posts.cluster[members].astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")[: cfg.max_listed]
    return {"accounts": len(members), "posts": int(hist.sum()), "work_hours": reading[0],
            "breaks": reading[1],
            "clusters": {str(names[i]): int(counts[i]) for i in order}}


def _weight(act: Activity) -> float:
    """Share of the posts that are independent observations of the schedule."""
    n = float(act.hist.sum())
    return min(act.n_eff, n) / n if n else 1.0


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
        if p.get("breaks_from_teams"):
            text += (f" (when at least half of the {p['breaks_from_teams']} teams that take "
                     f"breaks are away; {len(p['teams'])} teams of accounts found by when "
                     "they post, on different hours)")
    if p["weekend_ratio"] is not None:
        text += (f"; {p['workweek']} week, off days at {p['weekend_ratio']:.2f} of "
                 "workday activity")
    if p["quiet_holidays"]:
        text += "; quiet on " + ", ".join(f"{h['name']} ({h['country']} {h['date']})"
                                         for h in p["quiet_holidays"][:5])
    return text + "."
