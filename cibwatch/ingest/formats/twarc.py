"""twarc2 JSON lines: X API v2 responses, as collected or flattened.

Collected (`twarc2 search q out.jsonl`): each line is one API page,
`{"data": [tweet, ...], "includes": {"users": [...], "tweets": [...]}, "meta": ...}`.
Flattened (`twarc2 flatten`): each line is one tweet with its `author` object inlined.
A v2 tweet has `id`, `author_id`, `created_at` (ISO 8601, UTC), `text`, `lang`,
`referenced_tweets` (`retweeted` / `replied_to` / `quoted` with `id`), `entities`
(`urls[].expanded_url`, `hashtags[].tag`, `mentions`) and `public_metrics`; a user has
`id`, `username`, `name`, `created_at`, `description`, `location` and
`public_metrics.followers_count` / `following_count`. Only the page's `data` tweets
become posts (not the referenced tweets in `includes.tweets`); users come from
`includes.users` and inlined `author` objects.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cibwatch.config import IngestConfig
from cibwatch.ingest.contract import Part
from cibwatch.ingest.formats._json import first_object, items_source, latest_per_key


def detect(path: Path) -> bool:
    obj = first_object(path)
    if obj is None:
        return False
    if isinstance(obj.get("data"), list | dict) and ("includes" in obj or "meta" in obj):
        return True
    return "author_id" in obj and "id" in obj and ("text" in obj or "__twarc" in obj)


# Tweets of a line: a page's `data` array (one object for a single-tweet lookup), or the
# line itself when flattened.
TWEETS = (
    "CASE json_type(line, '$.data') WHEN 'ARRAY' THEN json_extract(line, '$.data[*]') "
    "WHEN 'OBJECT' THEN [json_extract(line, '$.data')] ELSE [line::JSON] END"
)
# Users of a line: a page's `includes.users`, or the inlined authors.
USERS = (
    "CASE WHEN json_type(line, '$.data') IN ('ARRAY', 'OBJECT') "
    "THEN json_extract(line, '$.includes.users[*]') "
    "ELSE list_filter([json_extract(line, '$.author')], lambda u: u IS NOT NULL) END"
)


def _ref(kind: str) -> str:
    return (
        f"(list_filter(json_extract(item, '$.referenced_tweets[*]'), "
        f"lambda r: (r ->> 'type') = '{kind}')[1] ->> 'id')"
    )


def parts(con: duckdb.DuckDBPyConnection, path: Path, cfg: IngestConfig) -> list[Part]:
    tweets = items_source(path, cfg.max_line_size, TWEETS)
    posts = Part(
        table="posts",
        source=tweets,
        columns={
            "platform": "'x'",
            "post_id": "item ->> 'id'",
            "account_id": "item ->> 'author_id'",
            "created_at": "item ->> 'created_at'",
            "kind": f"CASE WHEN {_ref('retweeted')} IS NOT NULL THEN 'share' "
            f"WHEN {_ref('replied_to')} IS NOT NULL THEN 'reply' ELSE 'post' END",
            "text": "item ->> 'text'",
            "urls": "json_extract_string(item, '$.entities.urls[*].expanded_url')",
            "hashtags": "json_extract_string(item, '$.entities.hashtags[*].tag')",
            "parent_id": _ref("replied_to"),
            "shared_id": _ref("retweeted"),
            "lang": "item ->> 'lang'",
        },
        raw="coalesce(CAST(item AS VARCHAR), line)",
        extra="NULLIF(json_merge_patch('{}', json_object("
        "'conversation_id', item -> 'conversation_id', 'quoted_id', "
        f"to_json({_ref('quoted')}), 'public_metrics', item -> 'public_metrics', "
        "'mentions', json_extract(item, '$.entities.mentions[*].username'), "
        "'source', item -> 'source')), '{}')",
        invalid="bad",
    )
    users = items_source(path, cfg.max_line_size, USERS)
    accounts = Part(
        table="accounts",
        source=latest_per_key(f"SELECT * FROM ({users}) WHERE bad IS NULL", "item ->> 'id'",
                              "item"),
        columns={
            "platform": "'x'",
            "account_id": "__key",
            "handle": "u ->> 'username'",
            "display_name": "u ->> 'name'",
            "created_at": "u ->> 'created_at'",
            "followers_count": "u -> '$.public_metrics.followers_count'",
            "following_count": "u -> '$.public_metrics.following_count'",
            "bio": "u ->> 'description'",
            "claimed_location": "u ->> 'location'",
        },
        raw="CAST(u AS VARCHAR)",
        extra="NULLIF(json_merge_patch('{}', json_object('verified', u -> 'verified', "
        "'profile_image_url', u -> 'profile_image_url', 'url', u -> 'url')), '{}')",
    )
    return [posts, accounts]
