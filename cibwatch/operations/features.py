"""Evidence keys per asset, in one table, for linking clusters and matching signatures.

Most keys are the ones detection already wrote to `keys` (exact text, near-duplicate
group, canonical URL, domain, media hash, avatar, display name, shared post): they are
read through `OperationsConfig.key_type_families`. Three kinds detection does not write
are added here, because they only matter between clusters:

- `content`: a post's title alone and each sentence alone, so a headline used as a video
  title on one platform and inside a longer post on another still matches;
- `xref`: a link that names an asset on a platform (`youtube.com/@handle`,
  `facebook.com/pagename`; read from detection's canonical `url` keys) and, for every
  asset, the names it can be linked by, so one cluster advertising another cluster's
  channel is a shared key;
- `handle`: the exact normalised handle, compared across platforms.

Everything is SQL over whole tables (plus Arrow compute for text normalisation).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pyarrow as pa

from cibwatch.config import OperationsConfig
from cibwatch.signals.text import normalise_parallel
from cibwatch.workspace import scalar

KEYS_TABLE = "_op_keys"

# Path words that are not an asset name: the asset is then the next segment, or none.
_NEXT_SEGMENT = ("channel", "user", "c", "u", "groups", "pages", "people", "in")
_NOT_AN_ASSET = (
    "watch", "shorts", "hashtag", "share", "sharer", "sharer.php", "search", "explore",
    "home", "intent", "i", "status", "video", "videos", "p", "reel", "reels", "r", "events",
    "photo", "photos", "permalink.php", "story.php", "login", "embed", "playlist",
    "results", "feed", "tags", "tag", "live", "s", "t", "joinchat", "addstickers", "wall",
)

# Platform-scoped families: their keys are post ids, unique within a platform only.
PLATFORM_SCOPED = ("engagement",)

# Sentence breaks (`regexp_split_to_array` of a normalised text), as one character class.
_BREAKS = "[.!?;。！？；\\n]"
# Every character whose NFKC form holds a sentence break: the breaks themselves and
# their compatibility forms ("．", "…", "‼", "⒈", "㏂", vertical and small forms). NFKC
# decomposes character by character and composition never makes or removes a break, so
# a text's NFKC form holds a break exactly when the text holds one of these; most texts
# need no normalising to know it. tests/test_operations.py derives this list from
# Arrow's NFKC over every code point.
MAY_BREAK = (
    "[\\n!.;?\u037e\u2024\u2025\u2026\u203c\u2047\u2048\u2049\u2488-\u249b"
    "\u3002\u33c2\u33c7\u33d8\ufe12\ufe14-\ufe16\ufe19\ufe30\ufe52\ufe54\ufe56\ufe57"
    "\uff01\uff0e\uff1b\uff1f\uff61\U0001f100]"
)

# Distinct post texts and titles normalised per batch: bounds the Arrow copies held at
# once (about 1 GB at a few hundred bytes a text) whatever the number of posts.
_NORMALISE_BATCH = 1_000_000
# Rows per Arrow batch of normalised strings handed to DuckDB to split into sentences.
_SPLIT_BATCH = 50_000


def _sql_list(items: tuple[str, ...]) -> str:
    return ", ".join("'" + s.replace("'", "''") + "'" for s in items)


def build_asset_keys(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    scope: str | None = None,
    with_assets: bool = False,
    detection_min_chars: int | None = None,
) -> None:
    """(Re)create temp table `_op_keys(platform, account_id, family, key, post_id)`.

    `scope` names a table of (platform, account_id) to restrict the work to (a signature
    needs only its operation's assets); None means every asset, which rarity needs.
    `with_assets` adds an `asset` key per asset (`platform:account_id`), matched against
    the assets listed in saved signatures. `detection_min_chars`: detection's
    `SignalConfig.min_text_chars`, when its `text` keys are in `keys` (see `_content_pieces`).
    """
    in_scope = _in_scope(scope)
    rows = _key_rows_sql(con, cfg, in_scope, detection_min_chars)
    # Detection's keys and the posts' content pieces in one GROUP BY (a piece equal to
    # detection's whole-text key is one key, not two).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS
        SELECT platform, account_id, family, key, min(post_id) AS post_id
        FROM ({rows})
        GROUP BY ALL
        """
    )
    con.execute("DROP TABLE _op_pieces")
    _add_account_keys(con, cfg, in_scope, with_assets, KEYS_TABLE)


# `build_link_keys`' tables: every key row before grouping, the account-level keys, and
# the number of `_op_keys` rows per family.
ROWS_TABLE = "_op_rows"
EXTRA_TABLE = "_op_keys_extra"
TOTALS_TABLE = "_op_totals"
# The (family, h) of `_op_rows` that several rows share: only their rows need grouping to
# be one per (asset, family, key).
REPEATED_TABLE = "_op_repeated"


def build_link_keys(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    with_assets: bool = False,
    detection_min_chars: int | None = None,
) -> None:
    """What linking reads of `build_asset_keys`' table over every asset, without its
    GROUP BY of every (asset, key) with its first post, the stage's largest step (20M
    groups at 10M posts), when linking needs the first post of clustered assets only.

    - `_op_rows(platform, account_id, family, key, post_id, h)`: the rows that GROUP BY
      reads, `h` a hash of (asset, family, key);
    - `_op_keys_extra`: the rows `build_asset_keys` adds after it (xref, handle, asset);
    - `_op_totals(family, n)`: `_op_keys`' rows per family. Distinct (asset, family, key)
      are counted exactly without grouping the strings: a (family, h) only one row has
      is one distinct key of that family; the rows of the few (family, h) that several
      rows share (one asset's key in several posts, or a hash collision) are grouped;
    - `_op_repeated(family, h)`: those few.

    `_op_keys`' rows of some assets are then `_op_rows` of those assets grouped, plus
    their `_op_keys_extra` rows (`linking.score_links` does so for clustered assets)."""
    in_scope = _in_scope(None)
    # The account-level keys read only the workspace's tables: a second connection
    # (`con.cursor()`) builds them while this one splits the posts' texts (Python and
    # Arrow glue, partly on one core) and reads the rows. Temp tables are per connection,
    # so it writes them to an in-memory database both see (an ATTACH is per instance),
    # copied here after and detached.
    con.execute(f"ATTACH ':memory:' AS {_SCRATCH_DB}")
    try:
        with ThreadPoolExecutor(1) as pool:
            extra = pool.submit(_account_keys_aside, con.cursor(), cfg, in_scope, with_assets)
            try:
                rows = _key_rows_sql(con, cfg, in_scope, detection_min_chars)
                con.execute(
                    f"""
                    CREATE OR REPLACE TEMP TABLE {ROWS_TABLE} AS
                    SELECT platform, account_id, family, key, post_id,
                           hash(platform, account_id, family, key) AS h
                    FROM ({rows})
                    """
                )
                con.execute("DROP TABLE _op_pieces")
            finally:
                extra.result()
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {EXTRA_TABLE} AS "
            f"SELECT * FROM {_SCRATCH_DB}.{EXTRA_TABLE}"
        )
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {_SCRATCH_DB}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _op_hash_counts AS
        SELECT family, h, count(*) AS n FROM {ROWS_TABLE} GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {TOTALS_TABLE} AS
        SELECT family, CAST(sum(n) AS BIGINT) AS n FROM (
            SELECT family, count(*) AS n FROM _op_hash_counts WHERE n = 1 GROUP BY ALL
            UNION ALL
            SELECT family, count(*) FROM (
                SELECT DISTINCT r.platform, r.account_id, r.family, r.key
                FROM {ROWS_TABLE} r
                SEMI JOIN (SELECT family, h FROM _op_hash_counts WHERE n > 1) d
                  ON d.family = r.family AND d.h = r.h)
            GROUP BY ALL
            UNION ALL
            SELECT family, count(*) FROM {EXTRA_TABLE} GROUP BY ALL
        )
        GROUP BY ALL
        """
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REPEATED_TABLE} AS "
        "SELECT family, h FROM _op_hash_counts WHERE n > 1"
    )
    con.execute("DROP TABLE _op_hash_counts")


# The in-memory database `build_link_keys`' two connections share while it runs.
_SCRATCH_DB = "_op_scratch"


def _account_keys_aside(
    cursor: duckdb.DuckDBPyConnection, cfg: OperationsConfig, in_scope: str, with_assets: bool
) -> None:
    """`_add_account_keys` into `_SCRATCH_DB`, on a connection of its own (closed here)."""
    target = f"{_SCRATCH_DB}.{EXTRA_TABLE}"
    try:
        cursor.execute(
            f"CREATE TABLE {target} (platform VARCHAR, account_id VARCHAR,"
            " family VARCHAR, key VARCHAR, post_id VARCHAR)"
        )
        _add_account_keys(cursor, cfg, in_scope, with_assets, target)
    finally:
        cursor.close()


def _in_scope(scope: str | None) -> str:
    return (
        f"(platform, account_id) IN (SELECT platform, account_id FROM {scope})"
        if scope
        else "true"
    )


def _key_rows_sql(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    in_scope: str,
    detection_min_chars: int | None,
) -> str:
    """Builds `_op_pieces` and returns the query of every (platform, account_id, family,
    key, post_id) row from detection's keys and the posts' content pieces."""
    families = ", ".join(
        f"('{kt}', '{fam}')" for kt, fam in cfg.key_type_families
    ) or "(NULL, NULL)"
    scoped = _sql_list(PLATFORM_SCOPED)
    whole_from_keys = (
        detection_min_chars is not None
        and 0 < detection_min_chars <= cfg.content_min_chars
        and ("text", "content") in cfg.key_type_families
    )
    _content_pieces(con, cfg, in_scope, whole_from_keys)
    min_chars = int(cfg.content_min_chars)
    return f"""
        WITH fam(key_type, family) AS (VALUES {families}),
        p AS (SELECT platform, account_id, post_id, coalesce(text, '') AS t,
                     coalesce(title, '') AS h, text IS NULL AS no_text,
                     title IS NULL AS no_title
              FROM posts WHERE {in_scope})
        SELECT platform, account_id, family,
               CASE WHEN family IN ({scoped}) THEN platform || '|' || key ELSE key END
                   AS key,
               post_id
        FROM keys JOIN fam USING (key_type) WHERE {in_scope}
        UNION ALL
        SELECT p.platform, p.account_id, 'content', x.key, p.post_id
        FROM p JOIN _op_pieces x ON x.s = p.t
        WHERE NOT p.no_text OR {min_chars} <= 0  -- '' has no piece of 1+ characters
        UNION ALL
        SELECT p.platform, p.account_id, 'content', x.key, p.post_id
        FROM p JOIN _op_pieces x ON x.s = p.h AND x.whole
        WHERE NOT p.no_title OR {min_chars} <= 0
        """


def _add_account_keys(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    in_scope: str,
    with_assets: bool,
    target: str,
) -> None:
    """Insert into `target` the keys read from links and accounts: xref, handle, asset."""
    _add_xrefs(con, cfg, in_scope, target)
    con.execute(
        f"""
        INSERT INTO {target}
        SELECT DISTINCT platform, account_id, 'handle', h, NULL
        FROM (SELECT platform, account_id,
                     regexp_replace(lower(handle), '[^\\p{{L}}\\p{{N}}]+', '', 'g') AS h
              FROM accounts WHERE {in_scope})
        WHERE length(h) >= {int(cfg.handle_min_chars)}
        """
    )
    if with_assets:
        con.execute(
            f"""
            INSERT INTO {target}
            SELECT DISTINCT platform, account_id, 'asset', platform || ':' || account_id, NULL
            FROM (SELECT platform, account_id FROM accounts WHERE {in_scope}
                  UNION SELECT platform, account_id FROM posts WHERE {in_scope})
            """
        )


def _content_pieces(
    con: duckdb.DuckDBPyConnection, cfg: OperationsConfig, in_scope: str,
    whole_from_keys: bool = False,
) -> None:
    """Temp table `_op_pieces(s, whole, key)`: per distinct post text or title its
    `content` keys beside detection's whole-text keys: titles alone, texts alone and
    sentences alone, fingerprinted like detection's exact-text key (md5 of
    `signals.text.normalise`), so equal pieces meet equal keys. Each distinct text or
    title is normalised and split once, however many posts repeat it.

    `whole_from_keys`: a title-less post's whole text is detection's own `text` key
    (md5 of the same normalised text, kept from fewer characters), already read from
    `keys`; such a text is then normalised only if it may hold a sentence break, which
    normalising cannot create (NFKC can: "．" becomes "."), so most texts are not."""
    # The distinct strings are numbered in a temp table and read back in batches, so at
    # 10M posts they are never all held in Python at once, nor their normalised copies.
    # `whole`: the string needs its own whole-text key (a title, or a post's text beside
    # a title, whose detection key covers both).
    # With `whole_from_keys`, only the strings that need a whole key or may hold a break
    # are kept (a fraction of them): the others have no piece of their own.
    # The test is per row, before grouping: a string's rows all pass when it may hold a
    # break, and those with `whole` pass anyway, so the groups and their `whole` are the
    # same as testing per group, and far fewer rows are grouped.
    whole = "title IS NOT NULL" if whole_from_keys else "true"
    needed = f"whole OR regexp_matches(s, '{MAY_BREAK}')" if whole_from_keys else "true"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _op_strings AS
        SELECT s, bool_or(whole) AS whole, row_number() OVER () AS i
        FROM (SELECT coalesce(text, '') AS s, {whole} AS whole FROM posts WHERE {in_scope}
              UNION ALL SELECT coalesce(title, ''), true FROM posts WHERE {in_scope})
        WHERE {needed}
        GROUP BY s
        """
    )
    n_strings = scalar(con, "SELECT count(*) FROM _op_strings")
    min_chars = int(cfg.content_min_chars)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _op_pieces (s VARCHAR, whole BOOLEAN, key VARCHAR)"
    )
    for lo in range(0, n_strings, _NORMALISE_BATCH):
        batch = con.sql(
            f"SELECT s, whole FROM _op_strings WHERE i > {lo} AND i <= {lo + _NORMALISE_BATCH}"
        ).to_arrow_table()
        strings = batch.column("s").combine_chunks()
        wholes = batch.column("whole").combine_chunks()
        del batch
        normalised = normalise_parallel(strings, min(os.cpu_count() or 1, 8))
        # In batches, so DuckDB splits the sentences on every core (one Arrow batch is
        # one scan task).
        norm = pa.table({"s": strings, "whole": wholes, "n": normalised})
        con.register("_op_norm", pa.Table.from_batches(
            norm.to_batches(max_chunksize=_SPLIT_BATCH), norm.schema))
        # Per distinct string: its whole normalised form (a title's only piece) and, as
        # a post's text, its sentences too (a sentence that is the whole text is that key).
        con.execute(
            f"""
            INSERT INTO _op_pieces
            SELECT s, true AS whole, md5(trim(n)) AS key FROM _op_norm
            WHERE whole AND length(trim(n)) >= {min_chars}
            UNION ALL
            SELECT s, false, md5(piece)
            FROM (SELECT s, n, trim(unnest(regexp_split_to_array(n, '{_BREAKS}+'))) AS piece
                  FROM _op_norm WHERE length(n) >= {min_chars})
            WHERE length(piece) >= {min_chars} AND piece <> trim(n)
            """
        )
        con.unregister("_op_norm")
        del strings, wholes, normalised, norm
    con.execute("DROP TABLE _op_strings")


def _add_xrefs(
    con: duckdb.DuckDBPyConnection, cfg: OperationsConfig, in_scope: str, target: str
) -> None:
    """`platform:name` for every link naming an asset, and for every asset its names.

    Links are read canonical from detection's `url` keys: the host and path (and a
    `profile.php?id=`) name the asset, and canonicalising them does not depend on which
    tracking parameters are dropped, so the signals stage's work is not done twice."""
    if not cfg.platform_domains:
        return
    domains = ", ".join(f"('{d}', '{p}')" for d, p in cfg.platform_domains)
    names = sorted({d for d, _ in cfg.platform_domains})
    # A canonical link has a lower-case host: it can only name an asset if it contains
    # a platform domain, and that cheap test spares most links the path parsing.
    mentions = " OR ".join(f"contains(key, {_sql_list((d,))})" for d in names)
    con.execute(
        f"""
        INSERT INTO {target}
        WITH dom(domain, target) AS (VALUES {domains}),
        parts AS (
            SELECT platform, account_id, post_id, key AS c,
                   string_split(regexp_replace(key, '[?#].*$', ''), '/') AS seg
            FROM keys
            WHERE key_type = 'url' AND {in_scope} AND ({mentions})
        ),
        named AS (
            SELECT p.platform, p.account_id, p.post_id, d.target,
                   lower(ltrim(CASE
                       WHEN lower(seg[2]) = 'profile.php'
                           THEN regexp_extract(c, '[?&]id=([^&#]+)', 1)
                       WHEN lower(seg[2]) IN ({_sql_list(_NEXT_SEGMENT)}) THEN seg[3]
                       ELSE seg[2] END, '@')) AS name
            FROM parts p JOIN dom d
              ON seg[1] = d.domain OR seg[1] LIKE '%.' || d.domain
        )
        SELECT platform, account_id, 'xref', target || ':' || name, min(post_id)
        FROM named
        WHERE name IS NOT NULL AND name <> '' AND name NOT IN ({_sql_list(_NOT_AN_ASSET)})
        GROUP BY ALL
        """
    )
    con.execute(
        f"""
        INSERT INTO {target}
        SELECT DISTINCT platform, account_id, 'xref', platform || ':' || name, NULL
        FROM (SELECT platform, account_id, lower(account_id) AS name
              FROM accounts WHERE {in_scope}
              UNION ALL
              SELECT platform, account_id, lower(ltrim(handle, '@'))
              FROM accounts WHERE {in_scope} AND handle IS NOT NULL)
        WHERE name <> ''
        """
    )


def time_vectors(con: duckdb.DuckDBPyConnection, members: str) -> dict[str, list[int]]:
    """Hour-of-week post counts (Monday 00:00 UTC first) per node of `members(node,
    platform, account_id)`."""
    rows = con.execute(
        f"""
        SELECT m.node, (isodow(p.created_at) - 1) * 24 + hour(p.created_at) AS how,
               count(*) AS n
        FROM posts p JOIN {members} m USING (platform, account_id)
        GROUP BY ALL
        """
    ).fetchall()
    out: dict[str, list[int]] = {}
    for node, how, n in rows:
        out.setdefault(node, [0] * 168)[int(how)] = int(n)
    return out


def sample_texts(con: duckdb.DuckDBPyConnection, post_ids: list[tuple[str, str]]) -> dict:
    """(platform, post_id) -> a short verbatim title or text, for quoting in evidence."""
    if not post_ids:
        return {}
    table = pa.table(
        {"platform": [p for p, _ in post_ids], "post_id": [q for _, q in post_ids]}
    )
    con.register("_op_sample_ids", table)
    rows = con.execute(
        """
        SELECT p.platform, p.post_id, coalesce(nullif(p.title, ''), p.text)
        FROM posts p JOIN _op_sample_ids s USING (platform, post_id)
        """
    ).fetchall()
    con.unregister("_op_sample_ids")
    return {(a, b): (c or "") for a, b, c in rows}
