"""Who is asking, and may they: sessions, API tokens, roles, CSRF and the login limiter.

A browser session is a random id in an HttpOnly, SameSite=Strict cookie mapped to a
server-side record (user, CSRF token, expiry); restarting the server logs everyone out.
Scripts send `Authorization: Bearer <token>`. State-changing requests made with a session
cookie must carry the session's synchroniser token (form field `csrf_token` or header
`X-CSRF-Token`); bearer-token requests need none because browsers never send them on
their own.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from fastapi import HTTPException, Request

from cibwatch import users
from cibwatch.config import ServeConfig

COOKIE = "cibwatch_session"
CSRF_HEADER = "x-csrf-token"
# Bound on server-side sessions (anonymous ones are made by every visit to /login);
# the oldest go first, so a flood of visits cannot exhaust memory.
MAX_SESSIONS = 10_000


@dataclass
class Session:
    sid: str
    csrf: str
    expires: float
    user: dict | None = None


@dataclass
class Identity:
    name: str
    role: str
    via: str  # "session" or "token"
    session: Session | None = None

    def can(self, role: str) -> bool:
        return users.role_at_least(self.role, role)


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to /login."""


class SessionStore:
    def __init__(self, lifetime_seconds: float):
        self.lifetime = lifetime_seconds
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def new(self, user: dict | None = None) -> Session:
        s = Session(
            sid=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires=time.time() + self.lifetime,
            user=user,
        )
        with self._lock:
            self._sessions[s.sid] = s
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if s.expires < time.time():
                del self._sessions[sid]
                return None
            s.expires = time.time() + self.lifetime
            self._sessions.move_to_end(sid)
            return s

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)


class LoginLimiter:
    """Counts failed logins per client address and per user name in a sliding window."""

    def __init__(self, max_failures: int, window_seconds: float):
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] < now - self.window:
            q.popleft()
        return q

    def blocked(self, client: str, name: str) -> bool:
        now = time.time()
        with self._lock:
            return any(
                len(self._recent(k, now)) >= self.max_failures
                for k in (f"ip:{client}", f"user:{name}")
            )

    def failed(self, client: str, name: str) -> None:
        now = time.time()
        with self._lock:
            for k in (f"ip:{client}", f"user:{name}"):
                self._recent(k, now).append(now)
            if len(self._failures) > MAX_SESSIONS:
                self._failures = {k: q for k, q in self._failures.items() if q}


def set_session_cookie(response, request: Request, session: Session, cfg: ServeConfig) -> None:
    response.set_cookie(
        COOKIE,
        session.sid,
        httponly=True,
        samesite="strict",
        secure=cfg.secure_cookies or request.url.scheme == "https",
        path="/",
    )


def identify(request: Request) -> Identity | None:
    """The caller from a bearer token or a session cookie, cached on the request."""
    if hasattr(request.state, "identity"):
        return request.state.identity
    store = request.app.state.store
    identity = None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        def lookup():
            with store.cursor() as con:
                return users.user_for_token(con, token.strip())

        # keyed by version: a new token or a changed role is seen at once
        user = store.cached(("token", store.version(), users.token_hash(token.strip())), lookup)
        if user:
            identity = Identity(user["name"], user["role"], "token")
    else:
        session = store.sessions.get(request.cookies.get(COOKIE))
        if session and session.user:
            identity = Identity(session.user["name"], session.user["role"], "session", session)
    request.state.identity = identity
    return identity


def check_csrf(identity: Identity, supplied: str | None) -> None:
    """Session-authenticated writes must echo the session's CSRF token."""
    if identity.via != "session":
        return
    expected = identity.session.csrf if identity.session else ""
    if not supplied or not secrets.compare_digest(supplied, expected):
        raise HTTPException(403, "missing or wrong CSRF token")


def api_user(request: Request) -> Identity:
    identity = identify(request)
    if identity is None:
        raise HTTPException(401, "login or a bearer token required",
                            headers={"WWW-Authenticate": "Bearer"})
    return identity


def require(role: str):
    """Dependency for a state-changing API route: role at least `role`, CSRF if cookie."""

    def dependency(request: Request) -> Identity:
        identity = api_user(request)
        if not identity.can(role):
            raise HTTPException(403, f"role {role} or higher required")
        check_csrf(identity, request.headers.get(CSRF_HEADER))
        return identity

    return dependency


def page_user(request: Request) -> Identity:
    identity = identify(request)
    if identity is None:
        raise LoginRequired()
    return identity

