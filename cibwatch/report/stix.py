"""stix-bundle.json: the operations as a STIX 2.1 bundle (OpenCTI / MISP import).

Per operation: a campaign and the intrusion-set behind it, the DISARM attack-patterns its
findings show (reusing the DISARM framework's own object ids, so they merge with an
imported DISARM), indicators for its own domains and URLs, user-account observables for
its assets, the relationships between them and one report object listing everything.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stix2

from cibwatch import __version__
from cibwatch.report.disarm import framework
from cibwatch.report.indicators import profile_url

# The producer's identity is the same in every bundle, so consumers see one source.
PRODUCER_ID = "identity--384e5eda-4df6-4489-a29a-3437f104ba80"


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def pattern_literal(value: str) -> str:
    """A STIX pattern string literal: backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _clean(value: Any) -> str | None:
    """Drop characters JSON consumers choke on (NUL and other C0 controls but tab/newline)."""
    if value is None:
        return None
    text = "".join(ch for ch in str(value) if ch >= " " or ch in "\t\n")
    return text or None


def build_bundle(views: list[dict[str, Any]]) -> stix2.Bundle:
    now = datetime.now(UTC)
    producer = stix2.Identity(
        id=PRODUCER_ID, name="cibwatch", identity_class="system",
        description=f"cibwatch {__version__}: coordinated inauthentic behaviour detection")
    disarm = framework()
    disarm_identity = stix2.Identity(
        id=disarm["identity"]["id"], name=disarm["identity"]["name"],
        identity_class=disarm["identity"]["identity_class"],
        created=disarm["identity"]["created"], modified=disarm["identity"]["modified"])
    disarm_marking = stix2.MarkingDefinition(
        id=disarm["marking"]["id"], created=disarm["marking"]["created"],
        created_by_ref=disarm_identity.id, name=disarm["marking"]["name"],
        definition_type="statement",
        definition=stix2.StatementMarking(statement=disarm["marking"]["definition"]["statement"]))
    objects: list[Any] = [producer]
    patterns: dict[str, stix2.AttackPattern] = {}
    for view in views:
        first, last = _time(view.get("first_seen")), _time(view.get("last_seen"))
        campaign_args: dict[str, Any] = {}
        if first:
            campaign_args["first_seen"] = first
        if last and (not first or last >= first):
            campaign_args["last_seen"] = last
        campaign = stix2.Campaign(
            name=_clean(view["name"]) or view["safe_id"], description=_clean(view["summary"]),
            aliases=[_clean(view["id"]) or view["safe_id"]], created_by_ref=producer.id,
            confidence=_confidence(view.get("confidence")), **campaign_args)
        actor = stix2.IntrusionSet(
            name=f"Operators of {campaign.name}", created_by_ref=producer.id,
            description=f"The people running {campaign.name}: {_clean(view['tally_text'])}.")
        objs: list[Any] = [campaign, actor, stix2.Relationship(
            campaign, "attributed-to", actor, created_by_ref=producer.id)]
        for tag in view.get("disarm") or []:
            ap = patterns.get(tag["id"])
            if ap is None:
                ap = stix2.AttackPattern(
                    id=tag["stix_id"], name=tag["name"], created_by_ref=disarm_identity.id,
                    created=disarm["identity"]["created"], modified=disarm["identity"]["created"],
                    external_references=[{"source_name": "DISARM", "external_id": tag["id"],
                                           "url": tag["url"]}],
                    kill_chain_phases=[{"kill_chain_name": "disarm",
                                        "phase_name": tag["tactic"].lower().replace(" ", "-")}],
                    object_marking_refs=[disarm_marking.id])
                patterns[tag["id"]] = ap
            objs.append(stix2.Relationship(
                campaign, "uses", ap, created_by_ref=producer.id,
                description=_clean("; ".join(tag["evidence"]))))
        valid_from = first or now
        for d in view.get("domains") or []:
            objs += _indicator(f"[domain-name:value = {pattern_literal(d['domain'])}]",
                               f"Domain used by {campaign.name}", valid_from, campaign, producer)
        for url in view.get("urls") or []:
            objs += _indicator(f"[url:value = {pattern_literal(url)}]",
                               f"URL posted by {campaign.name}", valid_from, campaign, producer)
        for m in view["members"]:
            account = stix2.UserAccount(
                user_id=_clean(m["account_id"]), account_login=_clean(m["handle"]),
                display_name=_clean(m["display_name"]), account_type=_clean(m["platform"]),
                account_created=_time(m["created_at"]),
                custom_properties={"x_cibwatch_asset_type": m["asset_type"],
                                   "x_cibwatch_score": round(float(m["score"]), 4),
                                   "x_cibwatch_profile_url": profile_url(
                                       m["platform"], m["account_id"], m["handle"])}
                if m["score"] is not None else {})
            objs.append(account)
            objs.append(stix2.Relationship(account, "related-to", campaign,
                                           created_by_ref=producer.id))
        objects += objs
    objects[1:1] = [disarm_identity, disarm_marking, *patterns.values()]
    if views:
        report = stix2.Report(
            name="cibwatch report: " + ", ".join(str(v["name"]) for v in views)[:200],
            published=now, report_types=["campaign", "threat-actor"],
            created_by_ref=producer.id,
            description=_clean(" ".join(v["summary"] for v in views)[:5000]),
            object_refs=[o.id for o in objects if o.type != "marking-definition"])
        objects.append(report)
    return stix2.Bundle(objects=objects, allow_custom=True)


def _confidence(value: Any) -> int | None:
    return int(round(float(value) * 100)) if isinstance(value, int | float) else None


def _indicator(pattern: str, name: str, valid_from: datetime, campaign, producer) -> list:
    ind = stix2.Indicator(
        name=_clean(name), pattern=pattern, pattern_type="stix", valid_from=valid_from,
        indicator_types=["malicious-activity"], created_by_ref=producer.id)
    return [ind, stix2.Relationship(ind, "indicates", campaign, created_by_ref=producer.id)]


def write_stix(views: list[dict[str, Any]], path: str | Path) -> int:
    """Write the bundle; returns the number of objects."""
    bundle = build_bundle(views)
    # stix2's own pretty printer is quadratic-ish (8 s for 356 objects): indent with json.
    text = json.dumps(json.loads(bundle.serialize()), indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")
    return len(bundle.objects)
