"""Real export formats (X transparency CSV, twarc2 JSONL, Zeeschuimer NDJSON) and the
real coortweet datasets."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

import cibwatch
from cibwatch.errors import InputError
from cibwatch.ingest.formats import plan

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


@pytest.fixture
def ws(tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as w:
        yield w


def rows(ws, sql: str) -> list[tuple]:
    return ws.sql(sql).fetchall()


def test_formats_are_detected_from_headers_and_first_lines():
    found = {j.path.name: j.format for p in FIXTURES.iterdir() for j in plan(p)}
    assert found == {
        "testop_202001_tweets_csv_hashed.csv": "x-transparency",
        "testop_202001_users_csv_hashed.csv": "x-transparency",
        "search.jsonl": "twarc",
        "flat.jsonl": "twarc",
        "zeeschuimer-export.ndjson": "zeeschuimer",
        "4cat-dataset.ndjson": "zeeschuimer",
    }


def test_unknown_files_and_formats_are_clear_errors(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="no contract tables .* no file in a known export"):
        plan(tmp_path)
    with pytest.raises(InputError, match="unknown format 'facebook'"):
        plan(tmp_path, "facebook")


def test_x_transparency_archive(ws):
    summary = ws.ingest(FIXTURES / "x_transparency", progress=False)
    assert summary.table("posts").loaded == 3
    assert rows(ws, "SELECT post_id, account_id, created_at, kind, urls, hashtags, "
                    "parent_id, shared_id, lang FROM posts ORDER BY 1") == [
        ("0701", "0042", datetime(2015, 3, 26, 12, 45), "post", ["https://news.example/a"],
         ["news", "breaking"], None, None, "en"),
        ("0702", "0042", datetime(2015, 3, 26, 13, 0), "share", None, None, None, "0555",
         "en"),
        ("0703", "0043", datetime(2015, 3, 27, 8, 1), "reply", None, ["news"], "0701", None,
         "en"),
    ]
    extra = json.loads(rows(ws, "SELECT extra FROM posts WHERE post_id = '0702'")[0][0])
    assert extra["retweet_userid"] == "0099"
    assert extra["tweet_client_name"] == "Twitter Web Client"
    assert rows(ws, "SELECT account_id, handle, display_name, followers_count, created_at, "
                    "claimed_location, bio, lang, extra FROM accounts ORDER BY 1") == [
        ("0042", "newstoday", "News Today", 1510, datetime(2014, 2, 3), "Moscow", "Daily news",
         "ru", '{"user_profile_url":"https://t.co/abc"}'),
        ("0043", "jane_d", "Jane", 12, datetime(2016, 7, 1), None, None, "en", None),
    ]
    assert rows(ws, "SELECT table_name, row_number, reason FROM quarantine ORDER BY 1") == [
        ("accounts", 3, "followers_count: not an integer (zero)"),
        ("posts", 4, "created_at: not a timestamp (not a time)"),
    ]


def test_accounts_derived_from_posts_only_fill_gaps(ws, tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    shutil.copy(FIXTURES / "x_transparency" / "testop_202001_users_csv_hashed.csv", folder)
    ws.ingest(folder, progress=False)
    tweets = FIXTURES / "x_transparency" / "testop_202001_tweets_csv_hashed.csv"
    summary = ws.ingest(tweets, progress=False)
    a = summary.table("accounts")
    assert (a.loaded, a.updated, a.unchanged) == (0, 0, 2)
    assert rows(ws, "SELECT extra FROM accounts WHERE account_id = '0042'") == [
        ('{"user_profile_url":"https://t.co/abc"}',)]


def test_twarc_pages_and_flattened_tweets(ws):
    summary = ws.ingest(FIXTURES / "twarc", progress=False)
    assert summary.table("posts").loaded == 5
    assert rows(ws, "SELECT post_id, account_id, created_at, kind, urls, hashtags, parent_id, "
                    "shared_id FROM posts ORDER BY 1") == [
        ("1500000000000000001", "0777", datetime(2022, 3, 1, 12, 0), "post",
         ["https://vote.example/now"], ["election"], None, None),
        ("1500000000000000002", "888", datetime(2022, 3, 1, 12, 5), "share", None,
         ["election"], None, "1500000000000000001"),
        ("1500000000000000003", "888", datetime(2022, 3, 1, 12, 6), "reply", None, None,
         "1500000000000000001", None),
        ("1600000000000000001", "999", datetime(2022, 12, 1, 8, 0), "post",
         ["https://news.example/story"], None, None, None),
        ("1600000000000000002", "999", datetime(2022, 12, 1, 9, 0), "post", None, None, None,
         None),
    ]
    quoted = json.loads(rows(ws, "SELECT extra FROM posts WHERE post_id LIKE '16%1'")[0][0])
    assert quoted["quoted_id"] == "1500000000000000001"
    # the later page's copy of user 888 wins (last row of a key)
    assert rows(ws, "SELECT account_id, handle, followers_count, following_count, created_at "
                    "FROM accounts ORDER BY 1") == [
        ("0777", "voter", 100, 50, datetime(2020, 1, 1)),
        ("888", "amplifier", 4, 4001, datetime(2022, 2, 28, 23, 0)),
        ("999", "quoter", 7, 8, datetime(2019, 5, 5, 5, 5, 5)),
    ]
    assert rows(ws, "SELECT Q.row_number, Q.reason FROM quarantine Q ORDER BY 1") == [
        (2, "created_at: not a timestamp (yesterday)"), (3, "invalid JSON")]


def test_zeeschuimer_x_instagram_tiktok(ws):
    summary = ws.ingest(FIXTURES / "zeeschuimer", progress=False)
    assert summary.table("posts").loaded == 3
    assert rows(ws, "SELECT platform, post_id, account_id, created_at, text, urls, hashtags "
                    "FROM posts ORDER BY 1") == [
        ("instagram", "C1abcDEF", "55", datetime(2023, 11, 14, 22, 13, 20),
         "Sunset #travel #photo", None, ["travel", "photo"]),
        ("tiktok", "7300000000000000001", "6800000000000000000",
         datetime(2023, 11, 14, 22, 15), "dance #fyp", None, ["fyp"]),
        ("x", "1700000000000000001", "0123", datetime(2023, 11, 14, 22, 13, 20),
         "Hello #world https://t.co/z", ["https://world.example/"], ["world"]),
    ]
    assert rows(ws, "SELECT platform, account_id, handle, display_name, followers_count, "
                    "created_at FROM accounts ORDER BY 1") == [
        ("instagram", "55", "insta_user", "Insta User", None, None),
        ("tiktok", "6800000000000000000", "tiktoker", "Tik Toker", 5000, None),
        ("x", "0123", "xuser", "X User", 10, datetime(2018, 10, 10, 20, 19, 24)),
    ]
    assert rows(ws, "SELECT reason FROM quarantine") == [
        ("unsupported source_platform (linkedin.com)",)]


def test_4cat_ndjson_download_reads_like_the_zeeschuimer_export(tmp_path):
    tables = []
    for folder in ("zeeschuimer", "zeeschuimer_4cat"):
        with cibwatch.open(tmp_path / f"{folder}.duckdb") as ws:
            summary = ws.ingest(FIXTURES / folder, progress=False)
            assert summary.table("posts").loaded == 3
            tables.append((
                rows(ws, "SELECT * FROM posts ORDER BY platform"),
                rows(ws, "SELECT * FROM accounts ORDER BY platform"),
                rows(ws, "SELECT reason FROM quarantine"),
            ))
    assert tables[0] == tables[1]


def test_forced_format_and_gzip_export(ws, tmp_path):
    src = FIXTURES / "zeeschuimer" / "zeeschuimer-export.ndjson"
    target = tmp_path / "capture.json.gz"
    target.write_bytes(gzip.compress(src.read_bytes()))
    summary = ws.ingest(target, format="zeeschuimer", progress=False)
    assert summary.table("posts").loaded == 3
    # forcing the wrong format quarantines every row instead of guessing
    summary = ws.ingest(src, format="twarc", progress=False)
    assert summary.table("posts").loaded == 0
    assert summary.table("posts").quarantined == 4


def test_exports_are_idempotent(ws):
    for folder in ("x_transparency", "twarc", "zeeschuimer"):
        ws.ingest(FIXTURES / folder, progress=False)
    count = "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM accounts)"
    before = rows(ws, count)[0]
    for folder in ("x_transparency", "twarc", "zeeschuimer"):
        summary = ws.ingest(FIXTURES / folder, progress=False)
        assert summary.table("posts").loaded == summary.table("posts").updated == 0
    after = rows(ws, count)[0]
    assert before == after == (11, 8)


def test_real_german_elections_dataset(ws, shared_data):
    summary = ws.ingest(shared_data / "coortweet" / "german_elections", progress=False)
    assert summary.table("posts").loaded == 194_323
    assert summary.table("accounts").loaded == 58_314
    assert summary.quarantined == 0 and summary.unknown_author_posts == 0
    assert rows(ws, "SELECT count(*), count(DISTINCT platform) FROM posts") == [(194_323, 2)]
    assert rows(ws, "SELECT count(*) FROM accounts") == [(58_314,)]


def test_real_russian_coord_tweets_duplicates(ws, shared_data):
    summary = ws.ingest(shared_data / "coortweet" / "russian_coord_tweets", progress=False)
    p = summary.table("posts")
    assert (p.read, p.loaded, p.duplicates, p.quarantined) == (35_125, 35_085, 40, 40)
    assert summary.table("accounts").loaded == 9_509
    assert rows(ws, "SELECT count(*), count(DISTINCT post_id) FROM posts") == [(35_085, 35_085)]
    assert rows(ws, "SELECT count(*) FROM quarantine WHERE reason LIKE 'duplicate key%'") == [
        (40,)]


def test_twarc_single_tweet_lookup_page(ws, tmp_path):
    page = {
        "data": {"id": "42", "author_id": "7", "created_at": "2022-01-01T00:00:00.000Z",
                 "text": "one tweet"},
        "includes": {"users": [{"id": "7", "username": "seven", "name": "Seven"}]},
    }
    path = tmp_path / "lookup.jsonl"
    path.write_text(json.dumps(page) + "\n")
    summary = ws.ingest(path, progress=False)
    assert [j.format for j in plan(path)] == ["twarc"]
    assert summary.table("posts").loaded == 1
    assert rows(ws, "SELECT post_id, account_id, text FROM posts") == [("42", "7", "one tweet")]
    assert rows(ws, "SELECT account_id, handle FROM accounts") == [("7", "seven")]
