"""Evidence keys per asset, in one table, for linking clusters and matching signatures.

Most keys are the ones detection already wrote to `keys` (exact text, near-duplicate
group, canonical URL, domain, media hash, avatar, display name, shared post): they are
read through `OperationsConfig.key_type_families`. Three kinds detection does not write
are added here, because they only matter between clusters:

- `content`: a post's title alone and each sentence alone, so a headline used as a video
  title on one platform and inside a longer post on another still matches;
- `xref`: a link that names an asset on a platform (`youtube.com/@handle`,
  `facebook.com/pagename`) and, for every asset, the names it can be linked by, so one
  cluster advertising another cluster's channel is a shared key;
- `handle`: the exact normalised handle, compared across platforms.

Everything is SQL over whole tables (plus Arrow compute for text normalisation).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from cibwatch.config import OperationsConfig
from cibwatch.signals.links import canonical_url_sql
from cibwatch.signals.text import normalise

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


def _sql_list(items: tuple[str, ...]) -> str:
    return ", ".join("'" + s.replace("'", "''") + "'" for s in items)


def build_asset_keys(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    scope: str | None = None,
    with_assets: bool = False,
) -> None:
    """(Re)create temp table `_op_keys(platform, account_id, family, key, post_id)`.

    `scope` names a table of (platform, account_id) to restrict the work to (a signature
    needs only its operation's assets); None means every asset, which rarity needs.
    `with_assets` adds an `asset` key per asset (`platform:account_id`), matched against
    the assets listed in saved signatures.
    """
    where_posts = (
        f"WHERE (platform, account_id) IN (SELECT platform, account_id FROM {scope})"
        if scope
        else ""
    )
    where_accounts = where_posts
    families = ", ".join(
        f"('{kt}', '{fam}')" for kt, fam in cfg.key_type_families
    ) or "(NULL, NULL)"
    scoped = _sql_list(PLATFORM_SCOPED)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS
        WITH fam(key_type, family) AS (VALUES {families})
        SELECT platform, account_id, family,
               CASE WHEN family IN ({scoped}) THEN platform || '|' || key ELSE key END AS key,
               min(post_id) AS post_id
        FROM keys JOIN fam USING (key_type)
        {where_posts}
        GROUP BY ALL
        """
    )
    _add_content_pieces(con, cfg, where_posts)
    _add_xrefs(con, cfg, where_posts, where_accounts)
    con.execute(
        f"""
        INSERT INTO {KEYS_TABLE}
        SELECT DISTINCT platform, account_id, 'handle', h, NULL
        FROM (SELECT platform, account_id,
                     regexp_replace(lower(handle), '[^\\p{{L}}\\p{{N}}]+', '', 'g') AS h
              FROM accounts {where_accounts})
        WHERE length(h) >= {int(cfg.handle_min_chars)}
        """
    )
    if with_assets:
        con.execute(
            f"""
            INSERT INTO {KEYS_TABLE}
            SELECT DISTINCT platform, account_id, 'asset', platform || ':' || account_id, NULL
            FROM (SELECT platform, account_id FROM accounts {where_accounts}
                  UNION SELECT platform, account_id FROM posts {where_posts})
            """
        )


def _add_content_pieces(
    con: duckdb.DuckDBPyConnection, cfg: OperationsConfig, where_posts: str
) -> None:
    """Titles alone, texts alone and sentences alone, fingerprinted like detection's
    exact-text key (md5 of `signals.text.normalise`), so equal pieces meet equal keys."""
    rel = con.sql(
        f"""
        SELECT platform, account_id, post_id, coalesce(text, '') AS text,
               coalesce(title, '') AS title
        FROM posts {where_posts}
        """
    ).to_arrow_table()
    if rel.num_rows == 0:
        return
    norm = pa.table(
        {
            "platform": rel.column("platform"),
            "account_id": rel.column("account_id"),
            "post_id": rel.column("post_id"),
            "nt": normalise(rel.column("text")),
            "nh": normalise(rel.column("title")),
        }
    )
    del rel
    con.register("_op_norm", norm)
    con.execute(
        f"""
        INSERT INTO {KEYS_TABLE}
        SELECT platform, account_id, 'content', md5(piece), min(post_id)
        FROM (
            SELECT platform, account_id, post_id,
                   trim(unnest(list_concat([nt, nh],
                                           regexp_split_to_array(nt, '[.!?;。！？；\\n]+'))))
                       AS piece
            FROM _op_norm
        )
        WHERE length(piece) >= {int(cfg.content_min_chars)}
        GROUP BY platform, account_id, piece
        """
    )
    con.unregister("_op_norm")
    # Pieces equal to detection's whole-text key are one key, not two.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS
        SELECT platform, account_id, family, key, min(post_id) AS post_id
        FROM {KEYS_TABLE} GROUP BY ALL
        """
    )


def _add_xrefs(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    where_posts: str,
    where_accounts: str,
) -> None:
    """`platform:name` for every link naming an asset, and for every asset its names."""
    if not cfg.platform_domains:
        return
    domains = ", ".join(f"('{d}', '{p}')" for d, p in cfg.platform_domains)
    canon = canonical_url_sql("u", "^(utm_[a-z_]*|fbclid|si|feature)(=|$)")
    names = sorted({d for d, _ in cfg.platform_domains})
    mentions = " OR ".join(f"contains(lower(u), {_sql_list((d,))})" for d in names)
    con.execute(
        f"""
        INSERT INTO {KEYS_TABLE}
        WITH dom(domain, target) AS (VALUES {domains}),
        links AS (
            SELECT platform, account_id, post_id, {canon} AS c
            FROM (SELECT platform, account_id, post_id, unnest(urls) AS u
                  FROM posts {where_posts}
                  {"AND" if where_posts else "WHERE"} urls IS NOT NULL AND len(urls) > 0)
            WHERE u IS NOT NULL AND u <> ''
              -- a link can only name an asset if it contains a platform domain: the
              -- cheap test first spares most links the canonicalising regexes
              AND ({mentions})
        ),
        parts AS (
            SELECT platform, account_id, post_id, c,
                   string_split(regexp_replace(c, '[?#].*$', ''), '/') AS seg
            FROM links
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
        INSERT INTO {KEYS_TABLE}
        SELECT DISTINCT platform, account_id, 'xref', platform || ':' || name, NULL
        FROM (SELECT platform, account_id, lower(account_id) AS name
              FROM accounts {where_accounts}
              UNION ALL
              SELECT platform, account_id, lower(ltrim(handle, '@'))
              FROM accounts {where_accounts}
              {"AND" if where_accounts else "WHERE"} handle IS NOT NULL)
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
