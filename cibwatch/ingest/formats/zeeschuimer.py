"""Zeeschuimer / 4CAT NDJSON exports.

Zeeschuimer (the Digital Methods Initiative's browser extension that 4CAT imports)
writes one captured item per line: `{"id", "item_id", "timestamp_collected",
"source_platform": "x.com" | "twitter.com" | "instagram.com" | "tiktok.com" | ...,
"source_platform_url", "data": <the platform's own JSON for the item>}`. 4CAT's NDJSON
download of such a dataset turns each line inside out: the platform's item with the
envelope under `__import_meta`; both are read. Mapped here:
- X: GraphQL tweet (`rest_id`, `legacy.{created_at, full_text, user_id_str, lang,
  entities, retweeted_status_result, in_reply_to_status_id_str}`, author in
  `core.user_results.result`), or the older `legacy` + `user` layout;
- Instagram: media node (`code`, `id`, `taken_at` epoch seconds, `user.{pk, username,
  full_name}`, `caption.text`; hashtags taken from the caption);
- TikTok: item (`id`, `createTime` epoch seconds, `desc`, `author.{id, uniqueId,
  nickname, signature}`, `authorStats`, `textExtra[].hashtagName`). When `author` is only
  a user name string (embedded page JSON), that name is the account id.
Items of other platforms are quarantined as unsupported.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cibwatch.config import IngestConfig
from cibwatch.ingest.contract import Part
from cibwatch.ingest.formats._json import first_object, items_source, latest_per_key

PLATFORMS = {
    "x.com": "x",
    "twitter.com": "x",
    "instagram.com": "instagram",
    "tiktok.com": "tiktok",
}


def detect(path: Path) -> bool:
    obj = first_object(path)
    if obj is None:
        return False
    meta = obj.get("__import_meta")
    return ("source_platform" in obj and "data" in obj) or (
        isinstance(meta, dict) and "source_platform" in meta
    )


_PLATFORM = (
    "CASE replace(lower(__env ->> 'source_platform'), 'www.', '') "
    + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in PLATFORMS.items())
    + " END"
)
# X user object of a tweet, in the GraphQL and the older layout.
_X_USER = "coalesce(d -> '$.core.user_results.result.legacy', d -> '$.user')"


def _pick(**by_platform: str) -> str:
    whens = " ".join(f"WHEN '{p}' THEN {expr}" for p, expr in by_platform.items())
    return f"CASE __p {whens} END"


def _epoch(x: str) -> str:
    """Epoch seconds as ISO text (every branch of a column has one type)."""
    return f"CAST(to_timestamp(TRY_CAST({x} AS DOUBLE)) AS VARCHAR)"


def _source(path: Path, cfg: IngestConfig) -> str:
    items = items_source(path, cfg.max_line_size, "[line::JSON]")
    meta = "(item -> '__import_meta') IS NOT NULL"
    unpacked = f"""
        SELECT *, CASE WHEN {meta} THEN item -> '__import_meta' ELSE item END AS __env,
               CASE WHEN {meta} THEN item ELSE item -> 'data' END AS d
        FROM ({items})
    """
    return f"SELECT *, {_PLATFORM} AS __p FROM ({unpacked})"


POST_COLUMNS = {
    "platform": "__p",
    "post_id": _pick(
        x="coalesce(d ->> 'rest_id', d ->> '$.legacy.id_str')",
        instagram="coalesce(d ->> 'code', d ->> 'id')",
        tiktok="d ->> 'id'",
    ),
    "account_id": _pick(
        x="coalesce(d ->> '$.legacy.user_id_str', "
        "d ->> '$.core.user_results.result.rest_id', d ->> '$.user.id_str')",
        instagram="coalesce(d ->> '$.user.pk', d ->> '$.user.id', d ->> '$.owner.id')",
        tiktok="CASE json_type(d, '$.author') WHEN 'OBJECT' THEN d ->> '$.author.id' "
        "ELSE d ->> 'author' END",
    ),
    "created_at": _pick(
        x="d ->> '$.legacy.created_at'",
        instagram=_epoch("d ->> 'taken_at'"),
        tiktok=_epoch("d ->> 'createTime'"),
    ),
    "kind": _pick(
        x="CASE WHEN (d -> '$.legacy.retweeted_status_result') IS NOT NULL THEN 'share' "
        "WHEN (d ->> '$.legacy.in_reply_to_status_id_str') IS NOT NULL THEN 'reply' "
        "ELSE 'post' END",
        instagram="'post'",
        tiktok="'post'",
    ),
    "text": _pick(
        x="d ->> '$.legacy.full_text'",
        instagram="d ->> '$.caption.text'",
        tiktok="d ->> 'desc'",
    ),
    "urls": _pick(
        x="json_extract_string(d, '$.legacy.entities.urls[*].expanded_url')",
    ),
    "hashtags": _pick(
        x="json_extract_string(d, '$.legacy.entities.hashtags[*].text')",
        instagram="regexp_extract_all(d ->> '$.caption.text', '#(\\w+)', 1)",
        tiktok="list_filter(json_extract_string(d, '$.textExtra[*].hashtagName'), "
        "lambda h: h <> '')",
    ),
    "parent_id": _pick(x="d ->> '$.legacy.in_reply_to_status_id_str'"),
    "shared_id": _pick(
        x="coalesce(d ->> '$.legacy.retweeted_status_result.result.rest_id', "
        "d ->> '$.legacy.retweeted_status_result.result.tweet.rest_id')",
    ),
    "lang": _pick(x="d ->> '$.legacy.lang'"),
}


def parts(con: duckdb.DuckDBPyConnection, path: Path, cfg: IngestConfig) -> list[Part]:
    source = _source(path, cfg)
    posts = Part(
        table="posts",
        source=source,
        columns=POST_COLUMNS,
        raw="line",
        extra="NULLIF(json_merge_patch('{}', json_object("
        "'source_platform_url', __env -> 'source_platform_url', "
        "'timestamp_collected', __env -> 'timestamp_collected')), '{}')",
        invalid="coalesce(bad, CASE WHEN __p IS NULL THEN 'unsupported source_platform (' || "
        "coalesce(__env ->> 'source_platform', 'none') || ')' END)",
    )
    user = _pick(
        x=_X_USER,
        instagram="d -> 'user'",
        tiktok="CASE json_type(d, '$.author') WHEN 'OBJECT' THEN json_merge_patch("
        "d -> 'author', json_object('authorStats', d -> 'authorStats')) "
        "ELSE json_object('uniqueId', d -> 'author', 'nickname', d -> 'nickname') END",
    )
    account = POST_COLUMNS["account_id"]
    key = f"CASE WHEN {account} IS NOT NULL THEN json_array(__p, {account}) END"
    authors = latest_per_key(
        f"SELECT * FROM ({source}) WHERE bad IS NULL", key, f"json_object('p', __p, 'u', {user})"
    )
    u = "(u -> 'u')"
    accounts = Part(
        table="accounts",
        source=authors,
        columns={
            "platform": "__key ->> 0",
            "account_id": "__key ->> 1",
            "handle": f"coalesce({u} ->> 'screen_name', {u} ->> 'username', {u} ->> 'uniqueId')",
            "display_name": f"coalesce({u} ->> 'name', {u} ->> 'full_name', {u} ->> 'nickname')",
            "created_at": f"{u} ->> 'created_at'",
            "followers_count": f"coalesce({u} -> 'followers_count', "
            f"{u} -> '$.authorStats.followerCount')",
            "following_count": f"coalesce({u} -> 'friends_count', "
            f"{u} -> '$.authorStats.followingCount')",
            "bio": f"coalesce({u} ->> 'description', {u} ->> 'signature')",
            "claimed_location": f"{u} ->> 'location'",
        },
        raw="CAST(u AS VARCHAR)",
        patch=True,
    )
    return [posts, accounts]
