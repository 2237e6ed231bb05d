"""Engagement keys: the same re-shared post, the same post commented on / replied to /
reacted to, the same hashtag sequence, the same media hash."""

from __future__ import annotations

import duckdb

from cibwatch.config import SignalConfig


def extract_engagement_keys(con: duckdb.DuckDBPyConnection, cfg: SignalConfig) -> None:
    """Insert `share`, `reply`, `react`, `engage`, `hashtags` and `media` keys."""
    con.execute(
        """
        INSERT INTO keys
        SELECT platform, account_id, 'share', shared_id, created_at, post_id
        FROM posts WHERE shared_id IS NOT NULL AND shared_id <> ''
        """
    )
    con.execute(
        """
        INSERT INTO keys
        SELECT platform, account_id,
               CASE WHEN kind = 'reaction' THEN 'react' ELSE 'reply' END,
               parent_id, created_at, post_id
        FROM posts WHERE parent_id IS NOT NULL AND parent_id <> ''
        """
    )
    # `engage`: the author an asset re-shares, comments on or reacts to, with no window;
    # the author holds its own key too. Two assets that engage with each other, or with
    # the same few authors, share these keys: an operation's echo chamber.
    con.execute(
        """
        INSERT INTO keys
        SELECT DISTINCT p.platform, p.account_id, 'engage', t.account_id, NULL, NULL
        FROM posts p
        JOIN posts t ON t.platform = p.platform AND t.post_id = coalesce(p.shared_id, p.parent_id)
        WHERE coalesce(p.shared_id, p.parent_id) IS NOT NULL AND p.account_id <> t.account_id
        """
    )
    con.execute(
        """
        INSERT INTO keys
        SELECT platform, key, 'engage', key, NULL, NULL
        FROM (SELECT DISTINCT platform, key FROM keys WHERE key_type = 'engage')
        """
    )
    # The ordered, lower-cased hashtag list: a shared sequence of several tags is a
    # template; one tag alone is a topic, not a key.
    con.execute(
        f"""
        INSERT INTO keys
        SELECT platform, account_id, 'hashtags',
               array_to_string(list_transform(hashtags, lambda h: lower(trim(h, '#'))), ' '),
               created_at, post_id
        FROM posts WHERE len(hashtags) >= {int(cfg.min_hashtags)}
        """
    )
    con.execute(
        """
        INSERT INTO keys
        SELECT platform, account_id, 'media', m, created_at, post_id
        FROM (SELECT DISTINCT platform, account_id, m, created_at, post_id
              FROM (SELECT platform, account_id, created_at, post_id,
                           unnest(media_hashes) AS m
                    FROM posts WHERE len(media_hashes) > 0)
              WHERE m IS NOT NULL AND m <> '')
        """
    )
