"""Write tables in the contract's formats: CSV (lists space-joined, ISO timestamps),
JSONL (lists as arrays) or Parquet (native timestamps and lists). Tables larger than
`part_rows` are split into `NAME-000.ext`, `NAME-001.ext`, ... as SCHEMA.md allows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("csv", "jsonl", "parquet")
PART_ROWS = 500_000


def _textual(table: pa.Table, lists_as_text: bool) -> pa.Table:
    """Timestamps as ISO 8601 UTC strings; optionally lists as space-joined strings."""
    cols = []
    for name in table.column_names:
        col = table[name]
        if pa.types.is_timestamp(col.type):
            # Arrow's strftime is slow; casting a naive timestamp is not.
            naive = pc.cast(col.cast(pa.timestamp("s", tz="UTC")).cast(pa.int64()),
                            pa.timestamp("s"))
            text = pc.binary_replace_slice(pc.cast(naive, pa.string()), 10, 11, "T")
            col = pc.binary_join_element_wise(text, "Z", "")
        elif lists_as_text and pa.types.is_list(col.type):
            col = pc.binary_join(col, " ")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "csv":
        pacsv.write_csv(_textual(table, True), path)
    elif fmt == "jsonl":
        # One thread: half the CPU of the default pool for this streaming write.
        con = duckdb.connect(config={"threads": 1})
        try:
            con.register("t", _textual(table, False))
            con.execute(f"COPY t TO '{path.as_posix()}' (FORMAT JSON)")
        finally:
            con.close()
    elif fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_dataset(out: Path, tables: dict[str, pa.Table], fmt: str,
                  part_rows: int | None = None) -> list[str]:
    """Write each table as `name.fmt`, or in parts when it is larger than `part_rows`
    (default `PART_ROWS`)."""
    part_rows = part_rows or PART_ROWS
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.items():
        if table.num_rows <= part_rows:
            path = out / f"{name}.{fmt}"
            write_table(table, path, fmt)
            written.append(path.name)
            continue
        for i, start in enumerate(range(0, table.num_rows, part_rows)):
            path = out / f"{name}-{i:03d}.{fmt}"
            write_table(table.slice(start, part_rows), path, fmt)
            written.append(path.name)
    return written


def write_csv(table: pa.Table, path: Path) -> None:
    pacsv.write_csv(table, path)


def write_json(obj: dict, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
