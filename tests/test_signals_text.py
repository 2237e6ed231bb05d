"""Text keys: normalisation, exact fingerprints, MinHash near-duplicate groups."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from datasketch import MinHash

from cibwatch.signals.text import (
    minhash_signatures,
    near_duplicate_groups,
    normalise,
    shingle_hashes,
)


def test_normalise_nfkc_case_urls_mentions_whitespace():
    out = normalise(
        pa.array(["  ＨＥＬＬＯ   World https://t.co/x?a=1 @someone\tagain ", None, "Ⅻ  o\u200bk"])
    ).to_pylist()
    assert out == ["hello world again", None, "xii ok"]


def test_normalise_controls_end_or_join_urls_as_before():
    # invisible characters go before URLs are removed (a zero-width space cannot hide a
    # URL), tab/newline/return become spaces that end a URL, \v is removed, and URLs go
    # before mentions; U+2028 is no control character and stays
    out = normalise(pa.array([
        "see www\u200b.evil.com/x now",
        "a\tb\u200b\x0bc\r\nd",
        "go http://x.com/a\tb",
        "@joe.www.site.com/path x",
        "\x85z\u2028q\u00a0\u3000r",
    ])).to_pylist()
    assert out == ["see now", "a bc d", "go b", "x", "z\u2028q r"]


def test_shingles_never_cross_text_boundaries():
    texts = pa.array(["abcdef", "xy", "ghij"])
    hashes, first = shingle_hashes(texts, 3)
    assert list(np.diff(first)) == [4, 0, 2]
    # the same shingle in another text hashes the same; different shingles differ
    again, _ = shingle_hashes(pa.array(["zabc"]), 3)
    assert again[1] == hashes[0]
    assert len(set(hashes.tolist())) == 6


def test_minhash_similarity_tracks_jaccard_like_datasketch():
    a = "the harbour project brings prosperity to every family in the province " * 2
    b = a.replace("prosperity", "happiness")
    c = "completely unrelated chatter about football scores and the weekend weather"
    sig = minhash_signatures(pa.array([a, b, c]), k=5, num_perm=256)
    est_ab = (sig[0] == sig[1]).mean()
    est_ac = (sig[0] == sig[2]).mean()

    def ds(x, y):
        m1, m2 = MinHash(256, seed=1), MinHash(256, seed=1)
        for s in {x[i : i + 5] for i in range(len(x) - 4)}:
            m1.update(s.encode())
        for s in {y[i : i + 5] for i in range(len(y) - 4)}:
            m2.update(s.encode())
        return m1.jaccard(m2)

    assert abs(est_ab - ds(a, b)) < 0.12
    assert est_ab > 0.6 and est_ac < 0.1


def test_near_duplicates_grouped_in_chinese_and_english():
    zh = "港口建设项目为全省每一个家庭带来了繁荣与幸福，我们要坚定支持"
    texts = [
        zh,
        zh.replace("坚定", "全力"),
        "今天天气很好，我们去公园散步然后吃了一顿非常好吃的午饭",
        "the harbour project brings prosperity to every family in the province today",
        "the harbour project brings prosperity to every family in the province, today!",
        "football scores and the weekend weather were the talk of the town on monday",
    ]
    sig = minhash_signatures(pa.array(texts), k=3, num_perm=64)
    groups = near_duplicate_groups(sig, bands=16, min_similarity=0.6)
    assert groups[0] == groups[1]
    assert groups[3] == groups[4]
    assert len({groups[0], groups[2], groups[3], groups[5]}) == 4


def test_rank_of_rowids_contiguous_or_not():
    from cibwatch.signals.text import _rank_of

    for base in (0, 1 << 55):  # a transaction's new rows have rowids from a large base
        rowids = np.array([4, 0, 2, 1, 3]) + base
        assert _rank_of(rowids)(np.array([0, 1, 2, 3, 4]) + base).tolist() == [1, 3, 2, 4, 0]
    gaps = np.array([70, 3, 50, 4])
    assert _rank_of(gaps)(np.array([3, 4, 50, 70])).tolist() == [1, 3, 2, 0]
