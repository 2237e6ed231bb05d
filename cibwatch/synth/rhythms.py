"""When people and operators post: diurnal human rhythms, office shifts, 24/7 automation.

All samplers are vectorised: they take arrays (one value per event) and return UTC
timestamps in whole seconds since the epoch. Offsets are fixed (no daylight saving),
which is what a timestamp-only analysis sees over a few weeks anyway.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import holidays
import numpy as np

DAY = 86_400
HOUR = 3_600

# Relative activity of an ordinary person by local hour (0..23): asleep 2-6, a morning
# rise, a lunch bump, an evening peak around 21:00 (time-use and platform studies).
HUMAN_PROFILE = np.array(
    [3.0, 1.8, 1.0, 0.6, 0.4, 0.5, 1.2, 2.6, 3.8, 4.2, 4.3, 4.5,
     5.0, 4.6, 4.3, 4.3, 4.5, 4.9, 5.4, 6.0, 6.6, 7.0, 6.4, 4.8],
    dtype=float,
)
_HUMAN_CDF = np.cumsum(HUMAN_PROFILE) / HUMAN_PROFILE.sum()


@dataclass(frozen=True)
class Calendar:
    """The world's days: start (a Monday, 00:00 UTC) and length."""

    start: int
    days: int

    @property
    def end(self) -> int:
        return self.start + self.days * DAY

    def weekday(self, day: np.ndarray) -> np.ndarray:
        """0 = Monday for a local day index (the world starts on a Monday)."""
        return np.asarray(day) % 7

    def date(self, day: int) -> dt.date:
        return (dt.datetime.fromtimestamp(self.start, dt.UTC) + dt.timedelta(days=int(day))).date()

    @functools.cache  # noqa: B019 - a frozen, hashable value object; a handful of worlds
    def cn_holidays(self) -> dict[int, str]:
        """Day index -> name of the mainland-China public holidays inside the world."""
        first, last = self.date(0), self.date(self.days - 1)
        cn = holidays.China(years=range(first.year, last.year + 1))
        out = {}
        for d in range(self.days):
            name = cn.get(self.date(d))
            if name:
                out[d] = name
        return out


def human_times(
    rng: np.random.Generator,
    cal: Calendar,
    offset_h: np.ndarray,
    chrono_h: np.ndarray,
    weekend_weight: np.ndarray,
    lo: np.ndarray | None = None,
) -> np.ndarray:
    """One UTC time per event for people with their own offset, chronotype shift (hours,
    night owls have +3..+5) and weekend weight (>1: heavier weekends). `lo` (optional)
    is the earliest allowed time per event (e.g. account creation)."""
    n = len(offset_h)
    n_we = sum(1 for d in range(cal.days) if d % 7 >= 5)
    n_wd = cal.days - n_we
    p_we = weekend_weight * n_we / (weekend_weight * n_we + n_wd)
    is_we = rng.random(n) < p_we
    # Day indices: a random weekday or weekend day of the world.
    week = rng.integers(0, (cal.days + 6) // 7, n)
    dow = np.where(is_we, rng.integers(5, 7, n), rng.integers(0, 5, n))
    day = week * 7 + dow
    day = np.where(day >= cal.days, day - 7, day)
    hour = np.searchsorted(_HUMAN_CDF, rng.random(n)) + rng.random(n)
    hour = (hour + chrono_h + rng.normal(0.0, 0.6, n)) % 24.0
    local = cal.start + day * DAY + (hour * HOUR).astype(np.int64)
    ts = local - (np.asarray(offset_h) * HOUR).astype(np.int64)
    if lo is not None:
        ts = np.maximum(ts, lo + rng.integers(60, 3 * DAY, n))
    return wrap(cal, ts)


def wrap(cal: Calendar, ts: np.ndarray) -> np.ndarray:
    """Move times that a time zone pushed past either end of the world a week inwards
    (same weekday and hour), instead of piling them up on the edge."""
    ts = np.where(ts < cal.start, ts + 7 * DAY, ts)
    ts = np.where(ts >= cal.end, ts - 7 * DAY, ts)
    return np.clip(ts, cal.start, cal.end - 1).astype(np.int64)


@dataclass(frozen=True)
class Block:
    """A stretch of work: local hours [start, end). A share `plateau` of its posts is spread
    evenly over the whole block, the rest is a burst peaking at `peak` (sd `spread` hours,
    reflected into the block).

    The plateau is the staff at their desks until the break, the burst the campaign push
    on top: Meta's Spamouflage histograms show bursts over a working level with sharp drops
    at lunch and supper, so a scheduled break is where posting visibly stops (a burst alone
    thins out 1-2 hours before its block ends, and nothing in the data shows the schedule).
    """

    start: float
    end: float
    peak: float
    spread: float
    weight: float
    # Half plateau, half burst: the bursts still peak at 2.5-2.8 times the working level,
    # and the last hour before a break keeps 0.55-0.85 of the block's mean pace (0.1-0.7
    # with the burst alone).
    plateau: float = 0.5


@dataclass(frozen=True)
class Shift:
    """An office-shift variant: work blocks and named breaks, in local time. Staff post
    from the start to the end of each block (each block's `plateau`), with bursts on top;
    the breaks (truth) are the schedule's, and `office_times` puts nothing in them (an
    operation's own delays, such as a drop's last accounts, can run a few minutes in)."""

    name: str
    blocks: tuple[Block, ...]
    breaks: tuple[tuple[str, float, float], ...]
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    off_day_share: float = 0.02
    quiet_holidays: bool = True

    def work_hours(self) -> list[dict[str, str]]:
        return [{"start": hhmm(b.start), "end": hhmm(b.end % 24)} for b in self.blocks]

    def break_list(self) -> list[dict[str, str]]:
        return [{"name": n, "start": hhmm(s), "end": hhmm(e % 24)} for n, s, e in self.breaks]


def _quarters(spans: list[tuple[float, float]]) -> np.ndarray:
    """Quarter hours of a local day (96 bins) covered by [start, end) spans; spans past
    midnight (a night shift to 29:00) wrap into the early morning."""
    day = np.zeros(96, dtype=bool)
    for start, end in spans:
        q = np.arange(int(round(start * 4)), int(round(end * 4)))
        day[q % 96] = True
    return day


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) quarter-hour runs of True (a run through midnight is one run)."""
    edges = np.flatnonzero(np.diff(np.r_[False, mask, False].astype(int)))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == 96:
        runs = runs[1:-1] + [(runs[-1][0], runs[0][1] + 96)]
    return runs


def consensus(shifts: tuple[Shift, ...] | list[Shift]) -> tuple[list[dict], list[dict]]:
    """Operation-level (work_hours, breaks) of offices on different shift variants.

    Each office counts once (a team, whatever its size). A local quarter hour is an
    operation break when at least half of the offices are on a break then, and worked
    when more than half are inside a work block (so the two never overlap): the hours
    at which the operation as a whole is visibly quiet or busy, which is all its merged
    activity can show. A break takes the name most offices give the hours it covers.
    With one office this is that
    office's own schedule."""
    on_break = np.array([_quarters([(s, e) for _, s, e in sh.breaks]) for sh in shifts])
    working = np.array([_quarters([(b.start, b.end) for b in sh.blocks]) for sh in shifts])
    half = len(shifts) / 2
    work = [{"start": hhmm(a / 4), "end": hhmm(b / 4)}
            for a, b in _runs(working.sum(axis=0) > half)]
    breaks = []
    for a, b in _runs(on_break.sum(axis=0) >= half):
        span = np.arange(a, b) % 96
        votes: dict[str, int] = {}
        for sh in shifts:
            for name, s, e in sh.breaks:
                votes[name] = votes.get(name, 0) + int(_quarters([(s, e)])[span].sum())
        name = max(votes, key=lambda n: (votes[n], n))
        breaks.append({"name": name, "start": hhmm(a / 4), "end": hhmm(b / 4)})
    return work, breaks


def iso(ts: int) -> str:
    """Epoch seconds as ISO 8601 UTC (`2024-03-11T09:15:00Z`), for truth.json."""
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hhmm(hours: float) -> str:
    minutes = int(round(hours * 60)) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def working_days(cal: Calendar, shift: Shift) -> tuple[np.ndarray, np.ndarray]:
    """(work day indices, off day indices): weekends and, optionally, CN holidays off."""
    hol = cal.cn_holidays() if shift.quiet_holidays else {}
    days = np.arange(cal.days)
    work = np.isin(days % 7, shift.workdays) & ~np.isin(days, list(hol))
    return days[work], days[~work]


def office_times(
    rng: np.random.Generator, cal: Calendar, shift: Shift, offset_h: float, n: int
) -> np.ndarray:
    """n UTC times on an office shift: inside work blocks a working level from start to end
    (each block's `plateau` share) with a burst on top, nothing in breaks, a trickle on
    weekends and holidays."""
    work, off = working_days(cal, shift)
    on_off = rng.random(n) < shift.off_day_share
    day = np.where(on_off, rng.choice(off, n), rng.choice(work, n)) if len(off) else rng.choice(
        work, n
    )
    w = np.array([b.weight for b in shift.blocks])
    k = rng.choice(len(shift.blocks), n, p=w / w.sum())
    start = np.array([b.start for b in shift.blocks])[k]
    end = np.array([b.end for b in shift.blocks])[k]
    peak = np.array([b.peak for b in shift.blocks])[k]
    spread = np.array([b.spread for b in shift.blocks])[k]
    plateau = np.array([b.plateau for b in shift.blocks])[k]
    hour = peak + rng.normal(0.0, 1.0, n) * spread
    # Reflect draws that leave the block back inside it (no posts in breaks).
    hour = np.where(hour < start, start + (start - hour) % (end - start), hour)
    hour = np.where(hour >= end, end - (hour - end) % (end - start) - 1e-3, hour)
    # The working level: a `plateau` share of the posts anywhere in the block.
    level = rng.random(n) < plateau
    hour = np.where(level, start + rng.random(n) * (end - start), hour)
    local = cal.start + day * DAY + (hour * HOUR).astype(np.int64)
    return wrap(cal, local - int(offset_h * HOUR))


def on_shift_after(
    cal: Calendar, shift: Shift, offset_h: float, ts: np.ndarray, delay: np.ndarray
) -> np.ndarray:
    """UTC times `delay` seconds of the shift's working time after `ts` (a minute grid).

    Operators act only while on shift: a reply or share that would fall in a break, the
    night or a day off waits until work resumes, and the wait is not counted. Work is every
    block of every working day (`working_days`); the off-day trickle of posts gets its
    answers on the next working day. Times past the world's end come back as `cal.end`
    (not in the data)."""
    ts = np.asarray(ts, np.int64)
    if not len(ts):
        return ts
    work, _ = working_days(cal, shift)
    before = 2  # local days kept before the world: offsets, blocks past midnight
    grid = np.zeros((cal.days + before + 2) * 1440, dtype=bool)
    for b in shift.blocks:
        mins = np.arange(int(round(b.start * 60)), int(round(b.end * 60)))
        at = ((work + before) * 1440)[:, None] + mins[None, :]
        grid[at[at < len(grid)]] = True
    worked = np.cumsum(grid)
    origin = cal.start - before * DAY - int(offset_h * HOUR)  # UTC time of grid minute 0
    minute = np.clip((ts - origin) // 60, 0, len(grid) - 1)
    # Seconds into the first minute count only if it is worked; then the first worked
    # minute with k worked minutes since `ts` before it, plus the leftover seconds.
    delay = np.asarray(delay, np.int64)
    sec = np.where(grid[minute], (ts - origin) % 60, 0) + delay
    need = worked[minute] - grid[minute] + sec // 60 + 1
    done = np.searchsorted(worked, need, side="left")
    out = origin + done * 60 + sec % 60
    return np.where(done >= len(grid), cal.end, np.minimum(out, cal.end)).astype(np.int64)


def uniform_times(rng: np.random.Generator, cal: Calendar, n: int) -> np.ndarray:
    """Round-the-clock automation: uniform over the whole world."""
    return rng.integers(cal.start, cal.end, n).astype(np.int64)


# Spamouflage-like office variants (Beijing time): mid-morning and early-afternoon
# bursts over a working level, lunch and supper breaks, an evening burst; each office
# shifts them a little.
OFFICE_VARIANTS = (
    Shift(
        "A",
        (Block(9.0, 12.0, 10.2, 0.7, 0.40), Block(13.5, 17.5, 14.8, 0.9, 0.42),
         Block(19.0, 21.5, 20.0, 0.6, 0.18)),
        (("lunch", 12.0, 13.5), ("supper", 17.5, 19.0)),
    ),
    Shift(
        "B",
        (Block(8.5, 11.5, 9.8, 0.7, 0.38), Block(13.0, 17.0, 14.2, 0.9, 0.44),
         Block(18.5, 21.0, 19.5, 0.6, 0.18)),
        (("lunch", 11.5, 13.0), ("supper", 17.0, 18.5)),
    ),
    Shift(
        "C",
        (Block(9.5, 12.5, 10.7, 0.7, 0.40), Block(14.0, 18.0, 15.2, 0.9, 0.40),
         Block(19.5, 22.0, 20.5, 0.6, 0.20)),
        (("lunch", 12.5, 14.0), ("supper", 18.0, 19.5)),
    ),
    Shift(
        "D",
        (Block(9.0, 11.5, 10.0, 0.6, 0.40), Block(13.5, 17.0, 14.5, 0.8, 0.45),
         Block(18.5, 20.5, 19.3, 0.5, 0.15)),
        (("lunch", 11.5, 13.5), ("supper", 17.0, 18.5)),
    ),
)

# Persona operation: a day shift and a night shift (local), lighter weekends.
PERSONA_SHIFT = Shift(
    "day+night",
    (Block(9.0, 13.0, 11.0, 1.0, 0.30), Block(14.0, 18.0, 15.5, 1.0, 0.30),
     Block(21.0, 25.0, 23.0, 1.1, 0.25), Block(26.0, 29.0, 27.0, 0.9, 0.15)),
    (("lunch", 13.0, 14.0), ("shift change", 18.0, 21.0), ("night break", 25.0, 26.0)),
    off_day_share=0.12,
    quiet_holidays=False,
)

# Small operation on Iranian time: Saturday-to-Wednesday office week.
SMALL_OFFICE_SHIFT = Shift(
    "sat-wed",
    (Block(8.0, 12.5, 10.0, 1.0, 0.55), Block(13.5, 16.5, 14.5, 0.8, 0.45)),
    (("lunch", 12.5, 13.5),),
    workdays=(5, 6, 0, 1, 2),
    off_day_share=0.03,
    quiet_holidays=False,
)
