"""Shared SQL for JSON-lines exports (twarc, Zeeschuimer)."""

from __future__ import annotations

import json
from pathlib import Path

from cibwatch.errors import InputError
from cibwatch.ingest.reader import file_kind, first_line, lines_source


def first_object(path: Path) -> dict | None:
    """The first line of a JSON-lines file as a dict, or None if it is not one."""
    try:
        if file_kind(path) != "jsonl":
            return None
        obj = json.loads(first_line(path) or "null")
    except (InputError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def items_source(path: Path, max_line_size: int, items: str) -> str:
    """One row per item: `items` is SQL over a valid JSON `line` giving a LIST of JSON.

    A line that is not JSON stays as one row with `item` NULL and `bad` set, so it is
    quarantined with its line number instead of disappearing."""
    return f"""
        SELECT _row, row_number() OVER () AS _ord, line, item, bad FROM (
            SELECT _row, line,
                   unnest(CASE WHEN json_valid(line) THEN {items} ELSE [NULL::JSON] END)
                       AS item,
                   CASE WHEN NOT json_valid(line) THEN 'invalid JSON' END AS bad
            FROM ({lines_source(path, max_line_size)})
        )
    """


def latest_per_key(source: str, key: str, value: str) -> str:
    """One row per non-null `key` of `source`: the last `value` in file order, as `u`."""
    return f"""
        SELECT min(_row) AS _row, min(_ord) AS _ord, k AS __key, arg_max(v, _ord) AS u
        FROM (SELECT _row, _ord, {key} AS k, {value} AS v FROM ({source}))
        WHERE k IS NOT NULL AND v IS NOT NULL GROUP BY k
    """
