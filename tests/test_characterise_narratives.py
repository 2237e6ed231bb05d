"""Themes, languages, targets, domains and hashtags on hand-built multilingual texts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

import cibwatch
from cibwatch.characterise import build_profiles
from cibwatch.characterise.narratives import themes
from cibwatch.config import Config

T0 = dt.datetime(2024, 4, 1, 9)
LABS = [
    "The truth about Fort Detrick must be investigated now",
    "The truth about Fort Detrick must be investigated now!!",
    "Fort Detrick biolabs: the truth must be investigated",
    "Why is America hiding Fort Detrick? The truth must be investigated",
]
ROAD = [
    "Belt and Road brings prosperity to millions of families",
    "Belt and Road brings prosperity to millions of families 👍",
    "Prosperity for millions: Belt and Road delivers",
]
ZH = ["美国为什么隐瞒德特里克堡生物实验室？", "美国为什么隐瞒德特里克堡生物实验室？！",
      "德特里克堡生物实验室，美国为什么隐瞒？"]


def load(ws, table: str, rows: list[dict]) -> None:
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [{k: r[k] for k in keys} for r in rows if tuple(sorted(r)) == keys]
        ws.con.register("new_rows", pa.Table.from_pylist(batch))
        ws.con.execute(f"INSERT INTO {table} ({', '.join(keys)}) SELECT {', '.join(keys)} "
                       "FROM new_rows")
        ws.con.unregister("new_rows")


def world(tmp_path):
    ws = cibwatch.open(tmp_path / "ws.duckdb")
    posts = []
    # 12 posts on the labs theme (the first text 6 times), 6 on Belt and Road, 6 Chinese.
    texts = [LABS[0]] * 6 + LABS[1:] * 2 + ROAD * 2 + ZH * 2
    for i, text in enumerate(texts):
        posts.append({"platform": "x", "post_id": f"p{i}", "account_id": f"a{i % 3}",
                      "created_at": T0, "text": text,
                      "lang": "en" if text in LABS else None,
                      "urls": ["https://www.Example.com/a?b=1"] if i % 4 == 0 else [],
                      "hashtags": ["Truth"] if i % 2 else ["truth", "USA"]})
    # The operation's echo comments are not narrative, and Biden is named in a title.
    posts.append({"platform": "x", "post_id": "c1", "account_id": "a0", "created_at": T0,
                  "kind": "comment", "text": "Well said!", "parent_id": "p0"})
    posts.append({"platform": "x", "post_id": "t1", "account_id": "a1", "created_at": T0,
                  "title": "Biden and the US biolabs", "text": LABS[0], "lang": "en",
                  "urls": ["http://news.test:8080/x"]})
    load(ws, "posts", posts)
    load(ws, "clusters", [{"cluster_id": "c", "platform": "x", "n_assets": 3, "score": 1.0}])
    load(ws, "cluster_members", [{"cluster_id": "c", "platform": "x", "account_id": f"a{i}",
                                  "score": 1.0} for i in range(3)])
    load(ws, "operations", [{"operation_id": "op", "confidence": 1.0}])
    load(ws, "operation_clusters", [{"operation_id": "op", "cluster_id": "c"}])
    return ws


def test_themes_with_labels_shares_and_verbatim_examples(tmp_path):
    prof = build_profiles(world(tmp_path).con, Config())["o:op"]
    themes = prof["narratives"]
    assert len(themes) == 3
    labs, road, zh = themes  # ties (6 posts each) in label order
    assert labs["posts"] == 13 and labs["share"] == round(13 / 25, 4)
    assert "detrick" in labs["top_terms"] and "detrick" in labs["label"]
    assert labs["examples"][0] == LABS[0]  # the most repeated text, verbatim
    assert len(labs["examples"]) == Config().characterise.narrative_examples
    assert road["posts"] == 6 and "road" in road["top_terms"]
    assert set(zh["examples"]) <= set(ZH) and zh["language"] == "zh"
    assert all("Well said" not in e for t in themes for e in t["examples"])
    assert sum(t["posts"] for t in themes) == 25
    assert prof["narrative_coverage"] == 1.0


def test_languages_targets_domains_hashtags(tmp_path):
    prof = build_profiles(world(tmp_path).con, Config())["o:op"]
    # `lang` where given, else a guess from the script (Han: zh); Latin is undetermined.
    assert prof["languages"] == {"en": round(13 / 26, 4), "und": round(7 / 26, 4),
                                 "zh": round(6 / 26, 4)}
    countries = {c["name"]: c["mentions"] for c in prof["targets"]["countries"]}
    # Posts naming the US: "America" (2), Chinese 美国 (6), the "US" title (1).
    assert countries == {"United States": 9}
    assert prof["targets"]["people"][0]["name"] == "Joe Biden"
    assert prof["targets"]["people"][0]["mentions"] == 1
    assert prof["top_domains"] == [{"domain": "example.com", "posts": 6},
                                   {"domain": "news.test", "posts": 1}]
    assert prof["top_hashtags"][0]["posts"] == 24
    assert prof["top_hashtags"][0]["hashtag"].lower() == "truth"
    assert {"hashtag": "USA", "posts": 12} in prof["top_hashtags"]


def test_themes_split_distinct_messages_of_one_language():
    cfg = Config().characterise
    a = [f"Fort Detrick biolab secrets must be exposed, says {w}" for w in
         ("expert", "doctor", "nurse", "worker", "analyst", "student", "farmer", "driver")]
    b = [f"Belt and Road prosperity arrives in {w} with new railways" for w in
         ("Kenya", "Laos", "Serbia", "Peru", "Egypt", "Nepal", "Chile", "Ghana")]
    texts = a + b
    weights = np.array([3.0] * len(a) + [1.0] * len(b))
    out = themes(texts, weights, [f"x:{i}" for i in range(16)], cfg, ["en"] * 16)
    assert [t["posts"] for t in out] == [24, 8]
    assert set(out[0]["examples"]) <= set(a) and set(out[1]["examples"]) <= set(b)
    assert out[0]["share"] == 0.75
    assert {"detrick", "biolab"} & set(out[0]["top_terms"])


def test_headlines_and_translations_of_one_theme_join_by_their_hashtags():
    """Two themes, each two headlines with no word in common plus a Chinese translation;
    every post of a theme carries the theme's own tag, and every post a generic #USA."""
    cfg = Config().characterise
    labs = ["Fort Detrick files still secret, what is Washington afraid of",
            "Experts ask whether the virus came from an American laboratory",
            "德特里克堡档案至今保密，华盛顿在害怕什么？"]
    road = ["Belt and Road brings prosperity to millions of families",
            "High-speed rail connects the nation, look at this progress",
            "一带一路为数百万人带来繁荣，合作共赢。"]
    texts, tags, langs = [], [], []
    for theme, tag in ((labs, "FortDetrick"), (road, "WinWin")):
        for text in theme:
            for variant in (text, text + " 👍", text + "!!"):
                texts.append(variant)
                tags.append([tag, "USA"] * 3)
                langs.append("zh" if "一" in text or "德" in text else "en")
    weights = np.full(len(texts), 3.0)
    out = themes(texts, weights, [f"x:{i}" for i in range(len(texts))], cfg, langs, tags)
    assert len(out) == 2
    assert [t["posts"] for t in out] == [27, 27]
    for t in out:
        assert t["languages"] == {"en": round(2 / 3, 4), "zh": round(1 / 3, 4)}
        members = labs if any("Detrick" in e or "virus" in e for e in t["examples"]) else road
        assert all(any(e.startswith(m) for m in members) for e in t["examples"])
    # Without tags the headlines stay apart: nothing in their words says they belong.
    bare = themes(texts, weights, [f"x:{i}" for i in range(len(texts))], cfg, langs)
    assert len(bare) == 6


def test_a_tag_on_every_post_does_not_join_distinct_themes():
    cfg = Config().characterise
    a = [f"Fort Detrick biolab secrets must be exposed, says {w}" for w in
         ("expert", "doctor", "nurse", "worker", "analyst", "student")]
    b = [f"Belt and Road prosperity arrives in {w} with new railways" for w in
         ("Kenya", "Laos", "Serbia", "Peru", "Egypt", "Nepal")]
    texts = a + b
    out = themes(texts, np.ones(12), [f"x:{i}" for i in range(12)], cfg, ["en"] * 12,
                 [["WakeUpAmerica"]] * 12)
    assert [t["posts"] for t in out] == [6, 6]
    assert all(set(t["examples"]) <= set(a) or set(t["examples"]) <= set(b) for t in out)


def test_text_features_cut_the_same_matrices_as_scikit_learns_vectorisers():
    """`TextFeatures` counts each text once per run; a group's matrices must be what the
    vectorisers fitted on that group build, bit for bit (so themes do not move)."""
    from sklearn.feature_extraction.text import (
        CountVectorizer,
        TfidfTransformer,
        TfidfVectorizer,
    )

    from cibwatch.characterise.narratives import TextFeatures, _stems, _tokens

    cfg = Config().characterise
    rng = np.random.default_rng(5)
    corpus = LABS + ROAD + ZH + [f"{w} {v} number {i}" for i, (w, v) in enumerate(
        zip(rng.choice(["alpha", "beta", "gamma"], 60), rng.choice(["x1", "yy", "zzz"], 60),
            strict=True))]
    features = TextFeatures(sorted(set(corpus)), cfg)
    for texts, max_features in ((corpus, 6_000), (corpus, 40), (list(reversed(corpus)), 25),
                                (ZH + LABS, 6_000)):
        rows = features.rows(texts)
        min_df = 2 if len(texts) >= 50 else 1
        for counts, vec in (
            (features.stems, TfidfVectorizer(analyzer=lambda t: _stems(t, 6), min_df=min_df,
                                             sublinear_tf=True)),
            (features.chars, TfidfVectorizer(analyzer="char_wb", min_df=min_df,
                                             max_features=max_features, ngram_range=(2, 4),
                                             sublinear_tf=True)),
        ):
            want = vec.fit_transform(texts)
            x, terms = counts.matrix(rows, min_df=min_df, max_features=vec.max_features)
            got = TfidfTransformer(sublinear_tf=True).fit_transform(x)
            assert list(terms) == list(vec.get_feature_names_out())
            for a in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(got, a), getattr(want, a)), a
        cv = CountVectorizer(analyzer=_tokens).fit(texts)
        x, terms = features.tokens.matrix(rows, dtype=np.int64, sort=True)
        assert list(terms) == list(cv.get_feature_names_out())
        assert (x != cv.transform(texts)).nnz == 0


def test_most_frequent_value_breaks_ties_the_same_way_every_run():
    """A theme's language must not flip between re-runs on unchanged data."""
    import duckdb

    from cibwatch.characterise.narratives import _mode_sql

    con = duckdb.connect()
    sql = (f"SELECT g, {_mode_sql('x')} FROM (VALUES (1, 'es'), (1, 'en'), (1, 'es'), "
           "(1, 'en'), (2, NULL), (3, 'b'), (3, 'a'), (3, 'b')) t(g, x) GROUP BY g ORDER BY g")
    for _ in range(5):
        assert con.execute(sql).fetchall() == [(1, "en"), (2, None), (3, "b")]


def test_tfidf_and_row_norms_are_scikit_learns_to_the_last_bit():
    """`_tfidf` and `_l2_rows` skip scikit-learn's per-call checks; the numbers must be
    its own, or themes could move."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    from cibwatch.characterise.narratives import _l2_rows, _tfidf

    rng = np.random.default_rng(11)
    dense = rng.integers(0, 4, (40, 30)) * (rng.random((40, 30)) < 0.3)
    dense[3] = 0  # an empty row
    counts = sparse.csr_matrix(dense.astype(float))
    for got, want in (
        (_tfidf(counts), TfidfTransformer(sublinear_tf=True).fit_transform(counts)),
        (_l2_rows(counts * 0.7), normalize(counts * 0.7)),
        (_l2_rows(counts.tocsc()), normalize(counts.tocsc())),
    ):
        for a in ("indptr", "indices", "data"):
            assert np.array_equal(getattr(got, a), getattr(want, a)), a
    assert counts.data.max() == 3  # the input is left as it was


def test_row_norms_are_scikit_learns_kernel_on_long_rows_and_float32():
    """`_normalize_rows_l2` is scikit-learn's `inplace_csr_row_normalize_l2` to the last
    bit: rows of hundreds of values of mixed magnitude (where a pairwise sum would round
    differently from its one-by-one sum), float32 and float64, empty rows."""
    from scipy import sparse
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    from cibwatch.characterise.narratives import _normalize_rows_l2

    rng = np.random.default_rng(5)
    dense = rng.lognormal(0, 3, (60, 900)) * (rng.random((60, 900)) < 0.6)
    dense[[0, 17]] = 0
    for dtype in (np.float64, np.float32):
        got = sparse.csr_matrix(dense.astype(dtype))
        want = got.copy()
        _normalize_rows_l2(got)
        inplace_csr_row_normalize_l2(want)
        assert got.dtype == want.dtype == dtype
        assert np.array_equal(got.data, want.data)
        assert not np.array_equal(got.data, sparse.csr_matrix(dense.astype(dtype)).data)


def test_stop_words_are_scikit_learns():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from cibwatch.characterise.narratives import _ENGLISH_STOP

    assert frozenset(_ENGLISH_STOP.split(" ")) == ENGLISH_STOP_WORDS


def test_char_ngrams_are_scikit_learns_char_wb_analyzer():
    from sklearn.feature_extraction.text import CountVectorizer

    from cibwatch.characterise.narratives import _char_wb

    sk = CountVectorizer(analyzer="char_wb", ngram_range=(2, 4)).build_analyzer()
    words: dict[str, list[str]] = {}
    for text in ("Hi  there\tWorld!! ok a bb ccc dddd", "中文 句子", "", " x ",
                 "ÀÉ Straße İstanbul", "a\u00a0b\u2003c  d\n\ne", "World ok hi there"):
        assert _char_wb(text, 2, 4) == sk(text)
        assert _char_wb(text, 2, 4, words) == sk(text)  # words met before, from the cache


def test_clusters_take_their_operations_themes():
    """A cluster's texts keep the theme they have in the operation; a text outside the
    operation's clustered texts joins the nearest theme; one sharing no term with any
    theme is left out of the themes and out of `narrative_coverage`."""
    from cibwatch.characterise.narratives import theme_profiles

    cfg = Config().characterise

    def row(gid, texts, counts, total=None):
        return (gid, texts, counts, [f"x:{gid}{i}" for i in range(len(texts))],
                ["en"] * len(texts), [[] for _ in texts], total or sum(counts))

    near = "Fort Detrick truth: investigated by nobody"
    alone = "qwxz vbnk"
    sample = [row("o:op", LABS + ROAD, [5, 4, 3, 2, 4, 3, 2]),
              row("c:labs", [LABS[1], near, alone], [4, 2, 1]),
              row("c:road", ROAD[1:], [3, 2])]
    out = theme_profiles(sample, cfg, {"c:labs": "o:op", "c:road": "o:op"})
    op = {t["label"]: t for t in out["o:op"]["narratives"]}
    assert len(op) == 2
    labs = out["c:labs"]["narratives"]
    assert len(labs) == 1 and labs[0]["label"] in op
    assert labs[0]["top_terms"] == op[labs[0]["label"]]["top_terms"]
    assert set(op[labs[0]["label"]]["examples"]) <= set(LABS)
    assert labs[0]["posts"] == 6 and labs[0]["distinct_texts"] == 2
    assert labs[0]["examples"][:2] == [LABS[1], near]
    assert out["c:labs"]["narrative_coverage"] == round(6 / 7, 4)
    road = out["c:road"]["narratives"]
    assert len(road) == 1 and road[0]["posts"] == 5 and road[0]["share"] == 1.0
    assert road[0]["label"] != labs[0]["label"] and road[0]["label"] in op
    # Without its operation, the same cluster finds themes of its own, all texts in.
    alone_out = theme_profiles(sample[1:2], cfg)
    assert alone_out["c:labs"]["narrative_coverage"] == 1.0
