"""indicators.csv in the layout Meta publishes with its takedowns.

`Tactic,Technique,Procedure,Indicator,Note`, each row tagged with the Online Operations
Kill Chain: asset tallies ("954 Facebook Pages"), defanged links to assets on other
platforms, the operation's own domains, and the other findings with their evidence.
Every cell goes through `csv_safe` (spreadsheet formula injection).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cibwatch.config import ReportConfig
from cibwatch.report.collect import tally_phrase
from cibwatch.report.killchain import asset_procedure, procedure
from cibwatch.safety import csv_safe, defang

HEADER = ["Tactic", "Technique", "Procedure", "Indicator", "Note"]

# Public profile address per platform; {handle} and {id} are URL-quoted from the data.
PROFILE_URLS = {
    "x": "https://twitter.com/{handle}",
    "twitter": "https://twitter.com/{handle}",
    "instagram": "https://www.instagram.com/{handle}/",
    "threads": "https://www.threads.net/@{handle}",
    "tiktok": "https://www.tiktok.com/@{handle}",
    "youtube": "https://www.youtube.com/@{handle}",
    "reddit": "https://www.reddit.com/user/{handle}/",
    "telegram": "https://t.me/{handle}",
    "medium": "https://medium.com/@{handle}",
    "facebook": "https://www.facebook.com/{id}",
}
# Where an asset has no handle, its id still gives an address on these platforms.
ID_URLS = {
    "youtube": "https://www.youtube.com/channel/{id}",
    "facebook": "https://www.facebook.com/{id}",
    "x": "https://twitter.com/i/user/{id}",
    "twitter": "https://twitter.com/i/user/{id}",
}


def profile_url(platform: str, account_id: str, handle: str | None) -> str | None:
    """The asset's public address (not defanged), or None when it cannot be built."""
    template = PROFILE_URLS.get(platform.lower())
    handle = (handle or "").strip().lstrip("@")
    if template and ("{handle}" not in template or handle):
        return template.format(handle=quote(handle, safe="._-"),
                               id=quote(str(account_id), safe="._-"))
    template = ID_URLS.get(platform.lower())
    return template.format(id=quote(str(account_id), safe="._-")) if template else None


def indicator_rows(views: list[dict[str, Any]], config: ReportConfig | None = None
                   ) -> list[list[str]]:
    """Rows (without header) for the views, each already tagged with the Kill Chain."""
    config = config or ReportConfig()
    rows: list[list[str]] = []
    for view in views:
        prefix = view["name"] if len(views) > 1 else ""

        def add(code: str, indicator: str, note: str = "", _prefix: str = prefix) -> None:
            tactic, technique, proc = procedure(code)
            full_note = "; ".join(x for x in (_prefix, note) if x)
            rows.append([tactic, technique, proc, indicator, full_note])

        for r in view["tally"]:
            add(asset_procedure(r["platform"]),
                tally_phrase(r["platform"], r["asset_type"], r["count"]))
        for m in view["members"]:
            if m["platform"].lower() in config.tally_only_platforms:
                continue
            url = profile_url(m["platform"], m["account_id"], m["handle"])
            if url:
                add(asset_procedure(m["platform"]), defang(url))
        for d in view.get("domains") or []:
            add("0.6.2", defang(d["domain"]),
                f"{d['posts']:,} of {d['all_posts']:,} posts linking to it came from the "
                "operation")
        for url in view.get("urls") or []:
            add("7.5.2", defang(url))
        amplify = None
        for tag in view.get("killchain") or []:
            if tag["findings"] and all(f in ("assets", "own_domains") for f in tag["findings"]):
                continue
            if tag["id"].startswith("6.2.") and amplify is None:
                amplify = tag["id"]
            for evidence in tag["evidence"]:
                add(tag["id"], evidence)
        if amplify:
            for n in view.get("narratives") or []:
                for example in (n.get("examples") or [])[:3]:
                    add(amplify, str(example), f"narrative: {n.get('label', '')}")
    return rows


def write_indicators(views: list[dict[str, Any]], path: str | Path,
                     config: ReportConfig | None = None) -> int:
    """Write the file; returns the number of indicator rows."""
    rows = indicator_rows(views, config)
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow([csv_safe(_one_line(c)) for c in row])
    return len(rows)


def _one_line(value: str) -> str:
    return " ".join(str(value).split()) if "\n" in str(value) or "\r" in str(value) else value
