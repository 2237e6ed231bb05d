"""Input formats: the contract's dataset folder and real platform exports.

A format turns one file into `Part`s (contract tables as SQL); everything after that
(validation, quarantine, upsert) is shared. Real exports are recognised from their
file name, CSV header or first JSON line; `--format NAME` forces one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cibwatch.config import IngestConfig
from cibwatch.errors import InputError
from cibwatch.ingest.contract import REQUIRED_TABLES, Part
from cibwatch.ingest.formats import twarc, x_transparency, zeeschuimer
from cibwatch.ingest.reader import EXTENSIONS, contract_files, contract_part

PartsFn = Callable[[duckdb.DuckDBPyConnection, Path, IngestConfig], list[Part]]


@dataclass(frozen=True)
class Job:
    """One file to load in one transaction."""

    path: Path
    format: str
    parts: PartsFn


@dataclass(frozen=True)
class ExportFormat:
    name: str
    detect: Callable[[Path], bool]
    parts: PartsFn


EXPORTS = {
    f.name: f
    for f in (
        ExportFormat("x-transparency", x_transparency.detect, x_transparency.parts),
        ExportFormat("twarc", twarc.detect, twarc.parts),
        ExportFormat("zeeschuimer", zeeschuimer.detect, zeeschuimer.parts),
    )
}
NAMES = ("contract", *EXPORTS)


def _contract_jobs(folder: Path) -> list[Job]:
    found = contract_files(folder)
    for table in REQUIRED_TABLES:
        if not found[table]:
            raise InputError(
                f"{folder}: dataset folder has no {table} table "
                f"({table}.csv, .csv.gz, .jsonl, .jsonl.gz, .parquet or {table}-*.*)"
            )
    jobs = []
    for table in ("accounts", "posts", "follows"):
        for path in found[table]:

            def parts(con, p, cfg, table=table):
                return [contract_part(con, table, p, cfg.max_line_size)]

            jobs.append(Job(path, "contract", parts))
    return jobs


def _candidates(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [
        p
        for p in sorted(path.iterdir())
        if p.is_file() and p.name.lower().endswith((*EXTENSIONS, ".json", ".json.gz"))
    ]


def plan(path: Path, format: str | None = None) -> list[Job]:
    """The files of `path` (a dataset folder or one export file) and how to read each."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if format is not None and format not in NAMES:
        raise InputError(f"unknown format {format!r} (one of: {', '.join(NAMES)})")
    if format == "contract" or (
        format is None and path.is_dir() and any(contract_files(path).values())
    ):
        if not path.is_dir():
            raise InputError(f"{path}: the contract format is a dataset folder, not a file")
        return _contract_jobs(path)
    jobs = []
    for file in _candidates(path):
        if format is not None:
            jobs.append(Job(file, format, EXPORTS[format].parts))
            continue
        for fmt in EXPORTS.values():
            if fmt.detect(file):
                jobs.append(Job(file, fmt.name, fmt.parts))
                break
    if not jobs:
        raise InputError(
            f"{path}: no contract tables (accounts.*, posts.*) and no file in a known "
            f"export format ({', '.join(EXPORTS)})"
        )
    return jobs
