"""Workbench users and API tokens, stored in the workspace.

Passwords are kept only as argon2id hashes; API tokens only as SHA-256 hashes (a token is
32 random bytes, so a fast hash is enough and lets every request look it up by key).
"""

from __future__ import annotations

import hashlib
import secrets

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cibwatch import audit
from cibwatch.errors import CibwatchError
from cibwatch.workspace import scalar

ROLES = ("viewer", "analyst", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
_HASHER = PasswordHasher()
# Verified against when a user does not exist, so that a wrong name costs as much time as
# a wrong password and names cannot be probed by timing.
_DUMMY_HASH = _HASHER.hash("not a password")
MIN_PASSWORD_CHARS = 10
TOKEN_PREFIX = "cibw_"


class UserError(CibwatchError):
    """A user or token request cannot be carried out."""


def role_at_least(role: str, needed: str) -> bool:
    return _RANK.get(role, -1) >= _RANK[needed]


def add_user(
    con: duckdb.DuckDBPyConnection, name: str, role: str, password: str, by: str | None = None
) -> None:
    """Create a user (or reset an existing one's role and password)."""
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise UserError(f"user name {name!r}: 1-64 printable characters")
    if role not in ROLES:
        raise UserError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"password for {name}: at least {MIN_PASSWORD_CHARS} characters")
    hashed = _HASHER.hash(password)
    existed = scalar(con, "SELECT count(*) FROM users WHERE name = ?", [name])
    if existed:
        con.execute(
            "UPDATE users SET role = ?, password_hash = ? WHERE name = ?", [role, hashed, name]
        )
    else:
        con.execute(
            "INSERT INTO users VALUES (?, ?, ?, now()::TIMESTAMP)", [name, role, hashed]
        )
    audit.record(con, "user.update" if existed else "user.add", f"user:{name}", f"role={role}", by)


def list_users(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rows = con.execute(
        "SELECT u.name, u.role, u.created_at, count(t.token_hash) FROM users u "
        "LEFT JOIN api_tokens t ON t.user_name = u.name GROUP BY ALL ORDER BY u.name"
    ).fetchall()
    return [dict(zip(("name", "role", "created_at", "tokens"), r, strict=True)) for r in rows]


def get_user(con: duckdb.DuckDBPyConnection, name: str) -> dict | None:
    rows = con.execute("SELECT name, role FROM users WHERE name = ?", [name]).fetchall()
    return {"name": rows[0][0], "role": rows[0][1]} if rows else None


def authenticate(con: duckdb.DuckDBPyConnection, name: str, password: str) -> dict | None:
    """The user if the password matches, else None (same cost either way)."""
    rows = con.execute(
        "SELECT name, role, password_hash FROM users WHERE name = ?", [name]
    ).fetchall()
    stored = rows[0][2] if rows else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if not rows:
        return None
    if _HASHER.check_needs_rehash(stored):
        con.execute(
            "UPDATE users SET password_hash = ? WHERE name = ?", [_HASHER.hash(password), name]
        )
    return {"name": rows[0][0], "role": rows[0][1]}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token(
    con: duckdb.DuckDBPyConnection, name: str, label: str | None = None, by: str | None = None
) -> str:
    """A new API token for `name`; only its hash is stored, so it is shown once."""
    if get_user(con, name) is None:
        raise UserError(f"no such user: {name!r} (create it with `cibwatch users add`)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    con.execute(
        "INSERT INTO api_tokens VALUES (?, ?, ?, now()::TIMESTAMP)",
        [token_hash(token), name, label],
    )
    audit.record(con, "token.mint", f"user:{name}", label, by)
    return token


def user_for_token(con: duckdb.DuckDBPyConnection, token: str) -> dict | None:
    rows = con.execute(
        "SELECT u.name, u.role FROM api_tokens t JOIN users u ON u.name = t.user_name "
        "WHERE t.token_hash = ?",
        [token_hash(token)],
    ).fetchall()
    return {"name": rows[0][0], "role": rows[0][1]} if rows else None
