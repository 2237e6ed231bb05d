"""The planted operations, each in its own style (labels role `operator`, bought
followers `fake_follower`):

- spamouflage: UTC+8, four offices on office-shift variants, facebook-heavy, central
  headlines with light variation, the same video links across platforms, batch-made
  accounts with templated handles and reused avatars, an echo chamber of its own
  comments, pages with bought followers, dormant accounts;
- persona: UTC+3, day and night shifts, older persona accounts, paraphrased talking
  points, hashtag games;
- botnet: round-the-clock bots re-sharing a few seed accounts within seconds;
- small_a (UTC+3:30, Saturday-Wednesday office week) and small_b (UTC+1, human
  rhythm): 8 to 15 assets each.

Every function returns the operation's truth entry (everything that is known by
construction); figures measured on the data (echo ratio, follower share, tallies) are
added by `truth.py`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cibwatch.synth import texts
from cibwatch.synth.population import (
    Population,
    dedupe,
    engage,
    feed_engage,
    organic_handles,
    organic_on_posts,
    originals,
)
from cibwatch.synth.rhythms import (
    DAY,
    HOUR,
    OFFICE_VARIANTS,
    PERSONA_SHIFT,
    SMALL_OFFICE_SHIFT,
    Calendar,
    Shift,
    consensus,
    human_times,
    iso,
    office_times,
    on_shift_after,
    uniform_times,
)
from cibwatch.synth.world import PLATFORMS as PLATFORM_NAMES
from cibwatch.synth.world import K, P, World

YEAR = 365 * DAY


def volume(scale: float) -> float:
    """Per-asset activity factor: operations keep a minimum size at tiny scales, so their
    per-asset volume shrinks there instead (keeps the world mostly organic)."""
    return float(np.clip(scale / 0.2, 0.35, 1.0))


def batch_times(rng: np.random.Generator, n: int, n_batches: int, lo: int, hi: int,
                offset_h: float) -> np.ndarray:
    """Creation times in `n_batches` bursts: each batch made within ~20 minutes during
    local office hours between lo and hi."""
    batch = rng.integers(0, n_batches, n)
    days = rng.integers(lo // DAY, hi // DAY, n_batches)
    hour = rng.uniform(9.5, 16.5, n_batches)
    start = (days * DAY + hour * HOUR - offset_h * HOUR).astype(np.int64)
    return start[batch] + rng.integers(0, 20 * 60, n)


def templated(rng: np.random.Generator, n: int, style: int) -> np.ndarray:
    """Handles from a narrow template (the operation's batch-creation script)."""
    first = texts.pick(rng, ["lily", "grace", "helen", "amy", "cindy", "vicky", "joy", "emma"], n)
    last = texts.pick(rng, ["wang", "zhang", "liu", "chen", "yang", "zhao", "huang"], n)
    adj = texts.pick(rng, ["happy", "sunny", "blue", "golden", "lucky", "brave"], n)
    noun = texts.pick(rng, ["panda", "river", "cloud", "tiger", "lotus", "bamboo"], n)
    if style == 0:
        out = first + last + np.char.mod("%04d", rng.integers(0, 10000, n)).astype(object)
    elif style == 1:
        out = adj + "_" + noun + np.char.mod("%03d", rng.integers(0, 1000, n)).astype(object)
    elif style == 2:
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"), dtype=object)
        out = last + first + np.char.mod("%02d", rng.integers(0, 100, n)).astype(object) + \
            letters[rng.integers(0, 26, n)] + letters[rng.integers(0, 26, n)]
    else:
        out = first + "." + last + "." + np.char.mod("%04d", rng.integers(0, 10000, n)).astype(
            object)
    return dedupe(out)


def _display(rng: np.random.Generator, handles: np.ndarray) -> np.ndarray:
    names = ["王丽", "张伟", "李娜", "刘洋", "陈静", "杨帆", "赵敏", "黄磊"]
    zh = texts.pick(rng, names, len(handles))
    en = np.array([h.split("_")[0].split(".")[0].rstrip("0123456789").title() for h in handles],
                  dtype=object)
    return np.where(rng.random(len(handles)) < 0.3, zh, en)


def _engagers(w: World, rng, candidates: np.ndarray, targets: np.ndarray) -> tuple:
    """For each target post, one engager among `candidates` on its platform (not its
    author). Returns (engagers, targets) with rows that found none dropped."""
    tp = w.acc_platform[w.post_author[targets]]
    eng = np.full(len(targets), -1, np.int64)
    for code in np.unique(tp):
        cand = candidates[w.acc_platform[candidates] == code]
        sel = np.flatnonzero(tp == code)
        if len(cand) < 2:
            continue
        pick = rng.choice(cand, len(sel))
        clash = pick == w.post_author[targets[sel]]
        pick[clash] = rng.choice(cand, clash.sum())
        eng[sel] = pick
    ok = (eng >= 0) & (eng != w.post_author[targets])
    return eng[ok], targets[ok]


def _hostile(rng: np.random.Generator, text: pa.Array, share: float) -> pa.Array:
    """Put an adversarial payload into `share` of texts (some as the whole cell start)."""
    n = len(text)
    payload = texts.pick(rng, texts.HOSTILE, n)
    front = texts.join(payload, text, sep=" ")
    back = texts.join(text, payload, sep=" ")
    mixed = pc.if_else(pa.array(rng.random(n) < 0.5), front, back)
    return pc.if_else(pa.array(rng.random(n) < share), mixed, text)


def _own_engagement(w: World, rng, posts: np.ndarray, engager_pool: np.ndarray, rate: float,
                    comments: list[str], delay_median: float, kind_p=(0.4, 0.4, 0.2),
                    shifts: list[tuple[np.ndarray, Shift]] | None = None,
                    offset: float = 0.0) -> int:
    """The operation's own accounts comment on, react to and share its posts: on their
    own shift when they have one (`shifts`: members and shift per office, see
    `_operator_act`), otherwise after a plain delay."""
    k = rng.poisson(rate, len(posts))
    tgt = np.repeat(posts, k)
    eng, tgt = _engagers(w, rng, engager_pool, tgt)
    kind = rng.choice([K["comment"], K["reaction"], K["share"]], len(eng), p=list(kind_p))
    body = pa.array(texts.pick(rng, comments, len(eng)), pa.string())
    text = pc.if_else(pa.array(kind == K["comment"]), body, pa.nulls(len(eng), pa.string()))
    if shifts is None:
        engage(w, eng, tgt, kind, delay_median=delay_median, delay_sigma=1.0, text=text)
    else:
        _operator_act(w, eng, tgt, kind, text, delay_median, shifts, offset)
    return len(eng)


def _operator_act(w: World, engagers: np.ndarray, targets: np.ndarray, kind, text: pa.Array,
                  delay_median: float, shifts: list[tuple[np.ndarray, Shift]],
                  offset: float) -> np.ndarray:
    """Engagement rows by operators on a schedule: a log-normal delay (sd 1.0 in log
    space) counted in the acting account's own working time (`on_shift_after` with its
    office's shift), because staff act while at their desks. A plain delay would keep
    them replying through lunch, supper and a shift change, which the schedule (and so
    the truth) says is empty. Rows falling past the world's end are not in the data."""
    rng = w.rng
    n = len(engagers)
    if n == 0:
        return np.empty(0, np.int64)
    delay = (rng.lognormal(np.log(delay_median), 1.0, n) + 5).astype(np.int64)
    start = np.maximum(w.post_ts[targets], w.acc_created[engagers] + 60)
    ts = start + delay
    for members, shift in shifts:
        sel = np.isin(engagers, members)
        ts[sel] = on_shift_after(w.cal, shift, offset, start[sel], delay[sel])
    keep = ts < w.cal.end
    kind = np.broadcast_to(np.asarray(kind), n)
    return w.add_posts(engagers[keep], ts[keep], kind[keep], text=text.filter(pa.array(keep)),
                       target=targets[keep])


def _authentic(rng: np.random.Generator, own: int, per_own: float) -> int:
    """How many organic engagements an operation draws: about `per_own` per engagement
    of its own, with the spread a real audience has (so echo ratios are not round)."""
    return int(rng.poisson(own * per_own * rng.uniform(0.7, 1.3)))


def _follows_within(w: World, rng, followers: np.ndarray, followees: np.ndarray, k: float):
    """Each follower follows about k of the followees on its platform (linear in size)."""
    for code in np.unique(w.acc_platform[followers]):
        a = followers[w.acc_platform[followers] == code]
        b = followees[w.acc_platform[followees] == code]
        if not len(a) or not len(b):
            continue
        per = np.minimum(rng.poisson(k, len(a)), len(b))
        ai = np.repeat(a, per)
        bi = rng.choice(b, len(ai))
        lo = np.maximum(w.acc_created[ai], w.acc_created[bi])
        ts = lo + rng.integers(HOUR, 30 * DAY, len(ai))
        w.add_follows(ai, bi, ts)


# --------------------------------------------------------------------------- spamouflage
SPAM_PLATFORM_BASE = [  # per office at scale 1: (platform, asset type, base, floor)
    ("facebook", "account", 120, 8), ("facebook", "page", 10, 1),
    ("instagram", "account", 8, 1), ("x", "account", 15, 2), ("youtube", "channel", 3, 1),
    ("reddit", "account", 4, 1), ("tiktok", "account", 5, 1),
]


def spamouflage(w: World, pop: Population, scale: float) -> dict:
    """Four UTC+8 offices dropping central headlines on office shifts (module docstring)."""
    rng, cal = w.rng, w.cal
    op, offset = "spamouflage", 8.0
    themes = list(texts.SPAM_THEMES)
    headlines = []
    for ti, name in enumerate(themes):
        for lang in ("en", "zh"):
            for h in texts.SPAM_THEMES[name][lang]:
                own_tags = texts.cycled(texts.SPAM_THEME_TAGS[name], len(texts.SPAM_HASHTAGS))
                headlines.append((ti, lang, texts.variants(h, rng, own_tags)))
    n_variants = len(headlines[0][2])
    variant_text = pa.array([v for _, _, vs in headlines for v in vs], pa.string())
    headline_lang = np.array([lang for _, lang, _ in headlines], dtype=object)
    headline_theme = np.array([ti for ti, _, _ in headlines])
    theme_tags = np.array([texts.cycled(texts.SPAM_THEME_TAGS[t], len(texts.SPAM_HASHTAGS))
                           for t in themes], dtype=object)
    op_domains = np.array(["globaltruthdaily.com", "newsvoice24.net", "worldinsight-now.com",
                           "peoplesview.info", "asiareview-news.com", "truthlens.org"])
    offices = []
    all_ops, all_dormant, pages, posting_all = [], [], [], []
    for j, shift in enumerate(OFFICE_VARIANTS):
        members = []
        for plat, atype, base, floor in SPAM_PLATFORM_BASE:
            n = max(floor, round(base * scale))
            created = batch_times(rng, n, 3 if n > 20 else 1, cal.start - 300 * DAY,
                                  cal.start - DAY, offset)
            if atype == "account":
                handles = templated(rng, n, j)
                display = _display(rng, handles)
            else:
                words = texts.words(rng, "en", n, 2).to_numpy(zero_copy_only=False)
                suffix = texts.pick(rng, ["Truth", "Voice", "Insight", "Watch", "Daily",
                                          "Today", "View"], n)
                display = np.array([f"{x.title()} {s}" for x, s in zip(words, suffix,
                                                                        strict=True)],
                                   dtype=object)
                handles = dedupe(np.array([d.replace(" ", "").lower() for d in display],
                                           dtype=object))
            # Reused avatars: most assets of an office draw from a handful of pictures.
            k = max(2, n // 15)
            pool = texts.hex_ids(rng, k)
            avatar = np.where(rng.random(n) < 0.7, pool[rng.integers(0, k, n)],
                              texts.hex_ids(rng, n))
            lang = np.where(rng.random(n) < 0.3, "zh", "en").astype(object)
            bio = np.where(rng.random(n) < 0.5, None,
                           texts.pick(rng, ["Love peace", "Truth seeker", "News and views",
                                            "热爱和平", "Seeking the truth"], n))
            idx = w.add_accounts(
                P[plat], created, atype, handle=handles, display_name=display, bio=bio,
                avatar_hash=avatar, lang=lang,
                claimed_location=np.where(rng.random(n) < 0.3, "New York", None),
                followers_extra=(rng.lognormal(7.0, 1.0, n) if atype == "page"
                                 else rng.integers(0, 30, n)).astype(np.int64),
            )
            members.append(idx)
            if atype == "page":
                pages.append(idx)
        if j < 2:  # a few groups, run by the first two offices
            n = max(1, round(scale))
            created = batch_times(rng, n, 1, cal.start - 200 * DAY, cal.start, offset)
            names = np.array([f"Friends of Truth {j}{i}" for i in range(n)], dtype=object)
            handles = np.array([f"friendsoftruth{j}{i}" for i in range(n)], dtype=object)
            g = w.add_accounts(P["facebook"], created, "group", handle=handles,
                               display_name=names,
                               lang="en", avatar_hash=texts.hex_ids(rng, n),
                               followers_extra=rng.integers(50, 500, n))
            members.append(g)
        members = np.concatenate(members)
        is_acct = w.acc_type[members] == "account"
        dormant = members[is_acct & (rng.random(len(members)) < 0.15)]
        posting = np.setdiff1d(members, dormant)
        offices.append({"shift": shift, "members": members, "posting": posting,
                        "dormant": dormant})
        all_ops.append(members)
        all_dormant.append(dormant)
        posting_all.append(posting)
    # Two display names carry payloads: names are adversary-controlled too.
    first = offices[0]["posting"]
    hostile_names = {int(first[0]): "<script>alert('name')</script>",
                     int(first[1]): "=HYPERLINK(\"http://evil.example\",\"Lily\")"}
    w.info.setdefault("display_overrides", {}).update(hostile_names)

    # Centrally supplied content, dropped by many accounts of an office within minutes.
    op_posts = []
    n_original = max(60, round(4200 * scale))
    sizes = np.array([len(o["posting"]) for o in offices], float)
    # 6-18 accounts per drop (3-8 in tiny worlds, so that there are still enough drops to
    # show the schedule); drawn with replacement, repeats dropped.
    lo, hi = (6, 19) if scale >= 0.2 else (3, 9)
    n_drops = [max(12, round(n_original * sz / sizes.sum() / ((lo + hi - 1) / 2)))
               for sz in sizes]
    # Every headline is used (the central supply reaches all offices), then repeats.
    hl_supply = rng.permutation(np.resize(rng.permutation(len(headlines)), sum(n_drops)))
    hl_start = np.concatenate([[0], np.cumsum(n_drops)])
    for j, office in enumerate(offices):
        posting = office["posting"]
        plat_w = np.where(w.acc_platform[posting] == P["facebook"], 1.0, 0.6)
        plat_w = plat_w / plat_w.sum()
        drops = n_drops[j]
        drop_t = office_times(rng, cal, office["shift"], offset, drops)
        drop_hl = hl_supply[hl_start[j]:hl_start[j + 1]]
        m = np.minimum(rng.integers(lo, hi, drops), len(posting))
        drop_of = np.repeat(np.arange(drops), m)
        authors = rng.choice(posting, len(drop_of), p=plat_w)
        _, first = np.unique(drop_of * (w.n_accounts + 1) + authors, return_index=True)
        drop_of, authors = drop_of[first], authors[first]
        n = len(authors)
        ts = drop_t[drop_of] + rng.exponential(480.0, n).clip(20, 2400).astype(np.int64)
        hl = drop_hl[drop_of]
        vi = rng.integers(0, n_variants, n)
        text = variant_text.take(pa.array(hl * n_variants + vi))
        lang_rows = headline_lang[hl]
        text = _hostile(rng, text, 0.03)
        # Links: a drop carries the same video (youtube assets "upload" it) or article.
        kind_link = rng.choice(3, drops, p=[0.35, 0.35, 0.3])
        video = texts.join("https://www.youtube.com/watch?v=", texts.hex_ids(rng, drops, 11))
        article = texts.join(texts.join("https://", op_domains[rng.integers(0, 6, drops)]),
                             "/a/", texts.hex_ids(rng, drops, 8))
        drop_url = pc.if_else(pa.array(kind_link == 0), video,
                              pc.if_else(pa.array(kind_link == 1), article,
                                         pa.nulls(drops, pa.string())))
        urls = drop_url.take(pa.array(drop_of))
        media_pool = pa.array(texts.hex_ids(rng, drops))
        visual = np.isin(w.acc_platform[authors], [P["instagram"], P["tiktok"]]) | (
            rng.random(n) < 0.25)
        media = pc.if_else(pa.array(visual), media_pool.take(pa.array(drop_of)),
                           pa.nulls(n, pa.string()))
        headline_text = variant_text.take(pa.array(hl * n_variants))
        titled = np.isin(w.acc_type[authors], ["page", "channel"])
        title = pc.if_else(pa.array(titled), headline_text, pa.nulls(n, pa.string()))
        k = np.where(rng.random(n) < 0.5, rng.integers(1, 4, n), 0)
        # The first tag is the headline's theme tag, the others generic.
        tag_cols = [theme_tags[headline_theme[hl], rng.integers(0, len(texts.SPAM_HASHTAGS), n)]]
        tag_cols += [texts.pick(rng, texts.SPAM_HASHTAGS, n) for _ in range(2)]
        one = pa.array(tag_cols[0], pa.string())
        two = texts.join(one, np.where(tag_cols[1] == tag_cols[0], "USA", tag_cols[1]), sep=" ")
        three = texts.join(two, np.where(tag_cols[2] == tag_cols[0], "中国", tag_cols[2]), sep=" ")
        tags = pc.if_else(pa.array(k == 1), one, pc.if_else(pa.array(k == 2), two, three))
        tags = pc.if_else(pa.array(k == 0), pa.nulls(n, pa.string()), tags)
        posts = w.add_posts(authors, ts, "post", text=text, title=title, urls=urls,
                            hashtags=tags, media_hashes=media, lang=lang_rows)
        # Filler: each account's own scenery/lifestyle posts between the campaigns, on
        # the same shift (real Spamouflage accounts posted these to look personal).
        accounts = posting[w.acc_type[posting] == "account"]
        filler_by = rng.choice(accounts, max(1, round(0.2 * n)))
        filler = w.add_posts(
            filler_by, office_times(rng, cal, office["shift"], offset, len(filler_by)),
            "post", text=texts.organic_texts(rng, w.acc_lang[filler_by]),
            media_hashes=texts.hex_array(rng, len(filler_by)),
        )
        office["posts"] = np.concatenate([posts, filler])
        op_posts.append(office["posts"])
    op_posts = np.concatenate(op_posts)
    posting_all = np.concatenate(posting_all)
    accounts_posting = posting_all[w.acc_type[posting_all] == "account"]
    office_shifts = [(o["members"], o["shift"]) for o in offices]
    own = _own_engagement(w, rng, op_posts, accounts_posting, 2.6,
                          texts.SPAM_COMMENTS_EN + texts.SPAM_COMMENTS_ZH, 900.0,
                          shifts=office_shifts, offset=offset)
    # Dormant operators: 0-3 rows, all reactions/comments on the operation's posts.
    dormant = np.concatenate(all_dormant)
    k = rng.choice(4, len(dormant), p=[0.3, 0.3, 0.25, 0.15])
    who = np.repeat(dormant, k)
    plat_posts = {c: op_posts[w.acc_platform[w.post_author[op_posts]] == c]
                  for c in np.unique(w.acc_platform[w.post_author[op_posts]])}
    who = who[np.isin(w.acc_platform[who], list(plat_posts))]
    tgt = np.empty(len(who), np.int64)
    for code, pool in plat_posts.items():
        sel = w.acc_platform[who] == code
        tgt[sel] = rng.choice(pool, sel.sum())
    kind = rng.choice([K["reaction"], K["comment"]], len(who), p=[0.7, 0.3])
    body = pa.array(texts.pick(rng, texts.SPAM_COMMENTS_EN, len(who)), pa.string())
    _operator_act(w, who, tgt, kind, pc.if_else(pa.array(kind == K["comment"]), body,
                                                pa.nulls(len(who), pa.string())),
                  1800.0, office_shifts, offset)
    organic_on_posts(w, pop, op_posts, _authentic(rng, own + len(who), 0.1))

    all_ops = np.concatenate(all_ops)
    pages = np.concatenate(pages)
    w.label(all_ops, op)
    # Operators follow their office's pages and some of each other (dormant too).
    for office in offices:
        m = office["members"]
        _follows_within(w, rng, m[w.acc_type[m] == "account"], m[w.acc_type[m] != "account"],
                        3.0)
        _follows_within(w, rng, m[w.acc_type[m] == "account"], m[w.acc_type[m] == "account"],
                        2.0)
    bursts = fake_followers(w, pop, scale, pages, op)
    # A trickle of organic people follow the pages too.
    fb_people = pop.on(w, "facebook")
    n_org = max(5, round(len(pages) * 8 * min(scale, 1.0)))
    a = rng.choice(fb_people, n_org)
    b = rng.choice(pages, n_org)
    w.add_follows(a, b, np.maximum(w.acc_created[b], cal.start) + rng.integers(0, 40 * DAY, n_org))

    holidays = cal.cn_holidays()
    return {
        "style": "spamouflage",
        "utc_offset_hours": offset,
        "shift_pattern": True,
        "schedule": "office",
        # Operation level: the hours at least half of the offices keep (rhythms.consensus);
        # each office's own shift is under `clusters`.
        "work_hours": consensus([o["shift"] for o in offices])[0],
        "breaks": consensus([o["shift"] for o in offices])[1],
        "weekdays_only": True,
        "quiet_holidays": [{"date": cal.date(d).isoformat(), "name": n, "country": "CN"}
                           for d, n in sorted(holidays.items())],
        "narratives": [{"label": t, "keywords": texts.SPAM_THEMES[t]["keywords"]}
                       for t in themes],
        "languages": ["en", "zh"],
        "dormant_operators": int(len(dormant)),
        "follower_bursts": bursts,
        "clusters": [
            {"cluster": f"{op}-office-{j + 1}", "utc_offset_hours": offset,
             "shift_variant": o["shift"].name, "work_hours": o["shift"].work_hours(),
             "breaks": o["shift"].break_list(), "assets": int(len(o["members"])),
             "dormant": int(len(o["dormant"])), "posts": int(len(o["posts"]))}
            for j, o in enumerate(offices)
        ],
        "_members": {f"{op}-office-{j + 1}": o["members"] for j, o in enumerate(offices)},
    }


def fake_followers(w: World, pop: Population, scale: float, pages: np.ndarray,
                   op: str) -> list[dict]:
    """Bought followers: facebook accounts created in bursts that follow the operation's
    pages in bursts and (almost) never post."""
    rng, cal = w.rng, w.cal
    n = max(40, round(1000 * scale))
    n_bursts = 4
    burst = rng.integers(0, n_bursts, n)
    made_day = rng.integers(-120, cal.days - 20, n_bursts)
    made = cal.start + made_day * DAY + rng.integers(0, DAY, n_bursts)
    created = made[burst] + rng.integers(0, 2 * HOUR, n)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"), dtype=object)
    handle = letters[rng.integers(0, 26, n)] + letters[rng.integers(0, 26, n)] + \
        letters[rng.integers(0, 26, n)] + np.char.mod("%07d", rng.integers(0, 10**7, n)).astype(
            object)
    display = texts.join(texts.pick(rng, texts.FIRST_NAMES, n),
                         texts.pick(rng, texts.LAST_NAMES, n), sep=" ")
    display = pc.utf8_title(display)
    av = rng.random(n)
    avatar = np.where(av < 0.6, None, np.where(av < 0.7, "f0f0f0f0f0f0f0f0",
                                               texts.hex_ids(rng, n)))
    idx = w.add_accounts(P["facebook"], created, "account", handle=handle,
                         display_name=display, avatar_hash=avatar, lang="en",
                         followers_extra=rng.integers(0, 5, n))
    w.label(idx, op, "fake_follower")
    # Follows: each burst follows the pages within a few hours, days after creation.
    follow_at = np.maximum(made + rng.integers(1, 10, n_bursts) * DAY, cal.start + HOUR)
    per = rng.integers(1, min(4, len(pages)) + 1, n)
    who = np.repeat(idx, per)
    tgt = rng.choice(pages, len(who))
    ts = follow_at[burst][np.repeat(np.arange(n), per)] + rng.integers(0, 3 * HOUR, len(who))
    w.add_follows(who, tgt, ts)
    # Almost never post: 2% leave one bland post.
    posters = idx[rng.random(n) < 0.02]
    if len(posters):
        originals(w, pop, posters, ts=np.maximum(w.acc_created[posters] + DAY,
                                                 cal.start + DAY), link_share=0.0)
    return [{"created_from": iso(made[b]), "accounts": int((burst == b).sum()),
             "followed_from": iso(follow_at[b]), "follow_window_hours": 3}
            for b in range(n_bursts)]


# --------------------------------------------------------------------------- persona
def persona(w: World, pop: Population, scale: float) -> dict:
    """Old persona accounts at UTC+3 on day and night shifts, paraphrasing talking points."""
    rng, cal = w.rng, w.cal
    op, offset = "persona", 3.0
    v = volume(scale)
    n = max(12, round(60 * scale))
    plat = rng.choice([P["x"], P["facebook"], P["instagram"], P["reddit"], P["tiktok"]], n,
                      p=[0.4, 0.2, 0.15, 0.15, 0.1])
    created = (cal.start - rng.uniform(2.0, 7.0, n) * YEAR).astype(np.int64)
    handles = organic_handles(rng, n)
    display = pc.utf8_title(texts.join(texts.pick(rng, texts.FIRST_NAMES, n),
                                       texts.pick(rng, texts.LAST_NAMES, n), sep=" "))
    state = texts.pick(rng, ["Texas", "Ohio", "Florida", "Michigan", "Arizona", "Georgia",
                             "Pennsylvania", "Wisconsin"], n)
    role = texts.pick(rng, ["Proud mom", "Veteran", "Small business owner", "Nurse",
                            "Truck driver", "Teacher", "Grandpa"], n)
    faith = texts.pick(rng, ["God, family, country", "Jesus ❤️", "Free speech 🇺🇸",
                             "Common sense", "No DMs"], n)
    bio = texts.join(texts.join(role, state, sep=" | "), faith, sep=" | ")
    idx = w.add_accounts(plat, created, "account", handle=handles, display_name=display,
                         bio=bio, avatar_hash=texts.hex_ids(rng, n), claimed_location=state,
                         lang="en", followers_extra=rng.lognormal(5.0, 1.0, n).astype(np.int64))
    per = rng.poisson(45 * v, n)
    who = np.repeat(idx, per)
    m = len(who)
    ts = office_times(rng, cal, PERSONA_SHIFT, offset, m)
    themes = list(texts.PERSONA_THEMES)
    th = rng.integers(0, len(themes), m)
    text = np.empty(m, dtype=object)
    for ti, name in enumerate(themes):
        sel = np.flatnonzero(th == ti)
        slots = texts.PERSONA_THEMES[name]
        parts = [texts.pick(rng, slots[s], len(sel)) for s in "abcd"]
        text[sel] = texts.join(*parts, sep=" ").to_numpy(zero_copy_only=False)
    text = _hostile(rng, pa.array(text, pa.string()), 0.01)
    posts = w.add_posts(who, ts, "post", text=text, lang="en",
                        hashtags=np.where(rng.random(m) < 0.2, "WakeUpAmerica", None))
    # Hashtag games: one tag, many persona entries within a few hours (and some
    # organic people joining in, as real games draw them).
    games = []
    for tag in texts.PERSONA_GAMES:
        t0 = office_times(rng, cal, PERSONA_SHIFT, offset, 1)[0]
        players = rng.choice(idx, max(3, int(len(idx) * 0.5)), replace=False)
        k = rng.integers(1, 3, len(players))
        who_g = np.repeat(players, k)
        entries = texts.words(rng, "en", len(who_g), 3)
        # Entries within 3 hours of the operators' working time: they play on shift.
        t = on_shift_after(cal, PERSONA_SHIFT, offset, np.full(len(who_g), t0),
                           rng.integers(0, 3 * HOUR, len(who_g)))
        inside = t < cal.end
        gp = w.add_posts(who_g[inside], t[inside], "post",
                         text=texts.join(entries, "#" + tag, sep=" ").filter(pa.array(inside)),
                         hashtags=tag, lang="en")
        old_enough = pop.users[w.acc_created[pop.users] < t0 - DAY]
        organic_players = rng.choice(old_enough, max(3, round(15 * min(scale, 1.0))))
        w.add_posts(organic_players, t0 + rng.integers(0, 6 * HOUR, len(organic_players)),
                    "post", text=texts.join(texts.words(rng, "en", len(organic_players), 4),
                                            "#" + tag, sep=" "), hashtags=tag)
        posts = np.concatenate([posts, gp])
        games.append({"hashtag": tag, "start": iso(t[inside].min() if inside.any() else t0),
                      "entries": int(inside.sum())})
    own = _own_engagement(w, rng, posts, idx, 0.8,
                          ["This.", "100%", "Exactly what I said", "So true", "Wake up!",
                           "Finally someone says it"], 2 * HOUR, kind_p=(0.45, 0.4, 0.15),
                          shifts=[(idx, PERSONA_SHIFT)], offset=offset)
    organic_on_posts(w, pop, posts, _authentic(rng, own, 1.1))
    # Personas also reply to and share ordinary people's popular posts, to blend in
    # and to seed their talking points in real conversations.
    plat_of = w.acc_platform[idx]
    for code in np.unique(plat_of):
        mine = idx[plat_of == code]
        pool = np.flatnonzero((w.post_kind == K["post"]) & (w.acc_platform[w.post_author] == code)
                              & np.isin(w.post_author, pop.users))
        k = rng.poisson(12 * volume(scale), len(mine))
        who_o = np.repeat(mine, k)
        if len(pool) and len(who_o):
            kind = rng.choice([K["comment"], K["share"], K["reaction"]], len(who_o),
                              p=[0.5, 0.2, 0.3])
            body = texts.join(texts.pick(rng, ["Exactly.", "This!", "Wake up people.",
                                               "Nobody talks about this."], len(who_o)),
                              texts.words(rng, "en", len(who_o), 4), sep=" ")
            # On shift, answering whatever was recently in their feed.
            feed_engage(w, who_o, office_times(rng, cal, PERSONA_SHIFT, offset, len(who_o)),
                        pool, kind, text=pc.if_else(pa.array(kind == K["comment"]), body,
                                                    pa.nulls(len(who_o), pa.string())))
    w.label(idx, op)
    _follows_within(w, rng, idx, idx, 6.0)
    followers = rng.choice(pop.users, max(20, round(n * 15 * min(scale, 1.0))))
    targets = rng.choice(idx, len(followers))
    w.add_follows(followers, targets, cal.start - rng.integers(0, YEAR, len(followers)))
    return {
        "style": "persona",
        "utc_offset_hours": offset,
        "shift_pattern": True,
        "schedule": "office",
        "work_hours": PERSONA_SHIFT.work_hours(),
        "breaks": PERSONA_SHIFT.break_list(),
        "weekdays_only": True,
        "narratives": [{"label": t, "keywords": texts.PERSONA_THEMES[t]["keywords"]}
                       for t in themes],
        "languages": ["en"],
        "hashtag_games": games,
        "clusters": [{"cluster": f"{op}-1", "utc_offset_hours": offset,
                      "shift_variant": PERSONA_SHIFT.name,
                      "work_hours": PERSONA_SHIFT.work_hours(),
                      "breaks": PERSONA_SHIFT.break_list(), "assets": int(n)}],
        "_members": {f"{op}-1": idx},
    }


# --------------------------------------------------------------------------- botnet
def botnet(w: World, pop: Population, scale: float) -> dict:
    """Seeds posting round the clock, bots re-sharing them within seconds."""
    rng, cal = w.rng, w.cal
    op = "botnet"
    n_seeds = max(3, round(5 * scale))
    n_bots = max(20, round(150 * scale))
    seed_created = (cal.start - rng.uniform(1.0, 2.0, n_seeds) * YEAR).astype(np.int64)
    seed_names = np.array([f"{a}{b}" for a, b in zip(
        texts.pick(rng, ["Real", "True", "Daily", "Free", "Loud"], n_seeds),
        texts.pick(rng, ["NewsPatriot", "CryptoKing", "Voice", "Eagle", "Alpha"], n_seeds),
        strict=True)], dtype=object)
    seeds = w.add_accounts(P["x"], seed_created, "account", handle=dedupe(seed_names),
                           display_name=seed_names, avatar_hash=texts.hex_ids(rng, n_seeds),
                           lang="en", bio="Not financial advice. Patriots only.",
                           followers_extra=rng.integers(2000, 20000, n_seeds))
    created = batch_times(rng, n_bots, 3, cal.start - 250 * DAY, cal.start - 30 * DAY, 0.0)
    word_a = texts.pick(rng, ["eagle", "freedom", "liberty", "crypto", "moon"], n_bots)
    word_b = texts.pick(rng, ["patriot", "warrior", "hodl", "truth", "rising"], n_bots)
    handles = dedupe(word_a + "_" + word_b + np.char.mod("%05d", rng.integers(0, 10**5, n_bots)
                                                        ).astype(object))
    pool = texts.hex_ids(rng, 3)
    av = rng.random(n_bots)
    avatar = np.where(av < 0.4, None, np.where(av < 0.7, pool[rng.integers(0, 3, n_bots)],
                                               texts.hex_ids(rng, n_bots)))
    display = pc.utf8_title(texts.join(texts.pick(rng, texts.FIRST_NAMES, n_bots),
                                       texts.pick(rng, texts.LAST_NAMES, n_bots), sep=" "))
    bots = w.add_accounts(P["x"], created, "account", handle=handles, display_name=display,
                          avatar_hash=avatar, lang="en", followers_extra=rng.integers(0, 40,
                                                                                       n_bots))
    per = rng.poisson(40, n_seeds)  # not shrunk at small scales: 24/7 needs volume
    who = np.repeat(seeds, per)
    m = len(who)
    ts = uniform_times(rng, cal, m)
    base = texts.pick(rng, texts.BOTNET_THEME["texts"], m)
    text = texts.join(base, texts.pick(rng, texts.EMOJI, m), sep=" ")
    text = _hostile(rng, text, 0.02)
    urls = np.where(rng.random(m) < 0.6, "https://claim-airdrop.example/" +
                    texts.hex_ids(rng, m, 6), None)
    seed_posts = w.add_posts(who, ts, "post", text=text, urls=urls, lang="en",
                             hashtags=np.where(rng.random(m) < 0.5, "Airdrop Patriots", None))
    # About 25 bots re-share each seed post (5 in tiny worlds): linear in scale.
    k = rng.binomial(n_bots, min(1.0, max(5.0, 25.0 * min(scale, 1.0)) / n_bots), m)
    tgt = np.repeat(seed_posts, k)
    sharers = np.concatenate([rng.choice(bots, kk, replace=False) for kk in k])
    delay = rng.uniform(2, 40, len(tgt)).astype(np.int64)
    w.add_posts(sharers, w.post_ts[tgt] + delay, "share", target=tgt, lang="en")
    # Camouflage: bots also re-share ordinary popular posts now and then.
    x_posts = np.flatnonzero((w.post_kind == K["post"]) &
                             (w.acc_platform[w.post_author] == P["x"]) &
                             np.isin(w.post_author, pop.users))
    camo = np.repeat(bots, rng.poisson(5 * volume(scale), n_bots))
    if len(x_posts) and len(camo):
        engage(w, camo, rng.choice(x_posts, len(camo)), K["share"],
               delay_median=2 * HOUR, text=pa.nulls(len(camo), pa.string()))
    organic_on_posts(w, pop, seed_posts, _authentic(rng, len(tgt), 0.03))
    idx = np.concatenate([seeds, bots])
    w.label(idx, op)
    _follows_within(w, rng, bots, seeds, 3.0)
    return {
        "style": "botnet",
        "utc_offset_hours": None,
        "shift_pattern": False,
        "schedule": "automated",
        "work_hours": [{"start": "00:00", "end": "24:00"}],
        "breaks": [],
        "weekdays_only": False,
        "narratives": [{"label": texts.BOTNET_THEME["label"],
                        "keywords": texts.BOTNET_THEME["keywords"]}],
        "languages": ["en"],
        "seeds": int(n_seeds), "bots": int(n_bots),
        "reshare_delay_seconds": [2, 40],
        "clusters": [{"cluster": f"{op}-1", "utc_offset_hours": None,
                      "shift_variant": "24/7", "work_hours": [], "breaks": [],
                      "assets": int(len(idx))}],
        "_members": {f"{op}-1": idx},
    }


# --------------------------------------------------------------------------- small ops
def small_a(w: World, pop: Population, scale: float) -> dict:
    """12 assets on Iranian time (UTC+3:30), Saturday-Wednesday office week."""
    rng, cal = w.rng, w.cal
    op, offset = "small_a", 3.5
    spec = [("x", "account", 6), ("instagram", "account", 3), ("facebook", "account", 2),
            ("facebook", "page", 1)]
    idx = _small_assets(w, rng, cal, spec, offset, ["reza", "sara", "ali", "maryam", "hossein"],
                        batch=True)
    dormant = idx[:1]
    active = idx[1:]
    return _small_activity(w, pop, scale, op, idx, active, dormant, offset,
                           lambda n: office_times(rng, cal, SMALL_OFFICE_SHIFT, offset, n),
                           SMALL_OFFICE_SHIFT, {"schedule": "office", "shift_pattern": True,
                            "work_hours": SMALL_OFFICE_SHIFT.work_hours(),
                            "breaks": SMALL_OFFICE_SHIFT.break_list(),
                            "weekdays_only": True, "workdays": "Saturday-Wednesday"})


def small_b(w: World, pop: Population, scale: float) -> dict:
    """10 assets at UTC+1 with an ordinary human rhythm (no shift)."""
    rng, cal = w.rng, w.cal
    op, offset = "small_b", 1.0
    spec = [("facebook", "account", 4), ("x", "account", 4), ("reddit", "account", 2)]
    idx = _small_assets(w, rng, cal, spec, offset, ["chidi", "ngozi", "tunde", "amaka"],
                        batch=False)
    def times(n):
        return human_times(rng, cal, np.full(n, offset), rng.normal(0, 0.5, n), np.ones(n))

    return _small_activity(w, pop, scale, op, idx, idx, idx[:0], offset, times, None,
                           {"schedule": "human", "shift_pattern": False,
                            "work_hours": [], "breaks": [], "weekdays_only": False})


def _small_assets(w, rng, cal: Calendar, spec, offset, names, batch: bool) -> np.ndarray:
    out = []
    n_total = sum(s[2] for s in spec)
    pool = texts.hex_ids(rng, 2)
    if batch:
        created = batch_times(rng, n_total, 2, cal.start - 90 * DAY, cal.start, offset)
    else:
        created = (cal.start - rng.uniform(0.2, 1.5, n_total) * YEAR).astype(np.int64)
    i = 0
    for plat, atype, n in spec:
        first = texts.pick(rng, names, n)
        word = texts.pick(rng, ["voice", "news", "truth", "free", "light"], n)
        handle = dedupe(first + "_" + word + np.char.mod("%02d", rng.integers(0, 100, n)
                                                          ).astype(object))
        avatar = np.where(rng.random(n) < 0.5, pool[rng.integers(0, 2, n)],
                          texts.hex_ids(rng, n))
        out.append(w.add_accounts(P[plat], created[i:i + n], atype, handle=handle,
                                  display_name=pc.utf8_title(pa.array(first, pa.string())),
                                  avatar_hash=avatar, lang="en",
                                  followers_extra=rng.integers(0, 300, n)))
        i += n
    return np.concatenate(out)


def _small_activity(w, pop, scale, op, idx, active, dormant, offset, times,
                    shift: Shift | None, schedule) -> dict:
    rng = w.rng
    theme = texts.SMALL_THEMES[op]
    # Fixed asset count, so per-asset volume carries the scale (linear growth).
    per = np.maximum(8, rng.poisson(40 * min(scale, 2.0), len(active)))
    who = np.repeat(active, per)
    m = len(who)
    base = [texts.variants(t, rng, ["Truth", "Resist"]) for t in theme["texts"]]
    pick = rng.integers(0, len(base), m)
    text = pa.array([base[p][int(rng.integers(0, 8))] for p in pick], pa.string())
    text = _hostile(rng, text, 0.03)
    lang = np.where(np.char.find(np.array([theme["texts"][p] for p in pick]), "ت") >= 0, "fa",
                    "en").astype(object)
    media = pa.array(texts.hex_ids(rng, 4)[rng.integers(0, 4, m)])
    posts = w.add_posts(who, times(m), "post", text=text, lang=lang,
                        media_hashes=pc.if_else(pa.array(rng.random(m) < 0.4), media,
                                                pa.nulls(m, pa.string())),
                        hashtags=np.where(rng.random(m) < 0.4, theme["keywords"][0].title(),
                                          None))
    # An office's staff act on shift; people without one (small_b) whenever.
    shifts = None if shift is None else [(idx, shift)]
    own = _own_engagement(w, rng, posts, active, 1.5, ["Exactly", "Share this", "True"],
                          1800.0, shifts=shifts, offset=offset)
    if len(dormant):
        tgt = rng.choice(posts, len(dormant))
        same = w.acc_platform[w.post_author[tgt]] == w.acc_platform[dormant]
        if same.any() and shifts is None:
            engage(w, dormant[same], tgt[same], K["reaction"], delay_median=3600.0,
                   text=pa.nulls(int(same.sum()), pa.string()))
        elif same.any():
            _operator_act(w, dormant[same], tgt[same], K["reaction"],
                          pa.nulls(int(same.sum()), pa.string()), 3600.0, shifts, offset)
    organic_on_posts(w, pop, posts, _authentic(rng, own, 0.5))
    w.label(idx, op)
    _follows_within(w, rng, idx, idx, 4.0)
    return {
        "style": "small",
        "utc_offset_hours": offset,
        **schedule,
        "narratives": [{"label": theme["label"], "keywords": theme["keywords"]}],
        "languages": sorted(set(lang.tolist())),
        "dormant_operators": int(len(dormant)),
        "clusters": [{"cluster": f"{op}-1", "utc_offset_hours": offset,
                      "shift_variant": schedule["schedule"], "work_hours": schedule["work_hours"],
                      "breaks": schedule["breaks"], "assets": int(len(idx))}],
        "_members": {f"{op}-1": idx},
    }


def organic_followers(w: World, pop: Population, assets: np.ndarray, rate: float) -> None:
    """Ordinary people who follow an operation's assets (follow-backs, the curious)."""
    rng = w.rng
    k = rng.poisson(rate, len(assets))
    tgt = np.repeat(assets, k)
    who = np.empty(len(tgt), np.int64)
    for code in np.unique(w.acc_platform[tgt]):
        sel = w.acc_platform[tgt] == code
        who[sel] = rng.choice(pop.on(w, PLATFORM_NAMES[code]), sel.sum())
    w.add_follows(who, tgt, np.maximum(w.acc_created[tgt], w.cal.start - 30 * DAY)
                  + rng.integers(DAY, 60 * DAY, len(tgt)))


# Organic followers per operator asset: what each style manages to attract.
ORGANIC_FOLLOW_RATE = {"spamouflage": 0.4, "persona": 4.0, "botnet": 0.3, "small_a": 1.5,
                       "small_b": 2.0}


def all_operations(w: World, pop: Population, scale: float) -> dict:
    ops = {"spamouflage": spamouflage(w, pop, scale), "persona": persona(w, pop, scale),
           "botnet": botnet(w, pop, scale), "small_a": small_a(w, pop, scale),
           "small_b": small_b(w, pop, scale)}
    for idx, op, role in w.labels:
        if role == "operator":
            organic_followers(w, pop, idx, ORGANIC_FOLLOW_RATE[op])
    return ops
