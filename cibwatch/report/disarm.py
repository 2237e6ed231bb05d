"""DISARM Red Framework technique tags, looked up in the shipped DISARM extract.

Ids and names come from cibwatch/data/disarm/disarm-techniques.json (an extract of the
DISARM Foundation's STIX bundle); the STIX export reuses the framework's own
attack-pattern ids so that consumers holding DISARM merge the objects.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from cibwatch.report.findings import Finding

EXTRACT = "disarm/disarm-techniques.json"

# Finding kind -> DISARM technique ids it shows.
TECHNIQUES = {
    "bulk_creation": ["T0150.008"],     # Bulk Created Asset
    "self_comments": ["T0116.001"],     # Post Inauthentic Social Media Comment
    "cross_platform": ["T0119.002"],    # Post across Platform
    "reused_avatars": ["T0145.001"],    # Copy Account Imagery
    "copypasta": ["T0084.001"],         # Use Copypasta
    "own_domains": ["T0149.001"],       # Domain Asset
    "automated": ["T0146.007"],         # Automated Account Asset
    "pages": ["T0151.003"],             # Online Community Page
}


@cache
def framework() -> dict[str, Any]:
    """The shipped extract: identity, marking, tactics and attack-patterns by id."""
    text = resources.files("cibwatch.data").joinpath(EXTRACT).read_text(encoding="utf-8")
    data = json.loads(text)
    cols = data["columns"]
    data["by_id"] = {row[0]: dict(zip(cols, row, strict=True))
                     for row in data["attack_patterns"]}
    return data


def technique(external_id: str) -> dict[str, Any]:
    """One technique: id, name, tactic, STIX id and URL; KeyError for an unknown id."""
    data = framework()
    row = data["by_id"][external_id]
    return {
        "id": external_id,
        "name": row["name"],
        "tactic_id": row["tactic_id"],
        "tactic": data["tactics"].get(row["tactic_id"], row["tactic_id"]),
        "stix_id": "attack-pattern--" + row["stix_uuid"],
        "url": data["technique_url"].format(external_id=external_id),
    }


def disarm_tags(found: list[Finding]) -> list[dict[str, Any]]:
    """One tag per technique the findings show, each with its evidence."""
    tags: dict[str, dict[str, Any]] = {}
    for f in found:
        for tid in TECHNIQUES.get(f.kind, []):
            tag = tags.setdefault(tid, {**technique(tid), "evidence": [], "findings": []})
            if f.evidence not in tag["evidence"]:
                tag["evidence"].append(f.evidence)
                tag["findings"].append(f.kind)
    return sorted(tags.values(), key=lambda t: [int(x) for x in t["id"][1:].split(".")])
