"""report.md: the report as Markdown, for pasting into other documents.

Every string from the data is escaped: Markdown punctuation is backslash-escaped and
`<`, `>` and `&` become entities, so a pasted report never turns a post into a link,
an image or raw HTML.
"""

from __future__ import annotations

import re
from typing import Any

from cibwatch.report.context import pct
from cibwatch.report.findings import utc_label
from cibwatch.safety import defang

# Characters with inline meaning (emphasis, code, links/images, tables, strikethrough);
# `<`, `>` and `&` become entities; a line-starting block marker is escaped too.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~!])")
_BLOCK_START = re.compile(r"^(\s*\d*)([#+\-=>.)])")


def md(value: Any) -> str:
    """Escape text from the data for Markdown (one line)."""
    text = " ".join(str("" if value is None else value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _na(reason: str) -> list[str]:
    return [f"*Not available: {reason}.*", ""]


def render_markdown(views: list[dict[str, Any]], charts: dict[str, dict[str, str]],
                    title: str = "Coordinated inauthentic behaviour") -> str:
    """`charts[safe_id][name]` is the relative path of a chart file written beside it."""
    out = [f"# {title}", ""]
    if not views:
        out += _na("no operations in the workspace")
    for v in views:
        files = charts.get(v["safe_id"], {})
        t, eng, fol = v.get("time") or {}, v.get("engagement") or {}, v.get("followers") or {}
        out += [f"## {md(v['name'])}", "",
                f"Operation id `{md(v['id'])}` · confidence {pct(v.get('confidence'))} · "
                f"review status: {md(v['review_status'])}", "",
                "### Summary", "", md(v["summary"]), "",
                "### Assets", "", f"**{md(v['tally_text'])}**", ""]
        out += _table(["Platform", "Asset type", "Assets"],
                      [[r["platform"], r["asset_type"], f"{r['count']:,}"] for r in v["tally"]])
        out += ["### Time zone and working hours", ""]
        if t:
            out += [f"Most likely operator time zone: UTC{utc_label(t.get('utc_offset_hours'))}"
                    f" (confidence {pct(t.get('offset_confidence'))}); schedule: "
                    f"{md(t.get('schedule') or 'not available')}.", ""]
            if t.get("breaks"):
                out += ["Breaks (local): " + ", ".join(
                    md(f"{b.get('name')} {b.get('start')}-{b.get('end')}")
                    for b in t["breaks"] if isinstance(b, dict)), ""]
        else:
            out += _na("no time profile")
        for key, caption in (("heatmap_local", "Hour of week, local time"),
                             ("heatmap_utc", "Hour of week, UTC"),
                             ("timeline", "Activity timeline")):
            if key in files:
                out += [f"![{caption}]({files[key]})", ""]
        out += ["### Narratives", ""]
        if v["narratives"]:
            for n in v["narratives"][:8]:
                out += [f"**{md(n.get('label'))}** ({pct(n.get('share'))})", ""]
                for e in (n.get("examples") or [])[:3]:
                    out += [f"> {md(e)}", ""]
        else:
            out += _na("no narrative profile")
        out += ["### Engagement, reach and followers", ""]
        if eng:
            out += [f"Echo-chamber ratio: {pct(eng.get('echo_chamber_ratio'))}.", ""]
            reach = v.get("authentic_reach")
            if reach:
                noun = "account" if reach["accounts"] == 1 else "accounts"
                out += [f"Authentic reach: {reach['accounts']:,} authentic {noun} engaged, "
                        f"with {reach['followers']:,} followers between them.", ""]
            b = eng.get("breakout") or {}
            if isinstance(b, dict) and b.get("category") is not None:
                out += [f"Breakout Scale: category {md(b['category'])}"
                        + (f" ({md(b.get('label'))})" if b.get("label") else "") + ".", ""]
        else:
            out += _na("no engagement profile")
        if fol:
            out += [f"Inauthentic followers: {pct(fol.get('inauthentic_follower_share'))}.", ""]
        else:
            out += _na("no follower profile")
        out += ["### Network", ""]
        if "network" in files:
            out += [f"![Network]({files['network']})", ""]
        else:
            out += _na("no assets to draw")
        out += ["### Strongest evidence", ""]
        if v["evidence"]:
            out += _table(["Signal", "Strength", "Detail"],
                          [[e.get("signal"), f"{e.get('strength', 0):.2f}", e.get("detail")]
                           for e in v["evidence"]])
        else:
            out += _na("no operation-level evidence recorded")
        if v.get("domains"):
            out += ["Own domains: " + ", ".join(f"`{md(defang(d['domain']))}`"
                                                for d in v["domains"][:20]), ""]
        out += ["### Online Operations Kill Chain and DISARM", ""]
        out += _table(["Tactic", "Technique", "Procedure", "Evidence"],
                      [[k["tactic"], k["technique"], k["procedure"], "; ".join(k["evidence"])]
                       for k in v["killchain"]])
        out += _table(["DISARM", "Name", "Tactic", "Evidence"],
                      [[d["id"], d["name"], d["tactic"], "; ".join(d["evidence"])]
                       for d in v["disarm"]])
    return "\n".join(out) + "\n"
