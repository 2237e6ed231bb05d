"""Link, engagement and account-level keys, extracted by SQL from a real workspace."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from cibwatch.config import Config
from cibwatch.signals import extract_keys
from cibwatch.signals.links import _links_sql, canonical_url_sql, domain_sql
from cibwatch.workspace import Workspace

T0 = datetime(2024, 3, 1, 8, 0, 0)
TRACKING = Config().signals.tracking_params_regex


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://WWW.Example.COM/News/Story/?utm_source=fb&id=7#top",
            "example.com/News/Story?id=7",
        ),
        ("http://m.example.com/News/Story?id=7&fbclid=abc", "example.com/News/Story?id=7"),
        ("https://mobile.example.com:443/News/Story/?gclid=1&id=7", "example.com/News/Story?id=7"),
        ("https://example.com/a?b=2&a=1", "example.com/a?a=1&b=2"),
        ("https://example.com/", "example.com"),
        ("not a url", "not a url"),
    ],
)
def test_canonical_url(url, canonical):
    con = duckdb.connect()
    got = con.execute(
        f"SELECT {canonical_url_sql('u', TRACKING)} FROM (SELECT ?::VARCHAR AS u)", [url]
    ).fetchall()
    assert got[0][0] == canonical


def test_domain():
    con = duckdb.connect()
    got = con.execute(
        f"SELECT {domain_sql('u')} FROM (SELECT ?::VARCHAR AS u)", ["https://WWW.Rare-News.cn:8080/x"]
    )
    assert got.fetchall()[0][0] == "rare-news.cn"


def test_one_pass_links_equal_canonical_and_domain_sql():
    # extract_link_keys runs the URL regex once per link; Spark runs canonical_url_sql
    # and domain_sql: both must give every link the same url and domain keys
    links = [
        "HTTPS://WWW.Example.COM/News/Story/?utm_source=fb&id=7#top",
        "http://m.example.com/a//?&&utm_x&z=1&b=2",
        "ftp://mobile.example.org:8080",
        "https://example.com:443?fbclid=1",
        "http://[::1]:80/",
        "http:///path/",
        "https://x.com/a?b#c?d",
        "a://",
        "1http://x.com",
        "  not a url ",
        "www.example.com/no-scheme",
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE l AS SELECT unnest(?::VARCHAR[]) AS u", [links])
    old = con.execute(
        f"SELECT u, {canonical_url_sql('u', TRACKING)}, {domain_sql('u')} FROM l ORDER BY u"
    ).fetchall()
    new = con.execute(
        f"SELECT * FROM ({_links_sql('l', TRACKING)}) ORDER BY u"
    ).fetchall()
    assert new == old
    assert ("ftp://mobile.example.org:8080", "example.org:8080", "example.org") in new
    assert ("  not a url ", "not a url", "") in new


def _world(tmp_path):
    ws = Workspace(tmp_path / "ws.duckdb")
    con = ws.con
    con.executemany(
        "INSERT INTO accounts (platform, account_id, handle, display_name, created_at, "
        "avatar_hash) VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("x", "a1", "lucy_chen_4821", "Lucy  Chén", T0, "FFAA"),
            ("x", "a2", "lucy.chen77", "lucy chen", T0 + timedelta(minutes=1), "ffaa"),
            ("x", "a3", "bob", "Bo", T0 + timedelta(days=3), None),
            ("x", "a4", "x99", None, None, ""),
        ],
    )
    rows = [
        ("x", "p1", "a1", T0, "post", "Short", ["https://www.site.com/a/?utm_medium=x"],
         ["One", "Two"], ["m1", "m1"], None, None),
        ("x", "p2", "a2", T0, "share", None, None, ["solo"], None, None, "p1"),
        ("x", "p3", "a3", T0, "comment", "a comment that is long enough to count here",
         None, None, None, "p1", None),
        ("x", "p4", "a3", T0, "reaction", None, None, None, None, "p1", None),
    ]
    con.executemany(
        "INSERT INTO posts (platform, post_id, account_id, created_at, kind, text, urls, "
        "hashtags, media_hashes, parent_id, shared_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    con.execute("INSERT INTO follows VALUES ('x', 'a1', 'page9', NULL), ('x', 'a1', 'page9', NULL)")
    return ws


def test_every_key_type_extracted(tmp_path):
    ws = _world(tmp_path)
    n = extract_keys(ws.con, Config())
    keys = ws.con.execute(
        "SELECT key_type, account_id, key, post_id FROM keys ORDER BY ALL"
    ).fetchall()
    assert n == len(keys)
    got = {(kt, acc, key) for kt, acc, key, _ in keys}
    assert ("url", "a1", "site.com/a") in got
    assert ("domain", "a1", "site.com") in got
    assert ("hashtags", "a1", "one two") in got
    assert not any(kt == "hashtags" and acc == "a2" for kt, acc, _ in got)  # one tag only
    assert ("media", "a1", "m1") in got
    assert sum(1 for kt, *_ in keys if kt == "media") == 1  # same hash twice in a post
    assert ("share", "a2", "p1") in got
    assert ("reply", "a3", "p1") in got
    assert ("react", "a3", "p1") in got
    assert ("avatar", "a1", "ffaa") in got and ("avatar", "a2", "ffaa") in got
    assert not any(kt == "avatar" and acc == "a4" for kt, acc, _ in got)
    assert ("handle", "a1", "lucychen#") in got and ("handle", "a2", "lucychen#") in got
    assert not any(kt == "handle" and acc in ("a3", "a4") for kt, acc, _ in got)
    assert ("name", "a1", "lucy chen") in got and ("name", "a2", "lucy chen") in got
    batches = {acc: key for kt, acc, key in got if kt == "batch"}
    assert batches["a1"] == batches["a2"] != batches["a3"]
    # a follow counts once, and the followee holds its own follow key
    follow = sorted((acc, key) for kt, acc, key, _ in keys if kt == "follow")
    assert follow == [("a1", "page9"), ("page9", "page9")]
    # engagement keys: the engaged author, held by the engager and the author itself
    engage = sorted((acc, key) for kt, acc, key, _ in keys if kt == "engage")
    assert engage == [("a1", "a1"), ("a2", "a1"), ("a3", "a1")]
    texts = [(acc, pid) for kt, acc, _, pid in keys if kt == "text"]
    assert texts == [("a3", "p3")]  # "Short" is below min_text_chars


def test_rerun_replaces_keys(tmp_path):
    ws = _world(tmp_path)
    first = extract_keys(ws.con, Config())
    assert extract_keys(ws.con, Config()) == first


@pytest.mark.parametrize("failing", ["extract_text_keys", "extract_account_keys"])
def test_a_failure_on_either_side_keeps_the_old_keys(tmp_path, monkeypatch, failing):
    """Text keys and the other keys are two transactions on two connections; a failure
    in either, after the other side has inserted, rolls both back."""
    import cibwatch.signals as signals

    ws = _world(tmp_path)
    extract_keys(ws.con, Config())
    before = ws.con.execute("SELECT * FROM keys ORDER BY ALL").fetchall()
    real = getattr(signals, failing)

    def fail(con, cfg, **kwargs):
        real(con, cfg, **kwargs)  # its rows are inserted, then it fails
        raise RuntimeError("disk full")

    monkeypatch.setattr(signals, failing, fail)
    with pytest.raises(RuntimeError, match="disk full"):
        extract_keys(ws.con, Config())
    assert ws.con.execute("SELECT * FROM keys ORDER BY ALL").fetchall() == before
    monkeypatch.setattr(signals, failing, real)
    assert extract_keys(ws.con, Config()) == len(before)
