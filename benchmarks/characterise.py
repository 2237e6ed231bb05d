"""Measure `characterise` against the synthetic world's truth.json.

For each seed: generate a world, ingest it, fill clusters/operations from the ground truth
(`tests/support.py::truth_as_results`, one cluster per operation and platform, so
detection quality does not enter; or, with `--clusters office`, one cluster per office or
team from `truth_clusters.csv`), characterise, and compare every operation's profile with
truth: UTC offset, schedule and shift pattern, breaks (minutes off, and whether their
boundary ranges hold the true edges), echo-chamber ratio, inauthentic-follower share,
asset tally, quiet holidays and planted themes. `--clusters detect` instead runs the
real pipeline (`Workspace.detect`: its own clusters and operations, as users get them)
and scores, for each truth operation, the detected operation holding most of its
operators; one that no detected operation holds a majority of is a miss (every target
failed), and per-cluster breaks are read on the detected clusters mostly of one office.
Prints per-operation errors, a summary and a calibration table of offset confidences.
`--human-sim N` instead draws N small groups of ordinary users from the generator's
diurnal rhythm per size and reports how often their offset is exact, against the mean
confidence, and the same with the generator's own curve as template (the ceiling).

    .venv/bin/python benchmarks/characterise.py --scale 1 --seeds 0 1 2
    .venv/bin/python benchmarks/characterise.py --scale 1 --seeds 0 1 2 --clusters office
    .venv/bin/python benchmarks/characterise.py --scale 1 --seeds 0 1 2 --clusters detect
    .venv/bin/python benchmarks/characterise.py --scale 1 --seeds 0 1 2 --clusters detect --rescore
    .venv/bin/python benchmarks/characterise.py --scale 10 --seeds 0 --timing-only
    .venv/bin/python benchmarks/characterise.py --human-sim 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import truth_as_results  # noqa: E402

import cibwatch  # noqa: E402
from cibwatch.characterise import characterise  # noqa: E402
from cibwatch.config import Config  # noqa: E402
from cibwatch.synth import generate  # noqa: E402


def minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def clock_diff(a: str, b: str) -> int:
    d = abs(minutes(a) - minutes(b)) % 1440
    return min(d, 1440 - d)


def break_errors(truth: list[dict], found: list[dict]) -> list[int | None]:
    """Per true break: the worst of start/end error (minutes) of the closest found break."""
    out = []
    for tb in truth:
        errs = [max(clock_diff(tb["start"], b["start"]), clock_diff(tb["end"], b["end"]))
                for b in found]
        out.append(min(errs) if errs else None)
    return out


def range_covers(truth: list[dict], found: list[dict]) -> list[bool]:
    """Per true break whose closest found break carries `start_range`/`end_range`: both
    true edges inside those ranges (the reader's 95% boundary intervals)."""
    out = []
    for tb in truth:
        near = min(found, default=None, key=lambda b: max(clock_diff(tb["start"], b["start"]),
                                                          clock_diff(tb["end"], b["end"])))
        if near is None or "start_range" not in near:
            continue
        out.append(all(_inside(tb[edge], near[f"{edge}_range"]) for edge in ("start", "end")))
    return out


def _inside(clock: str, span: list[str]) -> bool:
    lo, hi, t = minutes(span[0]), minutes(span[1]), minutes(clock)
    return (t - lo) % 1440 <= (hi - lo) % 1440


def theme_ranks(truth: list[dict], found: list[dict]) -> list[int | None]:
    """Per planted theme: rank (1 = largest) of the first found theme matching a keyword."""
    ranks = []
    for theme in truth:
        rank = None
        for i, f in enumerate(found):
            text = " ".join([f["label"], *f["top_terms"], *f["examples"]]).lower()
            if any(k in text for k in theme["keywords"]):
                rank = i + 1
                break
        ranks.append(rank)
    return ranks


def office_clusters(ws, truth_clusters: Path) -> None:
    """Replace the per-platform truth clusters with one cluster per office or team."""
    con = ws.con
    for table in ("operation_clusters", "cluster_members", "clusters"):
        con.execute(f"DELETE FROM {table}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE truth_offices AS
        SELECT * FROM read_csv('{truth_clusters.as_posix()}', all_varchar = true)
        """
    )
    con.execute("INSERT INTO cluster_members SELECT cluster, platform, account_id, 1.0, "
                "'ground truth' FROM truth_offices")
    con.execute("INSERT INTO clusters SELECT cluster_id, any_value(platform), count(*), 1.0, "
                "NULL FROM cluster_members GROUP BY cluster_id")
    con.execute("INSERT INTO operation_clusters SELECT DISTINCT operation_id, cluster "
                "FROM truth_offices")


def score_operation(t: dict, p: dict, teams: dict[str, list[str]] | None = None) -> dict:
    """One operation's profile `p` against its truth `t`. `teams` maps a truth cluster (office)
    to the profile's clusters that stand for it (default: the cluster of the same id)."""
    tm, eng, fol = p["time"], p["engagement"], p["followers"] or {}
    found_holidays = {h["date"] for h in tm["quiet_holidays"] if h["country"] == "CN"}
    true_holidays = {h["date"] for h in t.get("quiet_holidays") or []}
    ranks = theme_ranks(t["narratives"], p["narratives"])
    return {
        "assets": t["operators"],
        "offset": tm["utc_offset_hours"], "offset_truth": t["utc_offset_hours"],
        "offset_ok": tm["utc_offset_hours"] == t["utc_offset_hours"],
        "confidence": tm["offset_confidence"],
        "schedule": tm["schedule"], "schedule_truth": t["schedule"],
        "shift_ok": tm["shift_pattern"] == t["shift_pattern"],
        "break_errors": (break_errors(t["breaks"], tm["breaks"])
                         if t["shift_pattern"] else []),
        "echo_error": (None if eng["echo_chamber_ratio"] is None else
                       round(abs(eng["echo_chamber_ratio"] - t["echo_chamber_ratio"]), 4)),
        "follower_error": (None if fol.get("inauthentic_follower_share") is None else round(
            abs(fol["inauthentic_follower_share"] - t["inauthentic_follower_share"]), 4)),
        "break_ranges_cover": (range_covers(t["breaks"], tm["breaks"])
                               if t["shift_pattern"] else []),
        "cluster_break_errors": [
            e for c in t.get("clusters") or []
            for found in (teams or {}).get(c["cluster"], [c["cluster"]]) if found in tm["clusters"]
            for e in break_errors(c["breaks"], tm["clusters"][found]["breaks"])],
        "breaks_from_clusters": tm.get("breaks_from_teams", tm.get("breaks_from_clusters")),
        "teams": [(t_["accounts"], t_["posts"], spans(t_["breaks"])) for t_ in tm.get("teams", [])],
        "tally_ok": p["assets"]["tally"] == t["assets"],
        "holidays_found": len(found_holidays & true_holidays),
        "holidays_truth": len(true_holidays),
        "holidays_extra": len(found_holidays - true_holidays),
        "theme_ranks": ranks, "themes_found": len(p["narratives"]),
    }


def spans(breaks: list[dict]) -> list[str]:
    return [f"{b['start']}-{b['end']}" for b in breaks]


def missed_operation(t: dict) -> dict:
    """The row of a truth operation that detection did not find as one operation: every
    target it carries counts as failed (a miss, not a skip)."""
    return {
        "missed": True, "assets": t["operators"],
        "offset": None, "offset_truth": t["utc_offset_hours"], "offset_ok": False,
        "confidence": None, "schedule": None, "schedule_truth": t["schedule"],
        "shift_ok": False,
        "break_errors": [None] * len(t["breaks"]) if t["shift_pattern"] else [],
        "echo_error": None, "follower_error": None, "break_ranges_cover": [],
        "cluster_break_errors": [], "breaks_from_clusters": None, "tally_ok": False,
        "holidays_found": 0, "holidays_truth": len(t.get("quiet_holidays") or []),
        "holidays_extra": 0, "theme_ranks": [None] * len(t["narratives"]), "themes_found": 0,
    }


def detected_matches(ws, world: Path) -> tuple[dict, list[dict]]:
    """Per truth operation: the detected operation holding most of its operators (`held`,
    `share` of all its operators, `other_assets` in that operation that are not its
    operators), that operation's clusters with their members by truth office (or label
    role, or `authentic`), and `cluster_offices`: each of its clusters whose members are
    mostly of one office of this operation -> that office. Also every detected cluster."""
    con = ws.con
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE truth_members AS
        SELECT l.platform, l.account_id, l.operation_id, l.role,
               coalesce(o.cluster, l.role) AS office
        FROM read_csv('{(world / "labels.csv").as_posix()}', all_varchar = true) l
        LEFT JOIN read_csv('{(world / "truth_clusters.csv").as_posix()}', all_varchar = true) o
          USING (platform, account_id)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE detected_members AS
        SELECT DISTINCT oc.operation_id AS detected, m.cluster_id, m.platform, m.account_id,
               coalesce(t.operation_id, 'authentic') AS truth_op,
               coalesce(t.office, 'authentic') AS office, t.role
        FROM cluster_members m JOIN operation_clusters oc USING (cluster_id)
        LEFT JOIN truth_members t USING (platform, account_id)
        """
    )
    by_cluster = {}
    for cid, plat, det, n, members in con.execute(
        """
        SELECT cluster_id, any_value(platform), any_value(detected), sum(n)::INT,
               list((office, n) ORDER BY n DESC, office)
        FROM (SELECT cluster_id, platform, detected, office, count(*)::INT AS n
              FROM detected_members GROUP BY ALL)
        GROUP BY cluster_id ORDER BY any_value(detected), sum(n) DESC
        """
    ).fetchall():
        by_cluster[cid] = {"cluster_id": cid, "platform": plat, "operation": det,
                           "n_assets": n, "members": dict(members)}
    held = con.execute(
        """
        SELECT t.operation_id, d.detected, count(DISTINCT (d.platform, d.account_id)),
               any_value(t.n_ops)
        FROM (SELECT *, count(*) OVER (PARTITION BY operation_id) AS n_ops
              FROM truth_members WHERE role = 'operator') t
        LEFT JOIN detected_members d USING (platform, account_id)
        GROUP BY ALL
        """
    ).fetchall()
    sizes = dict(con.execute("SELECT detected, count(DISTINCT (platform, account_id)) "
                             "FROM detected_members GROUP BY detected").fetchall())
    matches = {}
    for op, det, n, total in sorted(held, key=lambda r: (r[0], r[1] is None, -r[2])):
        if op in matches or det is None:
            matches.setdefault(op, {"operation": None, "held": 0, "share": 0.0,
                                    "other_assets": 0, "clusters": [], "cluster_offices": {}})
            continue
        clusters = [c for c in by_cluster.values() if c["operation"] == det]
        offices = {}
        for c in clusters:
            office, k = max(c["members"].items(), key=lambda kv: kv[1])
            if k * 2 > c["n_assets"] and office.startswith(f"{op}-"):
                offices[c["cluster_id"]] = office
        matches[op] = {"operation": det, "held": n, "share": round(n / total, 4),
                       "other_assets": sizes[det] - n, "clusters": clusters,
                       "cluster_offices": offices}
    return matches, list(by_cluster.values())


def run_world(scale: float, seed: int, work: Path, timing_only: bool,
              clusters: str = "platform", rescore: bool = False) -> dict:
    world = work / f"world-s{scale:g}-{seed}"
    if not (world / "truth.json").exists():
        t0 = time.perf_counter()
        generate(world, scale=scale, seed=seed)
        print(f"generated {world} in {time.perf_counter() - t0:.1f}s", flush=True)
    db = work / f"ws-s{scale:g}-{seed}.duckdb"
    ws = cibwatch.open(db)
    if not ws.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]:
        t0 = time.perf_counter()
        ws.ingest(world, progress=False)
        print(f"ingested in {time.perf_counter() - t0:.1f}s", flush=True)
    posts = ws.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    if clusters == "detect" and rescore:
        t0, c0 = time.perf_counter(), time.process_time()
        characterise(ws.con, Config())
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"scale {scale:g} seed {seed}: {posts:,} posts, characterise on the stored "
              f"detection {seconds:.1f}s wall, {cpu:.1f}s CPU", flush=True)
    elif clusters == "detect":
        t0, c0 = time.perf_counter(), time.process_time()
        run = ws.detect(out=work / f"results-s{scale:g}-{seed}", config=Config())
        seconds, cpu = run.seconds["characterise"], time.process_time() - c0
        print(f"scale {scale:g} seed {seed}: {posts:,} posts, detect {run.flagged_assets} "
              f"assets in {run.operations} operations, {time.perf_counter() - t0:.1f}s wall "
              f"(stages {run.seconds}), {cpu:.1f}s CPU (all threads), load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    else:
        truth_as_results(ws, world / "labels.csv")
        if clusters == "office":
            office_clusters(ws, world / "truth_clusters.csv")
        t0, c0 = time.perf_counter(), time.process_time()
        characterise(ws.con, Config())
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"scale {scale:g} seed {seed}: {posts:,} posts, characterise {seconds:.1f}s "
              f"wall, {cpu:.1f}s CPU (all threads), load average {os.getloadavg()[0]:.1f}",
              flush=True)
    result = {"scale": scale, "seed": seed, "posts": posts, "seconds": round(seconds, 2),
              "cpu_seconds": round(cpu, 2), "operations": {}}
    if timing_only:
        ws.close()
        return result
    truth = json.loads((world / "truth.json").read_text())["operations"]
    profiles = {op: json.loads(p) for op, p in ws.con.execute(
        "SELECT operation_id, profile FROM operation_profiles").fetchall()}
    if clusters == "detect":
        matches, made = detected_matches(ws, world)
        result["detected_clusters"] = made
    ws.close()
    for op, t in sorted(truth.items()):
        if clusters != "detect":
            row = score_operation(t, profiles[op])
        else:
            m = matches[op]
            teams = {office: [c for c, o in m["cluster_offices"].items() if o == office]
                     for office in set(m["cluster_offices"].values())}
            row = (score_operation(t, profiles[m["operation"]], teams) if m["share"] > 0.5
                   else missed_operation(t))
            row["match"] = m
            tm = profiles[m["operation"]]["time"] if m["operation"] else {}
            m["breaks"] = spans(tm.get("breaks") or [])
            for c in m["clusters"]:
                own = (tm.get("clusters") or {}).get(c["cluster_id"], {})
                c.update(offset=own.get("utc_offset_hours"), timed_posts=own.get("posts"),
                         breaks=spans(own.get("breaks") or []))
            print(f"  {op:12s} matched {m['operation']} holding {m['held']}/{t['operators']} "
                  f"of its assets (share {m['share']}, {m['other_assets']} other assets in it)"
                  + ("" if m["share"] > 0.5 else ": MISSED (no majority)"), flush=True)
            print(f"      breaks read {m['breaks']}", flush=True)
            for c in m["clusters"]:
                print(f"      {c['cluster_id']} {c['platform']} {c['n_assets']} assets, "
                      f"{c['timed_posts']} timed posts, offset {c['offset']}, breaks "
                      f"{c['breaks']}: {c['members']}", flush=True)
        result["operations"][op] = row
        if row.get("missed"):
            continue
        ranks, brk = row["theme_ranks"], row["break_errors"]
        print(f"  {op:12s} assets {row['assets']:4d} offset {row['offset']} "
              f"(truth {row['offset_truth']}, conf {row['confidence']}) "
              f"schedule {row['schedule']} ({row['schedule_truth']}) "
              f"breaks err {brk} (teams {row['breaks_from_clusters']} {row.get('teams')}, "
              f"per cluster "
              f"{row['cluster_break_errors']}) echo err {row['echo_error']} follower err "
              f"{row['follower_error']} tally {'ok' if row['tally_ok'] else 'WRONG'} "
              f"holidays {row['holidays_found']}/{row['holidays_truth']}"
              f"+{row['holidays_extra']} theme ranks {ranks} of {row['themes_found']}",
              flush=True)
    return result


def _on_top(row: tuple) -> bool:
    """Every planted theme of the operation is among its k largest found themes."""
    ranks = row[2]["theme_ranks"]
    return all(r is not None and r <= len(ranks) for r in ranks)


def summary(results: list[dict]) -> dict:
    rows = [(r, op, o) for r in results for op, o in r["operations"].items()]
    human_run = [o for _, _, o in rows if o["schedule_truth"] != "automated"
                 and o["assets"] >= 8]
    breaks = [e for _, _, o in rows for e in o["break_errors"]]
    ranks = [(r, len(o["theme_ranks"])) for _, _, o in rows for r in o["theme_ranks"]]
    out = {
        "worlds": len(results),
        "offset_exact_human_run_8plus": f"{sum(o['offset_ok'] for o in human_run)}"
                                        f"/{len(human_run)}",
        "offset_misses": [f"{op} seed {r['seed']}: {o['offset']} vs {o['offset_truth']}"
                          for r, op, o in rows if not o["offset_ok"]],
        "shift_pattern_right": f"{sum(o['shift_ok'] for _, _, o in rows)}/{len(rows)}",
        "breaks_within_30min": f"{sum(e is not None and e <= 30 for e in breaks)}/{len(breaks)}",
        "break_error_max_min": max((e for e in breaks if e is not None), default=None),
        # True breaks whose found break's 95% edge ranges both hold the true edges.
        "break_ranges_cover_truth": f"{sum(c for _, _, o in rows for c in o['break_ranges_cover'])}"
                                    f"/{sum(len(o['break_ranges_cover']) for _, _, o in rows)}",
        "echo_error_max": max(o["echo_error"] or 0 for _, _, o in rows),
        "follower_error_max": max(o["follower_error"] or 0 for _, _, o in rows),
        "tally_right": f"{sum(o['tally_ok'] for _, _, o in rows)}/{len(rows)}",
        "themes_recovered_any_rank": f"{sum(r is not None for r, _ in ranks)}/{len(ranks)}",
        "themes_in_top_2k": f"{sum(r is not None and r <= 2 * k for r, k in ranks)}"
                            f"/{len(ranks)}",
        # The target: each planted theme is among the operation's k largest themes.
        "themes_in_top_k": f"{sum(r is not None and r <= k for r, k in ranks)}/{len(ranks)}",
        "operations_with_planted_themes_on_top": f"{sum(map(_on_top, rows))}/{len(rows)}",
        "seconds": [r["seconds"] for r in results],
        "offset_calibration": calibration(
            [(o["confidence"], o["offset_ok"]) for _, _, o in rows
             if o["offset_truth"] is not None and o["offset"] is not None]),
    }
    matched = [(r, op, o) for r, op, o in rows if "match" in o]
    if matched:
        # --clusters detect: truth operations that one detected operation holds a majority of.
        out["operations_matched"] = f"{sum(not o.get('missed') for _, _, o in matched)}" \
                                    f"/{len(matched)}"
        out["match_share_min"] = min(o["match"]["share"] for _, _, o in matched)
        out["other_assets_in_match_max"] = max(o["match"]["other_assets"] for _, _, o in matched)
        out["missed"] = [f"{op} seed {r['seed']}: {o['match']['operation']} holds "
                         f"{o['match']['held']}/{o['assets']}" for r, op, o in matched
                         if o.get("missed")]
    cluster_breaks = [e for _, _, o in rows for e in o["cluster_break_errors"]]
    if any(o["breaks_from_clusters"] for _, _, o in rows):
        out["cluster_breaks_within_30min"] = (
            f"{sum(e is not None and e <= 30 for e in cluster_breaks)}/{len(cluster_breaks)}")
    return out


BINS = ((0.0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.01))


def calibration(pairs: list[tuple[float, bool]]) -> list[str]:
    """Per confidence bin: how many answers, their mean confidence, the share right."""
    out = []
    for lo, hi in BINS:
        sel = [(c, ok) for c, ok in pairs if lo <= c < hi]
        if sel:
            out.append(f"[{lo:.2f}, {min(hi, 1.0):.2f}]: {len(sel)} answers, mean confidence "
                       f"{sum(c for c, _ in sel) / len(sel):.2f}, right "
                       f"{sum(ok for _, ok in sel)}/{len(sel)}")
    return out


def generator_week(hours: float = 1.0):
    """The generator's expected week of ordinary users (share per UTC quarter hour of the
    week) at `hours` offset: its curve blurred as its sampler blurs it (per-post chronotype
    sd 0.5 h, jitter sd 0.6 h)."""
    import numpy as np

    from cibwatch.characterise import time as T
    from cibwatch.synth.rhythms import HUMAN_PROFILE

    day = np.repeat(HUMAN_PROFILE, 4).astype(float)
    k = np.arange(-16, 17)
    g = np.exp(-0.5 * (k / (4 * np.hypot(0.5, 0.6))) ** 2)
    day = sum(w * np.roll(day, s) for w, s in zip(g / g.sum(), k, strict=True))
    return np.roll(np.tile(day, 7) / (7 * day.sum()), -int(round(hours * 4)))[: T.BINS]


def human_expected(posts: int, offset: float = 1.0) -> None:
    """Fit a histogram equal to the generator's expected human week (no sampling noise):
    the best log-likelihood at each offset near the truth, its template's chronotype
    prior, and the fitted offset's posterior. Shows what data alone can decide."""
    import numpy as np

    from cibwatch.characterise import time as T

    cfg = Config().characterise
    hist = generator_week(offset) * posts
    quarters = np.arange(19_800 * 96, 19_863 * 96)  # nine weeks of 2024, for the zone prior
    act = T.Activity(hist, quarters, np.ones(len(quarters)), posts, ["post"])
    ll = T._family_loglik(hist, cfg)["human"]
    key = T._template_key(cfg)
    rows, meta, offs = T._families(key)["human"].rows, T._templates(key)[2], T.offsets(cfg)
    for o in (offset - 1, offset, offset + 1):
        i = int(np.flatnonzero(offs == o)[0])
        j = int(np.argmax(ll[i]))
        print(f"offset {o:+.1f}: best log-likelihood {ll[i].max():.3f}, "
              f"its chronotype prior {meta[rows[j]]['prior']:.3f}")
    f = T.fit(act, cfg)
    print(f"fit: {f.offset:+.1f} confidence {f.confidence:.3f}, runner-up {f.runner_up}")


def human_sim(n: int, sizes: tuple[int, ...] = (200, 400, 1000, 3000), offset: float = 1.0,
              seed: int = 0) -> dict:
    """Offsets of small groups of ordinary users drawn from the generator's diurnal rhythm
    (as small_b: per-post chronotype sd 0.5 h): exact share and confidence with cibwatch's
    templates, and with the generator's own curve as the only template (the ceiling any
    template could reach on this rhythm; same prior over inhabited offsets)."""
    import numpy as np
    from scipy.special import logsumexp

    from cibwatch.characterise import time as T
    from cibwatch.synth.rhythms import HUMAN_PROFILE, Calendar, human_times

    cfg = Config().characterise
    rng = np.random.default_rng(seed)
    cal = Calendar(start=1710115200, days=63)  # a Monday, nine weeks
    # The generator's curve, smoothed as its samplers spread it (chronotype + jitter).
    day = np.repeat(HUMAN_PROFILE, 4).astype(float)
    k = np.arange(-16, 17)
    g = np.exp(-0.5 * (k / (4 * np.hypot(0.5, 0.6))) ** 2)
    day = sum(w * np.roll(day, s) for w, s in zip(g / g.sum(), k, strict=True))
    week = np.tile(day, 7) / (7 * day.sum())
    offs = T.offsets(cfg)
    out = {}
    for size in sizes:
        ours, ceiling = [], []
        for _ in range(n):
            ts = human_times(rng, cal, np.full(size, offset), rng.normal(0, 0.5, size),
                             np.ones(size))
            q, counts = np.unique(ts // 900, return_counts=True)
            hist = np.bincount((q - T.MONDAY_Q) % T.BINS, weights=counts, minlength=T.BINS)
            act = T.Activity(hist, q, counts, len(q), ["post"])
            f = T.fit(act, cfg)
            ours.append((f.confidence or 0.0, f.offset == offset))
            shifts = np.rint(offs * 4).astype(int)
            local = hist[(np.arange(T.BINS)[None, :] - shifts[:, None]) % T.BINS]
            ll = local @ np.log(0.99 * week + 0.01 / T.BINS) + T.offset_prior(act, offs, cfg)
            post = np.exp(ll - logsumexp(ll))
            ceiling.append((float(post.max()), offs[int(np.argmax(post))] == offset))
        out[size] = {
            "cibwatch_exact": f"{sum(ok for _, ok in ours)}/{n}",
            "cibwatch_mean_confidence": round(sum(c for c, _ in ours) / n, 3),
            "cibwatch_calibration": calibration(ours),
            "generator_curve_exact": f"{sum(ok for _, ok in ceiling)}/{n}",
            "generator_curve_mean_confidence": round(sum(c for c, _ in ceiling) / n, 3),
        }
        print(size, json.dumps(out[size], indent=1), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "characterise")
    ap.add_argument("--timing-only", action="store_true",
                    help="Only time characterise (large scales).")
    ap.add_argument("--clusters", choices=("platform", "office", "detect"), default="platform",
                    help="Truth clusters: one per operation and platform, or per office; or "
                         "`detect`: the real pipeline's clusters and operations.")
    ap.add_argument("--rescore", action="store_true",
                    help="With --clusters detect: keep the clusters and operations a previous "
                         "run stored in the workspace and only characterise again (before and "
                         "after a characterise change on the same detection).")
    ap.add_argument("--human-expected", type=int, default=0, metavar="POSTS",
                    help="fit the generator's expected human week at UTC+1 (no noise)")
    ap.add_argument("--human-sim", type=int, default=0, metavar="N",
                    help="Only simulate N small human groups per size (offset calibration).")
    args = ap.parse_args()
    if args.human_expected:
        human_expected(args.human_expected)
        return
    if args.human_sim:
        human_sim(args.human_sim)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results = [run_world(args.scale, s, args.work, args.timing_only, args.clusters,
                         args.rescore) for s in args.seeds]
    if not args.timing_only:
        print(json.dumps(summary(results), indent=1))
    suffix = "" if args.clusters == "platform" else f"-{args.clusters}"
    (args.work / f"results-s{args.scale:g}{suffix}.json").write_text(
        json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
