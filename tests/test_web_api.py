"""The workbench REST API and pages over real HTTP (uvicorn on a loopback port) on a
hand-built DuckDB workspace: access control, CSRF, traversal, limits, review, audit."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from test_web_world import (
    XSS_TEXT,
    Server,
    build_workspace,
    login,
    serving,
    tokens,
)

from cibwatch.config import Config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = build_workspace(tmp_path_factory.mktemp("webapi") / "ws.duckdb")
    toks = tokens(path)
    return path, toks


@pytest.fixture(scope="module")
def server(world):
    with serving(world[0]) as s:
        yield s


def client(server, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, follow_redirects=False,
                        timeout=60)


# --------------------------------------------------------------------------- access
def test_unauthenticated_requests_get_401_or_login(server):
    c = client(server)
    for path in ("/api/operations", "/api/operations/op-spam", "/api/audit", "/openapi.json",
                 "/api/exports/accounts.csv", "/api/posts?q=lab"):
        r = c.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    assert c.post("/api/reviews", json={}).status_code == 401
    r = c.get("/operations/op-spam")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Foperations%2Fop-spam"
    assert client(server, "cibw_not-a-real-token").get("/api/operations").status_code == 401


def test_viewer_can_read_but_not_change(server, world):
    _, toks = world
    viewer = client(server, toks["vic"])
    assert viewer.get("/api/operations").status_code == 200
    r = viewer.post("/api/reviews", json={"target_type": "operation", "target_id": "op-small",
                                          "decision": "confirmed", "note": "looks bad"})
    assert r.status_code == 403
    r = viewer.post("/api/operations/op-small/exclusions",
                    json={"platform": "facebook", "account_id": "small0", "note": "x"})
    assert r.status_code == 403
    assert viewer.post("/api/jobs/detect").status_code == 403
    # and through the pages, with a valid CSRF token
    c = client(server)
    csrf = login(c, "vic")
    r = c.post("/operations/op-small/review",
               data={"decision": "confirmed", "note": "x", "csrf_token": csrf})
    assert r.status_code == 403
    ops = {o["operation_id"]: o for o in viewer.get("/api/operations").json()}
    assert ops["op-small"]["status"] == "new"
    assert client(server, toks["ana"]).get("/api/users").status_code == 403


def test_csrf_required_for_cookie_writes(server):
    c = client(server)
    csrf = login(c, "ana")
    body = {"target_type": "cluster", "target_id": "c-fb2", "decision": "needs-more-work",
            "note": "check creation dates"}
    assert c.post("/api/reviews", json=body).status_code == 403
    assert c.post("/api/reviews", json=body,
                  headers={"X-CSRF-Token": "forged"}).status_code == 403
    r = c.post("/clusters/c-fb2/review", data={"decision": "rejected", "note": "no token"})
    assert r.status_code == 403
    r = c.post("/clusters/c-fb2/review",
               data={"decision": "rejected", "note": "wrong", "csrf_token": "forged"})
    assert r.status_code == 403
    assert client(server).post("/login", data={"name": "ana", "password": "x"}).status_code == 403
    assert c.get("/api/clusters/c-fb2").json()["reviews"] == []
    r = c.post("/api/reviews", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    reviews = c.get("/api/clusters/c-fb2").json()["reviews"]
    assert [(x["decision"], x["user_name"]) for x in reviews] == [("needs-more-work", "ana")]


def test_session_cookie_flags_logout_and_headers(server):
    c = client(server)
    r = c.get("/login")
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    csrf = login(c, "ana")
    assert c.get("/api/me").json()["name"] == "ana"
    assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert c.get("/api/me").status_code == 401


def test_secure_cookie_flag_configurable(world):
    cfg = Config().updated({"serve": {"secure_cookies": True}})
    with serving(world[0], cfg) as s:
        r = httpx.get(s.url + "/login")
        assert "Secure" in r.headers["set-cookie"]


def test_login_rate_limited_and_no_open_redirect(world):
    cfg = Config().updated({"serve": {"login_max_failures": 3}})
    with serving(world[0], cfg) as s:
        c = client(s)
        page = c.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        for _ in range(3):
            r = c.post("/login", data={"name": "ana", "password": "wrong", "csrf_token": csrf})
            assert r.status_code == 401
        r = c.post("/login", data={"name": "ana", "password": "analyst-password-1",
                                   "csrf_token": csrf})
        assert r.status_code == 429
        r = c.post("/login", data={"name": "vic", "password": "viewer-password-1",
                                   "csrf_token": csrf})
        assert r.status_code == 429  # the address is blocked, whoever it tries
    with serving(world[0]) as s:
        for target, expected in (("//evil.example/x", "/"), ("/\t/evil.example", "/"),
                                 ("/\\evil.example", "/"), ("https://evil.example", "/"),
                                 ("/operations/op-spam", "/operations/op-spam")):
            c = client(s)
            page = c.get("/login")
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            r = c.post("/login", data={"name": "vic", "password": "viewer-password-1",
                                       "csrf_token": csrf, "next": target})
            assert r.status_code == 303 and r.headers["location"] == expected, target


# ------------------------------------------------------------------------- hardening
def _raw_get(server, target: str, token: str) -> tuple[int, bytes]:
    """Send a request line exactly as written (httpx would normalise the dots)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.mark.parametrize("target", [
    "/api/exports/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/exports/../../../../etc/passwd",
    "/api/exports/%2e%2e%2fapp.py",
    "/api/exports/accounts.csv%00.html",
    "/static/../app.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e/%2e%2e/web/app.py",
    "/static/vendor/../../app.py",
])
def test_path_traversal_rejected(server, world, target):
    status, body = _raw_get(server, target, world[1]["ana"])
    assert status in (400, 404)
    assert b"root:" not in body and b"create_app" not in body


def test_request_size_limited(server, world):
    ana = client(server, world[1]["ana"])
    huge = {"target_type": "operation", "target_id": "op-small", "decision": "rejected",
            "note": "x" * 100_000}
    assert ana.post("/api/reviews", json=huge).status_code == 413

    def chunks():
        for _ in range(100):
            yield b"y" * 1000

    r = ana.post("/api/reviews", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert ana.get("/api/operations/op-small").json()["reviews"] == []


# ---------------------------------------------------------------------------- reading
def test_operations_list_filters_and_detail(server, world):
    c = client(server, world[1]["vic"])
    ops = c.get("/api/operations").json()
    assert [o["operation_id"] for o in ops] == ["op-spam", "op-small"]
    spam = ops[0]
    assert spam["assets"] == 10 and spam["clusters"] == 2
    assert spam["tally"] == {"facebook": {"account": 5, "page": 1}, "x": {"account": 4}}
    assert spam["utc_offset_hours"] == 8.0 and spam["schedule"] == "office"
    assert [o["operation_id"] for o in c.get("/api/operations?platform=x").json()] == [
        "op-spam"]
    assert [o["operation_id"] for o in c.get("/api/operations?min_size=5").json()] == [
        "op-spam"]
    assert [o["operation_id"] for o in c.get("/api/operations?max_size=5").json()] == [
        "op-small"]
    detail = c.get("/api/operations/op-spam").json()
    assert detail["profile"]["followers"]["inauthentic_follower_share"] == 0.4
    assert detail["profile"]["narratives"][0]["examples"][0] == XSS_TEXT
    assert [e["signal"] for e in detail["evidence"]] == ["copy-paste text", "time zone"]
    assert detail["links"][0]["evidence"]["detail"] == "12 shared links, e.g. <i>x</i>"
    page = c.get("/operations/op-spam").text
    assert "12 shared links, e.g. &lt;i&gt;x&lt;/i&gt;" in page
    # the teams keeping their own hours, names escaped
    assert "Team (same hours)" in page and "09:30–12:00" in page
    assert "c-fb1 (3) &lt;b&gt;c-x1&lt;/b&gt; (1)" in page
    assert '"families"' not in page
    assert c.get("/api/operations/nope").status_code == 404


def test_unprofiled_operation_gets_counted_heatmap(server, world):
    c = client(server, world[1]["vic"])
    small = c.get("/api/operations/op-small").json()
    assert small["profile"] == {}
    # 3 members x 14 days x posts at 01, 02 and 06 UTC; 2023-05-01 is a Monday
    how = small["hour_of_week_utc"]
    assert sum(how) == 3 * 14 * 3
    assert how[1] == 3 * 2 and how[0] == 0 and how[6] == 6
    assert len(small["activity_timeline"]) == 14
    page = client(server)
    login(page, "vic")
    html = page.get("/operations/op-small").text
    assert "No time profile yet" in html and 'id="heatmap"' in html


def test_network_json(server, world):
    c = client(server, world[1]["vic"])
    net = c.get("/api/operations/op-spam/network").json()
    kinds = {}
    for el in net["elements"]:
        kinds.setdefault(el["data"]["kind"], []).append(el["data"])
    assert len(kinds["asset"]) == 10 == net["nodes_total"]
    assert {c["id"] for c in kinds["cluster"]} == {"c:c-fb1", "c:c-x1"}
    assert len(kinds["edge"]) == 10 + 1 + 6
    assert kinds["link"][0]["source"] == "c:c-fb1"
    labels = {a["account_id"]: a["label"] for a in kinds["asset"]}
    assert labels["fb0"] == "<script>alert(2)</script>"  # raw in JSON, drawn as canvas text


def test_asset_flagged_why_and_evidence(server, world):
    c = client(server, world[1]["vic"])
    a = c.get("/api/assets/facebook/fb1").json()
    assert a["flagged"] and a["memberships"][0]["operation_id"] == "op-spam"
    assert a["edges"][0]["partner"] == "fb4"
    assert a["evidence_keys"][0]["own_post"] == "hostile-2"
    assert a["posts"][0]["post_id"] == "hostile-2" and a["posts"][0]["evidence"]
    real = c.get("/api/assets/facebook/real0").json()
    assert not real["flagged"] and real["posts_total"] == 43
    assert c.get("/api/assets/facebook/nobody").status_code == 404


def test_post_search(server, world):
    c = client(server, world[1]["vic"])
    r = c.get("/api/posts", params={"q": "ONERROR"}).json()
    assert {p["post_id"] for p in r["rows"]} == {"hostile-1", "hostile-2"}
    r = c.get("/api/posts", params={"url": "evil.example"}).json()
    assert [p["post_id"] for p in r["rows"]] == ["hostile-2"]
    r = c.get("/api/posts", params={"hashtag": "#XSS"}).json()
    assert [p["post_id"] for p in r["rows"]] == ["hostile-1"]
    r = c.get("/api/posts", params={"since": "2023-05-04T00:00:00Z",
                                    "until": "2023-05-04T03:00:00+01:00",
                                    "platform": "x"}).json()
    # until is exclusive and 03:00+01:00 is 02:00 UTC: the five x assets' 01:00 posts
    assert len(r["rows"]) == 5 and not r["has_more"]
    assert {p["created_at"] for p in r["rows"]} == {"2023-05-04T01:00:00"}
    page1 = c.get("/api/posts", params={"q": "lab", "limit": 50}).json()
    page2 = c.get("/api/posts", params={"q": "lab", "limit": 50, "offset": 50}).json()
    assert page1["has_more"] and len(page1["rows"]) == 50
    assert not {p["post_id"] for p in page1["rows"]} & {p["post_id"] for p in page2["rows"]}
    r = c.get("/api/posts", params={"q": "' OR 1=1; DROP TABLE posts; --"}).json()
    assert r["rows"] == []
    # 15 assets x 14 days x 3 posts, and the 2 hostile ones: nothing was dropped
    assert c.get("/api/status").json()["counts"]["posts"] == 15 * 42 + 2


def test_status_and_quarantine(server, world):
    c = client(server, world[1]["vic"])
    st = c.get("/api/status").json()
    assert st["counts"]["quarantined"] == 1 and st["quarantine"][0]["table_name"] == "posts"
    q = c.get("/api/quarantine").json()
    assert q["rows"][0]["row_number"] == 17 and q["rows"][0]["file"] == "posts.csv"


# ----------------------------------------------------------------- review and audit
def test_review_exclusion_and_audit_survive_restart(tmp_path):
    path = build_workspace(tmp_path / "ws.duckdb")
    toks = tokens(path)
    with serving(path) as s:
        ana = client(s, toks["ana"])
        r = ana.post("/api/operations/op-spam/exclusions",
                     json={"platform": "facebook", "account_id": "fbpage",
                           "note": "a real local news page, shared by the network"})
        assert r.status_code == 200
        bad = ana.post("/api/operations/op-spam/exclusions",
                       json={"platform": "facebook", "account_id": "small0", "note": "x"})
        assert bad.status_code == 404
        r = ana.post("/api/reviews", json={"target_type": "operation", "target_id": "op-spam",
                                           "decision": "confirmed", "note": "shift pattern"})
        assert r.status_code == 201
        bad = ana.post("/api/reviews", json={"target_type": "operation", "target_id": "op-x",
                                             "decision": "confirmed", "note": "?"})
        assert bad.status_code == 404
        r = ana.get("/api/exports/accounts.csv",
                    params={"operation_id": "op-spam", "reason": "takedown request 42"})
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        assert r.text.count("op-spam") == 10
        assert ana.get("/api/exports/passwd").status_code == 404
        ops = {o["operation_id"]: o for o in ana.get("/api/operations").json()}
        assert ops["op-spam"]["status"] == "confirmed" and ops["op-spam"]["excluded"] == 1
        confirmed = ana.get("/api/operations", params={"status": "confirmed"}).json()
        assert [o["operation_id"] for o in confirmed] == ["op-spam"]
        members = ana.get("/api/operations/op-spam/members").json()["rows"]
        assert [m["account_id"] for m in members if m["excluded"]] == ["fbpage"]
        # confirmed operations feed the enforcement list, without the excluded asset
        listed = ana.get("/api/enforcement").json()
        assert {r["operation_id"] for r in listed} == {"op-spam"}
        assert len(listed) == 9 and "fbpage" not in {r["account_id"] for r in listed}
        csv_text = ana.get("/api/exports/enforcement.csv").text
        assert csv_text.count("op-spam") >= 9 and "fbpage" not in csv_text
    with serving(path) as s:  # a new process view of the same file
        log = client(s, toks["vic"]).get("/api/audit").json()
        actions = [(e["action"], e["target"], e["user"]) for e in log]
        assert ("review.confirmed", "operation:op-spam", "ana") in actions
        assert ("review.exclude_asset", "operation:op-spam", "ana") in actions
        assert ("export", "accounts.csv", "ana") in actions
        assert ("export", "enforcement.csv", "ana") in actions
        export = next(e for e in log if e["target"] == "accounts.csv")
        assert export["detail"] == "operation=op-spam; takedown request 42"
        assert [e["seq"] for e in log] == sorted((e["seq"] for e in log), reverse=True)
        assert client(s, toks["ada"]).delete("/api/audit").status_code == 405


def test_report_exports_by_fixed_name(server, world):
    ana = client(server, world[1]["ana"])
    r = ana.get("/api/exports/indicators.csv", params={"operation_id": "op-spam"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.startswith("Tactic,Technique,Procedure") and "0.9.1" in r.text
    r = ana.get("/api/exports/report.html", params={"operation_id": "op-spam"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert "<script" not in r.text.lower() and "&lt;img src=x" in r.text
    assert ana.get("/api/exports/report.html", params={"operation_id": "../x"}).status_code == 404
    tags = ana.get("/api/operations/op-spam/tags").json()
    assert "T0150.008" in {t["id"] for t in tags["disarm"]}  # bulk-created assets
    assert tags["killchain"] and all(t["evidence"] for t in tags["killchain"])


def test_admin_adds_user(server, world):
    ada = client(server, world[1]["ada"])
    r = ada.post("/api/users", json={"name": "newbie", "role": "viewer",
                                      "password": "long-enough-pw"})
    assert r.status_code == 201
    assert "newbie" in {u["name"] for u in ada.get("/api/users").json()}
    c = client(server)
    login(c, "newbie", "long-enough-pw")
    assert c.get("/api/me").json()["role"] == "viewer"
    short = ada.post("/api/users", json={"name": "x", "role": "viewer", "password": "short"})
    assert short.status_code == 422


def test_every_page_renders_for_a_viewer(server):
    c = client(server)
    login(c, "vic")
    for path in ("/", "/?platform=x&status=new&min_size=2", "/operations/op-spam",
                 "/operations/op-small", "/clusters", "/clusters/c-fb1",
                 "/assets/facebook/fb0", "/assets/x/real1", "/posts",
                 "/posts?q=lab&since=2023-05-02&until=2023-05-03", "/audit", "/jobs",
                 "/status", "/docs"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert "<img src=x" not in r.text and "<script>alert" not in r.text, path
    assert c.get("/posts?since=yesterday").status_code == 400
    assert c.get("/operations/missing").status_code == 404


def test_detect_job_runs_in_background(small_workspace_server):
    s, toks = small_workspace_server
    ana = client(s, toks["ana"])
    r = ana.post("/api/jobs/detect", json={"reason": "weekly run"})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert ana.post("/api/jobs/detect").status_code in (202, 409)
    deadline = time.time() + 120
    while True:
        job = ana.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed") or time.time() > deadline:
            break
        assert ana.get("/api/status").status_code == 200  # the server stays responsive
        time.sleep(0.2)
    assert job["state"] == "done", job["error"]
    assert job["progress"] == 1.0 and job["result"]["operations"] >= 0
    actions = [e["action"] for e in ana.get("/api/audit").json()]
    assert "detect.start" in actions and "detect.done" in actions


@pytest.fixture()
def small_workspace_server(tmp_path):
    path = build_workspace(tmp_path / "ws.duckdb")
    toks = tokens(path)
    server = Server(path).start()
    yield server, toks
    server.stop()



PARTIAL_PROFILES = [
    {"time": None, "engagement": None, "followers": None, "narratives": None, "assets": None},
    {"time": {"utc_offset_hours": 3.5, "hour_of_week_utc": [1] * 168},
     "engagement": {"echo_chamber_ratio": None, "breakout": None},
     "narratives": [{"label": "only a label"}], "assets": {"tally_text": None}},
]


def test_partial_profiles_render(tmp_path):
    import json

    path = build_workspace(tmp_path / "ws.duckdb")
    with serving(path) as s:
        c = client(s)
        login(c, "vic")
        for profile in PARTIAL_PROFILES:
            with s.app.state.store.write() as con:
                con.execute("UPDATE operation_profiles SET profile = ? "
                            "WHERE operation_id = 'op-spam'", [json.dumps(profile)])
            r = c.get("/operations/op-spam")
            assert r.status_code == 200, profile
            assert 'id="heatmap"' in r.text and "Office-shift network" in r.text
            assert c.get("/").status_code == 200
            assert c.get("/api/operations/op-spam").json()["profile"] == profile
