"""The workspace: one DuckDB file holding the input tables and every result.

The schema is versioned. `MIGRATIONS[i]` takes a workspace from version i to i+1, so a
workspace made by an older cibwatch opens in a newer one. Until the first release the
version-1 DDL is edited in place; after it, every change is a new migration.

Canonical forms: timestamps are `TIMESTAMP` holding UTC; list columns are `VARCHAR[]`;
ids are `VARCHAR`. Keys: (platform, post_id), (platform, account_id),
(platform, follower_id, followee_id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from cibwatch.errors import CibwatchError

DEFAULT_PATH = "cibwatch.duckdb"

# The input contract (../shared/SCHEMA.md) in canonical form. `extra` keeps columns the
# contract does not name, as a JSON object, so no input is lost. Ids (parent and shared
# post ids too), texts, bios and avatar hashes are stored uncompressed: DuckDB's
# dictionary/FSST compression of these near-unique strings was a third of ingest's CPU
# time and saved little space.
INPUT_DDL = """
CREATE TABLE accounts (
    platform VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    asset_type VARCHAR NOT NULL DEFAULT 'account',
    handle VARCHAR USING COMPRESSION uncompressed,
    display_name VARCHAR,
    created_at TIMESTAMP,
    followers_count BIGINT,
    following_count BIGINT,
    bio VARCHAR USING COMPRESSION uncompressed,
    avatar_hash VARCHAR USING COMPRESSION uncompressed,
    claimed_location VARCHAR,
    lang VARCHAR,
    extra JSON
);
CREATE TABLE posts (
    platform VARCHAR NOT NULL,
    post_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    account_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    created_at TIMESTAMP NOT NULL,
    kind VARCHAR NOT NULL DEFAULT 'post',
    text VARCHAR USING COMPRESSION uncompressed,
    title VARCHAR,
    urls VARCHAR[],
    hashtags VARCHAR[],
    media_hashes VARCHAR[],
    parent_id VARCHAR USING COMPRESSION uncompressed,
    shared_id VARCHAR USING COMPRESSION uncompressed,
    lang VARCHAR,
    extra JSON
);
CREATE TABLE follows (
    platform VARCHAR NOT NULL,
    follower_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    followee_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    created_at TIMESTAMP
);
CREATE TABLE quarantine (
    table_name VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    row_number BIGINT,
    raw_row VARCHAR,
    reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);
CREATE TABLE ingest_log (
    file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    format VARCHAR,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_updated BIGINT NOT NULL,
    rows_unchanged BIGINT NOT NULL DEFAULT 0,
    rows_quarantined BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL
);
"""

# Results of `detect` and the stages after it. Each table is owned by one stage module;
# others only read it. Each run of detect replaces the rows of the run-scoped tables.
RESULT_DDL = """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,
    config JSON,
    summary JSON
);
-- signals: one row per (asset, key) use; the input of the co-activity kernel. Ids and
-- keys uncompressed: compressing them cost half of writing the 4.4M rows at 1.1M posts
-- (3.7 -> 1.8 CPU s; the table grows 95 -> 238 MiB).
CREATE TABLE keys (
    platform VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    key_type VARCHAR NOT NULL,
    key VARCHAR NOT NULL USING COMPRESSION uncompressed,
    ts TIMESTAMP,
    post_id VARCHAR USING COMPRESSION uncompressed
);
-- graph: one row per significant pair of assets (a < b), fused over signals.
CREATE TABLE edges (
    platform VARCHAR NOT NULL,
    a VARCHAR NOT NULL,
    b VARCHAR NOT NULL,
    weight DOUBLE NOT NULL,
    p_value DOUBLE,
    q_value DOUBLE,
    n_keys BIGINT,
    signals JSON
);
-- graph: the keys behind each edge, with example posts, for explain/report/workbench.
CREATE TABLE edge_evidence (
    platform VARCHAR NOT NULL,
    a VARCHAR NOT NULL,
    b VARCHAR NOT NULL,
    key_type VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    weight DOUBLE,
    post_a VARCHAR,
    ts_a TIMESTAMP,
    post_b VARCHAR,
    ts_b TIMESTAMP
);
-- clusters: single-platform clusters and their members.
CREATE TABLE clusters (
    cluster_id VARCHAR PRIMARY KEY,
    platform VARCHAR NOT NULL,
    n_assets BIGINT NOT NULL,
    score DOUBLE NOT NULL,
    evidence JSON
);
CREATE TABLE cluster_members (
    cluster_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    reason VARCHAR
);
-- operations: cross-platform operations, their clusters and the links that joined them.
CREATE TABLE operations (
    operation_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    confidence DOUBLE NOT NULL,
    status VARCHAR NOT NULL DEFAULT 'new',
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    known_operation VARCHAR
);
CREATE TABLE operation_clusters (
    operation_id VARCHAR NOT NULL,
    cluster_id VARCHAR NOT NULL
);
CREATE TABLE operation_links (
    operation_id VARCHAR NOT NULL,
    cluster_a VARCHAR NOT NULL,
    cluster_b VARCHAR NOT NULL,
    strength DOUBLE NOT NULL,
    evidence JSON
);
CREATE TABLE operation_evidence (
    operation_id VARCHAR NOT NULL,
    signal VARCHAR NOT NULL,
    strength DOUBLE NOT NULL,
    detail VARCHAR NOT NULL
);
-- characterise: one JSON profile per operation and per cluster (see docs/profile.md).
CREATE TABLE operation_profiles (
    operation_id VARCHAR PRIMARY KEY,
    profile JSON NOT NULL
);
CREATE TABLE cluster_profiles (
    cluster_id VARCHAR PRIMARY KEY,
    profile JSON NOT NULL
);
-- operations: saved signatures of known operations (survive re-runs of detect).
CREATE TABLE known_operations (
    name VARCHAR PRIMARY KEY,
    saved_at TIMESTAMP NOT NULL,
    source_operation_id VARCHAR,
    signature JSON NOT NULL
);
-- operation_history: per week, active assets, their posts, assets first active that
-- week and assets gone quiet (active before, never since).
CREATE TABLE operation_history (
    operation_id VARCHAR NOT NULL,
    week DATE NOT NULL,
    assets BIGINT,
    posts BIGINT,
    new_assets BIGINT,
    quiet_assets BIGINT
);
-- operations: every asset ever attributed to an operation id (survives re-runs), so the
-- next run can keep ids by member overlap and history covers assets gone quiet.
CREATE TABLE operation_assets (
    operation_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL
);
-- serve: users, review decisions and the append-only audit log.
CREATE TABLE users (
    name VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL,
    password_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE api_tokens (
    token_hash VARCHAR PRIMARY KEY,
    user_name VARCHAR NOT NULL,
    label VARCHAR,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE reviews (
    target_type VARCHAR NOT NULL,
    target_id VARCHAR NOT NULL,
    decision VARCHAR NOT NULL,
    note VARCHAR,
    user_name VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL
);
CREATE TABLE review_exclusions (
    operation_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    user_name VARCHAR NOT NULL,
    note VARCHAR,
    excluded_at TIMESTAMP NOT NULL
);
CREATE SEQUENCE audit_seq;
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY DEFAULT nextval('audit_seq'),
    "at" TIMESTAMP NOT NULL,
    user_name VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    target VARCHAR,
    detail VARCHAR
);
"""


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(INPUT_DDL)
    con.execute(RESULT_DDL)


MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None):
    """The single value of a one-row, one-column query.

    DuckDB 2 refuses new work on a connection whose last result was not read to the end,
    so results are always fetched whole (`fetchall`), never with `fetchone`.
    """
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows else None


class WorkspaceError(CibwatchError):
    """The workspace file cannot be opened or is newer than this cibwatch."""


class Workspace:
    """An open DuckDB workspace. Use `cibwatch.open(path)` to get one."""

    def __init__(self, path: str | Path = DEFAULT_PATH, read_only: bool = False):
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise WorkspaceError(f"{self.path}: no such workspace (run `cibwatch ingest` first)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise WorkspaceError(f"{self.path}: cannot open workspace: {exc}") from exc
        self.read_only = read_only
        if not read_only:
            self.migrate()
        else:
            self._check_version()

    # -- schema -------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()[0][0]
        if not exists:
            return 0
        return int(scalar(self.con, "SELECT max(version) FROM schema_version") or 0)

    def _check_version(self) -> int:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.path}: workspace schema v{version} is newer than this cibwatch "
                f"(v{SCHEMA_VERSION}); upgrade cibwatch"
            )
        return version

    def migrate(self) -> None:
        """Bring the file up to SCHEMA_VERSION, one transaction per migration."""
        version = self._check_version()
        if version == 0:
            self.con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        for target in range(version, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[target](self.con)
                self.con.execute("INSERT INTO schema_version VALUES (?)", [target + 1])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: a failure inside rolls every statement back."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- notebook API ---------------------------------------------------------------------
    def sql(self, query: str, params: list | None = None):
        """Run SQL on the workspace; returns a DuckDB relation.

        Convert with `.to_arrow_table()`, `.df()` (pandas) or `.pl()` (Polars).
        """
        return self.con.sql(query, params=params) if params else self.con.sql(query)

    def table(self, name: str):
        """A whole workspace table as an Arrow table."""
        return self.con.sql(f'SELECT * FROM "{name}"').to_arrow_table()

    def posts(self):
        return self.table("posts")

    def accounts(self):
        return self.table("accounts")

    def follows(self):
        return self.table("follows")

    def quarantine(self):
        return self.table("quarantine")

    def ingest(self, path: str | Path, **kwargs):
        """Load a dataset folder (see `cibwatch.ingest.ingest_dataset`)."""
        from cibwatch.ingest import ingest_dataset

        return ingest_dataset(self, path, **kwargs)

    def detect(self, out: str | Path | None = None, config=None, **kwargs):
        """Run detection and the stages after it (see `cibwatch.pipeline.detect`)."""
        from cibwatch.pipeline import detect

        return detect(self, out=out, config=config, **kwargs)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(path: str | Path = DEFAULT_PATH, read_only: bool = False) -> Workspace:  # noqa: A001
    """Open (creating or migrating) a workspace file."""
    return Workspace(path, read_only=read_only)
