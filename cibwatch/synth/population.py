"""The organic population: users over the world's time zones, organic pages, channels
and groups, their posts, their engagement with each other and their follow graph.

Sizes (scale 1): about 9,000 people and 300 pages, channels, groups and outlets, ~75k
rows of organic activity including the hard negatives drawn from these same people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cibwatch.synth import texts
from cibwatch.synth.rhythms import DAY, HOUR, human_times
from cibwatch.synth.world import PLATFORMS, K, P, World

YEAR = 365 * DAY

# (UTC offset, weight, languages, places). UTC+8 is deliberately crowded with people
# outside mainland China, so "+8" alone proves nothing.
ZONES = [
    (-8.0, 0.08, ["en", "es"], ["Los Angeles", "Seattle", "Vancouver", "San Diego"]),
    (-7.0, 0.03, ["en"], ["Denver", "Phoenix"]),
    (-6.0, 0.06, ["en", "es"], ["Chicago", "Mexico City", "Houston", "Guatemala"]),
    (-5.0, 0.10, ["en", "es"], ["New York", "Toronto", "Bogotá", "Lima", "Atlanta"]),
    (-3.0, 0.07, ["pt", "es"], ["São Paulo", "Buenos Aires", "Rio de Janeiro"]),
    (0.0, 0.06, ["en", "pt"], ["London", "Dublin", "Lisbon", "Accra"]),
    (1.0, 0.10, ["de", "fr", "es", "it", "en"], ["Berlin", "Paris", "Madrid", "Rome", "Lagos"]),
    (2.0, 0.04, ["ar", "en"], ["Cairo", "Johannesburg", "Athens"]),
    (3.0, 0.05, ["ru", "tr", "ar"], ["Moscow", "Istanbul", "Riyadh", "Nairobi"]),
    (3.5, 0.01, ["fa"], ["Tehran", "Isfahan"]),
    (5.5, 0.07, ["hi", "en"], ["Mumbai", "Delhi", "Bangalore", "Chennai"]),
    (7.0, 0.05, ["vi", "th", "id"], ["Hanoi", "Bangkok", "Jakarta", "Ho Chi Minh City"]),
    (8.0, 0.03, ["zh"], ["Taipei", "Kaohsiung", "Taichung"]),
    (8.0, 0.02, ["zh", "en"], ["Hong Kong", "Kowloon"]),
    (8.0, 0.02, ["en", "zh", "ms"], ["Singapore"]),
    (8.0, 0.03, ["tl", "en"], ["Manila", "Cebu", "Davao"]),
    (8.0, 0.01, ["en"], ["Perth", "Fremantle"]),
    (8.0, 0.01, ["ms", "en"], ["Kuala Lumpur", "Penang"]),
    (9.0, 0.04, ["ja", "ko"], ["Tokyo", "Osaka", "Seoul", "Busan"]),
    (10.0, 0.03, ["en"], ["Sydney", "Melbourne", "Brisbane"]),
    (12.0, 0.01, ["en"], ["Auckland", "Wellington"]),
]
PLATFORM_WEIGHTS = np.array([0.30, 0.15, 0.24, 0.08, 0.12, 0.11])

# Share of an organic person's rows that are originals; the rest is engagement.
ORIGINAL_SHARE = 0.45
# Share of organic engagement made while browsing a feed at one's own hours (the rest
# follows the post within minutes: notifications, popular authors).
FEED_SHARE = 0.5
ENGAGEMENT_KIND_P = {"comment": 0.33, "reaction": 0.37, "share": 0.20, "reply": 0.10}


@dataclass
class Population:
    """Indices and traits of the organic assets."""

    users: np.ndarray
    assets: np.ndarray            # pages, channels, groups, outlets
    offset: np.ndarray            # per global account index (organic only meaningful)
    chrono: np.ndarray
    weekend: np.ndarray
    activity: np.ndarray          # expected rows over the world
    popularity: np.ndarray        # how much attention an account's posts draw
    domains: np.ndarray
    domain_p: np.ndarray
    articles: np.ndarray
    article_p: np.ndarray
    tags: np.ndarray
    tag_p: np.ndarray
    used: np.ndarray              # organic users already drafted into a hard-negative group

    def on(self, w: World, platform: str, pool: np.ndarray | None = None) -> np.ndarray:
        pool = self.users if pool is None else pool
        return pool[w.acc_platform[pool] == P[platform]]

    def draft(self, w: World, platform: str | None, n: int, min_age_years: float = 0.0):
        """n organic users not yet in any hard-negative group, weighted by activity."""
        pool = self.users if platform is None else self.on(w, platform)
        ok = ~self.used[pool] & (w.acc_created[pool] < w.cal.start - min_age_years * YEAR)
        pool = pool[ok]
        n = min(n, len(pool))
        if n == 0:
            return np.empty(0, np.int64)
        p = self.activity[pool] ** 0.5
        pick = w.rng.choice(pool, n, replace=False, p=p / p.sum())
        self.used[pick] = True
        return pick

    def grow(self, n_total: int) -> None:
        """Extend the per-account arrays after new accounts were added."""
        for name in ("offset", "chrono", "weekend", "activity", "popularity"):
            arr = getattr(self, name)
            if len(arr) < n_total:
                setattr(self, name, np.concatenate([arr, np.zeros(n_total - len(arr))]))
        if len(self.used) < n_total:
            self.used = np.concatenate([self.used, np.ones(n_total - len(self.used), bool)])


def zipf_p(n: int, a: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** a
    return p / p.sum()


def organic_handles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Varied personal handles; a few patterns mixed, digits only sometimes."""
    first = texts.pick(rng, texts.FIRST_NAMES, n)
    last = texts.pick(rng, texts.LAST_NAMES, n)
    word = texts.pick(rng, texts.VOCAB["en"].split(), n)
    num = rng.integers(1, 9999, n).astype(str)
    year = rng.integers(70, 100, n).astype(str)
    pattern = rng.integers(0, 7, n)
    out = np.select(
        [pattern == 0, pattern == 1, pattern == 2, pattern == 3, pattern == 4, pattern == 5],
        [first + last, first + "_" + last, first + "." + last + num, word + "_" + first,
         first + year, last + "_" + first],
        first + "_" + word + num,
    )
    return dedupe(out)


def dedupe(handles: np.ndarray) -> np.ndarray:
    """Append a counter to repeated handles (handles are unique on a platform)."""
    handles = np.asarray(handles, dtype=object)
    _, inverse = np.unique(handles.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    ranked = inverse[order]
    rank = np.empty(len(handles), np.int64)
    rank[order] = np.arange(len(handles)) - np.searchsorted(ranked, ranked, side="left")
    dup = rank > 0
    out = handles.copy()
    out[dup] = handles[dup] + rank[dup].astype(str).astype(object)
    return out


def build(w: World, scale: float) -> Population:
    """Create the organic accounts (no activity yet)."""
    rng = w.rng
    n_users = max(300, round(9000 * scale))
    zone_w = np.array([z[1] for z in ZONES])
    zone = rng.choice(len(ZONES), n_users, p=zone_w / zone_w.sum())
    offset = np.array([z[0] for z in ZONES])[zone]
    lang = np.empty(n_users, dtype=object)
    place = np.empty(n_users, dtype=object)
    for zi, (_, _, langs, places) in enumerate(ZONES):
        idx = np.flatnonzero(zone == zi)
        lang[idx] = texts.pick(rng, langs, len(idx))
        place[idx] = texts.pick(rng, places, len(idx))
    place[rng.random(n_users) < 0.4] = None
    platform = rng.choice(len(PLATFORMS), n_users, p=PLATFORM_WEIGHTS)
    age = rng.lognormal(np.log(5.0), 0.6, n_users)
    # Redraw the tails instead of clipping them: a clip would give hundreds of people
    # the very same creation second, which is exactly what batch creation looks like.
    age = np.where(age > 16.0, rng.uniform(8.0, 16.0, n_users), age)
    age = np.where(age < 0.2, rng.uniform(0.2, 1.0, n_users), age) * YEAR
    created = (w.cal.start - age).astype(np.int64)
    fresh = rng.random(n_users) < 0.03
    created[fresh] = rng.integers(w.cal.start, w.cal.start + w.cal.days * DAY // 2, fresh.sum())
    first = texts.pick(rng, texts.FIRST_NAMES, n_users)
    last = texts.pick(rng, texts.LAST_NAMES, n_users)
    display = np.char.add(np.char.add(np.char.capitalize(first.astype(str)), " "),
                          np.char.capitalize(last.astype(str))).astype(object)
    avatar = texts.hex_ids(rng, n_users)
    default = rng.random(n_users)
    # Platform default pictures: many real people share one "avatar hash".
    avatar[default < 0.06] = "f0f0f0f0f0f0f0f0"
    avatar[(default >= 0.06) & (default < 0.10)] = None
    bio = np.where(rng.random(n_users) < 0.5, None, "bio")
    bio_idx = np.flatnonzero(bio == "bio")
    bio = bio.astype(object)
    if len(bio_idx):
        bio[bio_idx] = texts.organic_texts(rng, lang[bio_idx]).to_numpy(zero_copy_only=False)
    users = w.add_accounts(
        platform, created, "account", handle=organic_handles(rng, n_users),
        display_name=display, bio=bio, avatar_hash=avatar, claimed_location=place,
        lang=lang, followers_extra=rng.lognormal(3.0, 1.5, n_users).astype(np.int64),
    )
    activity = np.clip(rng.lognormal(np.log(3.6), 1.1, n_users), 0.5, 400.0)
    chrono = rng.normal(0.0, 1.2, n_users)
    owl = rng.random(n_users) < 0.12
    chrono[owl] += rng.normal(4.0, 1.0, owl.sum())
    weekend = rng.uniform(1.0, 1.7, n_users)
    popularity = activity**0.5 * rng.lognormal(0.0, 1.0, n_users)

    # Organic pages (facebook), groups (facebook), channels (youtube), outlets (x, instagram).
    kinds = [("facebook", "page", 120), ("facebook", "group", 40), ("youtube", "channel", 80),
             ("x", "account", 30), ("instagram", "account", 20), ("tiktok", "account", 15)]
    asset_idx = []
    asset_off = []
    for plat, atype, base in kinds:
        n = max(3, round(base * scale))
        zi = rng.choice(len(ZONES), n, p=zone_w / zone_w.sum())
        a_lang = np.array([texts.pick(rng, ZONES[z][2], 1)[0] for z in zi], dtype=object)
        names = texts.words(rng, "en", n, 2)
        suffix = texts.pick(rng, ["News", "Daily", "TV", "Official", "Community", "Hub",
                                  "Fans", "Club", "Live", "Network"], n)
        display = texts.join(pc.utf8_title(names), suffix, sep=" ")
        handle = pc.replace_substring(pc.utf8_lower(display), " ", "")
        created = (w.cal.start - rng.uniform(1.0, 14.0, n) * YEAR).astype(np.int64)
        idx = w.add_accounts(
            P[plat], created, atype, handle=dedupe(np.asarray(handle.to_pylist(), object)),
            display_name=display, bio=texts.organic_texts(rng, a_lang),
            avatar_hash=texts.hex_ids(rng, n), lang=a_lang,
            followers_extra=rng.lognormal(8.0, 1.5, n).astype(np.int64),
        )
        asset_idx.append(idx)
        asset_off.append(np.array([ZONES[z][0] for z in zi]))
    assets = np.concatenate(asset_idx)
    n_total = w.n_accounts
    full = np.zeros(n_total)

    def put(values_users, values_assets):
        out = full.copy()
        out[users] = values_users
        out[assets] = values_assets
        return out

    n_assets = len(assets)
    dom = texts.domains(rng, max(400, round(3000 * min(scale, 3.0))))
    n_articles = max(200, round(2500 * scale))
    art_dom = rng.choice(len(dom), n_articles, p=zipf_p(len(dom), 1.1))
    slugs = texts.words(rng, "en", n_articles, 4)
    articles = texts.join(
        texts.join("https://", dom[art_dom]), "/2024/",
        pc.replace_substring(slugs, " ", "-"),
    ).to_numpy(zero_copy_only=False)
    tags = texts.hashtag_pool(rng, max(300, round(1500 * min(scale, 4.0))))
    used = np.ones(n_total, bool)
    used[users] = False
    return Population(
        users=users, assets=assets,
        offset=put(offset, np.concatenate(asset_off)),
        chrono=put(chrono, rng.normal(0.0, 1.0, n_assets)),
        weekend=put(weekend, rng.uniform(0.9, 1.2, n_assets)),
        activity=put(activity, rng.lognormal(np.log(25.0), 0.6, n_assets)),
        popularity=put(popularity, rng.lognormal(np.log(30.0), 1.0, n_assets)),
        domains=dom, domain_p=zipf_p(len(dom), 1.1),
        articles=articles, article_p=zipf_p(n_articles, 0.9),
        tags=tags, tag_p=zipf_p(len(tags), 1.05),
        used=used,
    )


def _zipf_draw(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with probabilities p (inverse CDF: much faster than choice)."""
    return np.searchsorted(np.cumsum(p), rng.random(n) * p.sum()).clip(0, len(p) - 1)


def _take(values: np.ndarray, idx: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(idx))


def sparse(n: int, mask: np.ndarray, values: pa.Array) -> pa.Array:
    """A length-n string column holding `values` (one per True in `mask`), else null:
    optional columns are only generated for the rows that have them."""
    return pc.replace_with_mask(pa.nulls(n, pa.string()), pa.array(mask), values)


def links(w: World, pop: Population, n: int, share: float) -> pa.Array:
    """A `urls` column: `share` of rows carry a link, half of them to a popular article
    everyone shares, the rest to a unique page of a Zipf-chosen domain."""
    rng = w.rng
    has = rng.random(n) < share
    m = int(has.sum())
    popular = rng.random(m) < 0.5
    art = _take(pop.articles, _zipf_draw(rng, pop.article_p, m))
    dom = _take(pop.domains, _zipf_draw(rng, pop.domain_p, m))
    uniq = texts.join(texts.join("https://", dom), "/p/", texts.hex_array(rng, m, 10))
    return sparse(n, has, pc.if_else(pa.array(popular), art, uniq))


def hashtags(w: World, pop: Population, n: int, share: float) -> pa.Array:
    """A `hashtags` column: `share` of rows carry 1-3 Zipf-popular hashtags."""
    rng = w.rng
    has = rng.random(n) < share
    m = int(has.sum())
    k = rng.integers(1, 4, m)
    cols = [_take(pop.tags, _zipf_draw(rng, pop.tag_p, m)) for _ in range(3)]
    two = texts.join(cols[0], cols[1], sep=" ")
    three = texts.join(two, cols[2], sep=" ")
    out = pc.if_else(pa.array(k == 1), cols[0], pc.if_else(pa.array(k == 2), two, three))
    return sparse(n, has, out)


def originals(w: World, pop: Population, authors: np.ndarray, ts: np.ndarray | None = None,
              text=None, link_share: float = 0.3, tag_share: float = 0.3, title=None,
              urls=None, tags=None) -> np.ndarray:
    """Original posts by `authors` at their own human times (or `ts`), with the media a
    platform expects (photos on instagram/tiktok, video links on youtube)."""
    rng = w.rng
    n = len(authors)
    if ts is None:
        ts = human_times(rng, w.cal, pop.offset[authors], pop.chrono[authors],
                         pop.weekend[authors], lo=w.acc_created[authors])
    plat = w.acc_platform[authors]
    yt = plat == P["youtube"]
    if text is None:
        text = texts.organic_texts(rng, w.acc_lang[authors])
    if urls is None:
        urls = links(w, pop, n, link_share)
        video = texts.join("https://www.youtube.com/watch?v=",
                           texts.hex_array(rng, int(yt.sum()), 11))
        urls = pc.replace_with_mask(urls, pa.array(yt), video)
    if title is None:
        title = sparse(n, yt, texts.words(rng, "en", int(yt.sum()), 5))
    photo = np.isin(plat, [P["instagram"], P["tiktok"]]) | (rng.random(n) < 0.15)
    media = sparse(n, photo, texts.hex_array(rng, int(photo.sum())))
    if tags is None:
        tags = hashtags(w, pop, n, tag_share)
    return w.add_posts(authors, ts, "post", text=text, title=title, urls=urls,
                       hashtags=tags, media_hashes=media)


def organic_posts(w: World, pop: Population, scale: float) -> np.ndarray:
    """Every organic asset's original posts."""
    rng = w.rng
    who = np.concatenate([pop.users, pop.assets])
    share = np.where(np.isin(who, pop.assets), 0.9, ORIGINAL_SHARE)
    counts = rng.poisson(pop.activity[who] * share)
    authors = np.repeat(who, counts)
    return originals(w, pop, authors)


def _engagement_text(w: World, engagers: np.ndarray, kind) -> pa.Array:
    """Comments and replies have text, a third of shares too; reactions none."""
    n = len(engagers)
    kind = np.broadcast_to(np.asarray(kind), n)
    wants = np.isin(kind, [K["comment"], K["reply"]]) | (
        (kind == K["share"]) & (w.rng.random(n) < 0.3)
    )
    return sparse(n, wants, texts.organic_texts(w.rng, w.acc_lang[engagers[wants]]))


def engage(w: World, engagers: np.ndarray, targets: np.ndarray, kind,
           delay_median: float = 1500.0, delay_sigma: float = 1.6,
           text=None) -> np.ndarray:
    """Engagement rows: engager i acts on post targets[i] (kind codes per row) after a
    log-normal delay. Comments and replies get their own text; shares sometimes."""
    rng = w.rng
    n = len(engagers)
    if n == 0:
        return np.empty(0, np.int64)
    delay = rng.lognormal(np.log(delay_median), delay_sigma, n).astype(np.int64) + 5
    ts = np.maximum(w.post_ts[targets] + delay, w.acc_created[engagers] + 60)
    # Engagement after the end of the world is simply not in the data.
    keep = ts < w.cal.end
    if not keep.all():
        engagers, targets, ts = engagers[keep], targets[keep], ts[keep]
        kind = kind[keep] if np.ndim(kind) else kind
        if text is not None:
            text = text.filter(pa.array(keep))
    if text is None:
        text = _engagement_text(w, engagers, kind)
    return w.add_posts(engagers, ts, kind, text=text, target=targets)


def feed_engage(w: World, engagers: np.ndarray, ts: np.ndarray, pool: np.ndarray,
                kind, text=None, reach: float = 40.0) -> np.ndarray:
    """Engagement at the engager's own times: each acts on a post from `pool` published
    shortly before (a geometric number of posts back, mean `reach`), like someone
    scrolling a feed. Rows with nothing earlier in the pool are dropped."""
    rng = w.rng
    if not len(pool) or not len(engagers):
        return np.empty(0, np.int64)
    pool = pool[np.argsort(w.post_ts[pool], kind="stable")]
    pos = np.searchsorted(w.post_ts[pool], ts, side="left") - rng.geometric(1.0 / reach,
                                                                            len(ts))
    keep = pos >= 0
    tgt = pool[np.maximum(pos, 0)]
    kind = np.broadcast_to(np.asarray(kind), len(ts))[keep]
    if text is not None:
        text = text.filter(pa.array(keep))
    return w.add_posts(engagers[keep], ts[keep], kind, text=text, target=tgt[keep])


def pick_targets(w: World, pop: Population, pool: np.ndarray, n: int) -> np.ndarray:
    """n posts from `pool`, weighted by their author's popularity and a per-post pull."""
    if n == 0 or not len(pool):
        return np.empty(0, np.int64)
    weight = pop.popularity[w.post_author[pool]] * w.rng.lognormal(0.0, 1.0, len(pool))
    return w.rng.choice(pool, n, p=weight / weight.sum())


def organic_engagement(w: World, pop: Population) -> None:
    """Organic people comment, react, share and reply among themselves, on the same
    platform; busy people engage more, popular authors receive more."""
    rng = w.rng
    people = pop.users
    counts = rng.poisson(pop.activity[people] * (1 - ORIGINAL_SHARE))
    organic_authors = np.zeros(w.n_accounts, bool)
    organic_authors[pop.users] = True
    organic_authors[pop.assets] = True
    is_orig = (w.post_kind == K["post"]) & organic_authors[w.post_author]
    kinds = np.array([K[k] for k in ENGAGEMENT_KIND_P])
    kind_p = np.array(list(ENGAGEMENT_KIND_P.values()))
    for code, _name in enumerate(PLATFORMS):
        who = people[w.acc_platform[people] == code]
        engagers = np.repeat(who, counts[w.acc_platform[people] == code])
        rng.shuffle(engagers)
        kind = rng.choice(kinds, len(engagers), p=kind_p)
        first = kind != K["reply"]
        n0 = len(is_orig)
        pool = np.flatnonzero(is_orig & (w.acc_platform[w.post_author[:n0]] == code))
        # Half browse their feed at their own hours; half react to what reaches them
        # (popular authors, notifications), minutes after it is posted.
        feed = first & (rng.random(len(engagers)) < FEED_SHARE)
        push = first & ~feed
        f_who = engagers[feed]
        feed_engage(w, f_who, human_times(rng, w.cal, pop.offset[f_who], pop.chrono[f_who],
                                          pop.weekend[f_who], lo=w.acc_created[f_who]),
                    pool, kind[feed], text=_engagement_text(w, f_who, kind[feed]))
        tgt = pick_targets(w, pop, pool, int(push.sum()))
        engage(w, engagers[push], tgt, kind[push])
        comments = np.flatnonzero((w.post_kind == K["comment"]) & organic_authors[w.post_author]
                                  & (w.acc_platform[w.post_author] == code))
        replies = engagers[~first]
        if len(comments) and len(replies):
            tgt = rng.choice(comments, len(replies))
            engage(w, replies, tgt, K["reply"], delay_median=900.0)


def organic_follows(w: World, pop: Population) -> None:
    """Each organic person follows a heavy-tailed number of accounts on their platform,
    preferring popular ones; pages and groups collect organic followers."""
    rng = w.rng
    people = pop.users
    k = np.clip(rng.lognormal(np.log(10.0), 0.9, len(people)).astype(int), 1, 400)
    for code in range(len(PLATFORMS)):
        sel = w.acc_platform[people] == code
        who = np.repeat(people[sel], k[sel])
        cand = np.concatenate([people[sel], pop.assets[w.acc_platform[pop.assets] == code]])
        if not len(cand) or not len(who):
            continue
        weight = pop.popularity[cand]
        tgt = rng.choice(cand, len(who), p=weight / weight.sum())
        lo = np.maximum(w.acc_created[who], w.acc_created[tgt])
        ts = lo + (rng.random(len(who)) * (w.cal.end - lo)).astype(np.int64)
        w.add_follows(who, tgt, ts)


def organic_on_posts(w: World, pop: Population, posts: np.ndarray, n: int,
                     delay_median: float = 3 * HOUR) -> np.ndarray:
    """n organic engagements (comments/reactions/shares) on the given posts, by people on
    the same platform: the authentic attention an operation manages to draw."""
    rng = w.rng
    if n <= 0 or not len(posts):
        return np.empty(0, np.int64)
    tgt = rng.choice(posts, n)
    plat = w.acc_platform[w.post_author[tgt]]
    engagers = np.empty(n, np.int64)
    for code in np.unique(plat):
        sel = plat == code
        cand = pop.users[w.acc_platform[pop.users] == code]
        engagers[sel] = rng.choice(cand, sel.sum())
    kind = rng.choice([K["comment"], K["reaction"], K["share"]], n, p=[0.35, 0.45, 0.2])
    return engage(w, engagers, tgt, kind, delay_median=delay_median, delay_sigma=1.2)
