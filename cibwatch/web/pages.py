"""Server-rendered pages of the workbench (Jinja2, autoescaped; no inline scripts).

Every form that changes state carries the session's CSRF token and is answered with a
redirect (post/redirect/get). Viewers see everything and change nothing.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from cibwatch import audit, users
from cibwatch.web import data
from cibwatch.web.api import EXPORTS, clamp_limit, store
from cibwatch.web.auth import (
    COOKIE,
    Identity,
    check_csrf,
    page_user,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Identity, Depends(page_user)]
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def page_identity(request: Request) -> Identity:
    return page_user(request)


def render(request: Request, template: str, user: Identity | None, status_code: int = 200,
           **context) -> Response:
    context["user"] = user
    context["csrf"] = user.session.csrf if user and user.session else ""
    return request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status_code
    )


def writer(request: Request, user: Identity, csrf_token: str | None,
           role: str = "analyst") -> None:
    if not user.can(role):
        raise HTTPException(403, f"role {role} or higher required")
    check_csrf(user, csrf_token)


def _safe_next(target: str | None) -> str:
    """Only same-site absolute paths: no open redirect through ?next=."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(ch) < 0x21 or ord(ch) == 0x7f for ch in target)):
        return "/"
    return target


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ------------------------------------------------------------------------------- login
@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    s = store(request)
    session = s.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        session = s.sessions.new()
    response = request.app.state.templates.TemplateResponse(
        request, "login.html",
        {"user": None, "csrf": session.csrf, "next": _safe_next(next), "error": None},
    )
    set_session_cookie(response, request, session, s.config.serve)
    return response


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    s = store(request)
    session = s.sessions.get(request.cookies.get(COOKIE))
    if session is None or not secrets.compare_digest(csrf_token, session.csrf):
        raise HTTPException(403, "missing or wrong CSRF token (reload the login page)")
    client = _client(request)

    def again(message: str, status: int) -> Response:
        return request.app.state.templates.TemplateResponse(
            request, "login.html",
            {"user": None, "csrf": session.csrf, "next": _safe_next(next), "error": message},
            status_code=status,
        )

    if s.limiter.blocked(client, name):
        return again("Too many failed logins; wait a few minutes.", 429)
    with s.cursor() as con:
        user = users.authenticate(con, name, password)
    if user is None:
        s.limiter.failed(client, name)
        with s.write(invalidates=False) as con:
            audit.record(con, "login.failed", f"user:{name}", f"from {client}", "anonymous")
        return again("Wrong user name or password.", 401)
    s.sessions.drop(session.sid)
    fresh = s.sessions.new(user)
    with s.write(invalidates=False) as con:
        audit.record(con, "login", f"user:{user['name']}", f"from {client}", user["name"])
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, request, fresh, s.config.serve)
    return response


@router.post("/logout")
def logout(request: Request, user: Viewer,
           csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(user, csrf_token)
    store(request).sessions.drop(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------------------- overview
@router.get("/")
def overview(
    request: Request, user: Viewer, platform: str | None = None, status: str | None = None,
    min_size: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    s = store(request)
    ops = s.view(data.operations, platform or None, status or None, min_size)
    st = s.view(data.status)
    platforms = s.view(data.flagged_platforms)
    return render(request, "overview.html", user, ops=ops, status=st, platforms=platforms,
                  filters={"platform": platform, "status": status, "min_size": min_size},
                  statuses=("new", *data.DECISIONS), job_running=s.jobs.running())


# --------------------------------------------------------------------------- operation
@router.get("/operations/{operation_id}")
def operation_page(
    request: Request, operation_id: str, user: Viewer,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    s = store(request)
    limit = clamp_limit(request, None)
    op = s.view(data.operation, operation_id)
    mem = s.view(data.members, operation_id, limit, offset)
    history = s.view(data.history, operation_id)

    def body() -> Markup:
        with s.cursor() as con:
            return operation_body(request, con, op)

    body_html = s.cached(("operation_body", s.version(), operation_id), body)
    return render(
        request, "operation.html", user, op=op, profile=op["profile"], members=mem,
        body=body_html,
        decisions=data.DECISIONS, history=history, exports=EXPORTS,
    )


def operation_body(request: Request, con, op: dict) -> Markup:
    """The reader-independent sections of an operation page (evidence, tags, time,
    timeline, network, narratives, engagement, followers, assets), rendered once per
    workspace version. The template autoescapes every value, so the cached HTML is as
    safe as a fresh render."""
    profile = op["profile"]
    html = request.app.state.templates.env.get_template("_operation_body.html").render(
        op=op, profile=profile,
        heat_utc=heatmap(op["hour_of_week_utc"]),
        heat_local=heatmap(op["hour_of_week_local"]) if op["hour_of_week_local"] else None,
        offset_h=(profile.get("time") or {}).get("utc_offset_hours"),
        timeline=timeline_svg(op["activity_timeline"]),
        tags=data.tags(con, op["operation_id"]),
    )
    return Markup(html)  # noqa: S704 (the output of an autoescaped template)


@router.post("/operations/{operation_id}/review")
def review_operation(
    request: Request, operation_id: str, user: Viewer,
    decision: Annotated[str, Form(max_length=50)],
    note: Annotated[str, Form(max_length=4000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _review(request, user, csrf_token, "operation", operation_id, decision, note,
                   f"/operations/{operation_id}#review")


@router.post("/operations/{operation_id}/exclusions")
def exclude_asset(
    request: Request, operation_id: str, user: Viewer,
    platform: Annotated[str, Form(max_length=100)],
    account_id: Annotated[str, Form(max_length=500)],
    note: Annotated[str, Form(max_length=4000)] = "",
    excluded: Annotated[str, Form(max_length=5)] = "1",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    writer(request, user, csrf_token)
    _need_note(note)
    with store(request).write() as con:
        data.set_exclusion(con, operation_id, platform, account_id, excluded == "1",
                           note.strip(), user.name)
    return RedirectResponse(f"/operations/{operation_id}#members", status_code=303)


def _need_note(note: str) -> None:
    if not note.strip():
        raise data.Invalid("a note saying why is required")


def _review(request: Request, user, csrf_token: str, target_type: str, target_id: str,
            decision: str, note: str, back: str) -> Response:
    """One review decision on an operation or cluster: checked, recorded, audited."""
    writer(request, user, csrf_token)
    _need_note(note)
    with store(request).write() as con:
        data.record_review(con, target_type, target_id, decision, note.strip(), user.name)
    return RedirectResponse(back, status_code=303)


# ---------------------------------------------------------------------------- clusters
@router.get("/clusters")
def clusters_page(request: Request, user: Viewer, platform: str | None = None) -> Response:
    with store(request).cursor() as con:
        rows = data.clusters(con, platform or None)
    return render(request, "clusters.html", user, clusters=rows)


@router.get("/clusters/{cluster_id}")
def cluster_page(request: Request, cluster_id: str, user: Viewer) -> Response:
    with store(request).cursor() as con:
        c = data.cluster(con, cluster_id)
    return render(request, "cluster.html", user, c=c, decisions=data.DECISIONS,
                  evidence_json=json.dumps(c["evidence"], indent=2, ensure_ascii=False,
                                           default=str))


@router.post("/clusters/{cluster_id}/review")
def review_cluster(
    request: Request, cluster_id: str, user: Viewer,
    decision: Annotated[str, Form(max_length=50)],
    note: Annotated[str, Form(max_length=4000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _review(request, user, csrf_token, "cluster", cluster_id, decision, note,
                   f"/clusters/{cluster_id}#review")


# ------------------------------------------------------------------------------ assets
@router.get("/assets/{platform}/{account_id:path}")
def asset_page(request: Request, platform: str, account_id: str, user: Viewer) -> Response:
    s = store(request)
    with s.cursor() as con:
        a = data.asset(con, platform, account_id, s.config.serve.asset_evidence_posts)
    return render(request, "asset.html", user, a=a)


# ------------------------------------------------------------------------------- posts
@router.get("/posts")
def posts_page(
    request: Request, user: Viewer,
    q: Annotated[str | None, Query(max_length=500)] = None,
    url: Annotated[str | None, Query(max_length=500)] = None,
    hashtag: Annotated[str | None, Query(max_length=200)] = None,
    since: str | None = None, until: str | None = None, platform: str | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    start, end = _date(since, "since"), _date(until, "until")
    result = None
    if any((q, url, hashtag, start, end, platform)):
        with store(request).cursor() as con:
            result = data.search_posts(con, q or None, url or None, hashtag or None, start,
                                       end, platform or None, None,
                                       clamp_limit(request, None), offset)
    return render(request, "posts.html", user, result=result,
                  form={"q": q or "", "url": url or "", "hashtag": hashtag or "",
                        "since": since or "", "until": until or "",
                        "platform": platform or ""}, offset=offset)


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise data.Invalid(f"{name}: expected a date like 2023-05-01") from exc


# ------------------------------------------------------------------ audit, jobs, status
@router.get("/audit")
def audit_page(request: Request, user: Viewer) -> Response:
    with store(request).cursor() as con:
        rows = audit.entries(con, 500)
    return render(request, "audit.html", user, entries=rows)


@router.get("/jobs")
def jobs_page(request: Request, user: Viewer) -> Response:
    s = store(request)
    return render(request, "jobs.html", user, jobs=[j.to_dict() for j in s.jobs.all()],
                  running=s.jobs.running())


@router.post("/jobs/detect")
def start_detect(
    request: Request, user: Viewer,
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    writer(request, user, csrf_token)
    store(request).jobs.start_detect(user.name, reason or None)
    return RedirectResponse("/jobs", status_code=303)


@router.get("/status")
def status_page(request: Request, user: Viewer,
                offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    with store(request).cursor() as con:
        st = data.status(con)
        q = data.quarantine(con, None, clamp_limit(request, None), offset)
    return render(request, "status.html", user, status=st, quarantine=q)


# ----------------------------------------------------------------------------- helpers
def heatmap(counts: list[int] | None) -> dict | None:
    """7 x 24 cells with a shade level 0-8 (CSS classes: no inline styles under the CSP)."""
    if not counts or len(counts) != 168:
        return None
    top = max(counts) or 1
    rows = []
    for d, day in enumerate(DAYS):
        cells = []
        for h in range(24):
            n = int(counts[d * 24 + h])
            cells.append({"n": n, "level": 0 if n == 0 else 1 + round(7 * n / top),
                          "title": f"{day} {h:02d}:00, {n} posts"})
        rows.append({"day": day, "cells": cells})
    return {"rows": rows, "max": top, "total": sum(int(c) for c in counts)}


def timeline_svg(points: list[dict] | None, width: int = 900, height: int = 140) -> dict | None:
    """Bar geometry for an SVG of posts per day (attributes only: CSP-safe)."""
    if not points:
        return None
    top = max(int(p.get("posts") or 0) for p in points) or 1
    bar_w = width / len(points)
    bars = []
    for i, p in enumerate(points):
        n = int(p.get("posts") or 0)
        h = (height - 20) * n / top
        bars.append({"x": round(i * bar_w, 2), "y": round(height - 20 - h, 2),
                     "w": round(max(bar_w - 1, 0.5), 2), "h": round(h, 2),
                     "date": p.get("date"), "posts": n, "assets": p.get("assets")})
    return {"bars": bars, "width": width, "height": height, "max": top,
            "first": points[0].get("date"), "last": points[-1].get("date")}


