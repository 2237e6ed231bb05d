"""The quarantine: rows that broke the data contract, kept with file, row and reason.

Nothing is dropped silently. A reason reads `column: problem (value)`; several problems
of one row are joined with `; `. `reason_class` strips the values so that the summary
can count rows per kind of problem.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from cibwatch.ingest.reader import REJECTS_TABLE
from cibwatch.ingest.validate import ROW, literal
from cibwatch.safety import csv_safe

# SQL: a reason without its quoted values, e.g. "created_at: not a timestamp".
REASON_CLASS = r"regexp_replace(reason, ' \([^)]*\)', '', 'g')"


def _insert_new(con: duckdb.DuckDBPyConnection, table: str, file: str, select: str) -> None:
    """Insert `(row_number, raw_row, reason)` rows not already quarantined, so that
    loading a file twice does not list its bad rows twice."""
    con.execute(
        f"""
        INSERT INTO quarantine (table_name, file, row_number, raw_row, reason)
        SELECT {literal(table)}, {literal(file)}, n.row_number, n.raw_row, n.reason
        FROM ({select}) n
        WHERE NOT EXISTS (
            SELECT 1 FROM quarantine q
            WHERE q.table_name = {literal(table)} AND q.file = {literal(file)}
              AND q.row_number = n.row_number AND q.reason = n.reason
              AND q.raw_row IS NOT DISTINCT FROM n.raw_row)
        """
    )


def from_checked(
    con: duckdb.DuckDBPyConnection, table: str, file: str, checked: str
) -> dict[str, int]:
    """Copy the rows of the scratch table `checked` that have a reason into the
    quarantine; returns the number of rows per kind of reason."""
    _insert_new(
        con, table, file,
        f"SELECT {ROW} AS row_number, _raw AS raw_row, reason FROM {checked} "
        "WHERE reason IS NOT NULL",
    )
    rows = con.execute(
        f"SELECT {REASON_CLASS}, count(*) FROM {checked} WHERE reason IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {kind: int(n) for kind, n in rows}


def stage_csv_rejects(con: duckdb.DuckDBPyConnection, checked: str, rejected: str) -> int:
    """CSV rows DuckDB could not split into the header's columns (too many fields,
    unterminated quote, bad UTF-8), from the rejects table of the read that filled
    `checked` (on the same connection), into the scratch table `rejected`; the rows of
    `checked` are renumbered around them. Returns their number. DuckDB numbers records
    from the header, so the data row is its `line` minus one."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [REJECTS_TABLE]
    ).fetchall()[0][0]
    if not exists:
        return 0
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {rejected} AS
        SELECT line - 1 AS data_row, any_value(csv_line) AS csv_line,
               string_agg(DISTINCT error_message, '; ') AS message
        FROM {REJECTS_TABLE} GROUP BY line
        """
    )
    n = int(con.execute(f"SELECT count(*) FROM {rejected}").fetchall()[0][0])
    if n:
        # Rows that parsed were numbered without the rejected ones: shift them back to
        # their place in the file (rejected data rows r_1 < r_2 < ...: accepted row i
        # sits after reject j when r_j - j < i). r_j - j never decreases, so the count
        # of such j is the largest j with r_j - j < i: one ASOF join, not a count per row.
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE __rejected_rank AS
            SELECT before, max(j) AS n FROM (
                SELECT data_row - row_number() OVER (ORDER BY data_row) AS before,
                       row_number() OVER (ORDER BY data_row) AS j
                FROM {rejected})
            GROUP BY before
            """
        )
        con.execute(
            f"""
            UPDATE {checked} c SET _row = s.i + coalesce(s.n, 0) FROM (
                SELECT x.rid, x.i, r.n
                FROM (SELECT rowid AS rid, {ROW} AS i FROM {checked}) x
                ASOF LEFT JOIN __rejected_rank r ON x.i > r.before
            ) s
            WHERE c.rowid = s.rid
            """
        )
    return n


def from_csv_rejects(con: duckdb.DuckDBPyConnection, table: str, file: str, rejected: str) -> int:
    """Copy the rows of `rejected` (see `stage_csv_rejects`) into the quarantine."""
    _insert_new(
        con, table, file,
        "SELECT data_row AS row_number, csv_line AS raw_row, "
        f"'unparseable CSV line (' || message || ')' AS reason FROM {rejected}",
    )
    return int(con.execute(f"SELECT count(*) FROM {rejected}").fetchall()[0][0])


def quarantine_rows(ws, table: str | None = None, limit: int = 20):
    """`(rows, total)`: the first `limit` quarantined rows as
    `(table, file, row_number, reason, raw_row)`, and how many there are in all."""
    where, params = ("WHERE table_name = ?", [table]) if table else ("", [])
    total = ws.con.execute(f"SELECT count(*) FROM quarantine {where}", params).fetchall()[0][0]
    rows = ws.con.execute(
        f"""
        SELECT table_name, file, row_number, reason, raw_row FROM quarantine {where}
        ORDER BY quarantined_at, file, row_number LIMIT {int(limit)}
        """,
        params,
    ).fetchall()
    return rows, int(total)


def write_quarantine_csv(ws, path: str | Path, table: str | None = None) -> int:
    """Every quarantined row to a CSV file (cells made safe for spreadsheets)."""
    where, params = ("WHERE table_name = ?", [table]) if table else ("", [])
    batches = ws.con.sql(
        f"""
        SELECT table_name AS "table", file, row_number, reason, raw_row,
               CAST(quarantined_at AS VARCHAR) AS quarantined_at
        FROM quarantine {where} ORDER BY quarantined_at, file, row_number
        """,
        params=params,
    ).to_arrow_reader(50_000)
    n = 0
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow([f.name for f in batches.schema])
        for batch in batches:
            for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
                out.writerow([csv_safe(v) for v in row])
                n += 1
    return n
