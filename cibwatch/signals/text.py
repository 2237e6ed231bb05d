"""Text keys: exact fingerprints of normalised text and MinHash near-duplicate groups.

Normalisation (NFKC, lower case, URLs and @mentions removed, whitespace collapsed) runs as
vectorised Arrow compute; shingling and MinHash run on NumPy arrays of code points, so no
Python loop ever touches one post. Shingles are characters, not words, so Chinese and
Japanese (no spaces) work the same as English.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cibwatch.config import SignalConfig

# Unicode Cc (U+0000-001F, U+007F-009F) but tab, newline, form feed and return; and Cf.
_CONTROL = r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\p{Cf}]"
# RE2's \s but the space (tab, newline, form feed, return), or a URL.
_SPACE_OR_URL = r"(?i)[\t\n\f\r]|(?:https?://|www\.)\S+"
_MENTION = r"@[\w.]+"
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# Band-colliding pairs whose signatures are compared per chunk (bounds the copies).
_CHECK_ROWS = 1 << 18


def normalise(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, lower-cased, invisible characters, URLs and mentions removed, whitespace
    collapsed and trimmed."""
    out = pc.utf8_normalize(texts, form="NFKC")
    out = pc.utf8_lower(out)
    # control and format characters (zero-width spaces, bidi marks) hide copies: removed,
    # except the whitespace among them (RE2's \s: tab, newline, form feed, return),
    # which becomes a space in the URL pass (a URL ends at it either way: one pass fewer
    # over all texts, 2.4 of 5.8 CPU s at 10.8M posts). Only those are rewritten, not
    # every space: a match per space is slow.
    out = pc.replace_substring_regex(out, _CONTROL, "")
    out = pc.replace_substring_regex(out, _SPACE_OR_URL, " ")
    out = pc.replace_substring_regex(out, _MENTION, " ")
    # spaces are the only whitespace left: collapse runs of two or more
    out = pc.replace_substring_regex(out, r"  +", " ")
    return pc.utf8_trim_whitespace(out)


def normalise_parallel(texts: pa.Array | pa.ChunkedArray, threads: int = 2) -> pa.Array:
    """`normalise` over slices in `threads` threads (Arrow's kernels release the GIL)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    parts = max(1, min(int(threads), len(texts) // 50_000))
    if parts == 1:
        return normalise(texts)
    step = -(-len(texts) // parts)
    with ThreadPoolExecutor(parts) as pool:
        chunks = list(pool.map(normalise, [texts.slice(i, step)
                                           for i in range(0, len(texts), step)]))
    return pa.concat_arrays(chunks)


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
    data = b"" if raw is None else memoryview(raw)[offsets[0] : offsets[-1]].tobytes()
    cps = np.frombuffer(data.decode("utf-8").encode("utf-32-le"), dtype=np.uint32)
    lengths = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False)
    lengths = lengths.astype(np.int64)
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return cps, starts


def _shingles(texts: pa.Array, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h, valid, first): the 64-bit hash of the k characters starting at every position
    of the concatenated texts, which positions start a shingle inside one text, and
    each text's first shingle index (shingles of text i: first[i]:first[i+1])."""
    cps, starts = _codepoints(texts)
    n_chars = len(cps)
    lengths = np.diff(starts)
    counts = np.maximum(lengths - k + 1, 0)
    first = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    if n_chars < k or first[-1] == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool), first
    width = n_chars - k + 1
    wide = cps.astype(np.uint64)
    del cps
    # polynomial hash, in place: h = ((c0 * P + c1) * P + c2) ... (uint64, wraps)
    h = wide[:width].copy()
    prime = np.uint64(1099511628211)
    for j in range(1, k):
        h *= prime
        h += wide[j : j + width]
    del wide
    _mix_inplace(h)
    # text i contributes positions starts[i] .. starts[i]+counts[i]-1: +1 at each first
    # position, -1 after each last, running sum > 0 inside
    has = counts > 0
    edges = np.bincount(starts[:-1][has], minlength=width + 1)
    edges -= np.bincount((starts[:-1] + counts)[has], minlength=width + 1)
    valid = np.cumsum(edges[:width]) > 0
    return h, valid, first


def shingle_hashes(texts: pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every k-character shingle, grouped by text.

    Returns (hashes, first): hashes of text i are hashes[first[i]:first[i+1]]. A text
    shorter than k has none.
    """
    h, valid, first = _shingles(texts, k)
    return h[valid], first


def _mix_inplace(h: np.ndarray) -> None:
    """`_mix` without temporaries the size of `h`."""
    t = h >> np.uint64(30)
    h ^= t
    h *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(h, np.uint64(27), out=t)
    h ^= t
    h *= np.uint64(0x94D049BB133111EB)
    np.right_shift(h, np.uint64(31), out=t)
    h ^= t


def minhash_signatures(
    texts: pa.Array, k: int, num_perm: int, seed: int = 1, block: int = 1 << 16
) -> np.ndarray:
    """MinHash signatures (n_texts x num_perm, uint32) over k-character shingles.

    Each permutation is an odd multiply plus xor on 32-bit shingle hashes (a universal
    hash family); the minimum per text is a `minimum.reduceat` over contiguous shingles.
    Texts go through a slice of about `block` characters at a time, so the working
    arrays stay in the CPU cache.
    Texts with no shingle get all-max signatures (callers filter them out first).
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    sig = np.full((n, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    rng = np.random.default_rng(seed)
    mults = rng.integers(1, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32) | 1
    xors = rng.integers(0, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32)
    chars = np.cumsum(pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False))
    cuts = np.searchsorted(chars, np.arange(block, chars[-1] if n else 0, block), "right")
    bounds = np.unique(np.concatenate([[0], cuts, [n]]))

    def one_slice(lo: int, hi: int) -> None:
        h, valid, first = _shingles(texts.slice(lo, hi - lo), k)
        has = first[1:] > first[:-1]
        if not has.any():
            return
        h >>= np.uint64(32)
        h32 = h.astype(np.uint32)[valid]
        at = first[:-1][has]
        v = np.empty_like(h32)
        t = np.empty_like(h32)
        out = np.empty((len(at), num_perm), dtype=np.uint32)
        for p in range(num_perm):
            np.bitwise_xor(h32, xors[p], out=v)
            v *= mults[p]
            np.right_shift(v, np.uint32(15), out=t)
            v ^= t
            out[:, p] = np.minimum.reduceat(v, at)
        sig[lo + np.flatnonzero(has)] = out  # slices own disjoint rows

    # NumPy releases the GIL in its loops: slices run in parallel threads
    with ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 4))) as pool:
        list(pool.map(one_slice, bounds[:-1], bounds[1:]))
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
        # the band's hash column by column (uint64 sums wrap the same in any order), not
        # as an n x rows uint64 copy of the band
        acc = np.full(n, np.uint64(b), dtype=np.uint64)
        for r in range(rows):
            acc += sig[:, b * rows + r].astype(np.uint64) * coef[r]
        bv = _mix(acc)
        del acc
        # an unstable sort (3x faster than a stable one); a bucket's head is still its
        # smallest row, its minimum over the run
        order = np.argsort(bv)
        sv = bv[order]
        new = np.ones(n, dtype=bool)
        new[1:] = sv[1:] != sv[:-1]
        starts = np.flatnonzero(new)
        head = np.repeat(np.minimum.reduceat(order, starts), np.diff(starts, append=n))
        cand = order != head
        a, h = order[cand], head[cand]
        if len(a) == 0:
            continue
        del order, sv, new, starts, head, cand, bv
        # a chunk of pairs at a time: the two copies of their signature rows stay small
        # however many pairs collide
        ok = np.concatenate([
            (sig[a[i : i + _CHECK_ROWS]] == sig[h[i : i + _CHECK_ROWS]]).mean(axis=1)
            >= min_similarity
            for i in range(0, len(a), _CHECK_ROWS)
        ])
        src.append(a[ok])
        dst.append(h[ok])
    if not src:
        return np.arange(n)
    s = np.concatenate(src)
    d = np.concatenate(dst)
    graph = coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _fingerprint_table(con: duckdb.DuckDBPyConnection, cfg: SignalConfig) -> None:
    """Temp table `text_fp` (one row per post with a long enough normalised text),
    filled a batch of posts at a time: the posts are read on a second cursor (the main
    connection is busy inserting), so no more than two batches of texts are in Python
    (the one inserted and the next, normalised meanwhile)."""
    query = """
        SELECT platform, post_id, account_id, created_at AS ts,
               coalesce(text, '') || CASE WHEN title IS NULL THEN '' ELSE ' ' || title END
                   AS text
        FROM posts
        WHERE (text IS NOT NULL AND length(text) > 0) OR title IS NOT NULL
        """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE text_fp AS
        SELECT platform, post_id, account_id, ts, md5(text) AS fp, text AS norm
        FROM ({query}) LIMIT 0
        """
    )
    threads = min(os.cpu_count() or 1, 4)
    cur = con.cursor()

    def next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
        """The next non-empty batch of posts, its text normalised (None at the end)."""
        for batch in reader:
            if batch.num_rows:
                return batch.set_column(
                    4, "norm", normalise_parallel(batch.column("text"), threads))
        return None

    # One batch ahead: the next batch is read (on the cursor) and normalised on a worker
    # thread while this one inserts the current batch (on the main connection).
    ahead = ThreadPoolExecutor(1, thread_name_prefix="cibwatch-normalise")
    try:
        reader = cur.sql(query).to_arrow_reader(int(cfg.text_batch_rows))
        pending = ahead.submit(next_batch, reader)
        while (norm := pending.result()) is not None:
            pending = ahead.submit(next_batch, reader)
            con.register("_text_norm", norm)
            con.execute(
                f"""
                INSERT INTO text_fp
                SELECT platform, post_id, account_id, ts, md5(norm) AS fp, norm
                FROM _text_norm WHERE length(norm) >= {int(cfg.min_text_chars)}
                """
            )
            con.unregister("_text_norm")
            del norm
    finally:
        ahead.shutdown(wait=True, cancel_futures=True)
        cur.close()


def _rank_of(rowids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """rowid -> its position in `rowids` (distinct). A new table's rowids are one
    contiguous run (from a large base inside a transaction): a direct lookup; anything
    else falls back to a binary search."""
    n = len(rowids)
    base = int(rowids.min()) if n else 0
    if n == 0 or int(rowids.max()) - base == n - 1:
        pos = np.empty(n, dtype=np.int64)
        pos[rowids - base] = np.arange(n)
        return lambda r: pos[r - base]
    by_rowid = np.argsort(rowids)
    sorted_ids = rowids[by_rowid]
    return lambda r: by_rowid[np.searchsorted(sorted_ids, r)]


def _distinct_signatures(
    con: duckdb.DuckDBPyConnection, cfg: SignalConfig
) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Distinct fingerprints long enough for MinHash (in fp order) and their signatures,
    streamed a batch at a time so only one batch of texts is held in Python.

    Only the fingerprints are sorted: a sort that carried the texts along cost 3-4 of
    its 4.5 CPU s at 10.8M posts. Texts are read in table order and each signature is
    written to its fingerprint's rank."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _fp_texts AS
        SELECT fp, any_value(norm) AS norm FROM text_fp
        WHERE length(norm) >= {int(cfg.minhash_min_chars)}
        GROUP BY fp
        """
    )
    ordered = con.sql("SELECT rowid AS r, fp FROM _fp_texts ORDER BY fp").to_arrow_table()
    n = ordered.num_rows
    rowids = ordered.column("r").to_numpy()
    fps = ordered.column("fp").cast(pa.string())
    del ordered
    rank = _rank_of(rowids)
    sig = np.empty((n, int(cfg.minhash_perms)), dtype=np.uint32)
    reader = con.sql("SELECT rowid AS r, norm FROM _fp_texts").to_arrow_reader(
        int(cfg.text_batch_rows))
    for batch in reader:
        if batch.num_rows == 0:
            continue
        sig[rank(batch.column("r").to_numpy())] = minhash_signatures(
            batch.column("norm"), cfg.shingle_chars, cfg.minhash_perms, cfg.minhash_seed
        )
        del batch
    del reader
    con.execute("DROP TABLE _fp_texts")
    return fps, sig


def extract_text_keys(
    con: duckdb.DuckDBPyConnection, cfg: SignalConfig,
    fingerprinted: Callable[[], None] | None = None,
) -> None:
    """Insert `text` (exact fingerprint) and `neardup` (MinHash group) keys.

    `fingerprinted` is called once the exact keys are in: normalising keeps both cores
    busy, MinHash and the grouping after it mostly one, so that is when other work
    (on another connection) fits beside it."""
    _fingerprint_table(con, cfg)
    pa.default_memory_pool().release_unused()
    con.execute(
        "INSERT INTO keys SELECT platform, account_id, 'text', fp, ts, post_id FROM text_fp"
    )
    if fingerprinted is not None:
        fingerprinted()
    fps, sig = _distinct_signatures(con, cfg)
    pa.default_memory_pool().release_unused()
    if len(fps) < 2:
        con.execute("DROP TABLE text_fp")
        return
    groups = near_duplicate_groups(sig, cfg.minhash_bands, cfg.minhash_min_similarity)
    del sig
    mapping = pa.table({"fp": fps, "grp": pa.array(groups.astype(np.int64))})
    del groups
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
    del mapping
    pa.default_memory_pool().release_unused()
    con.execute("DROP TABLE text_fp")
