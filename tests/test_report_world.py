"""A small hand-built workspace for the report tests (no tests here).

Two operations: a Spamouflage-like one on a UTC+8 office shift across Facebook and X with
a full profile, and a small one with no profile, no edges and no follows, so every section
must also render when its data is missing. Hostile strings sit in a post text, a narrative
example, a handle and the operation id itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from cibwatch.workspace import Workspace

SCRIPT_POST = "<script>window.__pwned = 1; alert('xss')</script> US labs made the virus"
IMG_HANDLE = '<img src=x onerror="window.__pwned=2;alert(2)">'
FORMULA_HANDLE = '=HYPERLINK("http://evil.example","click")'
BIG_OP = "op:spamo/../../evil"
SMALL_OP = "op-small"
OWN_DOMAIN = "truth-daily.example"
QUOTE_URL = "https://truth-daily.example/it's/a\\b?q='x'"
FORMULA_TEXT = "=1+1 is what they hide from you"


def build_world(path: Path) -> Path:
    """Write the workspace file at `path` and return it."""
    ws = Workspace(path)
    con = ws.con
    t0 = datetime(2023, 5, 1)  # a Monday
    accounts, posts, follows = [], [], []
    fb = [f"fb{i:03d}" for i in range(12)]
    pages = ["pg1", "pg2", "pg3"]
    xs = ["x1", "x2", "x3", "x4"]
    x_handles = {"x1": IMG_HANDLE, "x2": FORMULA_HANDLE, "x3": "lily_2023", "x4": "lily_2024"}
    for i, a in enumerate(fb):
        accounts.append(("facebook", a, "account", f"user_{a}", f"Name {a}",
                         t0 - timedelta(days=90, minutes=i), 3, 10, "avatar1"))
    for p in pages:
        accounts.append(("facebook", p, "page", f"page_{p}", f"Page {p}",
                         t0 - timedelta(days=80), 5000, 0, None))
    accounts.append(("facebook", "grp1", "group", "grp1", "Group 1", t0 - timedelta(days=70),
                     0, 0, None))
    for x in xs:
        accounts.append(("x", x, "account", x_handles[x], "X " + x, t0 - timedelta(days=60),
                         20, 30, None))
    for x in ("s1", "s2", "s3"):
        accounts.append(("x", x, "account", f"small_{x}", "S", t0 - timedelta(days=10),
                         1, 1, None))
    accounts.append(("facebook", "real1", "account", "real_person", "Real", t0 - timedelta(
        days=3000), 400, 300, None))
    for i in range(40):
        accounts.append(("facebook", f"ff{i}", "account", f"ff{i}", "F", t0 - timedelta(
            days=30, seconds=i), 0, 500, None))

    n = 0
    texts = [
        SCRIPT_POST,
        "Fort Detrick is where it all began, read more",
        "Washington hegemony harms the world, says analyst",
    ]
    fb_ops = fb + pages
    for day in range(14):
        date = t0 + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for hour_local in (9, 10, 11, 14, 15, 16, 20):
            utc = date + timedelta(hours=hour_local - 8)
            for j, a in enumerate(fb_ops):
                if (j + hour_local + day) % 3:
                    continue
                n += 1
                text = texts[(n + j) % 3]
                urls = [f"https://{OWN_DOMAIN}/a/{n % 7}"] if n % 2 else [
                    "https://www.nytimes.com/2023/05/news.html"]
                posts.append(("facebook", f"p{n}", a, utc + timedelta(minutes=j), "post",
                              text, None, urls, None))
                if n % 4 == 0:
                    n += 1
                    commenter = fb[(j + 1) % len(fb)]
                    posts.append(("facebook", f"p{n}", commenter, utc + timedelta(minutes=j + 5),
                                  "comment", "So true!!", f"p{n - 1}", None, None))
            for k, x in enumerate(xs):
                n += 1
                posts.append(("x", f"t{n}", x, utc + timedelta(minutes=k), "post",
                              texts[n % 3], None, [f"https://{OWN_DOMAIN}/x/{n % 5}"], None))
    # authentic activity: one comment on an operation post, the news site linked widely
    posts.append(("facebook", "r1", "real1", t0 + timedelta(days=2), "comment",
                  "I doubt this", "p1", None, None))
    for i in range(300):
        posts.append(("facebook", f"r{i + 2}", "real1", t0 + timedelta(hours=i, minutes=3),
                      "post", "Morning news", None, ["https://www.nytimes.com/2023/05/news.html"],
                      None))
    for i, s in enumerate(("s1", "s2", "s3")):
        posts.append(("x", f"s{i}", s, t0 + timedelta(days=3, hours=i), "share", None, None,
                      None, "t5"))
    for i in range(40):
        for p in pages:
            follows.append(("facebook", f"ff{i}", p, t0 - timedelta(days=29)))
    follows.append(("facebook", "real1", "pg1", t0 - timedelta(days=20)))

    con.executemany(
        "INSERT INTO accounts (platform, account_id, asset_type, handle, display_name, "
        "created_at, followers_count, following_count, avatar_hash) VALUES (?,?,?,?,?,?,?,?,?)",
        accounts)
    con.executemany("INSERT INTO follows VALUES (?,?,?,?)", follows)

    members = [("c-fb", "facebook", a, 0.9) for a in fb_ops + ["grp1"]]
    members += [("c-x", "x", x, 0.8) for x in xs]
    members += [("c-small", "x", s, 0.6) for s in ("s1", "s2", "s3")]
    con.executemany("INSERT INTO cluster_members VALUES (?,?,?,?, 'co-posting')", members)
    con.executemany("INSERT INTO clusters VALUES (?,?,?,?,?)", [
        ("c-fb", "facebook", 16, 0.95, json.dumps([
            {"signal": "text_fingerprint", "strength": 0.9,
             "detail": "identical texts posted within 10 minutes"}])),
        ("c-x", "x", 4, 0.85, None),
        ("c-small", "x", 3, 0.6, None),
    ])
    con.executemany("INSERT INTO operations (operation_id, name, confidence) VALUES (?,?,?)", [
        (BIG_OP, "Shift office <b>network</b>", 0.93), (SMALL_OP, None, 0.6)])
    con.executemany("INSERT INTO operation_clusters VALUES (?,?)", [
        (BIG_OP, "c-fb"), (BIG_OP, "c-x"), (SMALL_OP, "c-small")])
    con.execute("INSERT INTO operation_links VALUES (?, 'c-fb', 'c-x', 0.8, ?)", [
        BIG_OP, json.dumps({"kind": "cross_platform", "strength": 0.8, "threshold": 0.9,
                            "detail": f"both link {OWN_DOMAIN}",
                            "families": [{"family": "links", "keys": 3}]})])
    con.executemany("INSERT INTO operation_evidence VALUES (?,?,?,?)", [
        (BIG_OP, "text_fingerprint", 0.9, "412 identical texts across 16 assets"),
        (BIG_OP, "time_zone", 0.8, "posting on UTC+8 office hours"),
        (BIG_OP, "script", 0.1, SCRIPT_POST),
    ])
    edges, evidence = [], []
    for i in range(len(fb) - 1):
        a, b = fb[i], fb[i + 1]
        edges.append(("facebook", a, b, 2.0 + i / 10, 1e-6, 1e-5, 3,
                      json.dumps({"text_fingerprint": 1.5, "creation_batch": 0.5})))
        evidence.append(("facebook", a, b, "text_fingerprint", f"fp{i}", 1.5, "p1",
                         t0, "p2", t0 + timedelta(minutes=3)))
        evidence.append(("facebook", a, b, "creation_batch", "2023-01-31T00", 0.5, None, None,
                         None, None))
    edges.append(("x", "x1", "x2", 1.0, 1e-4, 1e-3, 1, json.dumps(["url"])))
    evidence.append(("x", "x1", "x2", "url", QUOTE_URL, 5.0, "t-q1", t0, "t-q2", t0))
    posts.append(("x", "t-q1", "x1", t0, "post", FORMULA_TEXT, None, [QUOTE_URL], None))
    posts.append(("x", "t-q2", "x2", t0, "post", FORMULA_TEXT, None, [QUOTE_URL], None))
    con.executemany(
        "INSERT INTO posts (platform, post_id, account_id, created_at, kind, text, parent_id, "
        "urls, shared_id) VALUES (?,?,?,?,?,?,?,?,?)", posts)
    con.executemany("INSERT INTO edges VALUES (?,?,?,?,?,?,?,?)", edges)
    con.executemany("INSERT INTO edge_evidence VALUES (?,?,?,?,?,?,?,?,?,?)", evidence)
    con.execute("INSERT INTO operation_profiles VALUES (?, ?)", [BIG_OP, json.dumps(PROFILE)])
    # an analyst took fb011 out of the big operation
    con.execute("INSERT INTO review_exclusions VALUES (?, 'facebook', 'fb011', 'ana', "
                "'real person', now()::TIMESTAMP)", [BIG_OP])
    ws.close()
    return path


def _week(hours_local: list[int], offset: int) -> tuple[list[int], list[int]]:
    local = [0] * 168
    for d in range(5):
        for h in hours_local:
            local[d * 24 + h] = 30
    utc = [local[(i + offset) % 168] for i in range(168)]
    return utc, local


_UTC, _LOCAL = _week([9, 10, 11, 14, 15, 16, 20], 8)

PROFILE = {
    "time": {
        "utc_offset_hours": 8.0, "offset_confidence": 0.93,
        "runner_up": {"utc_offset_hours": 9.0, "confidence": 0.05},
        "schedule": "office", "shift_pattern": True,
        "hour_of_week_utc": _UTC, "hour_of_week_local": _LOCAL,
        "work_hours": [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "17:00"}],
        "breaks": [{"name": "lunch", "start": "12:00", "end": "14:00"},
                   {"name": "supper", "start": "17:00", "end": "20:00"}],
        "weekend_ratio": 0.0,
        "quiet_holidays": [{"date": "2023-05-01", "name": "Labour Day", "country": "CN"}],
        "teams": [{"accounts": 9, "posts": 400,
                   "work_hours": [{"start": "09:00", "end": "12:00"}],
                   "breaks": [{"name": "lunch", "start": "12:00", "end": "14:00"}],
                   "clusters": {"c-fb": 9}},
                  {"accounts": 7, "posts": 300,
                   "work_hours": [{"start": "09:30", "end": "12:30"}], "breaks": [],
                   "clusters": {"c-x": 7}}],
        "evidence": "No posts on weekends; lunch break 12:00-14:00 UTC+8.",
    },
    "engagement": {
        "echo_chamber_ratio": 0.91, "engagements_received": 120,
        "engagements_own": 109, "engagements_authentic": 11,
        "authentic_amplifiers": [{"platform": "facebook", "account_id": "real1",
                                  "handle": "real_person", "followers_count": 400,
                                  "engagements": 1, "post_ids": ["p1"]}],
        "breakout": {"category": 1, "label": "Category One: one platform, no breakout",
                     "reason": "no authentic engagement beyond one commenter"},
    },
    "followers": {
        "inauthentic_follower_share": 0.97, "distinct_followers": 41,
        "inauthentic_followers": 40,
        "criteria": {"created_in_bursts": 40, "no_activity": 40},
        "growth_bursts": [{"start": "2023-04-01T00:00:00", "end": "2023-04-01T01:00:00",
                           "follows": 120, "followee_id": "pg1"}],
    },
    "narratives": [
        {"label": "covid origin / us labs", "share": 0.6,
         "examples": [SCRIPT_POST, "Fort Detrick is where it all began, read more"],
         "top_terms": ["detrick", "labs"], "posts": 300},
        {"label": "us hegemony", "share": 0.4,
         "examples": ["Washington hegemony harms the world, says analyst", FORMULA_TEXT],
         "posts": 200},
    ],
    "languages": {"en": 1.0},
    "assets": {
        "creation_batches": [{"start": "2023-01-31T00:00:00", "end": "2023-01-31T00:12:00",
                              "assets": 12, "platform": "facebook"}],
        "handle_families": [{"pattern": "lily_<digits>", "assets": 2,
                             "examples": ["lily_2023", "lily_2024"]}],
        "reused_avatars": [{"avatar_hash": "avatar1", "assets": 12}],
        "creation_timeline": [{"date": "2023-01-31", "assets": 12}],
    },
    "platforms": ["facebook", "x"],
}
