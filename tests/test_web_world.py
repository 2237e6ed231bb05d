"""Helpers for the workbench tests (no tests here): a hand-built workspace with two
operations, a realistic profile, hostile texts and handles, users with each role, and
a real uvicorn server on a free loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

import cibwatch
from cibwatch.config import Config
from cibwatch.users import add_user, mint_token
from cibwatch.web import create_app

XSS_TEXT = "<img src=x onerror=alert(1)>"
XSS_HANDLE = "<script>alert(2)</script>"
PASSWORDS = {"ada": "admin-password-1", "ana": "analyst-password-1", "vic": "viewer-password-1"}
ROLES = {"ada": "admin", "ana": "analyst", "vic": "viewer"}
T0 = datetime(2023, 5, 1)  # a Monday


def office_hour_of_week(offset: int = 8) -> list[int]:
    """Posts per UTC hour of week for a 09-12, 13:30-17:30 local shift, Mon-Fri."""
    local = [0] * 168
    for d in range(5):
        for h in (9, 10, 11, 14, 15, 16, 17):
            local[d * 24 + h] = 40 + 3 * h
        local[d * 24 + 13] = 12
    return [local[(i + offset) % 168] for i in range(168)]


def spam_profile() -> dict:
    utc = office_hour_of_week(8)
    return {
        "time": {
            "utc_offset_hours": 8.0, "offset_confidence": 0.93,
            "runner_up": {"utc_offset_hours": 9.0, "confidence": 0.05},
            "schedule": "office", "shift_pattern": True,
            "hour_of_week_utc": utc,
            "hour_of_week_local": [utc[(i - 8) % 168] for i in range(168)],
            "work_hours": [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}],
            "breaks": [{"name": "lunch", "start": "12:00", "end": "13:30"}],
            "weekend_ratio": 0.04,
            "quiet_holidays": [{"date": "2023-05-01", "name": "Labour Day", "country": "CN"}],
            "clusters": {"c-fb1": {"utc_offset_hours": 8.0, "work_hours": [], "breaks": []}},
            "teams": [{"accounts": 4, "posts": 300, "work_hours": [
                {"start": "09:30", "end": "12:00"}], "breaks": [
                {"name": "lunch", "start": "12:00", "end": "13:30"}],
                "clusters": {"c-fb1": 3, "<b>c-x1</b>": 1}}],
            "evidence": "82% of posts fall in 09:00-17:30 UTC+8 on weekdays",
        },
        "engagement": {
            "echo_chamber_ratio": 0.91, "engagements_received": 1200,
            "engagements_own": 1092, "engagements_authentic": 108,
            "authentic_amplifiers": [{"platform": "x", "account_id": "real1",
                                      "handle": "newsfan", "followers_count": 120000,
                                      "engagements": 3, "post_ids": ["x-p1"]}],
            "breakout": {"category": 2, "label": "one platform, several communities",
                         "reason": "3 authentic amplifiers"},
        },
        "followers": {
            "inauthentic_follower_share": 0.4, "distinct_followers": 560,
            "inauthentic_followers": 224,
            "criteria": {"created_in_bursts": 200, "no_activity": 210},
            "growth_bursts": [{"start": "2023-05-02T01:00:00", "end": "2023-05-02T03:00:00",
                               "follows": 150, "followee_id": "fb1"}],
        },
        "narratives": [
            {"label": "covid origin / us labs", "share": 0.61,
             "examples": [XSS_TEXT, "The virus came from Fort Detrick labs"],
             "top_terms": ["lab", "origin"], "posts": 120},
            {"label": "praise for the government", "share": 0.39,
             "examples": ["Great progress in Xinjiang"], "top_terms": ["progress"], "posts": 80},
        ],
        "languages": {"en": 0.6, "zh": 0.4},
        "targets": {"countries": [{"name": "United States", "mentions": 120}], "people": []},
        "top_domains": [{"domain": "example.com", "posts": 100}],
        "top_hashtags": [{"hashtag": "truth", "posts": 50}],
        "assets": {
            "tally": {"facebook": {"account": 5, "page": 1}, "x": {"account": 4}},
            "tally_text": "5 Facebook accounts, 1 Page and 4 X accounts",
            "creation_timeline": [{"date": "2023-01-04", "assets": 10}],
            "creation_batches": [{"start": "2023-01-04T00:00:00", "end": "2023-01-04T02:00:00",
                                  "assets": 8, "platform": "facebook"}],
            "handle_families": [{"pattern": "lily_<digits>", "assets": 4,
                                 "examples": ["lily_01", "lily_02"]}],
            "reused_avatars": [{"avatar_hash": "ffee", "assets": 3}],
        },
        "activity_timeline": [
            {"date": (T0 + timedelta(days=d)).date().isoformat(), "posts": 20 + d, "assets": 8}
            for d in range(14)
        ],
        "platforms": ["facebook", "x"],
        "first_seen": "2023-05-01T01:00:00", "last_seen": "2023-05-14T09:00:00",
        "posts": 200,
    }


def build_workspace(path: Path) -> Path:
    """Two operations (one profiled, one not), authentic accounts, hostile data, users."""
    with cibwatch.open(path) as ws:
        con = ws.con
        accounts = []
        for i in range(5):
            accounts.append(("facebook", f"fb{i}", "account", f"lily_0{i}", f"Lily {i}"))
        accounts[0] = ("facebook", "fb0", "account", XSS_HANDLE, XSS_TEXT)
        accounts.append(("facebook", "fbpage", "page", "truthpage", "Truth Page"))
        accounts += [("x", f"x{i}", "account", f"lily_x{i}", f"Lily X{i}") for i in range(4)]
        accounts += [("facebook", f"small{i}", "account", f"small{i}", None) for i in range(3)]
        accounts += [("facebook", "real0", "account", "realperson", "Real Person"),
                     ("x", "real1", "account", "newsfan", "News Fan")]
        con.executemany(
            "INSERT INTO accounts (platform, account_id, asset_type, handle, display_name, "
            "followers_count, created_at) VALUES (?, ?, ?, ?, ?, 100, '2023-01-04')",
            [list(a) for a in accounts],
        )
        posts = []
        n = 0
        for plat, acc, *_ in accounts:
            for d in range(14):
                for h in (1, 2, 6):
                    n += 1
                    posts.append([plat, f"{plat}-p{n}", acc, T0 + timedelta(days=d, hours=h),
                                  f"Post {n} about the lab origin #truth", ["https://example.com/a"],
                                  ["truth"]])
        posts.append(["facebook", "hostile-1", "real0", T0 + timedelta(days=3, hours=5),
                      XSS_TEXT, [], ["xss"]])
        posts.append(["facebook", "hostile-2", "fb1", T0 + timedelta(days=3, hours=6),
                      XSS_TEXT, ["https://evil.example/x"], []])
        con.executemany(
            "INSERT INTO posts (platform, post_id, account_id, created_at, text, urls, "
            "hashtags) VALUES (?, ?, ?, ?, ?, ?, ?)",
            posts,
        )
        con.execute("INSERT INTO follows VALUES ('facebook', 'real0', 'fb1', NULL)")
        con.execute(
            "INSERT INTO quarantine (table_name, file, row_number, raw_row, reason) VALUES "
            "('posts', 'posts.csv', 17, ?, 'unparseable created_at')",
            ["=HYPERLINK(\"http://evil\")," + XSS_TEXT],
        )
        members = [("c-fb1", "facebook", a) for a in ("fb0", "fb1", "fb2", "fb3", "fb4",
                                                       "fbpage")]
        members += [("c-x1", "x", f"x{i}") for i in range(4)]
        members += [("c-fb2", "facebook", f"small{i}") for i in range(3)]
        con.executemany(
            "INSERT INTO cluster_members VALUES (?, ?, ?, 0.9, 'shared texts within 60 s')",
            [list(m) for m in members],
        )
        con.execute(
            """INSERT INTO clusters VALUES
            ('c-fb1', 'facebook', 6, 0.95, '[{"signal": "text", "strength": 0.9}]'),
            ('c-x1', 'x', 4, 0.9, NULL), ('c-fb2', 'facebook', 3, 0.7, NULL)"""
        )
        con.execute(
            """INSERT INTO operations (operation_id, name, confidence) VALUES
            ('op-spam', 'Office-shift network', 0.94), ('op-small', NULL, 0.71)"""
        )
        con.execute(
            """INSERT INTO operation_clusters VALUES ('op-spam', 'c-fb1'), ('op-spam', 'c-x1'),
            ('op-small', 'c-fb2')"""
        )
        con.execute(
            """INSERT INTO operation_links VALUES
            ('op-spam', 'c-fb1', 'c-x1', 0.8, '{"kind": "cross_platform", "strength": 0.8,
            "detail": "12 shared links, e.g. <i>x</i>", "families": [{"keys": 12}]}')"""
        )
        con.execute(
            """INSERT INTO operation_evidence VALUES
            ('op-spam', 'copy-paste text', 0.92, 'fb0 and fb1 posted 14 identical texts'),
            ('op-spam', 'time zone', 0.8, 'office hours UTC+8')"""
        )
        edges = [("facebook", f"fb{i}", f"fb{j}", 10.0 + i + j)
                 for i in range(5) for j in range(i + 1, 5)]
        edges += [("facebook", "fb0", "fbpage", 5.0)]
        edges += [("x", f"x{i}", f"x{j}", 8.0) for i in range(4) for j in range(i + 1, 4)]
        edges += [("facebook", "small0", "small1", 4.0), ("facebook", "small1", "small2", 4.0)]
        con.executemany(
            "INSERT INTO edges VALUES (?, ?, ?, ?, 1e-6, 1e-5, 3, '{\"text\": 3}')",
            [list(e) for e in edges],
        )
        con.execute(
            "INSERT INTO edge_evidence VALUES ('facebook', 'fb0', 'fb1', 'text', 'abc123', "
            "2.0, 'facebook-p1', ?, 'hostile-2', ?)",
            [T0, T0 + timedelta(days=3, hours=6)],
        )
        con.execute("INSERT INTO operation_profiles VALUES ('op-spam', ?)",
                    [json.dumps(spam_profile())])
        for name, role in ROLES.items():
            add_user(con, name, role, PASSWORDS[name])
    return path


def tokens(path: Path) -> dict[str, str]:
    with cibwatch.open(path) as ws:
        return {name: mint_token(ws.con, name, "tests") for name in ROLES}


class Server:
    """The workbench under uvicorn in a thread, on a free loopback port."""

    def __init__(self, workspace: Path, config: Config | None = None):
        self.app = create_app(workspace, config or Config())
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def start(self) -> Server:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


@contextmanager
def serving(workspace: Path, config: Config | None = None):
    server = Server(workspace, config).start()
    try:
        yield server
    finally:
        server.stop()


def login(client: httpx.Client, name: str, password: str | None = None) -> str:
    """Log a client in through the real form; returns the session's CSRF token."""
    page = client.get("/login")
    csrf = _hidden(page.text, "csrf_token")
    r = client.post("/login", data={"name": name, "password": password or PASSWORDS[name],
                                     "csrf_token": csrf, "next": "/"})
    assert r.status_code == 303, r.text
    return client.get("/api/me").json()["csrf_token"]


def _hidden(html: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
