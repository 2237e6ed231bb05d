"""Read a stored profile and render it for a terminal (`cibwatch show OPERATION_ID`).

Every string that came from the data (texts, handles, names, hashtags, domains) goes
through `terminal_safe`: control characters and Rich markup in a post never reach the
terminal as such.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from cibwatch.errors import CibwatchError
from cibwatch.safety import terminal_safe as ts

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SPARK = " ▁▂▃▄▅▆▇█"


class ProfileError(CibwatchError):
    """No profile for the requested operation."""


def load_profile(con: duckdb.DuckDBPyConnection, operation_id: str) -> dict[str, Any]:
    """The stored profile of an operation (or, failing that, of a cluster)."""
    for table, key in (("operation_profiles", "operation_id"), ("cluster_profiles", "cluster_id")):
        rows = con.execute(f"SELECT profile FROM {table} WHERE {key} = ?",
                           [operation_id]).fetchall()
        if rows:
            return json.loads(rows[0][0])
    known = [r[0] for r in con.execute(
        "SELECT operation_id FROM operation_profiles ORDER BY 1 LIMIT 5").fetchall()]
    hint = f"; profiled: {', '.join(known)}" if known else "; run `cibwatch detect` first"
    raise ProfileError(f"operation {operation_id!r}: no profile in this workspace{hint}")


def _offset(hours: float | None) -> str:
    if hours is None:
        return "-"
    sign = "+" if hours >= 0 else "-"
    return f"UTC{sign}{int(abs(hours))}:{int(round(abs(hours) % 1 * 60)):02d}"


def _spark(values: list[int]) -> str:
    top = max(values) or 1
    return "".join(SPARK[round(v / top * (len(SPARK) - 1))] for v in values)


def render(operation_id: str, p: dict[str, Any], console: Console) -> None:
    """A readable summary of one profile: each figure with the evidence behind it."""
    assets = p.get("assets") or {}
    console.print(f"[bold]operation {ts(operation_id)}[/]: {ts(assets.get('tally_text'))}; "
                  f"{p.get('posts', 0):,} posts on {ts(', '.join(p.get('platforms', [])))}, "
                  f"{ts(str(p.get('first_seen'))[:10])} to {ts(str(p.get('last_seen'))[:10])}")
    t = p.get("time")
    if t:
        console.print(f"\n[bold]time[/]: {ts(t.get('schedule') or 'unknown')} schedule, "
                      f"{_offset(t.get('utc_offset_hours'))}"
                      + (f" (confidence {t['offset_confidence']:.2f}; runner-up "
                         f"{_offset(t['runner_up']['utc_offset_hours'])})"
                         if t.get("runner_up") else ""))
        hours = t.get("hour_of_week_local") or t.get("hour_of_week_utc") or []
        if len(hours) == 168:
            label = "local" if t.get("hour_of_week_local") else "UTC"
            console.print(f"  hour of week ({label}, 00-23 each day):")
            for d in range(7):
                console.print(f"  {DAYS[d]} {_spark(hours[d * 24:(d + 1) * 24])}")
        for key in ("work_hours", "breaks"):
            if t.get(key):
                console.print(f"  {key.replace('_', ' ')}: " + ", ".join(
                    f"{ts(w.get('name', ''))} {w['start']}-{w['end']}".strip() for w in t[key]))
        if t.get("quiet_holidays"):
            console.print("  quiet holidays: " + ", ".join(
                f"{ts(h['date'])} {ts(h['name'])} ({ts(h['country'])})"
                for h in t["quiet_holidays"][:6]))
        for i, team in enumerate(t.get("teams") or [], 1):
            top = sorted((team.get("clusters") or {}).items(), key=lambda kv: -kv[1])[:3]
            console.print(
                f"  team {i} ({team.get('accounts', 0):,} accounts, {team.get('posts', 0):,} "
                "posts): " + ", ".join(f"{w['start']}-{w['end']}" for w in team["work_hours"])
                + ("; breaks " + ", ".join(f"{ts(b.get('name', ''))} {b['start']}-{b['end']}"
                                           for b in team["breaks"]) if team.get("breaks") else "")
                + ("; mostly in " + ", ".join(f"{ts(c)} ({n})" for c, n in top) if top else ""))
        for cid, c in (t.get("clusters") or {}).items():
            console.print(f"  cluster {ts(cid)}: {_offset(c.get('utc_offset_hours'))}, "
                          + ", ".join(f"{w['start']}-{w['end']}" for w in c["work_hours"]))
        console.print(f"  [dim]{ts(t.get('evidence'))}[/]")
    e = p.get("engagement")
    if e:
        ratio = e.get("echo_chamber_ratio")
        console.print(f"\n[bold]engagement[/]: echo chamber ratio "
                      f"{'-' if ratio is None else f'{ratio:.2f}'}; "
                      f"breakout category {e['breakout']['category']} "
                      f"({ts(e['breakout']['label'])})")
        console.print(f"  [dim]{ts(e.get('evidence'))} {ts(e['breakout']['reason'])}[/]")
        for a in e.get("authentic_amplifiers", [])[:5]:
            console.print(f"  amplified by {ts(a['platform'])}/{ts(a['handle'] or a['account_id'])}"
                          f" ({a['followers_count']:,} followers): "
                          f"{ts(', '.join(a['post_ids'][:3]))}")
    f = p.get("followers")
    if f:
        share = f.get("inauthentic_follower_share")
        console.print(f"\n[bold]followers[/]: {f['distinct_followers']:,} distinct, "
                      f"{'-' if share is None else f'{share:.0%}'} inauthentic")
        console.print(f"  [dim]{ts(f.get('evidence'))}[/]")
    elif "followers" in p:
        console.print("\n[bold]followers[/]: no follows data")
    themes = p.get("narratives") or []
    if themes:
        grid = Table(title="narratives", show_lines=False)
        for col in ("share", "theme", "example"):
            grid.add_column(col, overflow="fold")
        for n in themes[:10]:
            grid.add_row(f"{n['share']:.0%}", ts(n["label"], 60),
                         ts((n.get("examples") or [""])[0], 120))
        console.print(grid)
    langs = ", ".join(f"{ts(k)} {v:.0%}" for k, v in (p.get("languages") or {}).items())
    targets = p.get("targets") or {}
    for label, value in (
        ("languages", langs),
        ("countries", ", ".join(f"{ts(c['name'])} ({c['mentions']})"
                                for c in targets.get("countries", [])[:6])),
        ("people", ", ".join(f"{ts(c['name'])} ({c['mentions']})"
                             for c in targets.get("people", [])[:6])),
        ("domains", ", ".join(f"{ts(d['domain'])} ({d['posts']})"
                              for d in (p.get("top_domains") or [])[:6])),
        ("hashtags", ", ".join(f"#{ts(h['hashtag'])} ({h['posts']})"
                               for h in (p.get("top_hashtags") or [])[:6])),
    ):
        if value:
            console.print(f"{label}: {value}")
    for b in assets.get("creation_batches", [])[:3]:
        console.print(f"creation batch: {b['assets']} {ts(b['platform'])} assets "
                      f"{ts(b['start'][:16])} to {ts(b['end'][:16])}")
    for h in assets.get("handle_families", [])[:3]:
        console.print(f"handle family: {ts(h['pattern'])} x{h['assets']}, e.g. "
                      f"{ts(', '.join(h['examples'][:3]))}")
    for a in assets.get("reused_avatars", [])[:3]:
        console.print(f"reused avatar {ts(a['avatar_hash'])}: {a['assets']} assets")
