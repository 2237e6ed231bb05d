"""Turn operation views into what the HTML, PDF and Markdown reports render.

Adds the findings and their Kill Chain / DISARM tags, the charts (SVG) and a plain-text
summary in the style of a takedown write-up. Text from the data stays plain text here:
escaping is the renderers' job (Jinja2 autoescape, Markdown escaping).
"""

from __future__ import annotations

from typing import Any

from cibwatch.config import ReportConfig
from cibwatch.report import charts
from cibwatch.report.collect import platform_name
from cibwatch.report.disarm import disarm_tags
from cibwatch.report.findings import findings, utc_label
from cibwatch.report.killchain import killchain_tags


def prepare(views: list[dict[str, Any]], config: ReportConfig | None = None,
            draw: bool = True) -> list[dict[str, Any]]:
    """Add findings, tags, summary and (with `draw`) chart SVGs to each view, in place."""
    config = config or ReportConfig()
    for view in views:
        found = findings(view, config)
        view["findings"] = found
        view["killchain"] = killchain_tags(found)
        view["disarm"] = disarm_tags(found)
        view["summary"] = summary(view)
        view["platform_names"] = [platform_name(p) for p in view["platforms"]]
        view["authentic_reach"] = authentic_reach(view)
        view["charts"] = _charts(view) if draw else {}
    return views


def _charts(view: dict[str, Any]) -> dict[str, str]:
    time_ = view.get("time") or {}
    offset = time_.get("utc_offset_hours")
    local_title = (f"Posts by hour of week, operators' local time (UTC{utc_label(offset)})"
                   if offset is not None else "Posts by hour of week, local time")
    drawn = {
        "heatmap_local": charts.heatmap(view.get("hour_of_week_local"), local_title,
                                        time_.get("breaks")),
        "heatmap_utc": charts.heatmap(view.get("hour_of_week_utc"),
                                      "Posts by hour of week, UTC"),
        "timeline": charts.timeline(view.get("timeline")),
        "network": charts.network(view.get("network")),
    }
    return {k: v for k, v in drawn.items() if v}


def authentic_reach(view: dict[str, Any]) -> dict[str, int] | None:
    """Authentic accounts that engaged with the operation and their combined followers."""
    amplifiers = (view.get("engagement") or {}).get("authentic_amplifiers")
    if not isinstance(amplifiers, list):
        return None
    followers = [a.get("followers_count") for a in amplifiers if isinstance(a, dict)]
    return {"accounts": len(followers),
            "followers": sum(f for f in followers if isinstance(f, int) and f > 0)}


def pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "not available"


def summary(view: dict[str, Any]) -> str:
    """A few sentences in the voice of a takedown report, from the figures only."""
    parts = [f"This network consisted of {view['tally_text']}"
             + (f" on {_join([platform_name(p) for p in view['platforms']])}."
                if view["platforms"] else ".")]
    if view.get("first_seen") and view.get("last_seen"):
        parts.append(f"Its assets posted {view['posts']:,} times between "
                     f"{str(view['first_seen'])[:10]} and {str(view['last_seen'])[:10]}.")
    time_ = view.get("time") or {}
    offset = time_.get("utc_offset_hours")
    if offset is not None:
        sentence = f"The operators most likely worked in UTC{utc_label(offset)}"
        if isinstance(time_.get("offset_confidence"), int | float):
            sentence += f" (confidence {time_['offset_confidence']:.0%})"
        if time_.get("shift_pattern"):
            sentence += ", on an office-shift schedule with regular breaks and quiet weekends"
        elif time_.get("schedule") == "automated":
            sentence += ", posting round the clock like automation"
        parts.append(sentence + ".")
    narratives = view.get("narratives") or []
    if narratives:
        labels = [str(n.get("label")) for n in narratives[:3] if n.get("label")]
        if labels:
            parts.append(f"It posted mainly about {_join(labels)}.")
    engagement = view.get("engagement") or {}
    ratio = engagement.get("echo_chamber_ratio")
    if isinstance(ratio, int | float):
        parts.append(f"{ratio:.0%} of the engagement its posts received came from its own "
                     "assets.")
    followers = view.get("followers") or {}
    share = followers.get("inauthentic_follower_share")
    if isinstance(share, int | float):
        parts.append(f"An estimated {share:.0%} of its followers were inauthentic.")
    breakout = engagement.get("breakout") or {}
    if isinstance(breakout, dict) and breakout.get("category") is not None:
        parts.append(f"On the Breakout Scale it ranks in category {breakout['category']}"
                     + (f" ({breakout['label']})." if breakout.get("label") else "."))
    return " ".join(parts)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
