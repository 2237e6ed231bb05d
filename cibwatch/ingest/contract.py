"""The contract tables of ../shared/SCHEMA.md: columns, types, required columns and keys.

Every input format is mapped onto these tables; `validate.py` turns any source column
into the canonical type and says why a row breaks the contract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "id" | "text" | "timestamp" | "integer" | "list"
    required: bool = False


def _cols(spec: str) -> tuple[Column, ...]:
    """`name:kind[!]` items, `!` marking a required column."""
    out = []
    for item in spec.split():
        name, kind = item.split(":")
        out.append(Column(name, kind.rstrip("!"), kind.endswith("!")))
    return tuple(out)


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    has_extra: bool = True

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


ACCOUNTS = TableSpec(
    "accounts",
    _cols(
        "platform:id! account_id:id! asset_type:text handle:text display_name:text "
        "created_at:timestamp followers_count:integer following_count:integer bio:text "
        "avatar_hash:text claimed_location:text lang:text"
    ),
    key=("platform", "account_id"),
)
POSTS = TableSpec(
    "posts",
    _cols(
        "platform:id! post_id:id! account_id:id! created_at:timestamp! kind:text text:text "
        "title:text urls:list hashtags:list media_hashes:list parent_id:id shared_id:id "
        "lang:text"
    ),
    key=("platform", "post_id"),
)
FOLLOWS = TableSpec(
    "follows",
    _cols("platform:id! follower_id:id! followee_id:id! created_at:timestamp"),
    key=("platform", "follower_id", "followee_id"),
    has_extra=False,
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (ACCOUNTS, POSTS, FOLLOWS)}
REQUIRED_TABLES = ("accounts", "posts")
# Column defaults the workspace DDL applies when the input leaves them empty.
DEFAULTS = {("accounts", "asset_type"): "account", ("posts", "kind"): "post"}


@dataclass(frozen=True)
class Part:
    """One contract table read from one file, as SQL that DuckDB runs in bulk.

    `source` is a relation with `_row` (the row number a person looks up: data row of a
    CSV, line of a JSONL, row of a Parquet file) and `_ord` (unique, in file order).
    `columns` maps contract columns to SQL expressions over `source` (any type: text,
    timestamps, lists, JSON); contract columns left out are null. `raw` renders a source
    row as text for the quarantine; `extra` is the JSON of columns the contract does not
    name; `invalid` gives a reason when the source row cannot be read at all (a JSONL
    line that is not JSON), which wins over every other check. Rows of a `patch` part
    (accounts derived from posts) only fill empty fields of an existing row, never
    blank out what a richer file stored. `csv_rejects`: the source
    is a CSV read with DuckDB's rejects table, whose unparseable lines go to quarantine.
    A source that is not `numbered` has neither `_row` nor `_ord`: its rows are numbered
    by their place in the scratch table, which keeps file order, so DuckDB reads the file
    on every thread (a `row_number()` window would read it on one).
    """

    table: str
    source: str
    columns: dict[str, str]
    raw: str
    extra: str | None = None
    invalid: str | None = None
    patch: bool = False
    csv_rejects: bool = False
    numbered: bool = True
