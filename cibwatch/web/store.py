"""The server's hold on one workspace: a DuckDB file that only this process opens.

Every request works on its own cursor (a DuckDB connection sharing the database), so
reads run in parallel and see consistent snapshots; writes from the web go through one
lock and one transaction each. The detect job runs in a thread on its own cursor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

import cibwatch
from cibwatch.config import Config
from cibwatch.web.auth import LoginLimiter, SessionStore


class Store:
    def __init__(self, workspace_path: str | Path, config: Config):
        self.config = config
        self.ws = cibwatch.open(workspace_path)
        self.path = self.ws.path
        cfg = config.serve
        self.sessions = SessionStore(cfg.session_hours * 3600)
        self.limiter = LoginLimiter(cfg.login_max_failures, cfg.login_window_seconds)
        self._cursor_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cache: dict[tuple, object] = {}
        self._generation = 0  # web writes committed: part of every cache key
        self._cache_lock = threading.Lock()
        from cibwatch.web.jobs import JobManager

        self.jobs = JobManager(self)

    def version(self, con: duckdb.DuckDBPyConnection) -> tuple:
        """Changes whenever the workspace's results or reviews can have changed: every web
        write appends to the audit log in its own transaction, and detect runs are
        recorded in `runs` (this process holds the file, so nothing else writes)."""
        return (self._generation, *con.execute(
            "SELECT (SELECT max(seq) FROM audit_log), (SELECT count(*) FROM runs), "
            "(SELECT max(finished_at) FROM runs)"
        ).fetchall()[0])

    def view(self, con: duckdb.DuckDBPyConnection, fn, *args):
        """`fn(con, *args)`, memoised until the workspace version changes: operation pages
        are read far more often than anything is decided."""
        return self.cached((fn.__name__, self.version(con), *args), lambda: fn(con, *args))

    def cached(self, key: tuple, compute):
        """A small memo for derived views that are slow to build (e.g. report tags);
        the key must include everything the value depends on."""
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
        value = compute()
        with self._cache_lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = value
        return value

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        with self._cursor_lock:
            return self.ws.con.cursor()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self.new_cursor()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One web write: serialised with other web writes, all or nothing."""
        with self._write_lock, self.cursor() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            self._generation += 1

    def close(self) -> None:
        self.jobs.wait(timeout=30)
        self.ws.close()
