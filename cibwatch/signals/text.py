"""Text keys: exact fingerprints of normalised text and MinHash near-duplicate groups.

Normalisation (NFKC, lower case, URLs and @mentions removed, whitespace collapsed) runs as
vectorised Arrow compute; shingling and MinHash run on NumPy arrays of code points, so no
Python loop ever touches one post. Shingles are characters, not words, so Chinese and
Japanese (no spaces) work the same as English.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cibwatch.config import SignalConfig

_URL = r"(?i)(https?://|www\.)\S+"
_MENTION = r"@[\w.]+"
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def normalise(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, lower-cased, invisible characters, URLs and mentions removed, whitespace
    collapsed and trimmed."""
    out = pc.utf8_normalize(texts, form="NFKC")
    out = pc.utf8_lower(out)
    # control and format characters (zero-width spaces, bidi marks) hide copies
    out = pc.replace_substring_regex(out, r"\s", " ")
    out = pc.replace_substring_regex(out, r"[\p{Cc}\p{Cf}]", "")
    out = pc.replace_substring_regex(out, _URL, " ")
    out = pc.replace_substring_regex(out, _MENTION, " ")
    out = pc.replace_substring_regex(out, r"\s+", " ")
    return pc.utf8_trim_whitespace(out)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of a polynomial hash (uint64, wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _codepoints(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """All texts' code points as one uint32 array, and each text's start offset into it."""
    texts = pc.cast(texts, pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[
        texts.offset : texts.offset + len(texts) + 1
    ]
    raw = texts.buffers()[2]
    data = b"" if raw is None else raw.to_pybytes()[offsets[0] : offsets[-1]]
    cps = np.frombuffer(data.decode("utf-8").encode("utf-32-le"), dtype=np.uint32)
    lengths = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return cps, starts


def shingle_hashes(texts: pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every k-character shingle, grouped by text.

    Returns (hashes, first): hashes of text i are hashes[first[i]:first[i+1]]. A text
    shorter than k has none.
    """
    cps, starts = _codepoints(texts)
    n_chars = len(cps)
    lengths = np.diff(starts)
    counts = np.maximum(lengths - k + 1, 0)
    first = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    if n_chars < k or first[-1] == 0:
        return np.zeros(0, dtype=np.uint64), first
    width = n_chars - k + 1
    h = np.zeros(width, dtype=np.uint64)
    prime = np.uint64(1099511628211)
    for j in range(k):
        h = h * prime + cps[j : j + width].astype(np.uint64)
    h = _mix(h)
    # positions of valid shingles: text i contributes starts[i] .. starts[i]+counts[i]-1
    pos = np.arange(first[-1], dtype=np.int64) - np.repeat(first[:-1] - starts[:-1], counts)
    return h[pos], first


def minhash_signatures(
    texts: pa.Array, k: int, num_perm: int, seed: int = 1
) -> np.ndarray:
    """MinHash signatures (n_texts x num_perm, uint32) over k-character shingles.

    Each permutation is an odd multiply plus xor on 32-bit shingle hashes (a universal
    hash family); the minimum per text is a `minimum.reduceat` over contiguous shingles.
    Texts with no shingle get all-max signatures (callers filter them out first).
    """
    hashes, first = shingle_hashes(texts, k)
    n = len(first) - 1
    sig = np.full((n, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    has = first[1:] > first[:-1]
    if not has.any():
        return sig
    h32 = (hashes >> np.uint64(32)).astype(np.uint32)
    rng = np.random.default_rng(seed)
    mults = rng.integers(1, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32) | 1
    xors = rng.integers(0, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32)
    idx = first[:-1][has]
    for p in range(num_perm):
        v = (h32 ^ xors[p]) * mults[p]
        v ^= v >> np.uint32(15)
        sig[has, p] = np.minimum.reduceat(v, idx)
    return sig


def near_duplicate_groups(
    sig: np.ndarray, bands: int, min_similarity: float
) -> np.ndarray:
    """Group label per row: rows joined when an LSH band collides and the signatures
    agree on at least `min_similarity` of positions (checked, so chance band hits do not
    chain unrelated texts). Each colliding row is checked against its bucket's first row,
    so a bucket of n rows costs n checks, never n^2."""
    n, perms = sig.shape
    rows = perms // bands
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    coef = _mix(np.arange(1, rows + 1, dtype=np.uint64))
    for b in range(bands):
        block = sig[:, b * rows : (b + 1) * rows].astype(np.uint64)
        bv = _mix((block * coef).sum(axis=1, dtype=np.uint64) + np.uint64(b))
        order = np.argsort(bv, kind="stable")
        sv = bv[order]
        new = np.ones(n, dtype=bool)
        new[1:] = sv[1:] != sv[:-1]
        head = order[np.maximum.accumulate(np.where(new, np.arange(n), 0))]
        cand = ~new
        a, h = order[cand], head[cand]
        if len(a) == 0:
            continue
        agree = (sig[a] == sig[h]).mean(axis=1)
        ok = agree >= min_similarity
        src.append(a[ok])
        dst.append(h[ok])
    if not src:
        return np.arange(n)
    s = np.concatenate(src)
    d = np.concatenate(dst)
    graph = coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def extract_text_keys(con: duckdb.DuckDBPyConnection, cfg: SignalConfig) -> None:
    """Insert `text` (exact fingerprint) and `neardup` (MinHash group) keys."""
    rel = con.sql(
        """
        SELECT platform, post_id, account_id, created_at AS ts,
               coalesce(text, '') || CASE WHEN title IS NULL THEN '' ELSE ' ' || title END
                   AS text
        FROM posts
        WHERE (text IS NOT NULL AND length(text) > 0) OR title IS NOT NULL
        """
    ).to_arrow_table()
    norm = rel.set_column(4, "norm", normalise(rel.column("text")))
    con.register("_text_norm", norm)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE text_fp AS
        SELECT platform, post_id, account_id, ts, md5(norm) AS fp, norm
        FROM _text_norm WHERE length(norm) >= {int(cfg.min_text_chars)}
        """
    )
    con.unregister("_text_norm")
    del norm, rel
    con.execute(
        "INSERT INTO keys SELECT platform, account_id, 'text', fp, ts, post_id FROM text_fp"
    )
    distinct = con.sql(
        f"""
        SELECT fp, any_value(norm) AS norm FROM text_fp
        WHERE length(norm) >= {int(cfg.minhash_min_chars)}
        GROUP BY fp ORDER BY fp
        """
    ).to_arrow_table()
    if distinct.num_rows < 2:
        con.execute("DROP TABLE text_fp")
        return
    sig = minhash_signatures(
        distinct.column("norm"), cfg.shingle_chars, cfg.minhash_perms, cfg.minhash_seed
    )
    groups = near_duplicate_groups(sig, cfg.minhash_bands, cfg.minhash_min_similarity)
    fps = distinct.column("fp")
    mapping = pa.table({"fp": fps, "grp": pa.array(groups.astype(np.int64))})
    con.register("_fp_group", mapping)
    # A group key is its smallest fingerprint: stable for unchanged data. Groups of one
    # distinct text are left to the exact `text` key.
    con.execute(
        """
        INSERT INTO keys
        WITH g AS (
            SELECT grp, min(fp) AS gkey FROM _fp_group GROUP BY grp HAVING count(*) >= 2
        )
        SELECT t.platform, t.account_id, 'neardup', g.gkey, t.ts, t.post_id
        FROM text_fp t JOIN _fp_group m USING (fp) JOIN g USING (grp)
        """
    )
    con.unregister("_fp_group")
    con.execute("DROP TABLE text_fp")
