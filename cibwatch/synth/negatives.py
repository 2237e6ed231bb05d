"""Hard negatives: organic behaviour that looks coordinated to a naive detector and must
never be flagged. All participants are ordinary organic people with their own history.

- viral: news moments where hundreds of people re-share one post or post one link
  within minutes (sizes at scale 1: 520, 360, 280 and 200 people; scale-proportional,
  at least 25);
- activist: a hashtag campaign by long-lived accounts posting shared slogans over ten
  days, each at their own local hours;
- chain_message: copy-paste messages passed on verbatim by unrelated people over days;
- hyperactive: a few organic accounts posting and engaging all day.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cibwatch.synth import texts
from cibwatch.synth.population import Population, engage, hashtags, links, originals
from cibwatch.synth.rhythms import DAY, HOUR, human_times, iso
from cibwatch.synth.world import K, P, World

VIRAL_EVENTS = [
    # name, platform, mode, base size, headline, hashtag
    ("earthquake", "x", "reshare", 520,
     "BREAKING: magnitude 7.4 earthquake strikes off the coast, tsunami warning issued",
     "Earthquake"),
    ("final", "facebook", "link", 360,
     "Underdogs win the cup final in a penalty shoot-out after 120 goalless minutes",
     "CupFinal"),
    ("celebrity", "tiktok", "reshare", 280,
     "Beloved singer announces surprise farewell tour in a video message", "FarewellTour"),
    ("outage", "x", "link", 200,
     "Global cloud outage takes down banks, airlines and hospitals for six hours",
     "Outage"),
]
ACTIVIST_SLOGANS = [
    "The river gives us life. Stand with the river keepers! #SaveTheMekong",
    "No dams without consent. #SaveTheMekong #RiverKeepers",
    "Our fish, our rice, our future. Protect the Mekong now.",
    "Sign the petition and tell your representative: protect the river. #SaveTheMekong",
    "We are the river and the river is us. #RiverKeepers",
]
CHAIN_MESSAGES = [
    "IMPORTANT!!! From tomorrow all your photos can be used by the platform. I do NOT give "
    "permission to use my pictures or posts.\nCopy and paste this, do not share!",
    "Warning from the police: do not answer calls from +44 7700 900123, it is a scam that "
    "empties your bank account. Pass it on to everyone you know.",
    "Prayer chain for little Mia who needs a heart transplant. Every copy counts, please "
    "copy this and post it on your wall. Amen 🙏",
]


def _size(base: int, scale: float, floor: int) -> int:
    return max(floor, round(base * scale))


def viral(w: World, pop: Population, scale: float) -> list[dict]:
    """Viral news moments: one outlet post re-shared, or one article linked, by hundreds
    of organic people within minutes of each other."""
    rng = w.rng
    out = []
    for name, plat, mode, base, headline, tag in VIRAL_EVENTS:
        size = _size(base, scale, 25)
        people = pop.draft(w, plat, size)
        size = len(people)
        outlets = pop.assets[w.acc_platform[pop.assets] == P[plat]]
        source = rng.choice(outlets if len(outlets) else pop.users[: 1])
        day = int(rng.integers(3, w.cal.days - 3))
        t0 = w.cal.start + day * DAY + int(rng.integers(0, DAY))
        url = "https://" + pop.domains[int(rng.integers(0, 5))] + f"/2024/{name}-live-updates"
        seed = originals(w, pop, np.array([source]), ts=np.array([t0]),
                         text=pa.array([headline]), urls=pa.array([url]),
                         tags=pa.array([tag]), title=pa.array([headline]))
        # Most react within a couple of minutes; a tail over the next hours.
        delay = rng.lognormal(np.log(150.0), 1.3, size).astype(np.int64) + 3
        ts = t0 + delay
        n = len(people)
        if mode == "reshare":
            body = texts.organic_texts(rng, w.acc_lang[people])
            text = pc.if_else(pa.array(rng.random(n) < 0.4), body, pa.nulls(n, pa.string()))
            w.add_posts(people, ts, "share", text=text, target=np.full(n, seed[0]),
                        hashtags=pc.if_else(pa.array(rng.random(n) < 0.5),
                                            pa.array(np.full(n, tag, object), pa.string()),
                                            pa.nulls(n, pa.string())))
        else:
            own = texts.organic_texts(rng, w.acc_lang[people])
            copy = pc.if_else(pa.array(rng.random(n) < 0.3),
                              pa.array(np.full(n, headline, object), pa.string()), own)
            originals(w, pop, people, ts=ts, text=copy,
                      urls=pa.array(np.full(n, url, object), pa.string()),
                      title=pa.array(np.full(n, headline, object), pa.string()),
                      tags=pa.array(np.full(n, tag, object), pa.string()))
        w.negative(people, "viral")
        within = np.sum(delay <= 600)
        out.append({"name": name, "platform": plat, "mode": mode, "size": int(n),
                    "start": iso(t0), "within_10_minutes": int(within),
                    "url": url, "headline": headline})
    return out


def activist(w: World, pop: Population, scale: float) -> dict:
    """A hashtag campaign: long-lived accounts, shared slogans, ten days, own hours."""
    rng = w.rng
    size = _size(150, scale, 20)
    people = np.concatenate([
        pop.draft(w, plat, round(size * share), min_age_years=3.0)
        for plat, share in (("x", 0.5), ("instagram", 0.25), ("facebook", 0.25))
    ])
    start_day = int(rng.integers(10, w.cal.days - 14))
    per = rng.integers(2, 7, len(people))
    who = np.repeat(people, per)
    ts = human_times(rng, w.cal, pop.offset[who], pop.chrono[who], pop.weekend[who])
    ts = w.cal.start + start_day * DAY + (ts - w.cal.start) % (10 * DAY)
    n = len(who)
    slogan = texts.pick(rng, ACTIVIST_SLOGANS, n)
    own = texts.organic_texts(rng, w.acc_lang[who])
    text = pc.if_else(pa.array(rng.random(n) < 0.55), pa.array(slogan, pa.string()),
                      texts.join(own, slogan, sep=" "))
    tag = texts.pick(rng, ["SaveTheMekong", "SaveTheMekong RiverKeepers", "RiverKeepers"], n)
    posts = originals(w, pop, who, ts=ts, text=text, tags=pa.array(tag, pa.string()),
                      urls=links(w, pop, n, 0.2))
    # Campaigners also re-share one another, hours apart.
    k = len(posts) // 2
    sharers = rng.choice(people, k)
    tgt = rng.choice(posts, k)
    same = w.acc_platform[sharers] == w.acc_platform[w.post_author[tgt]]
    engage(w, sharers[same], tgt[same], K["share"], delay_median=4 * HOUR)
    w.negative(people, "activist")
    return {"size": int(len(people)), "posts": int(n), "days": 10,
            "start": iso(w.cal.start + start_day * DAY),
            "hashtags": ["SaveTheMekong", "RiverKeepers"]}


def chain_messages(w: World, pop: Population, scale: float) -> list[dict]:
    """Copy-paste chain messages passed on verbatim by unrelated people over days."""
    rng = w.rng
    out = []
    for i, message in enumerate(CHAIN_MESSAGES):
        size = _size(90, scale, 12)
        plat = ("facebook", "facebook", "x")[i]
        people = pop.draft(w, plat, size)
        if not len(people):
            continue
        start = int(rng.integers(0, w.cal.days - 15))
        ts = human_times(rng, w.cal, pop.offset[people], pop.chrono[people],
                         pop.weekend[people])
        # Spread over about two weeks, slowly at first then faster.
        days = np.sort(rng.gamma(2.0, 3.0, len(people))).clip(0, 14).astype(int)
        ts = w.cal.start + (start + days) * DAY + (ts - w.cal.start) % DAY
        originals(w, pop, people, ts=ts,
                  text=pa.array(np.full(len(people), message, object), pa.string()),
                  urls=pa.nulls(len(people), pa.string()),
                  tags=pa.nulls(len(people), pa.string()))
        w.negative(people, "chain_message")
        out.append({"platform": plat, "size": int(len(people)),
                    "start": iso(w.cal.start + start * DAY),
                    "text": message})
    return out


def hyperactive(w: World, pop: Population, scale: float) -> dict:
    """A few organic accounts posting and engaging all day, every day."""
    rng = w.rng
    n = max(2, round(8 * scale))
    per_day = 8.0 * min(1.0, max(0.15, 2 * scale))
    people = []
    for plat in rng.choice(["x", "facebook", "reddit"], n):
        one = pop.draft(w, str(plat), 1)
        people.append(one if len(one) else pop.draft(w, None, 1))
    people = np.concatenate(people)
    rows = rng.poisson(per_day * w.cal.days, len(people))
    who = np.repeat(people, rows)
    m = len(who)
    # Awake most of the day: a wide chronotype spread around their own offset.
    ts = human_times(rng, w.cal, pop.offset[who], rng.normal(0, 3.0, m), pop.weekend[who])
    orig = rng.random(m) < 0.4
    originals(w, pop, who[orig], ts=ts[orig], text=None, urls=links(w, pop, int(orig.sum()),
                                                                     0.6),
              tags=hashtags(w, pop, int(orig.sum()), 0.6))
    eng = who[~orig]
    plat = w.acc_platform[eng]
    tgt = np.empty(len(eng), np.int64)
    base = np.flatnonzero(w.post_kind == K["post"])
    for code in np.unique(plat):
        cand = base[w.acc_platform[w.post_author[base]] == code]
        sel = plat == code
        tgt[sel] = rng.choice(cand, sel.sum())
    kind = rng.choice([K["share"], K["comment"], K["reaction"]], len(eng), p=[0.5, 0.3, 0.2])
    engage(w, eng, tgt, kind, delay_median=2 * HOUR)
    w.negative(people, "hyperactive")
    return {"size": int(len(people)), "rows": int(m),
            "rows_per_day": float(round(m / max(1, len(people)) / w.cal.days, 1))}


def all_negatives(w: World, pop: Population, scale: float) -> dict:
    return {"viral": viral(w, pop, scale), "activist": activist(w, pop, scale),
            "chain_message": chain_messages(w, pop, scale),
            "hyperactive": hyperactive(w, pop, scale)}


__all__ = ["all_negatives"]
