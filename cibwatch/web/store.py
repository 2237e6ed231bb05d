"""The server's hold on one workspace: a DuckDB file that only this process opens.

Every request works on its own cursor (a DuckDB connection sharing the database), so
reads run in parallel and see consistent snapshots; writes from the web go through one
lock and one transaction each. The detect job runs in a thread on its own cursor.
Derived views are memoised per `version()`, which every write moves on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

import cibwatch
from cibwatch.config import Config
from cibwatch.web.auth import LoginLimiter, SessionStore

# Memoised views kept (operation bodies are tens of kB): a few hundred operations' pages.
CACHE_ENTRIES = 1024


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
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._generation = 0
        self._cache_lock = threading.Lock()
        from cibwatch.web.jobs import JobManager

        self.jobs = JobManager(self)

    def version(self) -> int:
        """Changes whenever what the workbench shows can have changed. This process holds
        the DuckDB file, so every write happens here: web writes go through `write()`, and
        the detect job calls `bump()` at each stage and at its end."""
        return self._generation

    def bump(self) -> None:
        with self._cache_lock:
            self._generation += 1

    def view(self, fn, *args):
        """`fn(con, *args)` on a fresh cursor, memoised until the version changes:
        operation pages are read far more often than anything is decided."""

        def compute():
            with self.cursor() as con:
                return fn(con, *args)

        return self.cached((fn.__name__, self.version(), *args), compute)

    def cached(self, key: tuple, compute):
        """A bounded memo (least recently used out) for derived views; the key must hold
        everything the value depends on, usually `version()`."""
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
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
    def write(self, invalidates: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """One web write: serialised with other web writes, all or nothing. It moves the
        version on unless the caller knows no view depends on it (`invalidates=False`:
        login records, which must not let anyone keep every page cold)."""
        with self._write_lock, self.cursor() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            if invalidates:
                self.bump()

    def close(self) -> None:
        self.jobs.wait(timeout=30)
        self.ws.close()
