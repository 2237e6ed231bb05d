"""What the evidence of one operation shows, as findings the taxonomies are mapped from.

One place decides what counts as shown (bulk-created assets, faked engagement, bought
followers, ...); `killchain.py` and `disarm.py` only translate findings into their ids, so
a tag is never given without the finding, and every tag carries the finding's evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cibwatch.config import ReportConfig
from cibwatch.report.collect import platform_name, tally_phrase


@dataclass(frozen=True)
class Finding:
    kind: str
    evidence: str
    platforms: tuple[str, ...] = field(default=())


def findings(view: dict[str, Any], config: ReportConfig | None = None) -> list[Finding]:
    """The findings of one operation view (see collect.operation_views)."""
    config = config or ReportConfig()
    out: list[Finding] = []
    by_platform: dict[str, list[str]] = {}
    for row in view["tally"]:
        by_platform.setdefault(row["platform"], []).append(
            tally_phrase(row["platform"], row["asset_type"], row["count"]))
    for platform, phrases in by_platform.items():
        out.append(Finding("assets", ", ".join(phrases), (platform,)))
    if any(r["platform"] == "facebook" and r["asset_type"] == "page" for r in view["tally"]):
        n = sum(r["count"] for r in view["tally"]
                if r["platform"] == "facebook" and r["asset_type"] == "page")
        out.append(Finding("pages", f"{tally_phrase('facebook', 'page', n)} run by the "
                           "operation", ("facebook",)))

    assets = view.get("assets_profile") or {}
    signals = {s["key_type"]: s for s in view.get("edge_signals") or []}
    batches = [b for b in assets.get("creation_batches") or [] if isinstance(b, dict)]
    batch_signal = next((s for k, s in signals.items() if "batch" in k or "creat" in k), None)
    if batches:
        n = sum(b["assets"] for b in batches if isinstance(b.get("assets"), int))
        first = batches[0]
        out.append(Finding(
            "bulk_creation",
            f"{n:,} assets created in {_count(len(batches), 'batch', 'batches')}, e.g. "
            f"{first.get('assets')} {platform_name(str(first.get('platform') or ''))} "
            f"assets between {first.get('start')} and "
            f"{first.get('end')}",
            tuple(sorted({str(b.get("platform")) for b in batches if b.get("platform")}))))
    elif batch_signal:
        out.append(Finding(
            "bulk_creation",
            f"{batch_signal['pairs']:,} pairs of the operation's assets were created in the "
            f"same batch ({batch_signal['key_type']})"))

    avatars = [a for a in assets.get("reused_avatars") or []
               if isinstance(a.get("assets"), int) and a["assets"] >= 2]
    avatar_signal = next((s for k, s in signals.items() if "avatar" in k), None)
    if avatars:
        out.append(Finding("reused_avatars", f"{_count(len(avatars), 'profile picture')} "
                           "reused, by up "
                           f"to {max(int(a['assets']) for a in avatars)} assets each"))
    elif avatar_signal:
        out.append(Finding("reused_avatars", f"{avatar_signal['pairs']:,} pairs of assets share "
                           "a profile picture"))

    text_signal = [s for k, s in signals.items()
                   if any(w in k for w in ("text", "neardup", "minhash", "fingerprint"))]
    if text_signal:
        pairs = sum(s["pairs"] for s in text_signal)
        keys = sum(s["n_keys"] for s in text_signal)
        out.append(Finding("copypasta", f"{keys:,} texts posted by more than one asset "
                           f"({pairs:,} asset pairs)"))

    time_ = view.get("time") or {}
    offset = time_.get("utc_offset_hours")
    if time_.get("shift_pattern"):
        breaks = ", ".join(f"{b.get('name', 'break')} {b.get('start')}-{b.get('end')}"
                           for b in time_.get("breaks") or [] if isinstance(b, dict))
        out.append(Finding(
            "shift_pattern",
            f"posting follows an office shift in UTC{utc_label(offset)}"
            + (f" with breaks ({breaks})" if breaks else "")
            + (f"; weekend posting ratio {time_['weekend_ratio']:.2f}"
               if isinstance(time_.get("weekend_ratio"), int | float) else "")))
    if time_.get("schedule") == "automated":
        out.append(Finding("automated", "round-the-clock posting with no human rest pattern"))

    out += _engagement_findings(view, config)

    followers = view.get("followers") or {}
    share = followers.get("inauthentic_follower_share")
    if isinstance(share, int | float) and share >= config.fake_follower_min_share:
        n = followers.get("inauthentic_followers")
        out.append(Finding(
            "fake_followers",
            f"{share:.0%} of the assets' followers look inauthentic"
            + (f" ({n:,} of {followers['distinct_followers']:,})"
               if isinstance(n, int) and isinstance(followers.get("distinct_followers"), int)
               else ""),
            # Page followers on Facebook: a person's friends are not "followers" bought.
            tuple(sorted({p for p, t in view.get("followed_assets") or []
                          if p != "facebook" or t == "page"}))))

    posting = [p for p, n in (view.get("posts_by_platform") or {}).items() if n > 0]
    if len(posting) >= 2:
        out.append(Finding(
            "cross_platform",
            "posts on " + ", ".join(f"{platform_name(p)} ({view['posts_by_platform'][p]:,})"
                                    for p in posting),
            tuple(posting)))

    if view.get("domains"):
        doms = view["domains"]
        out.append(Finding(
            "own_domains",
            f"{_count(len(doms), 'domain')} linked almost only by the operation, e.g. "
            f"{doms[0]['domain']} ({doms[0]['posts']:,} of {doms[0]['all_posts']:,} posts "
            "linking to it)"))
    return out


def _engagement_findings(view: dict[str, Any], config: ReportConfig) -> list[Finding]:
    rows = view.get("self_engagement") or []
    engagement = view.get("engagement") or {}
    ratio = engagement.get("echo_chamber_ratio")
    total_all = sum(r["all"] for r in rows)
    total_own = sum(r["own"] for r in rows)
    if not isinstance(ratio, int | float):
        ratio = total_own / total_all if total_all else None
    if ratio is None or ratio < config.echo_chamber_min:
        return []
    out = []
    for kinds, kind_name, label in ((("comment", "reply"), "self_comments",
                                     "comments and replies"),
                                    (("share", "reaction"), "self_amplification",
                                     "shares and reactions")):
        per_platform: dict[str, int] = {}
        for r in rows:
            if r["kind"] in kinds and r["own"] > 0:
                per_platform[r["platform"]] = per_platform.get(r["platform"], 0) + r["own"]
        for platform, own in sorted(per_platform.items()):
            if own < config.self_engagement_min:
                continue
            out.append(Finding(
                kind_name,
                f"{own:,} {label} on the operation's own {platform_name(platform)} "
                f"posts came from its own assets; echo-chamber ratio {ratio:.0%}",
                (platform,)))
    return out


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def utc_label(offset: Any) -> str:
    """8 -> '+8', 3.5 -> '+3:30' (for 'UTC+8')."""
    if not isinstance(offset, int | float):
        return "?"
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(round(abs(offset) * 60), 60)
    return f"{sign}{hours}" + (f":{minutes:02d}" if minutes else "")

