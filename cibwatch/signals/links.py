"""URL keys: the same canonical link, and the same (rare) domain.

Canonicalisation is plain SQL string functions (DuckDB here; Spark SQL has the same
regexp_extract / lower / array functions), so millions of links never reach Python.
"""

from __future__ import annotations

import duckdb

from cibwatch.config import SignalConfig

# scheme://host[:port]path?query#fragment
_URL_RE = r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$"


def canonical_url_sql(col: str, tracking_re: str) -> str:
    """SQL expression: scheme dropped (http and https are one link), host lower-cased
    without www./m./mobile. and default port, tracking parameters removed and the rest
    sorted, fragment and trailing slash dropped. Not a URL -> the trimmed text."""
    host = (
        f"regexp_replace(regexp_replace(lower(regexp_extract({col}, '{_URL_RE}', 2)), "
        r"'^(www|m|mobile)\.', ''), ':(80|443)$', '')"
    )
    path = f"regexp_replace(regexp_extract({col}, '{_URL_RE}', 3), '/+$', '')"
    query = (
        "array_to_string(list_sort(list_filter(string_split(ltrim("
        f"regexp_extract({col}, '{_URL_RE}', 4), '?'), '&'), "
        f"lambda x: x <> '' AND NOT regexp_matches(lower(x), '{tracking_re}'))), '&')"
    )
    return (
        f"CASE WHEN regexp_matches({col}, '{_URL_RE}') THEN {host} || {path} || "
        f"CASE WHEN {query} = '' THEN '' ELSE '?' || {query} END ELSE trim({col}) END"
    )


def domain_sql(col: str) -> str:
    """SQL expression: the host of a URL, lower case, without www./m./mobile. or port."""
    return (
        f"regexp_replace(regexp_replace(lower(regexp_extract({col}, '{_URL_RE}', 2)), "
        r"'^(www|m|mobile)\.', ''), ':\d+$', '')"
    )


def _links_sql(source: str, tracking_re: str) -> str:
    """SELECT u, url, domain FROM `source`(u): the same values as `canonical_url_sql` and
    `domain_sql`, with the URL regex run once per link (one struct of its groups) instead
    of seven times: the regexes were most of the url stage (3.8 of 7 CPU s at 10.8M
    posts). Spark keeps the two expressions above; tests hold the two forms equal."""
    return f"""
        SELECT u,
               CASE WHEN scheme <> '' THEN regexp_replace(host, ':(80|443)$', '') || path
                        || CASE WHEN query = '' THEN '' ELSE '?' || query END
                    ELSE trim(u) END AS url,
               regexp_replace(host, ':\\d+$', '') AS domain
        FROM (SELECT u, s.scheme,
                     regexp_replace(lower(s.host), '^(www|m|mobile)\\.', '') AS host,
                     regexp_replace(s.path, '/+$', '') AS path,
                     array_to_string(list_sort(list_filter(
                         string_split(ltrim(s.query, '?'), '&'),
                         lambda x: x <> '' AND NOT regexp_matches(lower(x), '{tracking_re}')
                     )), '&') AS query
              FROM (SELECT u, regexp_extract(u, '{_URL_RE}',
                                             ['scheme', 'host', 'path', 'query']) AS s
                    FROM {source}))
        """


def extract_link_keys(con: duckdb.DuckDBPyConnection, cfg: SignalConfig) -> None:
    """Insert `url` (canonical link) and `domain` keys, one per post and distinct link."""
    links = _links_sql(
        "(SELECT DISTINCT u FROM used WHERE u IS NOT NULL AND trim(u) <> '')",
        cfg.tracking_params_regex,
    )
    # each distinct link is canonicalised once (the regexes are most of the cost; links
    # repeat: 112k distinct in 183k at 1.1M posts)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE post_urls AS
        WITH used AS (
            SELECT platform, account_id, post_id, created_at, unnest(urls) AS u
            FROM posts WHERE urls IS NOT NULL AND len(urls) > 0
        ), links AS ({links})
        SELECT DISTINCT x.platform, x.account_id, x.post_id, x.created_at AS ts, l.url,
               l.domain
        FROM used x JOIN links l ON l.u = x.u
        """
    )
    con.execute(
        """
        INSERT INTO keys
        SELECT platform, account_id, 'url', url, ts, post_id FROM post_urls WHERE url <> ''
        """
    )
    con.execute(
        """
        INSERT INTO keys
        SELECT DISTINCT ON (platform, account_id, post_id, domain)
               platform, account_id, 'domain', domain, ts, post_id
        FROM post_urls WHERE domain <> ''
        """
    )
    con.execute("DROP TABLE post_urls")
