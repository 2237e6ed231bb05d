"""Store validated rows without storing anything twice.

Keys: (platform, post_id), (platform, account_id), (platform, follower_id, followee_id).
No PRIMARY KEY constraint (its ART index would not fit in memory at 10M rows): rows are
matched to the workspace with one hash join and classified as new, changed or
unchanged; changed rows are deleted and re-inserted. Inside one file the last row of a
key wins; the earlier ones go to the quarantine, so every row read is accounted for.

Both questions asked of every file (does a key repeat in it? does a stored row share
one of its keys?) are first asked of 64-bit hashes of the keys, which is exact when the
answer is no; a yes is checked again on the keys themselves. At 10M posts the stored
keys' hashes are kept for the run (`KeyHashes`) instead of scanning the whole table
once per file: 28 files of follows joined 14M stored rows each.
"""

from __future__ import annotations

import duckdb

from cibwatch.ingest.contract import DEFAULTS, TableSpec
from cibwatch.ingest.validate import KEY_HASH, ORD, ROW, ident, key_hash, literal


def _on(spec: TableSpec, a: str, b: str) -> str:
    return " AND ".join(f"{a}.{ident(k)} = {b}.{ident(k)}" for k in spec.key)


class KeyHashes:
    """Hashes of the keys stored in each table, kept for one ingest run in a scratch
    table `__keys_<table>`: read from the table at its first use, then extended by every
    row `merge` adds, in the same transaction (a file that fails ends the run; `close`
    drops the tables)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.tables: set[str] = set()

    @staticmethod
    def _name(spec: TableSpec) -> str:
        return ident(f"__keys_{spec.name}")

    def may_overlap(self, spec: TableSpec, checked: str) -> bool:
        """False when no good row of the scratch table `checked` shares a key with a
        stored row."""
        if spec.name not in self.tables:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {self._name(spec)} AS "
                f"SELECT {key_hash(spec.key)} AS h FROM {ident(spec.name)}"
            )
            self.tables.add(spec.name)
        return bool(
            self.con.execute(
                f"""
                SELECT count(*) FROM (
                    SELECT 1 FROM {self._name(spec)} s SEMI JOIN (
                        SELECT {KEY_HASH} AS h FROM {checked} WHERE reason IS NULL
                    ) c ON s.h = c.h
                    LIMIT 1)
                """
            ).fetchall()[0][0]
        )

    def add(self, spec: TableSpec, hashes: str) -> None:
        """Record the key hashes given by the query `hashes`, of rows just stored."""
        if spec.name in self.tables:
            self.con.execute(f"INSERT INTO {self._name(spec)} {hashes}")

    def close(self) -> None:
        for name in self.tables:
            self.con.execute(f"DROP TABLE IF EXISTS {ident(f'__keys_{name}')}")
        self.tables.clear()


def supersede_duplicates(con: duckdb.DuckDBPyConnection, spec: TableSpec, checked: str) -> int:
    """Mark all but the last row of each key in the scratch table `checked` for the
    quarantine."""
    # rows whose key hashes all differ have keys that all differ
    distinct = con.execute(
        f"SELECT count(*) = count(DISTINCT {KEY_HASH}) FROM {checked} WHERE reason IS NULL"
    ).fetchall()[0][0]
    if distinct:
        return 0
    keys = ", ".join(ident(k) for k in spec.key)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __dups AS
        SELECT {keys}, max({ORD}) AS keep_ord, arg_max({ROW}, {ORD}) AS keep_row
        FROM {checked} WHERE reason IS NULL GROUP BY ALL HAVING count(*) > 1
        """
    )
    if not con.execute("SELECT count(*) FROM __dups").fetchall()[0][0]:
        return 0
    cols = ", ".join(f"{ident(c)} := c.{ident(c)}" for c in spec.names)
    con.execute(
        f"""
        UPDATE {checked} c SET
            reason = 'duplicate key in file (superseded by row ' || d.keep_row || ')',
            _raw = CAST(to_json(struct_pack({cols})) AS VARCHAR)
        FROM __dups d
        WHERE c.reason IS NULL AND {_on(spec, "c", "d")}
          AND coalesce(c._ord, c.rowid) <> d.keep_ord
        """
    )
    return int(
        con.execute(
            f"SELECT count(*) FROM {checked} WHERE reason LIKE 'duplicate key in file%'"
        ).fetchall()[0][0]
    )


def merge(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    patch: bool = False,
    keys: KeyHashes | None = None,
    *,
    checked: str,
) -> tuple[int, int, int]:
    """Upsert the good rows of the scratch table `checked` into `spec.name`: (loaded,
    updated, unchanged).

    A `patch` row fills only the fields the stored row leaves empty. `keys`, when given,
    holds the hashes of the stored keys (see `KeyHashes`) and is kept up to date."""
    table = ident(spec.name)
    cols = list(spec.names) + (["extra"] if spec.has_extra else [])
    col_list = ", ".join(ident(c) for c in cols)
    probe = f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)"
    empty = not con.execute(probe).fetchall()[0][0]
    if not empty and not patch:
        # no stored row shares a key (the next part of a split file): nothing to
        # compare, the rows go straight in
        overlap = f"""
            SELECT count(*) FROM (
                SELECT 1 FROM {checked} c SEMI JOIN {table} t ON {_on(spec, "c", "t")}
                WHERE c.reason IS NULL LIMIT 1)"""
        empty = (keys is not None and not keys.may_overlap(spec, checked)) or not con.execute(
            overlap
        ).fetchall()[0][0]
    if empty and not patch:
        con.execute(
            f"INSERT INTO {table} ({col_list}) "
            f"SELECT {col_list} FROM {checked} WHERE reason IS NULL"
        )
        if keys is not None:
            keys.add(spec, f"SELECT {KEY_HASH} FROM {checked} WHERE reason IS NULL")
        n = con.execute(f"SELECT count(*) FROM {checked} WHERE reason IS NULL").fetchall()[0][0]
        return int(n), 0, 0

    def value(c: str) -> str:
        new = f"c.{ident(c)}"
        if patch and c not in spec.key:
            new = f"coalesce({new}, t.{ident(c)})"
        default = DEFAULTS.get((spec.name, c))
        return f"coalesce({new}, {literal(default)})" if default else new

    same = " AND ".join(
        f"({value(c)}) IS NOT DISTINCT FROM t.{ident(c)}" for c in cols if c not in spec.key
    )
    first_key = ident(spec.key[-1])
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __merged AS
        SELECT {', '.join(f'{value(c)} AS {ident(c)}' for c in cols)},
               CASE WHEN t.{first_key} IS NULL THEN 'new'
                    WHEN {same} THEN 'unchanged' ELSE 'changed' END AS status,
               coalesce(c._ord, c.rowid) AS __ord
        FROM {checked} c LEFT JOIN {table} t ON {_on(spec, "c", "t")}
        WHERE c.reason IS NULL
        """
    )
    counts = dict(con.execute("SELECT status, count(*) FROM __merged GROUP BY 1").fetchall())
    if counts.get("changed"):
        con.execute(
            f"""
            DELETE FROM {table} t USING (SELECT * FROM __merged WHERE status = 'changed') c
            WHERE {_on(spec, "t", "c")}
            """
        )
    # in file order, as the rows of a file with nothing stored go in (a join's output
    # order is whatever its threads made it)
    con.execute(
        f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM __merged "
        "WHERE status IN ('new', 'changed') ORDER BY __ord"
    )
    if keys is not None and counts.get("new"):
        keys.add(spec, f"SELECT {key_hash(spec.key)} FROM __merged WHERE status = 'new'")
    con.execute("DROP TABLE __merged")
    return counts.get("new", 0), counts.get("changed", 0), counts.get("unchanged", 0)
