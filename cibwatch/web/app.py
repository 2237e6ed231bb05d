"""The workbench application: `create_app(workspace_path, config)` builds it.

Middleware puts a strict Content-Security-Policy and friends on every response;
FastAPI's own limit refuses oversized bodies (413); errors become JSON under /api/ and an
HTML page elsewhere;
Swagger UI at /docs is served from the bundled swagger-ui-dist, never from a CDN.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import duckdb
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, Undefined, select_autoescape
from starlette.templating import Jinja2Templates

from cibwatch.config import Config
from cibwatch.errors import CibwatchError
from cibwatch.web import data
from cibwatch.web.auth import LoginRequired, api_user
from cibwatch.web.jobs import JobBusy
from cibwatch.web.store import Store

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """A strict CSP and friends on every response; no caching of anything but static
    files (pages hold case data)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith("/static/")
        replaced = {k for k, _ in SECURITY_HEADERS}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() not in replaced]
                headers += SECURITY_HEADERS
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("cibwatch.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["u"] = lambda v: quote("" if _missing(v) else str(v), safe="")
    env.filters["pct"] = lambda v: "–" if not _is_num(v) else f"{float(v) * 100:.0f}%"
    env.filters["num"] = lambda v: "–" if not _is_num(v) else f"{v:,}"
    env.filters["f2"] = lambda v: "–" if not _is_num(v) else f"{float(v):.2f}"
    env.filters["dt"] = lambda v: "–" if _missing(v) else str(v)[:19].replace("T", " ")
    env.filters["offset"] = lambda v: "–" if not _is_num(v) else f"UTC{float(v):+g}"
    env.tests["given"] = lambda v: not _missing(v)
    return Jinja2Templates(env=env)


def _preload_report() -> None:
    # missing or broken: the features that need it answer 503 or are left out
    with contextlib.suppress(Exception):
        importlib.import_module("cibwatch.report")


def _missing(v) -> bool:
    return v is None or isinstance(v, Undefined)


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def create_app(workspace_path: str | Path, config: Config | None = None) -> FastAPI:
    """The workbench over one workspace file (opened now, closed on shutdown)."""
    from contextlib import asynccontextmanager

    from cibwatch.web import api, pages

    config = config or Config()
    store = Store(workspace_path, config)
    # The report package (tags, exports) pulls in Altair and WeasyPrint: seconds to import.
    # Import it now in the background so that no analyst's first click pays for it.
    threading.Thread(target=_preload_report, name="preload-report", daemon=True).start()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        store.close()

    app = FastAPI(
        title="cibwatch workbench",
        summary="Review coordinated inauthentic behaviour that cibwatch flags.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        max_body_size=config.serve.max_body_bytes,
    )
    app.state.store = store
    app.state.templates = _templates()
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_user: Annotated[object, Depends(api_user)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        pages.page_identity(request)
        return app.state.templates.TemplateResponse(request, "docs.html", {})

    _error_handlers(app)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _error(request: Request, status: int, message: str, headers=None) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message},
        status_code=status, headers=headers,
    )


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(data.NotFound)
    async def not_found(request: Request, exc: data.NotFound):
        return _error(request, 404, str(exc))

    @app.exception_handler(data.Invalid)
    async def invalid(request: Request, exc: data.Invalid):
        return _error(request, 400, str(exc))

    @app.exception_handler(data.Unavailable)
    async def unavailable(request: Request, exc: data.Unavailable):
        return _error(request, 503, str(exc))

    @app.exception_handler(CibwatchError)
    async def cibwatch_error(request: Request, exc: CibwatchError):
        return _error(request, 400, str(exc))

    @app.exception_handler(JobBusy)
    async def busy(request: Request, exc: JobBusy):
        return _error(request, 409, str(exc))

    @app.exception_handler(duckdb.TransactionException)
    async def conflict(request: Request, _exc: duckdb.TransactionException):
        return _error(request, 409, "the workspace is being updated (detect run); try again")

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException):
        return _error(request, exc.status_code, str(exc.detail))
