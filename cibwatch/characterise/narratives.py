"""What the operation pushes: themes with labels and verbatim examples, languages, the
countries and people it targets, its top domains and hashtags.

Themes, in two steps. Messages: the group's distinct texts (most repeated first) are
joined into messages by word stems plus character n-grams (typos, emoji, reordered
copies of one headline; CJK as character bigrams, since Chinese has no spaces), average
linkage under a cosine distance. Themes: messages are joined when they share content
words or, above all, the operation's own hashtags (an operation tags a theme the same
way in every language and headline; summed over a message's posts, generic tags cancel
out by IDF). Labels come from class-based TF-IDF over words (Latin, Cyrillic, Arabic...)
and character n-grams (Chinese, Japanese). Targets are gazetteer matches
(cibwatch/data/gazetteer) done by one regular expression in DuckDB.

The database work (`narrative_texts`, then `narrative_tables`) and the Python work
(`theme_profiles`) are separate calls, so a caller can run them on different threads.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import chain
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from cibwatch.config import CharacteriseConfig

# Texts of these kinds carry the operation's messaging; reactions have none, and the
# operation's own comments ("Well said!") are echo, measured by engagement instead.
NARRATIVE_KINDS = ("post", "share")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_WORD = re.compile(r"[^\W\d_]{3,}")
# Short function words of the languages the synthetic and real data mostly hold; class-
# based TF-IDF already pushes shared words down, this only keeps labels readable.
_OTHER_STOP = ("que los las del por para una con como pero más este esta des les est pour "
               "dans une qui pas sur der die das und ist nicht mit für auf это как что для "
               "все или")
# English stop words: scikit-learn's ENGLISH_STOP_WORDS (318 words from the Glasgow
# Information Retrieval Group's list; scikit-learn, (c) the scikit-learn developers,
# BSD-3-Clause), copied here: importing
# scikit-learn for them cost ~0.3 CPU s of every start-up (tests check they stay equal).
_ENGLISH_STOP = (
    "a about above across after afterwards again against all almost alone along "
    "already also although always am among amongst amoungst amount an and another any "
    "anyhow anyone anything anyway anywhere are around as at back be became because "
    "become becomes becoming been before beforehand behind being below beside besides "
    "between beyond bill both bottom but by call can cannot cant co con could couldnt "
    "cry de describe detail do done down due during each eg eight either eleven else "
    "elsewhere empty enough etc even ever every everyone everything everywhere except "
    "few fifteen fifty fill find fire first five for former formerly forty found four "
    "from front full further get give go had has hasnt have he hence her here "
    "hereafter hereby herein hereupon hers herself him himself his how however "
    "hundred i ie if in inc indeed interest into is it its itself keep last latter "
    "latterly least less ltd made many may me meanwhile might mill mine more moreover "
    "most mostly move much must my myself name namely neither never nevertheless next "
    "nine no nobody none noone nor not nothing now nowhere of off often on once one "
    "only onto or other others otherwise our ours ourselves out over own part per "
    "perhaps please put rather re same see seem seemed seeming seems serious several "
    "she should show side since sincere six sixty so some somehow someone something "
    "sometime sometimes somewhere still such system take ten than that the their them "
    "themselves then thence there thereafter thereby therefore therein thereupon "
    "these they thick thin third this those though three through throughout thru thus "
    "to together too top toward towards twelve twenty two un under until up upon us "
    "very via was we well were what whatever when whence whenever where whereafter "
    "whereas whereby wherein whereupon wherever whether which while whither who "
    "whoever whole whom whose why will with within without would yet you your yours "
    "yourself yourselves"
)
_STOP = frozenset(_ENGLISH_STOP.split(" ")) | frozenset(_OTHER_STOP.split(" "))


def _split(text: str) -> tuple[list[str], list[str]]:
    """Content words (lower case, no stop words) and CJK runs: what `_tokens` and `_stems`
    are made of, found once per text for both."""
    words = [w for w in _WORD.findall(_CJK.sub(" ", text.lower())) if w not in _STOP]
    return words, _CJK.findall(text)


def _tokens(text: str | tuple[list[str], list[str]]) -> list[str]:
    """Words for scripts with spaces; character 2- to 4-grams for Chinese/Japanese/Korean
    runs (no spaces to split on; the longer grams make readable labels: 德特里克).
    `text` may be its `_split` already."""
    words, runs = _split(text) if isinstance(text, str) else text
    out = list(words)
    for run in runs:
        for n in (2, 3, 4):
            out.extend(run[i:i + n] for i in range(len(run) - n + 1))
    return out


def _stems(text: str | tuple[list[str], list[str]], chars: int) -> list[str]:
    """Content words cut to their first `chars` letters (biolab/biolabs, American/
    Americans agree) and CJK character bigrams: what two paraphrases share. `text` may
    be its `_split` already."""
    words, runs = _split(text) if isinstance(text, str) else text
    out = [w[:chars] for w in words]
    for run in runs:
        out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


_WHITE_SPACES = re.compile(r"\s\s+")


def _char_wb(text: str, lo: int, hi: int, cache: dict[str, list[str]] | None = None
             ) -> list[str]:
    """scikit-learn's `char_wb` analyzer (lower case, n-grams inside space-padded words,
    a word shorter than n once), the same terms in the same order. `cache`: each word's
    n-grams, kept across texts (words repeat far more than texts do)."""
    out: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        grams = cache.get(word) if cache is not None else None
        if grams is None:
            grams = _word_grams(word, lo, hi)
            if cache is not None:
                cache[word] = grams
        out.extend(grams)
    return out


def _word_grams(word: str, lo: int, hi: int) -> list[str]:
    padded = f" {word} "
    size = len(padded)
    out: list[str] = []
    for n in range(lo, hi + 1):
        if size <= n:
            out.append(padded)
            break
        out.extend([padded[i:i + n] for i in range(size - n + 1)])
    return out


def _distinct_terms(ranked: list[str], k: int) -> list[str]:
    """The first k terms none of which contains or overlaps another by 2+ characters
    (keeps 德特里克 and drops 特里克堡 and 德特)."""
    chosen: list[tuple[str, bool]] = []
    for term in ranked:
        if len(chosen) == k:
            break
        cjk = _CJK.fullmatch(term) is not None
        if any(_overlap(term, c, cjk and c_cjk) for c, c_cjk in chosen):
            continue
        chosen.append((term, cjk))
    return [c for c, _ in chosen]


def _overlap(a: str, b: str, both_cjk: bool) -> bool:
    """`a` and `b` contain one another, or (both CJK) share a character bigram."""
    if a in b or b in a:
        return True
    return both_cjk and any(a[i:i + 2] in b for i in range(len(a) - 1))


def _mode_sql(expr: str) -> str:
    """The most frequent value, ties to the smallest: DuckDB's `mode()` breaks ties
    arbitrarily, so a re-run on unchanged data could change a theme's language."""
    return (f"list_sort(list_transform(map_entries(histogram({expr})), "
            f"lambda e: {{'c': -(e.value::BIGINT), 'k': e.key}}))[1].k")


def _script_lang_sql(col: str) -> str:
    """A guessed ISO 639-1 code from the script when `lang` is missing."""
    return f"""CASE
        WHEN regexp_matches({col}, '[\\p{{Hiragana}}\\p{{Katakana}}]') THEN 'ja'
        WHEN regexp_matches({col}, '\\p{{Hangul}}') THEN 'ko'
        WHEN regexp_matches({col}, '\\p{{Han}}') THEN 'zh'
        WHEN regexp_matches({col}, '\\p{{Cyrillic}}') THEN 'ru'
        WHEN regexp_matches({col}, '\\p{{Arabic}}') THEN 'ar'
        WHEN regexp_matches({col}, '\\p{{Thai}}') THEN 'th'
        WHEN regexp_matches({col}, '\\p{{Devanagari}}') THEN 'hi'
        WHEN regexp_matches({col}, '\\p{{Greek}}') THEN 'el'
        WHEN regexp_matches({col}, '\\p{{Hebrew}}') THEN 'he'
        ELSE NULL END"""


@lru_cache(maxsize=1)
def gazetteer() -> dict[str, Any]:
    path = resources.files("cibwatch") / "data" / "gazetteer" / "gazetteer.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _re2_escape(term: str) -> str:
    return re.sub(r"([.^$*+?()\[\]{}|\\-])", r"\\\1", term)


@lru_cache(maxsize=1)
def _gazetteer_pattern() -> tuple[str, list[tuple[str, str, str]]]:
    """One RE2 alternation over every term (longest first), and (key, kind, name) rows."""
    rows, parts = [], []
    entries = [("country", c) for c in gazetteer()["countries"]] + [
        ("person", p) for p in gazetteer()["people"]
    ]
    terms: dict[str, tuple[str, str]] = {}
    for kind, entry in entries:
        for term in entry["terms"]:
            terms.setdefault(term, (kind, entry["name"]))
    for term in sorted(terms, key=len, reverse=True):
        kind, name = terms[term]
        esc = _re2_escape(term)
        if term[0].isascii() and term[0].isalnum():
            esc = r"\b" + esc
        if term[-1].isascii() and term[-1].isalnum():
            esc += r"\b"
        parts.append(esc if term.isupper() and term.isascii() else f"(?i:{esc})")
        rows.append((term.lower(), kind, name))
    return "(" + "|".join(parts) + ")", rows


def empty() -> dict[str, Any]:
    """The narrative keys of a group with no text."""
    return {"narratives": [], "languages": {}, "targets": {"countries": [], "people": []},
            "top_domains": [], "top_hashtags": [], "narrative_coverage": None}


def narrative_texts(
    con: duckdb.DuckDBPyConnection, members: str, cfg: CharacteriseConfig
) -> list[tuple]:
    """Each group's distinct texts to cluster (temp table `cw_texts`, which
    `narrative_tables` reads too), most repeated first: (gid, texts, counts, examples,
    languages, hashtags, the group's texts in all)."""
    kinds = ", ".join(f"'{k}'" for k in NARRATIVE_KINDS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE cw_texts AS
        WITH t AS (
            SELECT m.gid, p.platform, p.post_id, p.kind, p.lang, p.hashtags,
                   nullif(trim(concat_ws(' ', p.title, p.text)), '') AS txt
            FROM posts p JOIN {members} m USING (platform, account_id)
        ), pick AS (
            -- Messaging kinds, unless a group has no text there (then every kind).
            SELECT t.* FROM t
            JOIN (SELECT gid, bool_or(kind IN ({kinds}) AND txt IS NOT NULL) AS has
                  FROM t GROUP BY gid) h USING (gid)
            WHERE txt IS NOT NULL AND (kind IN ({kinds}) OR NOT h.has)
        )
        SELECT gid, txt, count(*) AS n, min(platform || ':' || post_id) AS example,
               coalesce({_mode_sql("nullif(lower(lang), '')")}, {_script_lang_sql("txt")},
                        'und') AS lang,
               -- every hashtag of every post of the text (repeats count)
               coalesce(flatten(list(hashtags) FILTER (WHERE len(hashtags) > 0)), [])
                   AS tags
        FROM pick GROUP BY gid, txt
        """
    )
    totals = dict(con.execute("SELECT gid, sum(n) FROM cw_texts GROUP BY gid").fetchall())
    sample = con.execute(
        """
        SELECT gid, list(txt ORDER BY n DESC, hash(txt)), list(n ORDER BY n DESC, hash(txt)),
               list(example ORDER BY n DESC, hash(txt)), list(lang ORDER BY n DESC, hash(txt)),
               list(tags ORDER BY n DESC, hash(txt))
        FROM (SELECT * FROM cw_texts
              QUALIFY row_number() OVER (PARTITION BY gid ORDER BY n DESC, hash(txt)) <= ?)
        GROUP BY gid
        """,
        [cfg.narrative_max_texts],
    ).fetchall()
    return [(*row, totals[row[0]]) for row in sample]


def narrative_tables(
    con: duckdb.DuckDBPyConnection, members: str, cfg: CharacteriseConfig
) -> dict[str, dict[str, Any]]:
    """`languages`, `targets`, `top_domains`, `top_hashtags` of every group: SQL only,
    after `narrative_texts` (it reads `cw_texts`)."""
    out: dict[str, dict[str, Any]] = defaultdict(empty)
    _languages(con, members, out)
    _targets(con, out, cfg)
    _domains_hashtags(con, members, out, cfg)
    return dict(out)


def theme_profiles(sample: list[tuple], cfg: CharacteriseConfig,
                   operation_of: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """`narratives` and `narrative_coverage` of every group of `narrative_texts`' rows:
    Python only, no database.

    A cluster whose operation is profiled too (`operation_of[gid]`, the operation's gid)
    takes its operation's themes instead of finding its own: its texts among the
    operation's keep their theme, the others join the nearest theme in the operation's
    feature space (`_Themes.assign`). An operation's clusters then share one set of
    labels, so a reviewer can compare what each pushes, and only operations pay for the
    clustering (9/10 of the theme time was clusters re-clustering their operation's
    texts)."""
    features = TextFeatures(sorted({t for row in sample for t in row[1]}), cfg)
    operation_of = operation_of or {}
    profiled = {row[0] for row in sample}
    fitted: dict[str, _Themes] = {}
    out = {}
    # Operations (and any group without a profiled operation) first, then clusters.
    for own in (True, False):
        for gid, texts, counts, examples, langs, tags, total in sample:
            parent = operation_of.get(gid)
            if (parent not in profiled) != own:
                continue
            weights = np.asarray(counts, dtype=float)
            if own:
                found = fitted[gid] = _fit(texts, weights, cfg, langs, tags, features)
                labels = found.labels
            else:
                found = fitted[parent]
                labels = found.assign(texts, features, 1.0 - cfg.narrative_message_distance)
            placed = float(weights[labels >= 0].sum())
            out[gid] = {
                "narratives": _entries(found, labels, texts, weights, examples, langs, cfg),
                "narrative_coverage": round(placed / float(total), 4),
            }
    return out


class TextFeatures:
    """Term counts of distinct texts, tokenised once per run: word stems and character
    n-grams (messages) and label tokens. Tokenising and counting term by term is the slow
    part of scikit-learn's vectorisers, and one text is in an operation and in its
    clusters; `rows` cuts a group's matrix exactly as a vectoriser fitted on that group
    alone builds it (same terms, same column order, same order inside a row, so the
    floating-point sums downstream are the same to the last bit)."""

    def __init__(self, texts: list[str], cfg: CharacteriseConfig):
        self.index = {t: i for i, t in enumerate(texts)}
        lo, hi = cfg.narrative_ngram_min, cfg.narrative_ngram_max
        stem_chars = cfg.narrative_stem_chars
        split = [_split(t) for t in texts]
        self.stems = _TermCounts(split, lambda t: _stems(t, stem_chars))
        self.tokens = _TermCounts(split, _tokens)
        del split
        words: dict[str, list[str]] = {}
        self.chars = _TermCounts(texts, lambda t: _char_wb(t, lo, hi, words))

    def rows(self, texts: list[str]) -> np.ndarray:
        return np.fromiter((self.index[t] for t in texts), dtype=np.int64, count=len(texts))


class _TermCounts:
    """Counts of every text (rows) and term (columns, sorted by term), each row's terms
    in the order the text first uses them, as `CountVectorizer._count_vocab` meets them."""

    def __init__(self, texts: list, analyzer):
        # Every text's terms in one flat list, numbered by first use over all texts (as
        # a growing vocabulary would), then per text each distinct term once with its
        # count, in the order the text first uses it: all array work but the analyzer.
        terms = [analyzer(text) for text in texts]
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(texts))
        codes, found = pd.factorize(np.fromiter(chain.from_iterable(terms), dtype=object,
                                                count=int(lengths.sum())))
        del terms
        found = np.asarray(found, dtype=object)
        width = max(len(found), 1)
        key = np.repeat(np.arange(len(texts), dtype=np.int64), lengths) * width + codes
        # Distinct (text, term) keys in order of first use, and their counts: a hash pass
        # (a text's keys are all together, so each text's terms come in its own order).
        seen, unique = pd.factorize(key)
        unique = np.asarray(unique, dtype=np.int64)
        counts = np.bincount(seen, minlength=len(unique))
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(unique // width, minlength=len(texts)), out=indptr[1:])
        order = np.argsort(found)
        rank = np.empty(len(found), dtype=np.int64)
        rank[order] = np.arange(len(found))
        self.terms = found[order]
        self.indptr = indptr
        self.indices = rank[unique % width]
        self.values = counts.astype(np.int64)

    def project(self, rows: np.ndarray, vocab: np.ndarray) -> sparse.csr_matrix:
        """Counts of `rows` over `vocab` (term numbers: another group's vocabulary, in its
        column order), terms outside it dropped: texts placed in that group's space."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            lengths.sum())
        column = np.full(len(self.terms), -1, dtype=np.int64)
        column[vocab] = np.arange(len(vocab))
        cols = column[self.indices[take]]
        kept = cols >= 0
        row_of = np.repeat(np.arange(len(rows)), lengths)[kept]
        return sparse.csr_matrix(
            (self.values[take][kept].astype(np.float64), (row_of, cols[kept])),
            shape=(len(rows), len(vocab)))

    def matrix(self, rows: np.ndarray, min_df: int = 1, max_features: int | None = None,
               dtype=np.float64, sort: bool = False) -> tuple[sparse.csr_matrix, np.ndarray]:
        """A `CountVectorizer(min_df, max_features)` fitted on the texts of `rows`: its
        matrix (terms in first-use order inside a row, as it leaves them, or sorted) and
        its terms. ValueError when no term is left, like the vectoriser."""
        n = len(rows)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            lengths.sum())
        flat, data = self.indices[take], self.values[take]
        if flat.size == 0:
            raise ValueError("empty vocabulary")
        # The group's terms (global numbers are alphabetical: sorted, as `np.unique`
        # leaves them) and each term's number among them, counted not sorted.
        df = np.bincount(flat, minlength=len(self.terms))
        present = np.flatnonzero(df)
        df = df[present]
        number = np.zeros(len(self.terms), dtype=np.int64)
        number[present] = np.arange(len(present))
        local = number[flat]
        row_of = np.repeat(np.arange(n), lengths)
        if not sort:
            # The group's own vocabulary numbers terms as first met, and a row's columns
            # are sorted by that number before the terms are renumbered alphabetically.
            met = np.empty(len(present), dtype=np.int64)
            met[number[pd.unique(flat)]] = np.arange(len(present))
            inside = met[local]
        else:
            inside = local
        # A row holds each term once, so (row, term) keys are distinct: one plain sort
        # gives the order a two-key stable sort would.
        order = np.argsort(row_of * len(present) + inside)
        local, data, row_of = local[order], data[order], row_of[order]
        mask = (df >= min_df) & (df <= n)
        if max_features is not None and mask.sum() > max_features:
            # `_limit_features`: the most frequent terms, ties as its argsort leaves them.
            tfs = np.bincount(local, weights=data, minlength=len(present))
            keep = (-tfs[mask]).argsort()[:max_features]
            mask = np.zeros(len(present), dtype=bool)
            mask[np.flatnonzero((df >= min_df) & (df <= n))[keep]] = True
        if not mask.any():
            raise ValueError("after pruning, no terms remain")
        new_index = np.cumsum(mask) - 1
        kept = mask[local]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of[kept], minlength=n), out=indptr[1:])
        x = sparse.csr_matrix(
            (data[kept].astype(dtype), new_index[local[kept]].astype(np.int32),
             indptr.astype(np.int32)), shape=(n, int(mask.sum())))
        return x, self.terms[present[mask]]


def themes(
    texts: list[str], weights: np.ndarray, examples: list[str], cfg: CharacteriseConfig,
    langs: list[str] | None = None, tags: list[list[str]] | None = None,
    features: TextFeatures | None = None,
) -> list[dict[str, Any]]:
    """Cluster texts into themes, largest (by posts) first. `tags` are the hashtags of
    each text's posts: they join messages of one theme across headlines and languages.
    `features`: the run's `TextFeatures`, holding every text (else built for these)."""
    if not texts:
        return []
    found = _fit(texts, weights, cfg, langs, tags, features)
    return _entries(found, found.labels, texts, weights, examples, langs, cfg)


@dataclass
class _Themes:
    """A group's themes: each text's theme, each theme's label and top terms, and the
    feature space (per block: weight, term counts, vocabulary, idf) with each theme's
    centroid in it, where texts from outside the group find their nearest theme."""

    texts: list[str]
    labels: np.ndarray
    names: list[tuple[str, list[str]]]
    space: list[tuple[float, _TermCounts, np.ndarray, np.ndarray]] = field(
        default_factory=list)
    centroids: sparse.csr_matrix | None = None

    def assign(self, texts: list[str], features: TextFeatures, min_similarity: float
               ) -> np.ndarray:
        """Theme of each text (-1: none): a text of the group keeps its own; another
        joins the theme whose centroid is the most similar (cosine), if at least
        `min_similarity` (a text that alike to a message's texts on average joins it)."""
        own = dict(zip(self.texts, self.labels.tolist(), strict=True))
        out = np.fromiter((own.get(t, -1) for t in texts), dtype=np.int64, count=len(texts))
        other = np.flatnonzero(out < 0)
        if len(other) and self.centroids is not None:
            rows = features.rows([texts[i] for i in other])
            x = _blend([(weight, _tfidf(counts.project(rows, vocab), idf))
                        for weight, counts, vocab, idf in self.space])
            sims = (x @ self.centroids.T).toarray()
            best = sims.argmax(axis=1)
            near = sims[np.arange(len(other)), best] >= min_similarity
            out[other[near]] = best[near]
        return out


def _fit(texts: list[str], weights: np.ndarray, cfg: CharacteriseConfig,
         langs: list[str] | None, tags: list[list[str]] | None,
         features: TextFeatures | None) -> _Themes:
    """Themes of one group's texts, named by class-based TF-IDF of their words."""
    features = features or TextFeatures(sorted(set(texts)), cfg)
    rows = features.rows(texts)
    labels, space, x = _cluster(features, rows, weights, tags or [[] for _ in texts], cfg)
    k = int(labels.max()) + 1
    try:
        counts, vocab = features.tokens.matrix(rows, dtype=np.int64, sort=True)
        matrix = counts.multiply(weights[:, None]).tocsr()
    except ValueError:  # no words at all ("ok", "+1", emoji): label from the text itself
        vocab = np.array([])
    theme_of = sparse.csr_matrix((np.ones(len(texts)), (labels, np.arange(len(texts)))),
                                 shape=(k, len(texts)))
    per_theme = (theme_of @ matrix).toarray() if len(vocab) else np.zeros((k, 0))
    # Class-based TF-IDF: frequent in this theme, rare across the others.
    tf = per_theme / np.maximum(per_theme.sum(axis=1, keepdims=True), 1)
    avg = per_theme.sum() / k
    idf = np.log1p(avg / np.maximum(per_theme.sum(axis=0), 1))
    scores = tf * idf
    # Each row sorted on its own, as one call (the same sort of the same values per row).
    best = np.argsort(-scores, axis=1)[:, : cfg.narrative_label_terms * 12]
    names = []
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        ranked = [str(vocab[i]) for i in best[c] if scores[c, i] > 0] if len(vocab) else []
        top = _distinct_terms(ranked, cfg.narrative_label_terms * 3)
        first = idx[np.argsort(-weights[idx], kind="stable")][0]
        names.append((" / ".join(top[: cfg.narrative_label_terms]) or texts[first][:40], top))
    centroids = None
    if x is not None:
        # Each theme's centroid: its texts' rows summed by posts, L2-normalised.
        member = sparse.csr_matrix((weights, (labels, np.arange(len(texts)))),
                                   shape=(k, len(texts)))
        centroids = _l2_rows(member @ x)
    return _Themes(list(texts), labels, names, space, centroids)


def _entries(found: _Themes, labels: np.ndarray, texts: list[str], weights: np.ndarray,
             examples: list[str], langs: list[str] | None, cfg: CharacteriseConfig
             ) -> list[dict[str, Any]]:
    """One entry per theme holding any of `texts` (`labels`: each text's theme in
    `found`, -1 none), largest first; shares are of the posts placed in a theme."""
    lang_of = np.asarray(langs if langs is not None else ["und"] * len(texts), dtype=object)
    total = weights[labels >= 0].sum()
    out = []
    for c, (label, top) in enumerate(found.names):
        idx = np.flatnonzero(labels == c)
        if not len(idx):
            continue
        order = idx[np.argsort(-weights[idx], kind="stable")]
        by_lang: dict[str, float] = defaultdict(float)
        for i in idx:
            by_lang[str(lang_of[i])] += float(weights[i])
        out.append({
            "label": label,
            "share": round(float(weights[idx].sum() / total), 4),
            "posts": int(weights[idx].sum()),
            "distinct_texts": len(idx),
            "language": max(sorted(by_lang), key=lambda lg: by_lang[lg]),
            "languages": {lg: round(v / float(weights[idx].sum()), 4)
                          for lg, v in sorted(by_lang.items(), key=lambda kv: -kv[1])},
            "top_terms": list(top),
            "examples": [texts[i] for i in order[: cfg.narrative_examples]],
            "example_posts": [examples[i] for i in order[: cfg.narrative_examples]],
        })
    out.sort(key=lambda t: (-t["posts"], t["label"]))
    return out


def _average_linkage(x: sparse.csr_matrix, threshold: float) -> np.ndarray:
    """Labels of an average-linkage tree over cosine distances of L2-normalised rows,
    cut at `threshold`: no fixed number of themes, only how alike a theme must be."""
    n = x.shape[0]
    if n < 2:
        return np.zeros(n, dtype=int)
    dist = np.clip(1.0 - (x @ x.T).toarray(), 0.0, 2.0)  # one sparse product
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    return fcluster(tree, threshold, criterion="distance") - 1


def _blend(blocks: list[tuple[float, sparse.spmatrix]]) -> sparse.csr_matrix:
    """Feature blocks side by side, each L2-normalised and weighted so that cosine
    similarity is the weighted sum of the blocks' similarities."""
    parts = [_l2_rows(b) * np.sqrt(w) for w, b in blocks if w > 0 and b.shape[1]]
    return _l2_rows(sparse.hstack(parts).tocsr())


def _l2_rows(x: sparse.spmatrix) -> sparse.csr_matrix:
    """`sklearn.preprocessing.normalize(x)` of a sparse matrix, the same arithmetic
    (`_normalize_rows_l2`) without its input checks, which cost more than the work here."""
    x = x.tocsr() if x.format != "csr" else x.copy()
    if x.dtype not in (np.float64, np.float32):
        x = x.astype(np.float64)
    _normalize_rows_l2(x)
    return x


def _normalize_rows_l2(x: sparse.csr_matrix) -> None:
    """scikit-learn's `inplace_csr_row_normalize_l2`, bit for bit: each row's squares
    summed in a double in stored order (`bincount` adds its weights one by one, in
    order), square root, every value divided by it; all-zero rows left alone. Its own
    code, so characterise does not import scikit-learn (~0.3 CPU s)."""
    n = x.shape[0]
    data = x.data
    if not n or not len(data):
        return
    rows = np.repeat(np.arange(n), np.diff(x.indptr))
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=n))
    norms[norms == 0.0] = 1.0
    data[...] = data / norms[rows]


def _tfidf(x: sparse.csr_matrix, idf: np.ndarray | None = None) -> sparse.csr_matrix:
    """`TfidfTransformer(sublinear_tf=True).fit_transform(x)` of a float64 count matrix,
    step for step (smoothed idf, 1 + log tf, L2 rows), without its per-call checks;
    with `idf` (`_idf` of another matrix), its `transform` instead."""
    idf = _idf(x) if idf is None else idf
    x = x.copy()
    np.log(x.data, x.data)
    x.data += 1.0
    x.data *= idf[x.indices]
    _normalize_rows_l2(x)
    return x


def _idf(x: sparse.csr_matrix) -> np.ndarray:
    """Smoothed idf of a count matrix's columns, as `TfidfTransformer` computes it."""
    df = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    df += 1.0
    idf = np.full_like(df, fill_value=x.shape[0] + 1, dtype=np.float64)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def _cluster(features: TextFeatures, rows: np.ndarray, weights: np.ndarray,
             tags: list[list[str]], cfg: CharacteriseConfig
             ) -> tuple[np.ndarray, list[tuple[float, _TermCounts, np.ndarray, np.ndarray]],
                        sparse.csr_matrix | None]:
    """Theme of each text: messages by what the texts say, then themes by the words and
    hashtags messages share (module docstring). Also the message features' space (per
    block: weight, term counts, vocabulary, idf) and the texts' rows in it (None when
    there is none)."""
    n = len(rows)
    if n < 2:
        return np.zeros(n, dtype=int), [], None
    min_df = 2 if n >= 50 else 1
    blocks, space = [], []
    # TF-IDF of word stems and of character 2-4-grams (at most 6,000, the most frequent).
    for weight, counts, max_features in (
        (1.0 - cfg.narrative_char_weight, features.stems, None),
        (cfg.narrative_char_weight, features.chars, 6_000),
    ):
        try:
            x, terms = counts.matrix(rows, min_df=min_df, max_features=max_features)
        except ValueError:  # nothing left after min_df / no words at all
            continue
        idf = _idf(x)
        blocks.append((weight, _tfidf(x, idf)))
        space.append((weight, counts, np.searchsorted(counts.terms, terms), idf))
    if not blocks:
        return np.zeros(n, dtype=int), [], None
    x = _blend(blocks)
    message = _average_linkage(x, cfg.narrative_message_distance)
    m = int(message.max()) + 1
    # Messages: the posts' word stems and their hashtags, summed over the message's texts.
    member = sparse.csr_matrix((weights, (message, np.arange(n))), shape=(m, n))
    words = member @ blocks[0][1]
    tag_rows = [[str(t).lower() for t in row if t] for row in tags]
    vocab = {t: i for i, t in enumerate(sorted({t for row in tag_rows for t in row}))}
    rows = [i for i, row in enumerate(tag_rows) for _ in row]
    cols = [vocab[t] for row in tag_rows for t in row]
    per_text = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(vocab)))
    # Tags are counted per post: a text posted 50 times carries its tags 50 times.
    tag_counts = ((member > 0).astype(float) @ per_text).tocsc()
    # A tag on the messages of most posts (#USA, #WakeUpAmerica) says nothing about
    # which theme a message belongs to.
    posts = np.asarray(member.sum(axis=1)).ravel()
    spread = (posts @ (tag_counts > 0).astype(float).toarray()) / posts.sum()
    tag_counts = tag_counts[:, np.flatnonzero(spread <= cfg.narrative_tag_max_spread)].tocsr()
    tag_weight = cfg.narrative_tag_weight if tag_counts.nnz else 0.0
    if tag_weight:
        tag_counts = _tfidf(tag_counts)
    theme = _average_linkage(_blend([(1.0 - tag_weight, words), (tag_weight, tag_counts)]),
                             cfg.narrative_theme_distance)
    return theme[message], space, x


def _languages(con: duckdb.DuckDBPyConnection, members: str, out: dict) -> None:
    for gid, lang, n, total in con.execute(
        f"""
        WITH l AS (
            SELECT m.gid, coalesce(nullif(lower(p.lang), ''),
                                   {_script_lang_sql("coalesce(p.text, p.title, '')")},
                                   'und') AS lang
            FROM posts p JOIN {members} m USING (platform, account_id)
            WHERE p.text IS NOT NULL OR p.title IS NOT NULL OR p.lang IS NOT NULL
        )
        SELECT gid, lang, count(*) AS n, sum(count(*)) OVER (PARTITION BY gid)
        FROM l GROUP BY gid, lang ORDER BY gid, n DESC, lang
        """
    ).fetchall():
        out[gid]["languages"][lang] = round(n / total, 4)


def _targets(con: duckdb.DuckDBPyConnection, out: dict, cfg: CharacteriseConfig) -> None:
    pattern, rows = _gazetteer_pattern()
    con.register("_cw_gazetteer", pa.table(
        {c: [r[i] for r in rows] for i, c in enumerate(("key", "kind", "name"))},
        schema=pa.schema([(c, pa.string()) for c in ("key", "kind", "name")])))
    con.execute("CREATE OR REPLACE TEMP TABLE cw_gazetteer AS SELECT * FROM _cw_gazetteer")
    con.unregister("_cw_gazetteer")
    # The expression runs once per distinct text (a text is in an operation and in its
    # clusters), then the matches go back to every group holding the text.
    for gid, kind, name, posts, terms in con.execute(
        """
        WITH d AS (
            SELECT txt, unnest(regexp_extract_all(txt, ?, 1)) AS term
            FROM (SELECT DISTINCT txt FROM cw_texts)
        ), m AS (
            SELECT t.gid, t.txt, t.n, d.term FROM cw_texts t JOIN d USING (txt)
        ), hits AS (
            SELECT DISTINCT m.gid, m.txt, m.n, g.kind, g.name, lower(m.term) AS term
            FROM m JOIN cw_gazetteer g ON g.key = lower(m.term)
        ), per_text AS (
            SELECT gid, txt, any_value(n) AS n, kind, name, list(DISTINCT term) AS terms
            FROM hits GROUP BY gid, txt, kind, name
        )
        SELECT gid, kind, name, sum(n)::BIGINT AS posts, list_distinct(flatten(list(terms)))
        FROM per_text GROUP BY ALL
        ORDER BY gid, kind, posts DESC, name
        """,
        [pattern],
    ).fetchall():
        listed = out[gid]["targets"]["countries" if kind == "country" else "people"]
        if len(listed) < cfg.top_targets:
            listed.append({"name": name, "mentions": int(posts), "terms": sorted(terms)[:5]})


def _domains_hashtags(
    con: duckdb.DuckDBPyConnection, members: str, out: dict, cfg: CharacteriseConfig
) -> None:
    for gid, domain, posts in con.execute(
        f"""
        WITH u AS (
            SELECT m.gid, p.platform, p.post_id, unnest(p.urls) AS url
            FROM posts p JOIN {members} m USING (platform, account_id)
            WHERE len(p.urls) > 0
        ), d AS (
            SELECT gid, platform, post_id,
                   regexp_replace(lower(regexp_extract(url,
                       '^(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?(?:[^@/]*@)?([^/:?#]+)', 1)),
                       '^www\\.', '') AS domain
            FROM u
        )
        SELECT gid, domain, count(DISTINCT (platform, post_id)) AS posts FROM d
        WHERE domain <> '' GROUP BY gid, domain
        QUALIFY row_number() OVER (PARTITION BY gid ORDER BY posts DESC, domain) <= ?
        ORDER BY gid, posts DESC, domain
        """,
        [cfg.top_targets],
    ).fetchall():
        out[gid]["top_domains"].append({"domain": domain, "posts": int(posts)})
    for gid, tag, posts in con.execute(
        f"""
        WITH h AS (
            SELECT m.gid, p.platform, p.post_id, unnest(p.hashtags) AS tag
            FROM posts p JOIN {members} m USING (platform, account_id)
            WHERE len(p.hashtags) > 0
        )
        SELECT gid, {_mode_sql("tag")} AS tag, count(DISTINCT (platform, post_id)) AS posts FROM h
        WHERE tag <> '' GROUP BY gid, lower(tag)
        QUALIFY row_number() OVER (PARTITION BY gid ORDER BY posts DESC, lower(tag)) <= ?
        ORDER BY gid, posts DESC, tag
        """,
        [cfg.top_targets],
    ).fetchall():
        out[gid]["top_hashtags"].append({"hashtag": tag, "posts": int(posts)})
