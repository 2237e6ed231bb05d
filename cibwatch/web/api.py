"""The REST API under /api/ (documented at /docs).

Reads need any logged-in user or token; writes need the analyst role (users: admin) and,
with a session cookie, the CSRF header. Every review action and export is audited.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from cibwatch import audit, users
from cibwatch.safety import csv_safe
from cibwatch.web import data
from cibwatch.web.auth import Identity, api_user, require

router = APIRouter(prefix="/api")
Reader = Annotated[Identity, Depends(api_user)]
Analyst = Annotated[Identity, Depends(require("analyst"))]
Admin = Annotated[Identity, Depends(require("admin"))]

# The only files /api/exports serves: a fixed name maps to a builder, so no request
# parameter ever becomes part of a path. Report-made files name their report format.
EXPORTS = {
    "accounts.csv": "Flagged assets (the contract's accounts.csv).",
    "operations.json": "Every operation with its profile (the contract's operations.json).",
    "enforcement.csv": "Assets of confirmed operations, exclusions removed.",
    "report.html": "The report (whole workspace or one operation), HTML.",
    "report.pdf": "The report as PDF.",
    "report.md": "The report as Markdown.",
    "indicators.csv": "Indicators in Meta's takedown layout with kill-chain tags.",
    "stix-bundle.json": "STIX 2.1 bundle with DISARM techniques.",
    "graph.gexf": "The operation network for Gephi (GEXF).",
    "graph.graphml": "The operation network (GraphML).",
    "audit.csv": "The whole audit log.",
}
REPORT_FORMATS = {
    "enforcement.csv": ("enforcement", "text/csv; charset=utf-8"),
    "report.html": ("html", "text/html; charset=utf-8"),
    "report.pdf": ("pdf", "application/pdf"),
    "report.md": ("md", "text/markdown; charset=utf-8"),
    "indicators.csv": ("indicators", "text/csv; charset=utf-8"),
    "stix-bundle.json": ("stix", "application/json"),
    "graph.gexf": ("gexf", "application/xml"),
    "graph.graphml": ("graphml", "application/xml"),
}

def store(request: Request):
    return request.app.state.store


def _default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def cached_json(s, fn, *args) -> Response:
    """`fn(con, *args)` as a JSON response, encoded once per workspace version: the
    operation views are large and read far more often than anything changes."""

    def encode() -> bytes:
        with s.cursor() as con:
            return json.dumps(fn(con, *args), ensure_ascii=False,
                              default=_default).encode("utf-8")

    body = s.cached(("json", fn.__name__, s.version(), *args), encode)
    return Response(body, media_type="application/json")


def clamp_limit(request: Request, limit: int | None) -> int:
    cfg = store(request).config.serve
    return max(1, min(limit or cfg.page_size, cfg.max_page_size))


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


# ------------------------------------------------------------------------------ reads
@router.get("/me", tags=["session"])
def me(user: Reader) -> dict:
    """Who the caller is, and the CSRF token to send with cookie-authenticated writes."""
    return {"name": user.name, "role": user.role, "via": user.via,
            "csrf_token": user.session.csrf if user.session else None}


@router.get("/status", tags=["ingest"])
def get_status(request: Request, _user: Reader) -> dict:
    """Row counts, ingested files, quarantine totals per table, recent detect runs."""
    with store(request).cursor() as con:
        result = data.status(con)
    result["job_running"] = store(request).jobs.running()
    return result


@router.get("/quarantine", tags=["ingest"])
def get_quarantine(
    request: Request, _user: Reader, table: str | None = None,
    limit: int | None = None, offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Rows that broke the data contract, with file, row number and reason."""
    with store(request).cursor() as con:
        return data.quarantine(con, table, clamp_limit(request, limit), offset)


@router.get("/operations", tags=["operations"])
def list_operations(
    request: Request, _user: Reader, platform: str | None = None,
    status: str | None = None, min_size: Annotated[int | None, Query(ge=0)] = None,
    max_size: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Operations, largest first, with tally and review status; filter by platform,
    status (new, confirmed, rejected, needs-more-work) and number of assets."""
    return cached_json(store(request), data.operations, platform, status, min_size, max_size)


@router.get("/operations/{operation_id}", tags=["operations"])
def get_operation(request: Request, operation_id: str, _user: Reader) -> Response:
    """One operation with its full profile (every characterisation figure), clusters,
    links, evidence, reviews and exclusions."""
    return cached_json(store(request), data.operation, operation_id)


@router.get("/operations/{operation_id}/members", tags=["operations"])
def get_members(
    request: Request, operation_id: str, _user: Reader, limit: int | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    with store(request).cursor() as con:
        data.operation_exists(con, operation_id)
        return data.members(con, operation_id, clamp_limit(request, limit), offset)


@router.get("/operations/{operation_id}/network", tags=["operations"])
def get_network(request: Request, operation_id: str, _user: Reader) -> Response:
    """Cytoscape.js elements of the operation's clusters, members and edges."""
    s = store(request)
    return cached_json(s, data.network, operation_id, s.config.serve.network_max_nodes)


@router.get("/operations/{operation_id}/tags", tags=["operations"])
def get_tags(request: Request, operation_id: str, _user: Reader) -> dict:
    """Online Operations Kill Chain and DISARM tags, each with the evidence behind it."""
    s = store(request)
    with s.cursor() as con:
        data.operation_exists(con, operation_id)
    result = s.view(data.tags, operation_id)
    if result is None:
        raise data.Unavailable("tags need the report package")
    return result


@router.get("/clusters", tags=["clusters"])
def list_clusters(request: Request, _user: Reader, platform: str | None = None) -> list[dict]:
    with store(request).cursor() as con:
        return data.clusters(con, platform)


@router.get("/clusters/{cluster_id}", tags=["clusters"])
def get_cluster(request: Request, cluster_id: str, _user: Reader) -> dict:
    with store(request).cursor() as con:
        return data.cluster(con, cluster_id)


@router.get("/assets/{platform}/{account_id:path}", tags=["assets"])
def get_asset(request: Request, platform: str, account_id: str, _user: Reader) -> dict:
    """Is the asset flagged, why (clusters, strongest edges and their keys), and the
    evidence posts."""
    s = store(request)
    with s.cursor() as con:
        return data.asset(con, platform, account_id, s.config.serve.asset_evidence_posts)


@router.get("/posts", tags=["posts"])
def search_posts(
    request: Request,
    _user: Reader,
    q: Annotated[str | None, Query(max_length=500, description="Text contains")] = None,
    url: Annotated[str | None, Query(max_length=500)] = None,
    hashtag: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    platform: str | None = None,
    account_id: str | None = None,
    limit: int | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    """Post search; every filter optional and combined with AND; newest first."""
    with store(request).cursor() as con:
        return data.search_posts(
            con, q, url, hashtag, _utc(since), _utc(until), platform, account_id,
            clamp_limit(request, limit), offset,
        )


@router.get("/audit", tags=["audit"])
def get_audit(
    request: Request, _user: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 200
) -> list[dict]:
    """The append-only audit log, newest first."""
    with store(request).cursor() as con:
        return audit.entries(con, limit)


@router.get("/enforcement", tags=["review"])
def get_enforcement(request: Request, _user: Reader) -> list[dict]:
    """Assets of confirmed operations (what a takedown would act on)."""
    with store(request).cursor() as con:
        return data.enforcement(con, confirmed_only=True)


# ----------------------------------------------------------------------------- writes
class ReviewIn(BaseModel):
    target_type: Literal["operation", "cluster"]
    target_id: str = Field(max_length=200)
    decision: Literal["confirmed", "rejected", "needs-more-work"]
    note: str = Field(min_length=1, max_length=4000, description="Why: required.")


@router.post("/reviews", tags=["review"], status_code=201)
def post_review(request: Request, body: ReviewIn, user: Analyst) -> dict:
    """Mark an operation or cluster confirmed, rejected or needs-more-work, with a note."""
    with store(request).write() as con:
        return data.record_review(
            con, body.target_type, body.target_id, body.decision, body.note, user.name
        )


class ExclusionIn(BaseModel):
    platform: str = Field(max_length=100)
    account_id: str = Field(max_length=500)
    note: str = Field(min_length=1, max_length=4000)
    excluded: bool = True


@router.post("/operations/{operation_id}/exclusions", tags=["review"])
def post_exclusion(request: Request, operation_id: str, body: ExclusionIn, user: Analyst):
    """Remove one asset from an operation before confirming it (excluded=false restores)."""
    with store(request).write() as con:
        return data.set_exclusion(
            con, operation_id, body.platform, body.account_id, body.excluded, body.note,
            user.name,
        )


class DetectIn(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


@router.post("/jobs/detect", tags=["jobs"], status_code=202)
def start_detect(request: Request, user: Analyst, body: DetectIn | None = None) -> dict:
    """Start a detect run in the background; poll /api/jobs/{job_id} for its progress."""
    job = store(request).jobs.start_detect(user.name, body.reason if body else None)
    return job.to_dict()


@router.get("/jobs", tags=["jobs"])
def list_jobs(request: Request, _user: Reader) -> list[dict]:
    return [j.to_dict() for j in store(request).jobs.all()]


@router.get("/jobs/{job_id}", tags=["jobs"])
def get_job(request: Request, job_id: str, _user: Reader) -> dict:
    job = store(request).jobs.get(job_id)
    if job is None:
        raise data.NotFound(f"no job {job_id!r}")
    return job.to_dict()


class UserIn(BaseModel):
    name: str = Field(max_length=64)
    role: Literal["viewer", "analyst", "admin"]
    password: str = Field(min_length=users.MIN_PASSWORD_CHARS, max_length=1000)


@router.get("/users", tags=["users"])
def list_users(request: Request, _user: Admin) -> list[dict]:
    with store(request).cursor() as con:
        return users.list_users(con)


@router.post("/users", tags=["users"], status_code=201)
def add_user(request: Request, body: UserIn, user: Admin) -> dict:
    with store(request).write() as con:
        users.add_user(con, body.name, body.role, body.password, by=user.name)
    return {"name": body.name, "role": body.role}


# ---------------------------------------------------------------------------- exports
@router.get("/exports", tags=["exports"])
def list_exports(_user: Reader) -> dict:
    return EXPORTS


@router.get("/exports/{name}", tags=["exports"])
def export(
    request: Request,
    name: str,
    user: Reader,
    operation_id: Annotated[str | None, Query(max_length=200)] = None,
    reason: Annotated[str | None, Query(max_length=1000)] = None,
):
    """Download one export by its fixed name (see GET /api/exports); audited."""
    if name not in EXPORTS:
        raise data.NotFound(f"no export {name!r}; choose one of {', '.join(EXPORTS)}")
    return build_export(request, name, user, operation_id, reason)


def build_export(request: Request, name: str, user: Identity, operation_id: str | None,
                 reason: str | None):
    s = store(request)
    if name in REPORT_FORMATS:
        return _report_file(s, name, user, operation_id, reason)
    with s.cursor() as con:
        if operation_id is not None:
            data.operation_exists(con, operation_id)
        if name == "accounts.csv":
            response = _download(_accounts_csv(con, operation_id), "text/csv; charset=utf-8",
                                 name)
        elif name == "operations.json":
            from cibwatch.results import operation_documents

            docs = [d for d in operation_documents(con)
                    if operation_id is None or d["operation_id"] == operation_id]
            body = json.dumps(docs, indent=2, ensure_ascii=False, default=str)
            response = _download(body, "application/json", name)
        else:
            response = _download(_csv(audit.entries(con, limit=10_000_000)),
                                 "text/csv; charset=utf-8", name)
    _audit_export(s, name, user, operation_id, reason)
    return response


def _audit_export(s, name: str, user: Identity, operation_id: str | None,
                  reason: str | None) -> None:
    detail = "; ".join(x for x in (f"operation={operation_id}" if operation_id else "",
                                   reason or "") if x)
    with s.write() as con:
        audit.record(con, "export", name, detail or None, user.name)


def _accounts_csv(con, operation_id: str | None) -> str:
    from cibwatch.results import ACCOUNT_COLUMNS, flagged_assets

    rows = [dict(zip(ACCOUNT_COLUMNS, r, strict=True)) for r in flagged_assets(con)
            if operation_id is None or r[2] == operation_id]
    return _csv(rows, ACCOUNT_COLUMNS)


def _csv(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_safe("" if row.get(c) is None else str(row.get(c)))
                         for c in columns])
    return buf.getvalue()


def _download(body: str, media_type: str, filename: str) -> Response:
    return Response(
        body, media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _report_file(s, name: str, user: Identity, operation_id: str | None,
                 reason: str | None) -> FileResponse:
    """Build one report format into a fresh temporary folder and send the file by its
    fixed name; the folder is removed after sending."""
    try:
        from cibwatch.report import build_report
    except ImportError as exc:
        raise data.Unavailable(f"report not available: {exc}") from exc
    fmt, media_type = REPORT_FORMATS[name]
    with s.cursor() as con:
        if operation_id is not None:
            data.operation_exists(con, operation_id)
    out = Path(tempfile.mkdtemp(prefix="cibwatch-export-"))
    try:
        con = s.new_cursor()
        try:
            with audit.acting_as(user.name):
                build_report(con, out, operation_id=operation_id, formats=[fmt],
                             confirmed_only=name == "enforcement.csv")
        finally:
            con.close()
        path = out / name
        if not path.is_file():
            raise data.Unavailable(f"the report package wrote no {name}")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    _audit_export(s, name, user, operation_id, reason)
    return FileResponse(path, media_type=media_type, filename=name,
                        background=BackgroundTask(shutil.rmtree, out, ignore_errors=True))
