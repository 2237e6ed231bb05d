"""Reading files into DuckDB: the contract's CSV, JSONL and Parquet tables, gzip and split.

Nothing here loops over rows in Python: each reader returns SQL over DuckDB's
`read_csv` / `read_parquet`, numbered in file order, and `validate.py` does the rest.
CSV is read with every column as VARCHAR (ids keep their leading zeros) from a header
that Python reads first, so a file without the contract's header is refused up front.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import duckdb

from cibwatch.errors import InputError
from cibwatch.ingest.contract import TABLES, Part
from cibwatch.ingest.validate import ident, literal

EXTENSIONS = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".parquet")
_CONTRACT_FILE = re.compile(
    r"^(?P<table>accounts|posts|follows)(-[^/]*)?\.(csv|csv\.gz|jsonl|jsonl\.gz|parquet)$"
)
# Temporary DuckDB tables that receive CSV lines DuckDB could not parse.
REJECTS_TABLE = "__cib_rejects"
REJECTS_SCAN = "__cib_rejects_scan"


def file_kind(path: Path) -> str:
    """'csv', 'jsonl' or 'parquet' from the file name (gzip allowed for text)."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(f"{path}: unknown file type (expected .csv, .jsonl or .parquet)")


def contract_files(folder: Path) -> dict[str, list[Path]]:
    """The contract tables of a dataset folder: `NAME.ext` and split files `NAME-*.ext`."""
    found: dict[str, list[Path]] = {t: [] for t in TABLES}
    for path in sorted(folder.iterdir()):
        m = _CONTRACT_FILE.match(path.name)
        if m and path.is_file():
            found[m.group("table")].append(path)
    return found


def _head_bytes(path: Path, max_lines: int = 1000) -> bytes:
    """The header record's bytes: the first line, or more while a quote is open. Only
    these are decoded, so a bad byte further down is a row problem, not a file one."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = b""
        for _ in range(max_lines):
            line = fh.readline()
            head += line
            if not line or head.count(b'"') % 2 == 0:
                break
    return head


def csv_header(path: Path) -> list[str]:
    """Column names of a CSV file's header row, made unique."""
    try:
        text = _head_bytes(path).decode("utf-8-sig")
        row = next(csv.reader(io.StringIO(text, newline="")), None)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read CSV header: {exc}") from exc
    if not row or not any(c.strip() for c in row):
        raise InputError(f"{path}: empty file, no CSV header row")
    names: list[str] = []
    for i, name in enumerate(row):
        name = name.strip() or f"column{i}"
        while name in names:
            name += "_"
        names.append(name)
    return names


def first_line(path: Path, limit: int = 1 << 24) -> str:
    """The first non-blank line of a text file (for format detection)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    return line[:limit].decode("utf-8-sig", errors="replace")
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    return ""


def csv_source(path: Path, names: list[str], max_line_size: int, numbered: bool = True) -> str:
    """All columns VARCHAR, rows numbered 1.. after the header (unless not `numbered`:
    see `Part`); bad lines to rejects."""
    cols = "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names) + "}"
    number = "row_number() OVER () AS _row, row_number() OVER () AS _ord, " if numbered else ""
    return f"""
        SELECT {number}*
        FROM read_csv({literal(str(path))}, columns = {cols}, header = true,
                      auto_detect = false, delim = ',', quote = '"', escape = '"',
                      max_line_size = {max_line_size}, store_rejects = true,
                      rejects_table = '{REJECTS_TABLE}', rejects_scan = '{REJECTS_SCAN}')
    """


def lines_source(path: Path, max_line_size: int) -> str:
    """One row per non-blank line (`line`), numbered by its line in the file."""
    return f"""
        SELECT _row, _row AS _ord, line FROM (
            SELECT row_number() OVER () AS _row, line
            FROM read_csv({literal(str(path))}, columns = {{'line': 'VARCHAR'}},
                          header = false, auto_detect = false, delim = '\\x01',
                          quote = '', escape = '', max_line_size = {max_line_size})
        ) WHERE line IS NOT NULL AND trim(line) <> ''
    """


def parquet_source(path: Path) -> str:
    return f"""
        SELECT file_row_number + 1 AS _row, file_row_number AS _ord,
               * EXCLUDE (file_row_number)
        FROM read_parquet({literal(str(path))}, file_row_number = true)
    """


def describe(con: duckdb.DuckDBPyConnection, path: Path, source: str) -> list[tuple[str, str]]:
    """(name, type) of a source's columns; an unreadable file is an InputError."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM ({source}) LIMIT 0").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read file: {_first_line(exc)}") from exc
    return [(r[0], r[1]) for r in rows]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def struct_json(names: list[str], drop_nulls: bool = True) -> str:
    """SQL: the named source columns as one JSON object (null members dropped unless
    `drop_nulls` is false: a quarantined raw row shows every cell)."""
    if not names:
        return "NULL::JSON"
    members = ", ".join(f"{ident(n)} := {ident(n)}" for n in names)
    if not drop_nulls:
        return f"to_json(struct_pack({members}))"
    return f"NULLIF(json_merge_patch('{{}}', to_json(struct_pack({members}))), '{{}}')"


def contract_part(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, max_line_size: int
) -> Part:
    """A contract table file (CSV, JSONL or Parquet, gzip allowed) as a Part."""
    spec = TABLES[table]
    kind = file_kind(path)
    if kind == "jsonl":
        return _jsonl_part(table, path, max_line_size)
    if kind == "csv":
        names = csv_header(path)
        source = csv_source(path, names, max_line_size, numbered=False)
    else:
        source = parquet_source(path)
        names = [n for n, _ in describe(con, path, source) if n not in ("_row", "_ord")]
    by_lower = {n.lower(): n for n in reversed(names)}
    missing = [c.name for c in spec.columns if c.required and c.name not in by_lower]
    if missing:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise InputError(
            f"{path}: no header with the required {table} columns "
            f"({', '.join(missing)} missing; found: {shown})"
        )
    columns = {c.name: ident(by_lower[c.name]) for c in spec.columns if c.name in by_lower}
    used = set(columns.values())
    unknown = [n for n in names if ident(n) not in used]
    return Part(
        table=table,
        source=source,
        columns=columns,
        raw=f"CAST({struct_json(names, drop_nulls=False)} AS VARCHAR)",
        extra=struct_json(unknown),
        csv_rejects=kind == "csv",
        numbered=kind != "csv",
    )


def _jsonl_part(table: str, path: Path, max_line_size: int) -> Part:
    spec = TABLES[table]
    paths = "[" + ", ".join(literal(f'$."{c.name}"') for c in spec.columns) + "]"
    source = f"""
        SELECT _row, _ord, line,
               CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT'
                    THEN json_extract(line, {paths}) END AS __fields
        FROM ({lines_source(path, max_line_size)})
    """
    drop = "{" + ", ".join(f'"{c.name}": null' for c in spec.columns) + "}"
    return Part(
        table=table,
        source=source,
        columns={c.name: f"__fields[{i + 1}]" for i, c in enumerate(spec.columns)},
        raw="line",
        extra=f"CASE WHEN __fields IS NOT NULL THEN "
        f"NULLIF(json_merge_patch('{{}}', json_merge_patch(line, {literal(drop)})), '{{}}') END",
        invalid="CASE WHEN NOT json_valid(line) THEN 'invalid JSON' "
        "WHEN json_type(line) <> 'OBJECT' THEN 'not a JSON object' END",
    )
