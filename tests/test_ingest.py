"""Ingest of the contract's dataset folder: every encoding, bad rows, idempotence."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cibwatch
from cibwatch.config import Config
from cibwatch.errors import InputError
from cibwatch.ingest import ingest_dataset, quarantine_rows, upsert, write_quarantine_csv

ACCOUNTS = [
    {"platform": "x", "account_id": "00123", "handle": "alice", "followers_count": "10",
     "created_at": "2020-01-01T00:00:00Z", "nickname": "Al"},
    {"platform": "x", "account_id": "0456", "handle": "bob", "followers_count": "",
     "created_at": "2020-01-02 08:00:00+08:00", "nickname": ""},
]
POSTS = [
    {"platform": "x", "post_id": "001", "account_id": "00123",
     "created_at": "2023-05-04 17:15:00+08:00", "kind": "post",
     "urls": "https://a.example/1 https://b.example/2", "hashtags": '["tag1","tag2"]',
     "text": "hello, \"world\"", "mood": "happy"},
    {"platform": "x", "post_id": "002", "account_id": "0456",
     "created_at": "2023-05-04T09:16:00", "kind": "", "urls": "", "hashtags": "solo",
     "text": "", "mood": ""},
]
EXPECTED_POSTS = [
    ("001", "00123", datetime(2023, 5, 4, 9, 15), "post",
     ["https://a.example/1", "https://b.example/2"], ["tag1", "tag2"]),
    ("002", "0456", datetime(2023, 5, 4, 9, 16), "post", None, ["solo"]),
]


def write_csv(path: Path, rows: list[dict], gz: bool = False) -> Path:
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    return path


def _json_value(col: str, value: str):
    if value == "":
        return None
    if col in ("urls", "hashtags"):
        return json.loads(value) if value.startswith("[") else value.split(" ")
    if col == "followers_count":
        return int(value)
    return value


def write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> Path:
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: _json_value(k, v) for k, v in row.items()}) + "\n")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    cols = {k: [_json_value(k, r[k]) for r in rows] for k in rows[0]}
    pq.write_table(pa.table(cols), path)
    return path


WRITERS = {
    "csv": lambda p, r: write_csv(p.with_suffix(".csv"), r),
    "csv.gz": lambda p, r: write_csv(p.with_suffix(".csv.gz"), r, gz=True),
    "jsonl": lambda p, r: write_jsonl(p.with_suffix(".jsonl"), r),
    "jsonl.gz": lambda p, r: write_jsonl(p.with_suffix(".jsonl.gz"), r, gz=True),
    "parquet": lambda p, r: write_parquet(p.with_suffix(".parquet"), r),
}


def dataset(folder: Path, fmt: str = "csv", accounts=ACCOUNTS, posts=POSTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    WRITERS[fmt](folder / "accounts", accounts)
    WRITERS[fmt](folder / "posts", posts)
    return folder


def posts_of(ws) -> list[tuple]:
    return ws.sql(
        "SELECT post_id, account_id, created_at, kind, urls, hashtags FROM posts ORDER BY 1"
    ).fetchall()


@pytest.fixture
def ws(tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as w:
        yield w


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_encoding_gives_the_same_canonical_tables(ws, tmp_path, fmt):
    summary = ws.ingest(dataset(tmp_path / fmt, fmt), progress=False)
    assert summary.table("posts").loaded == 2
    assert summary.table("accounts").loaded == 2
    assert summary.quarantined == 0
    assert posts_of(ws) == EXPECTED_POSTS
    accounts = ws.sql(
        "SELECT account_id, asset_type, handle, followers_count, created_at, extra "
        "FROM accounts ORDER BY 1"
    ).fetchall()
    assert accounts == [
        ("00123", "account", "alice", 10, datetime(2020, 1, 1), '{"nickname":"Al"}'),
        ("0456", "account", "bob", None, datetime(2020, 1, 2), None),
    ]
    extra = ws.sql("SELECT extra FROM posts WHERE post_id = '001'").fetchall()[0][0]
    assert json.loads(extra) == {"mood": "happy"}
    assert ws.sql("SELECT text FROM posts WHERE post_id = '001'").fetchall()[0][0] == (
        'hello, "world"'
    )


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Shanghai"])
def test_parquet_timestamps_of_any_unit_and_zone_become_utc(ws, tmp_path, unit, tz):
    folder = tmp_path / "pq"
    folder.mkdir()
    write_parquet(folder / "accounts.parquet", ACCOUNTS)
    instant = pa.array([datetime(2023, 5, 4, 9, 15, 30)], pa.timestamp(unit))
    if tz:
        instant = pa.compute.assume_timezone(instant, "UTC").cast(pa.timestamp(unit, tz))
    table = pa.table({"platform": ["x"], "post_id": ["0009"], "account_id": ["00123"],
                      "created_at": instant, "urls": pa.array([["u1", "u2"]])})
    pq.write_table(table, folder / "posts.parquet")
    ws.ingest(folder, progress=False)
    assert ws.sql("SELECT post_id, created_at, urls FROM posts").fetchall() == [
        ("0009", datetime(2023, 5, 4, 9, 15, 30), ["u1", "u2"])
    ]


def test_split_files_of_mixed_formats_are_all_read(ws, tmp_path):
    folder = tmp_path / "split"
    folder.mkdir()
    write_csv(folder / "accounts.csv", ACCOUNTS)
    write_csv(folder / "posts-000.csv", POSTS[:1])
    write_parquet(folder / "posts-001.parquet", POSTS[1:])
    summary = ws.ingest(folder, progress=False)
    assert [(Path(f.file).name, f.loaded) for f in summary.files if f.table == "posts"] == [
        ("posts-000.csv", 1), ("posts-001.parquet", 1)]
    assert posts_of(ws) == EXPECTED_POSTS


def test_follows_table_is_optional_and_keyed(ws, tmp_path):
    folder = dataset(tmp_path / "f")
    write_csv(folder / "follows.csv", [
        {"platform": "x", "follower_id": "0456", "followee_id": "00123", "created_at": ""},
        {"platform": "x", "follower_id": "0456", "followee_id": "00123",
         "created_at": "2021-01-01"},
    ])
    summary = ws.ingest(folder, progress=False)
    assert summary.table("follows").loaded == 1
    assert summary.table("follows").duplicates == 1
    assert ws.sql("SELECT * FROM follows").fetchall() == [
        ("x", "0456", "00123", datetime(2021, 1, 1))]


def test_bad_rows_go_to_quarantine_with_file_row_and_reason(ws, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    accounts = [
        *ACCOUNTS,
        {"platform": "x", "account_id": "0789", "handle": "eve", "followers_count": "abc",
         "created_at": "", "nickname": ""},
        {"platform": "", "account_id": "0790", "handle": "", "followers_count": "",
         "created_at": "", "nickname": ""},
    ]
    write_csv(folder / "accounts.csv", accounts)
    path = folder / "posts.csv"
    write_csv(path, [*POSTS, {**POSTS[0], "post_id": "003", "created_at": "yesterday"},
                     {**POSTS[0], "post_id": "004", "hashtags": "[not json"}])
    with path.open("a", encoding="utf-8", newline="") as fh:  # one field too many
        fh.write("x,005,00123,2023-05-04T09:15:00Z,post,,,text,mood,EXTRA\r\n")
        fh.write("x,006,00123,2023-05-04T09:15:00Z,post,,,after the bad line,\r\n")
    summary = ws.ingest(folder, progress=False)
    assert summary.table("posts").loaded == 3
    assert summary.table("posts").quarantined == 3
    assert summary.table("accounts").quarantined == 2
    rows, total = quarantine_rows(ws, limit=100)
    assert total == 5
    found = {(t, Path(f).name, n, reason) for t, f, n, reason, _ in rows}
    assert found == {
        ("accounts", "accounts.csv", 3, "followers_count: not an integer (abc)"),
        ("accounts", "accounts.csv", 4, "missing platform"),
        ("posts", "posts.csv", 3, "created_at: not a timestamp (yesterday)"),
        ("posts", "posts.csv", 4, "hashtags: not a list ([not json)"),
        ("posts", "posts.csv", 5,
         "unparseable CSV line (Expected Number of Columns: 9 Found: 10)"),
    }
    raw = ws.sql("SELECT raw_row FROM quarantine WHERE row_number = 3 AND table_name = 'posts'")
    assert json.loads(raw.fetchall()[0][0])["created_at"] == "yesterday"
    # rows after the unparseable line keep their own row numbers
    assert ws.sql("SELECT count(*) FROM posts WHERE post_id = '006'").fetchall()[0][0] == 1
    assert summary.reasons[("posts", "created_at: not a timestamp")] == 1


def test_bad_jsonl_lines_are_quarantined_with_their_line_number(ws, tmp_path):
    folder = dataset(tmp_path / "j", "jsonl")
    with (folder / "posts.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("\n{broken json\n[1, 2]\n")
        fh.write(json.dumps({"platform": "x", "post_id": "9", "account_id": "1",
                             "created_at": "2023-01-01", "urls": {"not": "a list"}}) + "\n")
    summary = ws.ingest(folder, progress=False)
    assert summary.table("posts").loaded == 2
    rows = ws.sql("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall()
    assert rows == [(4, "invalid JSON"), (5, "not a JSON object"),
                    (6, 'urls: not a list ({"not":"a list"})')]


def test_unreadable_files_are_one_line_errors_naming_the_file(ws, tmp_path):
    good = dataset(tmp_path / "good")
    no_accounts = tmp_path / "no_accounts"
    no_accounts.mkdir()
    write_csv(no_accounts / "posts.csv", POSTS)
    with pytest.raises(InputError, match="no accounts table"):
        ws.ingest(no_accounts, progress=False)

    headerless = dataset(tmp_path / "headerless")
    lines = (headerless / "posts.csv").read_text().splitlines()[1:]
    (headerless / "posts.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"posts\.csv: no header with the required posts"):
        ws.ingest(headerless, progress=False)

    truncated = dataset(tmp_path / "truncated", "parquet")
    data = (truncated / "posts.parquet").read_bytes()
    (truncated / "posts.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"posts\.parquet: cannot read file") as err:
        ws.ingest(truncated, progress=False)
    assert "\n" not in str(err.value)

    wrong = dataset(tmp_path / "wrong")
    (wrong / "posts.csv").unlink()
    (wrong / "posts.parquet").write_text("platform,post_id\nx,1\n")
    with pytest.raises(InputError, match=r"posts\.parquet"):
        ws.ingest(wrong, progress=False)

    empty = dataset(tmp_path / "empty")
    (empty / "posts.csv").write_text("")
    with pytest.raises(InputError, match="empty file"):
        ws.ingest(empty, progress=False)

    with pytest.raises(InputError, match="no such file"):
        ws.ingest(tmp_path / "missing", progress=False)
    # none of those runs loaded posts; the accounts files before the bad file did load
    assert ws.sql("SELECT count(*) FROM posts").fetchall()[0][0] == 0
    assert ws.sql("SELECT DISTINCT table_name FROM ingest_log").fetchall() == [("accounts",)]
    ws.ingest(good, progress=False)
    assert ws.sql("SELECT count(*) FROM posts").fetchall()[0][0] == 2


def test_a_file_failing_midway_leaves_nothing_of_itself(ws, tmp_path, monkeypatch):
    folder = tmp_path / "mid"
    folder.mkdir()
    write_csv(folder / "accounts.csv", ACCOUNTS)
    write_csv(folder / "posts.csv", [*POSTS, {**POSTS[0], "post_id": "3", "created_at": "x"}])
    real_merge = upsert.merge

    def failing_merge(con, spec, patch=False, **kwargs):
        counts = real_merge(con, spec, patch, **kwargs)
        if spec.name == "posts":
            con.execute("SELECT * FROM no_such_table")  # fails after rows were inserted
        return counts

    monkeypatch.setattr(upsert, "merge", failing_merge)
    with pytest.raises(InputError, match=r"posts\.csv: cannot load"):
        ws.ingest(folder, progress=False)
    assert ws.sql("SELECT count(*) FROM posts").fetchall()[0][0] == 0
    assert ws.sql("SELECT count(*) FROM quarantine").fetchall()[0][0] == 0
    assert ws.sql("SELECT count(*) FROM accounts").fetchall()[0][0] == 2
    assert ws.sql("SELECT table_name FROM ingest_log").fetchall() == [("accounts",)]


def test_loading_twice_stores_nothing_twice(ws, tmp_path):
    folder = dataset(tmp_path / "twice")
    write_csv(folder / "posts-bad.csv", [{**POSTS[0], "post_id": "7", "created_at": "no"}])
    first = ws.ingest(folder, progress=False)
    second = ws.ingest(folder, progress=False)
    assert first.table("posts").loaded == 2
    p = second.table("posts")
    assert (p.loaded, p.updated, p.unchanged, p.quarantined) == (0, 0, 2, 1)
    assert second.table("accounts").unchanged == 2
    assert ws.sql("SELECT count(*) FROM posts").fetchall()[0][0] == 2
    assert ws.sql("SELECT count(*) FROM accounts").fetchall()[0][0] == 2
    assert ws.sql("SELECT count(*) FROM quarantine").fetchall()[0][0] == 1
    log = ws.sql("SELECT count(*), count(DISTINCT sha256) FROM ingest_log").fetchall()[0]
    assert log == (6, 3)


def test_overlapping_exports_update_changed_rows(ws, tmp_path):
    rows = [{**POSTS[0], "post_id": f"{i:03d}", "text": f"t{i}"} for i in range(1, 5)]
    ws.ingest(dataset(tmp_path / "a", posts=rows[:3]), progress=False)
    changed = {**rows[2], "text": "edited"}
    summary = ws.ingest(dataset(tmp_path / "b", "parquet", posts=[rows[1], changed, rows[3]]),
                        progress=False)
    p = summary.table("posts")
    assert (p.loaded, p.updated, p.unchanged) == (1, 1, 1)
    assert ws.sql("SELECT post_id, text FROM posts ORDER BY 1").fetchall() == [
        ("001", "t1"), ("002", "t2"), ("003", "edited"), ("004", "t4")]


def _split_posts(folder: Path) -> Path:
    """Split posts files (loaded in name order) of which later ones repeat keys of
    earlier ones, and a follows file repeating a key of another."""
    folder.mkdir()
    write_csv(folder / "accounts.csv", ACCOUNTS)
    rows = [{**POSTS[0], "post_id": f"{i:03d}", "text": f"t{i}"} for i in range(1, 6)]
    write_csv(folder / "posts-a.csv", rows[:2])  # 1, 2
    write_csv(folder / "posts-b.csv", rows[2:4])  # 3, 4: new
    write_csv(folder / "posts-c.csv", [{**rows[3], "text": "edited"}, rows[4]])  # 4, 5
    write_parquet(folder / "posts-d.parquet", [rows[0], rows[4]])  # both unchanged
    follow = {"platform": "x", "follower_id": "0456", "followee_id": "00123",
              "created_at": "2021-01-01"}
    write_csv(folder / "follows-1.csv", [follow])
    write_csv(folder / "follows-2.csv", [{**follow, "followee_id": "9"}, follow])
    return folder


def _counts(summary) -> list[tuple]:
    return [(Path(f.file).name, f.read, f.loaded, f.updated, f.unchanged, f.quarantined)
            for f in summary.files]


def test_split_files_repeating_keys_of_earlier_files_of_the_same_run(ws, tmp_path):
    """A later file's keys are matched against the rows the earlier files of the same run
    stored (kept as key hashes for the run), then against rows of an earlier run."""
    folder = _split_posts(tmp_path / "split")
    expected_first = [
        ("accounts.csv", 2, 2, 0, 0, 0),
        ("posts-a.csv", 2, 2, 0, 0, 0),
        ("posts-b.csv", 2, 2, 0, 0, 0),
        ("posts-c.csv", 2, 1, 1, 0, 0),
        ("posts-d.parquet", 2, 0, 0, 2, 0),
        ("follows-1.csv", 1, 1, 0, 0, 0),
        ("follows-2.csv", 2, 1, 0, 1, 0),
    ]
    assert _counts(ws.ingest(folder, progress=False)) == expected_first
    assert ws.sql("SELECT post_id, text FROM posts ORDER BY 1").fetchall() == [
        ("001", "t1"), ("002", "t2"), ("003", "t3"), ("004", "edited"), ("005", "t5")]
    assert ws.sql("SELECT count(*) FROM follows").fetchall()[0][0] == 2
    # again: every key is now stored before the run; c's edit of 004 is undone by b
    again = _counts(ws.ingest(folder, progress=False))
    assert again == [
        ("accounts.csv", 2, 0, 0, 2, 0),
        ("posts-a.csv", 2, 0, 0, 2, 0),
        ("posts-b.csv", 2, 0, 1, 1, 0),
        ("posts-c.csv", 2, 0, 1, 1, 0),
        ("posts-d.parquet", 2, 0, 0, 2, 0),
        ("follows-1.csv", 1, 0, 0, 1, 0),
        ("follows-2.csv", 2, 0, 0, 2, 0),
    ]
    assert ws.sql("SELECT count(*) FROM posts").fetchall()[0][0] == 5
    # the run's key hashes and scratch tables are gone
    assert ws.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]


def _scratch(ws) -> tuple:
    """Databases and TEMP tables an ingest run may leave behind (none should be)."""
    return (
        ws.sql("SELECT count(*) FROM duckdb_databases() WHERE starts_with(database_name, '__cib')")
        .fetchall()[0][0],
        ws.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0],
    )


@pytest.mark.parametrize("ahead", [0, 1 << 26])
def test_files_staged_ahead_load_in_order_and_a_bad_one_stops_the_run(ws, tmp_path, ahead):
    """Files are read and checked ahead of their loads (one, or all of these small ones):
    a file that cannot be read ends the run where it stands in file order, leaving the
    files before it loaded and nothing of itself, the files after it or the scratch."""
    cfg = Config(ingest=replace(Config().ingest, stage_ahead_bytes=ahead))
    folder = _split_posts(tmp_path / "split")
    assert _counts(ingest_dataset(ws, folder, progress=False, config=cfg)) == [
        ("accounts.csv", 2, 2, 0, 0, 0), ("posts-a.csv", 2, 2, 0, 0, 0),
        ("posts-b.csv", 2, 2, 0, 0, 0), ("posts-c.csv", 2, 1, 1, 0, 0),
        ("posts-d.parquet", 2, 0, 0, 2, 0), ("follows-1.csv", 1, 1, 0, 0, 0),
        ("follows-2.csv", 2, 1, 0, 1, 0)]
    assert _scratch(ws) == (0, 0)
    with cibwatch.open(tmp_path / "bad.duckdb") as w:
        (folder / "posts-c.csv").write_text("platform,text\nx,no ids\n")
        with pytest.raises(InputError, match=r"posts-c\.csv: no header with the required"):
            ingest_dataset(w, folder, progress=False, config=cfg)
        assert w.sql("SELECT file FROM ingest_log ORDER BY rowid").fetchall() == [
            (str(folder / name),) for name in ("accounts.csv", "posts-a.csv", "posts-b.csv")]
        assert w.sql("SELECT count(*) FROM posts").fetchall()[0][0] == 4
        assert _scratch(w) == (0, 0)
        _split_posts(tmp_path / "again")
        ingest_dataset(w, tmp_path / "again", progress=False, config=cfg)
        assert _scratch(w) == (0, 0)
        for table in ("accounts", "posts", "follows"):
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert w.sql(query).fetchall() == ws.sql(query).fetchall()


def test_rows_a_file_adds_to_stored_ones_are_stored_in_file_order(ws, tmp_path):
    """New and changed rows go in in file order, also when they are matched against
    stored rows (a join's output order is whatever its threads made it): 300k rows, more
    than DuckDB's row groups of 122,880, so that the join runs on several threads."""
    con = duckdb.connect()
    for name, n, step in (("first", 300_000, 3), ("later", 300_000, 1)):
        (tmp_path / name).mkdir()
        write_csv(tmp_path / name / "accounts.csv", ACCOUNTS)
        con.execute(
            f"""
            COPY (SELECT 'x' AS platform, lpad(CAST(i AS VARCHAR), 7, '0') AS post_id,
                         'a' AS account_id, '2024-01-01' AS created_at, '{name}' AS text
                  FROM range(0, {n}, {step}) t(i) ORDER BY hash(i, '{name}'))
            TO '{tmp_path / name / "posts.csv"}' (HEADER)
            """
        )
    ws.ingest(tmp_path / "first", progress=False)
    summary = ws.ingest(tmp_path / "later", progress=False)
    assert (summary.table("posts").loaded, summary.table("posts").updated) == (200_000, 100_000)
    stored = ws.sql("SELECT post_id FROM posts ORDER BY rowid").fetchall()
    in_file = con.execute(
        f"SELECT post_id FROM read_csv('{tmp_path / 'later' / 'posts.csv'}', all_varchar = true)"
    ).fetchall()
    assert stored == in_file  # every stored row was changed: all are the later file's


def test_a_key_hash_match_is_checked_on_the_keys(tmp_path, monkeypatch):
    """Key hashes only rule overlap out: when they say "maybe" (as a hash collision
    would), the keys decide, and every count and row is the same."""
    folder = _split_posts(tmp_path / "split")
    runs = {}
    for label in ("hashes", "always maybe"):
        if label == "always maybe":
            monkeypatch.setattr(upsert.KeyHashes, "may_overlap", lambda self, spec, checked: True)
        with cibwatch.open(tmp_path / f"{label}.duckdb") as w:
            summary = w.ingest(folder, progress=False)
            tables = {t: w.sql(f"SELECT * EXCLUDE (quarantined_at) FROM {t}").fetchall()
                      if t == "quarantine" else w.sql(f"SELECT * FROM {t}").fetchall()
                      for t in ("accounts", "posts", "follows", "quarantine")}
            runs[label] = (_counts(summary), tables)
    assert runs["hashes"] == runs["always maybe"]
    assert ("posts-b.csv", 2, 2, 0, 0, 0) in runs["hashes"][0]


def test_duplicate_keys_in_one_file_last_row_wins(ws, tmp_path):
    posts = [POSTS[0], {**POSTS[0], "text": "second"}, POSTS[1], {**POSTS[0], "text": "third"}]
    summary = ws.ingest(dataset(tmp_path / "dup", posts=posts), progress=False)
    p = summary.table("posts")
    assert (p.read, p.loaded, p.duplicates, p.quarantined) == (4, 2, 2, 2)
    assert ws.sql("SELECT text FROM posts WHERE post_id = '001'").fetchall() == [("third",)]
    reasons = ws.sql("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall()
    assert reasons == [(1, "duplicate key in file (superseded by row 4)"),
                       (2, "duplicate key in file (superseded by row 4)")]


def test_same_id_on_two_platforms_is_two_rows(ws, tmp_path):
    posts = [POSTS[0], {**POSTS[0], "platform": "Facebook"}]
    ws.ingest(dataset(tmp_path / "plat", posts=posts), progress=False)
    assert ws.sql("SELECT platform, post_id FROM posts ORDER BY 1").fetchall() == [
        ("facebook", "001"), ("x", "001")]


def test_posts_by_unknown_authors_are_ingested_and_reported(ws, tmp_path):
    posts = [*POSTS, {**POSTS[0], "post_id": "5", "account_id": "ghost"},
             {**POSTS[0], "post_id": "6", "account_id": "ghost"}]
    summary = ws.ingest(dataset(tmp_path / "ghost", posts=posts), progress=False)
    assert summary.table("posts").loaded == 4
    assert (summary.unknown_author_posts, summary.unknown_authors) == (2, 1)


@pytest.mark.parametrize("scope", ["", "GLOBAL"])
def test_naive_timestamps_are_utc_whatever_the_session_zone(ws, tmp_path, scope):
    # GLOBAL: the zone a new connection (such as the one that stages files) starts in
    ws.con.execute(f"SET {scope} TimeZone = 'America/New_York'")
    ws.ingest(dataset(tmp_path / "tz"), progress=False)
    assert posts_of(ws) == EXPECTED_POSTS
    zone = ws.sql("SELECT current_setting('TimeZone')").fetchall()[0][0]
    assert zone == "America/New_York"  # the caller's setting is restored


def test_timestamps_of_any_offset_and_extreme_values_are_utc(ws, tmp_path):
    """Every text timestamp is stored as DuckDB's own UTC conversion would give it, even
    at the ends of the range (infinity, years before 1 and after 9999)."""
    values = ["2020-01-01 10:00:00+05:30", "2020-01-01T10:00:00-09:30", "2020-01-01 10:00",
              "Wed Oct 10 20:19:24 +0800 2018", "infinity", "-infinity", "0001-01-01 00:00Z",
              "-0100-06-01 12:00:00+02", "290309-12-22 00:00:00Z", "1969-12-31 23:59:59.999999"]
    posts = [{**POSTS[0], "post_id": f"{i:03d}", "created_at": v} for i, v in enumerate(values)]
    summary = ws.ingest(dataset(tmp_path / "ts", posts=posts), progress=False)
    assert summary.table("posts").loaded == len(values)
    stored = ws.sql("SELECT CAST(created_at AS VARCHAR) FROM posts ORDER BY post_id").fetchall()
    expected = [
        ws.sql(
            "SELECT CAST(timezone('UTC', coalesce(TRY_CAST(? AS TIMESTAMPTZ), "
            "try_strptime(?, '%a %b %d %H:%M:%S %z %Y'))) AS VARCHAR)", params=[v, v]
        ).fetchall()[0]
        for v in values
    ]
    assert stored == expected
    assert stored[:4] == [("2020-01-01 04:30:00",), ("2020-01-01 19:30:00",),
                          ("2020-01-01 10:00:00",), ("2018-10-10 12:19:24",)]


def test_quarantine_csv_is_spreadsheet_safe(ws, tmp_path):
    posts = [*POSTS, {**POSTS[0], "post_id": "=HYPERLINK(\"http://evil\")", "created_at": "?"}]
    ws.ingest(dataset(tmp_path / "evil", posts=posts), progress=False)
    out = tmp_path / "q.csv"
    assert write_quarantine_csv(ws, out) == 1
    with out.open(encoding="utf-8") as fh:
        row = list(csv.DictReader(fh))[0]
    assert row["reason"] == "created_at: not a timestamp (?)"
    assert row["raw_row"].startswith("{")
    assert row["row_number"] == "3"
    assert write_quarantine_csv(ws, out, table="accounts") == 0


def test_python_api_returns_arrow_tables(tmp_path):
    ws = cibwatch.open(tmp_path / "api.duckdb")
    ws.ingest(dataset(tmp_path / "api"), progress=False)
    posts = ws.posts()
    assert posts.num_rows == 2
    frame = posts.to_pandas()
    assert sorted(frame["post_id"]) == ["001", "002"]
    assert ws.accounts().column("account_id").to_pylist() == ["00123", "0456"]
    assert ws.sql("SELECT count(*) FROM posts WHERE kind = 'post'").fetchall() == [(2,)]
    ws.close()
    with cibwatch.open(tmp_path / "api.duckdb", read_only=True) as again:
        assert again.posts().num_rows == 2


def test_progress_bars_do_not_change_the_result(ws, tmp_path, capsys):
    summary = ws.ingest(dataset(tmp_path / "bars"), progress=True)
    assert summary.table("posts").loaded == 2
    assert posts_of(ws) == EXPECTED_POSTS


def test_ingest_settings_are_restored(ws, tmp_path):
    before = ws.sql("SELECT current_setting('memory_limit')").fetchall()
    ingest_dataset(ws, dataset(tmp_path / "s"), progress=False)
    assert ws.sql("SELECT current_setting('memory_limit')").fetchall() == before
    assert isinstance(ws.con, duckdb.DuckDBPyConnection)


def test_bom_quoted_newlines_and_bad_bytes_in_csv(ws, tmp_path):
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "accounts.csv").write_bytes(b"\xef\xbb\xbfplatform,account_id\r\nx,0001\r\n")
    (folder / "posts.csv").write_bytes(
        b"platform,post_id,account_id,created_at,text\n"
        b'x,1,0001,2023-01-01,"two\nlines"\n'
        b"x,2,0001,2023-01-01,caf\xe9\n"
        b"x,3,0001,2023-01-01,fine\n"
    )
    summary = ws.ingest(folder, progress=False)
    assert ws.sql("SELECT account_id FROM accounts").fetchall() == [("0001",)]
    assert ws.sql("SELECT post_id, text FROM posts ORDER BY 1").fetchall() == [
        ("1", "two\nlines"), ("3", "fine")]
    assert summary.table("posts").quarantined == 1
    rows, _ = quarantine_rows(ws)
    assert rows[0][3].startswith("unparseable CSV line (Invalid unicode")
    assert rows[0][2] == 2


def test_generated_world_loads_without_loss(ws, small_world):
    summary = ws.ingest(small_world, progress=False)
    assert summary.quarantined == 0
    for table in ("accounts", "posts", "follows"):
        n = ws.sql(
            f"SELECT count(*) FROM read_csv('{small_world / (table + '.csv')}', all_varchar=true)"
        ).fetchall()[0][0]
        assert summary.table(table).loaded == n > 0
        assert ws.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0] == n


def test_big_csv_rows_keep_file_order_and_row_numbers(ws, tmp_path):
    """A CSV big enough for DuckDB to read in parallel chunks (rows are numbered by their
    place in the scratch table): row numbers, last-row-wins and the stored order all
    follow the file, across an unparseable line."""
    folder = tmp_path / "big"
    folder.mkdir()
    write_csv(folder / "accounts.csv", ACCOUNTS)
    n = 150_000  # ~12 MB: more than one 8 MB chunk of DuckDB's CSV reader
    path = folder / "posts.csv"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
            SELECT 'x' AS platform,
                   CASE WHEN i = {n - 10} THEN 'p000000005' ELSE 'p' || lpad(i::VARCHAR, 9, '0')
                   END AS post_id,
                   '00123' AS account_id,
                   CASE WHEN i = {n - 100} THEN 'not a time' ELSE '2024-01-01T00:00:00Z' END
                       AS created_at,
                   'row ' || i || ' ' || repeat('x', 40) AS text
            FROM range(1, {n + 1}) t(i)
        ) TO '{path}' (FORMAT csv, HEADER true)
        """
    )
    con.close()
    lines = path.read_bytes().split(b"\n")
    bad_row = n // 2  # data row of the unparseable line: after data row bad_row - 1
    lines.insert(bad_row, b"x,too,many,fields,in,this,line")
    path.write_bytes(b"\n".join(lines))

    summary = ws.ingest(folder, progress=False)
    p = summary.table("posts")
    assert (p.read, p.loaded, p.quarantined, p.duplicates) == (n + 1, n - 2, 3, 1)

    def file_row(i: int) -> int:  # data row in the file of generated row i
        return i if i < bad_row else i + 1

    rows = ws.sql("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall()
    assert [r for r, _ in rows] == [5, bad_row, file_row(n - 100)]
    assert rows[0][1] == f"duplicate key in file (superseded by row {file_row(n - 10)})"
    assert rows[1][1].startswith("unparseable CSV line (Expected Number of Columns: 5")
    assert rows[2][1] == "created_at: not a timestamp (not a time)"
    assert ws.sql("SELECT text FROM posts WHERE post_id = 'p000000005'").fetchall() == [
        (f"row {n - 10} " + "x" * 40,)]
    stored = ws.sql("SELECT text FROM posts").fetchall()  # insertion order
    expected = [i for i in range(1, n + 1) if i not in (5, n - 100)]
    assert [int(t.split()[1]) for (t,) in stored] == expected
