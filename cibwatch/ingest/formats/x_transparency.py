"""X/Twitter transparency archive ("information operations") CSV files.

X published each removed network as a tweets file (`*_tweets_csv_*.csv`: tweetid,
userid, user_screen_name, ..., tweet_text, tweet_time, is_retweet, retweet_tweetid,
hashtags, urls, user_mentions) and a users file (`*_users_csv_*.csv`: userid,
user_display_name, user_screen_name, user_reported_location, user_profile_description,
user_profile_url, follower_count, following_count, account_creation_date,
account_language). List cells look like `[tag1, tag2]` or `['tag1', 'tag2']`. Times
are UTC without an offset ("2015-03-26 12:45"). Accounts are also derived from the
user columns of the tweets file (they only fill gaps of a users-file row).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cibwatch.config import IngestConfig
from cibwatch.errors import InputError
from cibwatch.ingest.contract import Part
from cibwatch.ingest.reader import csv_header, csv_source, file_kind, struct_json
from cibwatch.ingest.validate import ident

USER_COLUMNS = {
    "handle": "user_screen_name",
    "display_name": "user_display_name",
    "created_at": "account_creation_date",
    "followers_count": "follower_count",
    "following_count": "following_count",
    "bio": "user_profile_description",
    "claimed_location": "user_reported_location",
    "lang": "account_language",
}
POST_COLUMNS = {
    "post_id": "tweetid",
    "account_id": "userid",
    "created_at": "tweet_time",
    "text": "tweet_text",
    "parent_id": "in_reply_to_tweetid",
    "shared_id": "retweet_tweetid",
    "lang": "tweet_language",
}
LIST_COLUMNS = {"urls": "urls", "hashtags": "hashtags"}


def _header(path: Path) -> list[str]:
    try:
        if file_kind(path) != "csv":
            return []
        return [h.lower() for h in csv_header(path)]
    except InputError:
        return []


def is_tweets_file(path: Path) -> bool:
    head = _header(path)
    return "tweetid" in head and "userid" in head


def is_users_file(path: Path) -> bool:
    head = _header(path)
    return "tweetid" not in head and {"userid", "user_screen_name"} <= set(head)


def detect(path: Path) -> bool:
    return is_tweets_file(path) or is_users_file(path)


def _list(col: str) -> str:
    """`[a, b]`, `['a', 'b']` or `["a","b"]` as a list of strings."""
    x = f"trim({ident(col)})"
    return (
        f"list_filter(list_transform(string_split(regexp_replace({x}, '^\\[|\\]$', '', 'g'),"
        f" ','), lambda e: trim(e, ' ''\"')), lambda e: e <> '')"
    )


def _accounts(names: list[str], source: str, patch: bool) -> Part:
    present = set(names)
    cols = {"platform": "'x'", "account_id": ident("userid")}
    cols.update({k: ident(v) for k, v in USER_COLUMNS.items() if v in present})
    used = {"userid", *USER_COLUMNS.values()}
    extra = [n for n in names if n not in used] if not patch else []
    raw_cols = ["userid", *[v for v in USER_COLUMNS.values() if v in present]]
    return Part(
        table="accounts",
        source=source,
        columns=cols,
        raw=f"CAST({struct_json(raw_cols, drop_nulls=False)} AS VARCHAR)",
        extra=struct_json(extra),
        patch=patch,
        csv_rejects=not patch,
    )


def parts(con: duckdb.DuckDBPyConnection, path: Path, cfg: IngestConfig) -> list[Part]:
    names = [n.lower() for n in csv_header(path)]
    if "userid" not in names:
        raise InputError(f"{path}: not an X transparency file (no userid column)")
    source = csv_source(path, names, cfg.max_line_size)
    if "tweetid" not in names:
        return [_accounts(names, source, patch=False)]
    present = set(names)
    cols = {"platform": "'x'"}
    cols.update({k: ident(v) for k, v in POST_COLUMNS.items() if v in present})
    cols.update({k: _list(v) for k, v in LIST_COLUMNS.items() if v in present})
    retweet = "false"
    if "is_retweet" in present:
        retweet = f"lower({ident('is_retweet')}) IN ('true', '1')"
    reply = (
        f"nullif(trim({ident('in_reply_to_tweetid')}), '') IS NOT NULL"
        if "in_reply_to_tweetid" in present
        else "false"
    )
    cols["kind"] = f"CASE WHEN {retweet} THEN 'share' WHEN {reply} THEN 'reply' ELSE 'post' END"
    used = {*POST_COLUMNS.values(), *LIST_COLUMNS.values(), *USER_COLUMNS.values(),
            "user_profile_url"}
    posts = Part(
        table="posts",
        source=source,
        columns=cols,
        raw=f"CAST({struct_json(names, drop_nulls=False)} AS VARCHAR)",
        extra=struct_json([n for n in names if n not in used]),
        csv_rejects=True,
    )
    user_cols = ["userid", *[v for v in USER_COLUMNS.values() if v in present]]
    latest = ", ".join(f"arg_max({ident(c)}, _ord) AS {ident(c)}" for c in user_cols[1:])
    authors = f"""
        SELECT min(_row) AS _row, min(_ord) AS _ord, {ident('userid')}
               {', ' + latest if latest else ''}
        FROM ({source}) WHERE nullif(trim({ident('userid')}), '') IS NOT NULL
        GROUP BY {ident('userid')}
    """
    return [posts, _accounts(user_cols, authors, patch=True)]
