"""The append-only audit log: who did what, when and why.

Review actions and exports (from the CLI and the workbench) are recorded here. Rows are
only ever inserted; nothing in cibwatch updates or deletes them.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import duckdb

# Who is acting in the current context when a caller does not say: the workbench sets it
# around library calls (e.g. report exports) so their entries name the web user.
_acting_user: ContextVar[str | None] = ContextVar("cibwatch_audit_user", default=None)


@contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Attribute entries recorded without an explicit `user` to `user` inside the block."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


def record(
    con: duckdb.DuckDBPyConnection,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    user: str | None = None,
) -> None:
    """Append one entry; `user` defaults to the one set by `acting_as`, else the
    operating-system user (CLI use)."""
    con.execute(
        'INSERT INTO audit_log ("at", user_name, action, target, detail) '
        "VALUES (now()::TIMESTAMP, ?, ?, ?, ?)",
        [user or _acting_user.get() or _os_user(), action, target, detail],
    )


def entries(con: duckdb.DuckDBPyConnection, limit: int = 200) -> list[dict]:
    """Newest first."""
    rows = con.execute(
        'SELECT seq, "at", user_name, action, target, detail FROM audit_log '
        "ORDER BY seq DESC LIMIT ?",
        [limit],
    ).fetchall()
    keys = ("seq", "at", "user", "action", "target", "detail")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _os_user() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"
