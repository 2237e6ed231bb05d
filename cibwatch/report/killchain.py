"""Online Operations Kill Chain tags (Nimmo & Hutchins 2023), as Meta tags its takedowns.

The taxonomy is the CSV Meta publishes (shipped in cibwatch/data/killchain/). Tactic,
technique and procedure strings are taken verbatim from it, so an indicator file made here
lines up with Meta's own files.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources
from typing import Any

from cibwatch.report.findings import Finding

TAXONOMY = "killchain/Online_Operations_Killchain-TTPs.csv"

# Procedure per platform for acquired assets (0.9.x), as in Meta's files.
ASSET_PROCEDURES = {
    "facebook": "0.9.1", "instagram": "0.9.2", "threads": "0.9.3", "x": "0.9.4",
    "twitter": "0.9.4", "youtube": "0.9.5", "tiktok": "0.9.6", "telegram": "0.9.7",
    "reddit": "0.9.8", "forum": "0.9.8", "medium": "0.9.8",
}
OTHER_ASSETS = "0.9.12"
# Amplifying with likely fake accounts (6.2.x) per platform.
AMPLIFY_PROCEDURES = {
    "facebook": "6.2.1", "instagram": "6.2.2", "threads": "6.2.3", "x": "6.2.4",
    "twitter": "6.2.4", "youtube": "6.2.5", "tiktok": "6.2.6", "telegram": "6.2.7",
    "reddit": "6.2.8", "forum": "6.2.8",
}
# Acquiring followers (7.2.x) per platform: Page followers on Facebook.
FOLLOWER_PROCEDURES = {"facebook": "7.2.2", "instagram": "7.2.4", "x": "7.2.5",
                       "twitter": "7.2.5"}
# Findings that map to one procedure whatever the platform.
FIXED = {
    "shift_pattern": ["3.1.1"],
    "automated": ["3.5.1"],
    "reused_avatars": ["1.1.1"],
    "cross_platform": ["9.2.3"],
    "own_domains": ["0.6.2", "7.5.2"],
}


@cache
def taxonomy() -> dict[str, tuple[str, str, str]]:
    """Procedure code ('0.9.1') -> (Tactic, Technique, Procedure) exactly as in the CSV."""
    text = resources.files("cibwatch.data").joinpath(TAXONOMY).read_text(encoding="utf-8")
    out = {}
    for row in csv.DictReader(text.splitlines(keepends=True)):
        procedure = row.get("Procedure") or ""
        if procedure.strip():
            out[procedure.split()[0]] = (row["Tactic"], row["Technique"], procedure)
    return out


def procedure(code: str) -> tuple[str, str, str]:
    """(Tactic, Technique, Procedure) of a procedure code; KeyError for an unknown one."""
    return taxonomy()[code]


def killchain_tags(found: list[Finding]) -> list[dict[str, Any]]:
    """One tag per (procedure, finding), each with the evidence that supports it."""
    tags: dict[str, dict[str, Any]] = {}
    for f in found:
        for code in _codes(f):
            tactic, technique, proc = procedure(code)
            tag = tags.setdefault(code, {
                "id": code, "tactic": tactic, "technique": technique, "procedure": proc,
                "evidence": [], "findings": []})
            if f.evidence not in tag["evidence"]:
                tag["evidence"].append(f.evidence)
                tag["findings"].append(f.kind)
    return sorted(tags.values(), key=lambda t: [int(x) for x in t["id"].split(".")])


def asset_procedure(platform: str) -> str:
    return ASSET_PROCEDURES.get(platform.lower(), OTHER_ASSETS)


def _codes(f: Finding) -> list[str]:
    if f.kind == "assets":
        return [asset_procedure(p) for p in f.platforms]
    if f.kind in ("self_comments", "self_amplification"):
        return [AMPLIFY_PROCEDURES[p] for p in f.platforms if p in AMPLIFY_PROCEDURES]
    if f.kind == "fake_followers":
        return sorted({FOLLOWER_PROCEDURES[p] for p in f.platforms if p in FOLLOWER_PROCEDURES})
    return FIXED.get(f.kind, [])
