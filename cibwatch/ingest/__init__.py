"""Ingest: load a dataset folder (or a real platform export) into the workspace.

    summary = ingest_dataset(ws, "dataset/")

Each file is read by DuckDB in bulk and loaded in one transaction: its rows are
converted to the canonical types, rows that break the contract go to the quarantine
with file, row and reason, the rest are upserted by key (nothing stored twice). A file
that cannot be read at all raises `InputError` and leaves nothing of itself behind.
Reading and checking runs ahead on a second connection (`_Stager`): the next file is
read while the current one is upserted.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cibwatch.config import Config, IngestConfig
from cibwatch.errors import InputError
from cibwatch.ingest import quarantine, upsert
from cibwatch.ingest.contract import TABLES, Part
from cibwatch.ingest.formats import Job, plan
from cibwatch.ingest.quarantine import quarantine_rows, write_quarantine_csv
from cibwatch.ingest.reader import REJECTS_SCAN, REJECTS_TABLE
from cibwatch.ingest.validate import checked_sql, literal
from cibwatch.safety import terminal_safe

__all__ = [
    "FileResult",
    "IngestSummary",
    "ingest_dataset",
    "print_summary",
    "quarantine_rows",
    "write_quarantine_csv",
]


@dataclass
class FileResult:
    """What one file gave one table."""

    file: str
    table: str
    format: str
    read: int = 0
    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestSummary:
    """Counts of one ingest run: per file and table, per quarantine reason, and the
    posts whose author is not in the accounts table (ingested all the same)."""

    path: str
    files: list[FileResult] = field(default_factory=list)
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)
    unknown_author_posts: int = 0
    unknown_authors: int = 0
    seconds: float = 0.0

    def table(self, name: str) -> FileResult:
        """Counts of one table summed over files."""
        total = FileResult(file="*", table=name, format="*")
        for f in self.files:
            if f.table == name:
                for attr in ("read", "loaded", "updated", "unchanged", "quarantined",
                             "duplicates"):
                    setattr(total, attr, getattr(total, attr) + getattr(f, attr))
        return total

    @property
    def tables(self) -> list[str]:
        return [t for t in TABLES if any(f.table == t for f in self.files)]

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)


# The attached in-memory database holding each file's scratch tables (see `_Stager`).
STAGE_DB = "__cib_stage"
# Scratch tables of the staging connection, dropped after each file.
STAGE_TEMP_TABLES = ("__dups", "__rejected_rank", REJECTS_TABLE, REJECTS_SCAN)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _settings(con: duckdb.DuckDBPyConnection, cfg: IngestConfig) -> dict[str, str]:
    """Apply ingest settings; return the previous values to restore."""
    wanted = {
        "memory_limit": cfg.memory_limit,
        "threads": str(cfg.threads),
        # Naive timestamps are UTC (SCHEMA.md), whatever the machine's zone is.
        "TimeZone": "UTC",
        "enable_progress_bar": "false",
    }
    previous = {}
    for name, value in wanted.items():
        previous[name] = con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]
        con.execute(f"SET {name} = {literal(value)}")
    return previous


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class _Staged:
    """A part read, converted and checked into the scratch table `checked` before its
    file's transaction; `rejected` holds its unparseable CSV lines (if any) and
    `duplicates` counts its rows superseded by a later row of the same key."""

    part: Part
    checked: str
    rejected: str | None = None
    n_rejected: int = 0
    duplicates: int = 0


def _stage(con: duckdb.DuckDBPyConnection, part: Part, name: str) -> _Staged:
    """Read, convert and check a part's rows into scratch tables `{name}_checked` (and
    `{name}_rejected`), marking the rows that duplicates and unparseable lines make
    quarantine rows. Nothing here touches the workspace: it runs ahead of the file's
    transaction. The table is committed before anything reads it, so the rows of an
    unnumbered part are numbered 0.. in file order (rowid), which `Part` relies on."""
    for t in STAGE_TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    staged = _Staged(part, f"{name}_checked")
    con.execute(f"CREATE OR REPLACE TABLE {staged.checked} AS {checked_sql(con, part)}")
    if part.csv_rejects:
        rejected = f"{name}_rejected"
        staged.n_rejected = quarantine.stage_csv_rejects(con, staged.checked, rejected)
        if staged.n_rejected:
            staged.rejected = rejected
        else:
            con.execute(f"DROP TABLE IF EXISTS {rejected}")
    staged.duplicates = upsert.supersede_duplicates(con, TABLES[part.table], staged.checked)
    return staged


def _load_part(
    con: duckdb.DuckDBPyConnection,
    staged: _Staged,
    job: Job,
    digest: str,
    started: datetime,
    keys: upsert.KeyHashes,
) -> FileResult:
    """Quarantine and upsert the staged rows of a part; log the file."""
    part, checked = staged.part, staged.checked
    spec = TABLES[part.table]
    result = FileResult(file=str(job.path), table=part.table, format=job.format)
    rejected = 0
    if staged.rejected:
        rejected = quarantine.from_csv_rejects(con, part.table, str(job.path), staged.rejected)
    result.duplicates = staged.duplicates
    result.reasons = quarantine.from_checked(con, part.table, str(job.path), checked)
    if rejected:
        result.reasons["unparseable CSV line"] = rejected
    result.quarantined = sum(result.reasons.values())
    result.read = int(con.execute(f"SELECT count(*) FROM {checked}").fetchall()[0][0]) + rejected
    result.loaded, result.updated, result.unchanged = upsert.merge(
        con, spec, part.patch, keys=keys, checked=checked
    )
    con.execute(
        """
        INSERT INTO ingest_log (file, sha256, table_name, format, rows_read, rows_loaded,
            rows_updated, rows_unchanged, rows_quarantined, started_at, finished_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [str(job.path), digest, part.table, job.format, result.read, result.loaded,
         result.updated, result.unchanged, result.quarantined, started, _now()],
    )
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Stager:
    """Stages files (`_stage`) on a second connection and thread ahead of their loads:
    file k+1 is read and checked while file k is upserted, so that both cores work.

    Its scratch tables live in an attached in-memory database (`STAGE_DB`), which every
    connection of the workspace sees (TEMP tables are private to one), and which spills
    to disk beyond the memory limit like TEMP tables do. Loads stay in file order: a
    file's transaction starts after the one before it committed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, jobs: list[Job], cfg: IngestConfig):
        self.jobs, self.cfg = jobs, cfg
        con.execute(f"DETACH DATABASE IF EXISTS {STAGE_DB}")
        con.execute(f"ATTACH ':memory:' AS {STAGE_DB}")
        self.owner = con
        self.con = con.cursor()
        # session settings (memory limit and threads are the database's, already set)
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cibwatch-stage")
        self.futures: dict[int, Future[list[_Staged]]] = {}
        self.next = 0
        self.sizes = [_size(job.path) for job in jobs]

    def _stage_job(self, k: int) -> list[_Staged]:
        job, staged = self.jobs[k], []
        try:
            parts = job.parts(self.con, job.path, self.cfg)
            if len(parts) > 1 and not all(part.numbered for part in parts):
                raise ValueError("an unnumbered part must be alone in its file")
            for i, part in enumerate(parts):
                staged.append(_stage(self.con, part, f"{STAGE_DB}.__f{k}_{i}"))
            return staged
        except Exception:
            self._drop(staged, self.con, k)
            raise
        finally:
            for t in STAGE_TEMP_TABLES:
                self.con.execute(f"DROP TABLE IF EXISTS {t}")

    def _submit(self) -> None:
        self.futures[self.next] = self.pool.submit(self._stage_job, self.next)
        self.next += 1

    def get(self, k: int) -> list[_Staged]:
        """The staged parts of file k (raising what staging it raised); queues the files
        after it up to `stage_ahead_bytes`, at least one."""
        while self.next <= k:
            self._submit()
        staged = self.futures.pop(k).result()
        while self.next < len(self.jobs) and (
            not self.futures
            or sum(self.sizes[i] for i in self.futures) < self.cfg.stage_ahead_bytes
        ):
            self._submit()
        return staged

    def _drop(self, staged: list[_Staged], con: duckdb.DuckDBPyConnection, k: int) -> None:
        for s in staged:
            con.execute(f"DROP TABLE IF EXISTS {s.checked}")
            if s.rejected:
                con.execute(f"DROP TABLE IF EXISTS {s.rejected}")
        n = len(staged)  # a part that failed midway may have left its own tables
        con.execute(f"DROP TABLE IF EXISTS {STAGE_DB}.__f{k}_{n}_checked")
        con.execute(f"DROP TABLE IF EXISTS {STAGE_DB}.__f{k}_{n}_rejected")

    def drop(self, staged: list[_Staged], k: int) -> None:
        """Free file k's scratch tables once it is loaded."""
        self._drop(staged, self.owner, k)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.con.close()
        self.owner.execute(f"DETACH DATABASE IF EXISTS {STAGE_DB}")


class _Digests:
    """SHA-256 of each file, computed on a background thread ahead of the loads
    (hashlib releases the GIL): a file is hashed while DuckDB loads the ones before it."""

    def __init__(self, paths: list[Path]):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cibwatch-sha256")
        self.futures = {p: self.pool.submit(sha256, p) for p in paths}

    def get(self, path: Path) -> str:
        try:
            return self.futures[path].result()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from exc

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def ingest_dataset(
    ws,
    path: str | Path,
    format: str | None = None,
    progress: bool = True,
    config: Config | None = None,
) -> IngestSummary:
    """Load a dataset folder or export file into `ws`; returns what happened.

    Raises `InputError` (naming the file) for a file that cannot be read at all; the
    files before it stay loaded, nothing of it does."""
    cfg = (config or Config()).ingest
    path = Path(path)
    jobs = plan(path, format)
    con = ws.con
    summary = IngestSummary(path=str(path))
    clock = time.perf_counter()
    previous = _settings(con, cfg)
    digests = _Digests([job.path for job in jobs])
    keys = upsert.KeyHashes(con)
    stager = None
    try:
        stager = _Stager(con, jobs, cfg)
        with _Progress(progress, len(jobs)) as bar:
            for k, job in enumerate(jobs):
                bar.start(job.path)
                started = _now()
                digest = digests.get(job.path)
                staged: list[_Staged] = []
                try:
                    staged = stager.get(k)
                    with ws.transaction():
                        for part in staged:
                            result = _load_part(con, part, job, digest, started, keys)
                            summary.files.append(result)
                            for kind, n in result.reasons.items():
                                key = (result.table, kind)
                                summary.reasons[key] = summary.reasons.get(key, 0) + n
                            bar.rows(result.read)
                except duckdb.Error as exc:
                    raise InputError(f"{job.path}: cannot load: {_one_line(exc)}") from exc
                finally:
                    con.execute("DROP TABLE IF EXISTS __merged")
                    stager.drop(staged, k)
                bar.done()
        summary.reasons = dict(sorted(summary.reasons.items(), key=lambda kv: -kv[1]))
        rows = con.execute(
            """
            SELECT count(*), count(DISTINCT (p.platform, p.account_id)) FROM posts p
            ANTI JOIN accounts a ON a.platform = p.platform AND a.account_id = p.account_id
            """
        ).fetchall()
        summary.unknown_author_posts, summary.unknown_authors = int(rows[0][0]), int(rows[0][1])
    finally:
        if stager is not None:
            stager.close()
        digests.close()
        keys.close()
        for name, value in previous.items():
            # RESET first: a default such as "80% of RAM" does not survive a round trip
            # through its display form ("18.8 GiB").
            con.execute(f"RESET {name}")
            if con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0] != value:
                con.execute(f"SET {name} = {literal(str(value))}")
    summary.seconds = time.perf_counter() - clock
    return summary


def _one_line(exc: BaseException) -> str:
    lines = [s for s in str(exc).strip().splitlines() if s.strip()]
    return lines[0] if lines else type(exc).__name__


class _Progress:
    """Rich bars over files and rows; nothing at all when disabled (`--quiet`)."""

    def __init__(self, enabled: bool, n_files: int):
        self.enabled = enabled
        self.n_files = n_files

    def __enter__(self):
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), transient=True,
            )
            self.bar.__enter__()
            self.files = self.bar.add_task("files", total=self.n_files)
            self.row_task = self.bar.add_task("rows", total=None)
        return self

    def start(self, path: Path) -> None:
        if self.enabled:
            self.bar.update(self.files, description=f"files: {terminal_safe(path.name, 40)}")

    def rows(self, n: int) -> None:
        if self.enabled:
            self.bar.advance(self.row_task, n)

    def done(self) -> None:
        if self.enabled:
            self.bar.advance(self.files)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False


def print_summary(summary: IngestSummary, console, workspace_path) -> None:
    """The per-table counts, quarantine reasons and unknown authors, for a terminal."""
    from rich.table import Table

    grid = Table(title=f"Ingested {terminal_safe(summary.path)} in {summary.seconds:.1f} s")
    for col in ("table", "read", "loaded", "updated", "unchanged", "quarantined"):
        grid.add_column(col, justify="left" if col == "table" else "right")
    for name in summary.tables:
        t = summary.table(name)
        quarantined = f"{t.quarantined:,}"
        if t.duplicates:
            quarantined += f" (duplicates {t.duplicates:,})"
        grid.add_row(name, f"{t.read:,}", f"{t.loaded:,}", f"{t.updated:,}",
                     f"{t.unchanged:,}", quarantined)
    console.print(grid)
    if summary.unknown_author_posts:
        console.print(
            f"{summary.unknown_author_posts:,} posts by {summary.unknown_authors:,} authors "
            "missing from the accounts table (ingested all the same)"
        )
    if summary.quarantined:
        for (table, kind), n in list(summary.reasons.items())[:10]:
            console.print(f"  quarantined {table}: {n:,} x {terminal_safe(kind, 100)}")
        console.print(
            f"{summary.quarantined:,} rows quarantined; see them with "
            f"`cibwatch quarantine --workspace {terminal_safe(workspace_path)}` "
            "(add --csv FILE for all of them)"
        )


