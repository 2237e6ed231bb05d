"""The Spark engine: the same keys, the same kernel SQL and the same pair aggregation on
Apache Spark (PySpark), for data that outgrows one machine.

Flow (see docs/spark.md):

1. the workspace's `posts`, `accounts` and `follows` go to Parquet (DuckDB `COPY`): the
   rows ingest has already validated, typed and deduplicated, so both engines see the
   very same input and nothing of the contract reader is written twice;
2. Spark extracts the keys: SQL-expressible keys as Spark SQL (the URL expressions are
   `cibwatch.signals.links`' own builders passed through `spark_sql`), text
   normalisation and MinHash signatures through `mapInArrow` calling the public
   vectorised functions of `cibwatch.signals.text`;
3. the keys get their integer dictionaries in DuckDB (`signals.kernel.encode_steps`,
   one pass over the workspace's keys) and go back to Spark as integer rows; Spark runs
   `key_uses_sql`, `kernel_sql` and `graph.pair_stats_steps` (through `spark_sql`), the
   quadratic-risk self-join and its aggregation;
4. keys, key uses, pair statistics, the pair-test count and the few evidence pairs per
   edge come back as Parquet and DuckDB `read_parquet`; significance, clusters and
   everything after run on the workspace as with the DuckDB engine.

Timestamps cross the Parquet boundary as integer microseconds since the epoch, so no
time zone setting on either side can shift them.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cibwatch.config import Config, EngineConfig, SignalConfig
from cibwatch.engines import EngineError

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

# --------------------------------------------------------------------------- dialect
# DuckDB function -> Spark SQL function of the same meaning and argument order.
_RENAMES = {
    "list_sort": "array_sort",
    "list_filter": "filter",
    "list_transform": "transform",
    "array_to_string": "array_join",
    "arg_min": "min_by",
    "arg_max": "max_by",
    "regexp_matches": "rlike",
}


def _split_args(body: str) -> list[str]:
    """Top-level comma-separated arguments of a call body (quotes and parentheses kept)."""
    args, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(body):
        if ch == "'":
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(body[start:i].strip())
            start = i + 1
    args.append(body[start:].strip())
    return args


def _call_end(sql: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at `open_at`."""
    depth, quote = 0, False
    for i in range(open_at, len(sql)):
        ch = sql[i]
        if ch == "'":
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced parentheses in SQL near {sql[open_at:open_at + 40]!r}")


def _rewrite(name: str, args: list[str]) -> str:
    if name == "epoch":
        return f"(unix_micros({args[0]}) / 1e6)"
    if name == "string_split":
        return f"split({args[0]}, {_quote_regex(args[1])})"
    if name in ("ltrim", "rtrim", "trim") and len(args) == 2:
        side = {"ltrim": "LEADING", "rtrim": "TRAILING", "trim": "BOTH"}[name]
        return f"trim({side} {args[1]} FROM {args[0]})"
    if name == "hash":
        raise ValueError("hash() differs between DuckDB and Spark: use md5()")
    if name == "approx_count_distinct":
        raise ValueError(
            "approx_count_distinct() sketches differ between DuckDB and Spark (DuckDB's "
            "undercounts small sets): use an exact count"
        )
    return f"{_RENAMES.get(name, name)}({', '.join(args)})"


def _quote_regex(literal: str) -> str:
    """A SQL string literal as a regex matching it literally (DuckDB's string_split
    separator is a plain string, Spark's split takes a regex)."""
    inner = literal[1:-1]
    return "'" + re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", inner) + "'"


_CALL = re.compile(r"\b([a-z_]+)\s*\(", re.IGNORECASE)
_TARGETS = set(_RENAMES) | {
    "epoch", "string_split", "ltrim", "rtrim", "trim", "hash", "approx_count_distinct"
}


def spark_sql(sql: str) -> str:
    """DuckDB SQL of the shared builders -> Spark SQL of the same meaning.

    Renames list/regex functions, rewrites `epoch(x)` (fractional seconds, as DuckDB),
    two-argument `ltrim`/`rtrim`/`trim` and `lambda x: e` (-> `x -> e`). String literals
    pass unchanged: the engine's session reads them raw, as DuckDB does
    (`spark.sql.parser.escapedStringLiterals`)."""
    sql = re.sub(r"\blambda\s+(\w+)\s*:", r"\1 ->", sql)
    out, pos, i, quote = [], 0, 0, False
    while i < len(sql):
        if sql[i] == "'":
            quote = not quote
        elif not quote and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            m = _CALL.match(sql, i)
            if m and m.group(1).lower() in _TARGETS:
                open_at = m.end() - 1
                end = _call_end(sql, open_at)
                args = [spark_sql(a) for a in _split_args(sql[open_at + 1 : end])]
                out += [sql[pos:i], _rewrite(m.group(1).lower(), args)]
                pos = i = end + 1
                continue
        i += 1
    out.append(sql[pos:])
    return "".join(out)


# --------------------------------------------------------------------------- session
def spark_session(ec: EngineConfig) -> tuple[SparkSession, bool]:
    """The active Spark session, or a new one from `ec`; True when this call made it."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError(
            "the spark engine needs pyspark: pip install 'cibwatch[spark]'"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        _session_settings(active, ec)
        return active, False
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise EngineError(
            "the spark engine needs a Java runtime (17 or newer): install "
            "default-jre-headless (scripts/system-deps.sh) or set JAVA_HOME"
        )
    # Python workers must be this interpreter: it has cibwatch and its dependencies.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(ec.spark_master)
        .appName("cibwatch")
        .config("spark.driver.memory", ec.spark_driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if ec.spark_java_options:
        builder = builder.config("spark.driver.extraJavaOptions", ec.spark_java_options)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # JVM start-up failures come as several pyspark types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"cannot start Spark ({ec.spark_master}): {first}") from None
    spark.sparkContext.setLogLevel("ERROR")
    _session_settings(spark, ec)
    return spark, True


def _session_settings(spark: SparkSession, ec: EngineConfig) -> None:
    """SQL settings the shared builders need (all runtime-settable)."""
    conf = {
        # string literals read raw, like DuckDB's: the builders' regexes carry backslashes
        "spark.sql.parser.escapedStringLiterals": "true",
        # NULL (not an error) on overflow and division by zero, like DuckDB
        "spark.sql.ansi.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(int(ec.spark_shuffle_partitions)),
    }
    for key, value in conf.items():
        spark.conf.set(key, value)


# --------------------------------------------------------------------------- keys
def _normalise_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    from cibwatch.signals.text import normalise

    for batch in batches:
        if batch.num_rows == 0:
            continue
        norm = normalise(batch.column("text"))
        yield pa.RecordBatch.from_arrays(
            [batch.column(n) for n in ("platform", "post_id", "account_id", "ts_us")]
            + [pc.cast(norm, pa.string())],
            names=["platform", "post_id", "account_id", "ts_us", "norm"],
        )


def _signature_batches(
    batches: Iterator[pa.RecordBatch], k: int, perms: int, seed: int
) -> Iterator[pa.RecordBatch]:
    from cibwatch.signals.text import minhash_signatures

    for batch in batches:
        if batch.num_rows == 0:
            continue
        sig = minhash_signatures(batch.column("norm"), k, perms, seed).astype(np.int64)
        offsets = pa.array(np.arange(0, sig.size + 1, perms, dtype=np.int32))
        lists = pa.ListArray.from_arrays(offsets, pa.array(sig.ravel()))
        yield pa.RecordBatch.from_arrays([batch.column("fp"), lists], names=["fp", "sig"])


def _strip_accents_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if batch.num_rows == 0:
            continue
        yield pa.RecordBatch.from_arrays(
            [batch.column("platform"), batch.column("account_id"),
             pa.array(strip_accents(batch.column("display_name")), pa.string())],
            names=["platform", "account_id", "display_name"],
        )


def strip_accents(texts: pa.Array) -> pa.Array:
    """DuckDB's strip_accents in Arrow: canonical decomposition, marks dropped,
    recomposed (equal to DuckDB on all of Unicode but a few characters assigned after
    DuckDB's Unicode tables)."""
    nfd = pc.utf8_normalize(texts, form="NFD")
    return pc.utf8_normalize(pc.replace_substring_regex(nfd, r"\p{M}", ""), form="NFC")


def _load_inputs(spark: SparkSession, folder: Path) -> None:
    """Temp views `posts`, `accounts`, `follows` over the exported Parquet files."""
    for name in ("posts", "accounts", "follows"):
        df = spark.read.parquet(str(folder / f"{name}.parquet"))
        df.createOrReplaceTempView(f"{name}_raw")
    spark.sql(
        "SELECT *, timestamp_micros(created_us) AS created_at FROM posts_raw"
    ).createOrReplaceTempView("posts")
    spark.sql(
        "SELECT *, timestamp_micros(created_us) AS created_at FROM accounts_raw"
    ).createOrReplaceTempView("accounts")
    spark.table("follows_raw").createOrReplaceTempView("follows")


def _text_keys(spark: SparkSession, cfg: SignalConfig) -> list[DataFrame]:
    """`text` (exact fingerprint) and `neardup` (MinHash group) keys, as
    cibwatch.signals.text builds them."""
    texts = spark.sql(
        """
        SELECT platform, post_id, account_id, created_us AS ts_us,
               coalesce(text, '') || CASE WHEN title IS NULL THEN '' ELSE ' ' || title END
                   AS text
        FROM posts
        WHERE (text IS NOT NULL AND length(text) > 0) OR title IS NOT NULL
        """
    )
    normed = texts.mapInArrow(
        _normalise_batches,
        "platform string, post_id string, account_id string, ts_us bigint, norm string",
    )
    normed.createOrReplaceTempView("text_norm")
    text_fp = spark.sql(
        f"""
        SELECT platform, post_id, account_id, timestamp_micros(ts_us) AS ts, md5(norm) AS fp,
               norm
        FROM text_norm WHERE length(norm) >= {int(cfg.min_text_chars)}
        """
    ).persist()
    text_fp.createOrReplaceTempView("text_fp")
    text = spark.sql(
        "SELECT platform, account_id, 'text' AS key_type, fp AS key, ts, post_id FROM text_fp"
    )
    groups = _neardup_groups(spark, cfg)
    if groups is None:
        return [text]
    spark.createDataFrame(groups).createOrReplaceTempView("fp_group")
    neardup = spark.sql(
        """
        SELECT t.platform, t.account_id, 'neardup' AS key_type, g.gkey AS key, t.ts,
               t.post_id
        FROM text_fp t JOIN fp_group g ON t.fp = g.fp
        """
    )
    return [text, neardup]


def _neardup_groups(spark: SparkSession, cfg: SignalConfig) -> pa.Table | None:
    """fp -> group key (the group's smallest fp) for every near-duplicate group of two
    or more distinct texts, as `signals.text.near_duplicate_groups` forms them: rows
    whose LSH band collides with the band's head (its smallest fp) and that agree on at
    least `minhash_min_similarity` of the signature are joined. Signatures and the
    band checks run on Spark; only the passing (fp, head) edges reach the driver for
    connected components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    perms, bands = int(cfg.minhash_perms), int(cfg.minhash_bands)
    rows = perms // bands
    distinct = spark.sql(
        f"""
        SELECT fp, any_value(norm) AS norm FROM text_fp
        WHERE length(norm) >= {int(cfg.minhash_min_chars)} GROUP BY fp
        """
    )
    sigs = distinct.mapInArrow(
        partial(
            _signature_batches,
            k=int(cfg.shingle_chars),
            perms=perms,
            seed=int(cfg.minhash_seed),
        ),
        "fp string, sig array<bigint>",
    ).persist()
    sigs.createOrReplaceTempView("text_sig")
    edges = spark.sql(
        f"""
        WITH banded AS (
            SELECT fp, b, band FROM text_sig
            LATERAL VIEW posexplode(
                transform(sequence(0, {bands - 1}), i -> slice(sig, i * {rows} + 1, {rows}))
            ) bb AS b, band
        ),
        heads AS (
            SELECT b, band, min(fp) AS head FROM banded GROUP BY b, band
            HAVING count(*) >= 2
        ),
        cand AS (
            SELECT DISTINCT x.fp, h.head FROM banded x
            JOIN heads h ON x.b = h.b AND x.band = h.band
            WHERE x.fp <> h.head
        )
        SELECT c.fp, c.head FROM cand c
        JOIN text_sig s ON s.fp = c.fp
        JOIN text_sig t ON t.fp = c.head
        WHERE size(filter(zip_with(s.sig, t.sig, (x, y) -> x = y), v -> v)) / {perms}
              >= {float(cfg.minhash_min_similarity)}
        """
    ).toArrow()
    sigs.unpersist()
    if edges.num_rows == 0:
        return None
    src = edges.column("fp").to_numpy(zero_copy_only=False)
    dst = edges.column("head").to_numpy(zero_copy_only=False)
    names, index = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(names)
    a, b = index[: len(src)], index[len(src) :]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    # names are sorted, so the first name seen per label is the group's smallest fp
    first = np.full(labels.max() + 1, -1)
    for_label = np.unique(labels, return_index=True)
    first[for_label[0]] = for_label[1]
    return pa.table({"fp": pa.array(names, pa.string()),
                     "gkey": pa.array(names[first[labels]], pa.string())})


def _link_keys(spark: SparkSession, cfg: SignalConfig) -> list[DataFrame]:
    """`url` and `domain` keys with cibwatch.signals.links' own SQL expressions."""
    from cibwatch.signals.links import canonical_url_sql, domain_sql

    canon = spark_sql(canonical_url_sql("u", cfg.tracking_params_regex))
    domain = spark_sql(domain_sql("u"))
    spark.sql(
        f"""
        SELECT DISTINCT platform, account_id, post_id, created_at AS ts, {canon} AS url,
               {domain} AS domain
        FROM (SELECT platform, account_id, post_id, created_at, explode(urls) AS u
              FROM posts WHERE urls IS NOT NULL AND size(urls) > 0)
        WHERE u IS NOT NULL AND trim(u) <> ''
        """
    ).createOrReplaceTempView("post_urls")
    url = spark.sql(
        "SELECT platform, account_id, 'url' AS key_type, url AS key, ts, post_id "
        "FROM post_urls WHERE url <> ''"
    )
    dom = spark.sql(
        "SELECT DISTINCT platform, account_id, 'domain' AS key_type, domain AS key, ts, "
        "post_id FROM post_urls WHERE domain <> ''"
    )
    return [url, dom]


def _engagement_keys(spark: SparkSession, cfg: SignalConfig) -> list[DataFrame]:
    """`share`, `reply`, `react`, `engage`, `hashtags`, `media` keys
    (cibwatch.signals.engagement)."""
    engage = spark.sql(
        """
        SELECT DISTINCT p.platform, p.account_id, 'engage' AS key_type,
               t.account_id AS key, CAST(NULL AS TIMESTAMP) AS ts,
               CAST(NULL AS STRING) AS post_id
        FROM posts p
        JOIN posts t
          ON t.platform = p.platform AND t.post_id = coalesce(p.shared_id, p.parent_id)
        WHERE coalesce(p.shared_id, p.parent_id) IS NOT NULL
          AND p.account_id <> t.account_id
        """
    )
    engage.createOrReplaceTempView("engage_keys")
    return [
        spark.sql(
            """
            SELECT platform, account_id, 'share' AS key_type, shared_id AS key,
                   created_at AS ts, post_id
            FROM posts WHERE shared_id IS NOT NULL AND shared_id <> ''
            """
        ),
        spark.sql(
            """
            SELECT platform, account_id,
                   CASE WHEN kind = 'reaction' THEN 'react' ELSE 'reply' END AS key_type,
                   parent_id AS key, created_at AS ts, post_id
            FROM posts WHERE parent_id IS NOT NULL AND parent_id <> ''
            """
        ),
        engage,
        spark.sql(
            """
            SELECT DISTINCT platform, key AS account_id, 'engage' AS key_type, key, ts,
                   post_id
            FROM engage_keys
            """
        ),
        spark.sql(
            f"""
            SELECT platform, account_id, 'hashtags' AS key_type,
                   array_join(transform(hashtags, h -> lower(trim(BOTH '#' FROM h))), ' ')
                       AS key,
                   created_at AS ts, post_id
            FROM posts WHERE size(hashtags) >= {int(cfg.min_hashtags)}
            """
        ),
        spark.sql(
            """
            SELECT DISTINCT platform, account_id, 'media' AS key_type, m AS key,
                   created_at AS ts, post_id
            FROM (SELECT platform, account_id, created_at, post_id,
                         explode(media_hashes) AS m
                  FROM posts WHERE size(media_hashes) > 0)
            WHERE m IS NOT NULL AND m <> ''
            """
        ),
    ]


def _account_keys(spark: SparkSession, cfg: SignalConfig) -> list[DataFrame]:
    """`avatar`, `batch`, `handle`, `name`, `follow` keys (cibwatch.signals.accounts)."""
    batch = int(cfg.batch_minutes) * 60
    spark.table("accounts").select("platform", "account_id", "display_name").where(
        "display_name IS NOT NULL"
    ).mapInArrow(
        _strip_accents_batches, "platform string, account_id string, display_name string"
    ).createOrReplaceTempView("account_names")
    return [
        spark.sql(
            """
            SELECT platform, account_id, 'avatar' AS key_type, lower(avatar_hash) AS key,
                   CAST(NULL AS TIMESTAMP) AS ts, CAST(NULL AS STRING) AS post_id
            FROM accounts WHERE avatar_hash IS NOT NULL AND avatar_hash <> ''
            """
        ),
        spark.sql(
            f"""
            SELECT platform, account_id, 'batch' AS key_type,
                   CAST(CAST(floor(unix_micros(created_at) / 1e6 / {batch}) AS BIGINT)
                        AS STRING) AS key,
                   CAST(NULL AS TIMESTAMP) AS ts, CAST(NULL AS STRING) AS post_id
            FROM accounts WHERE created_at IS NOT NULL
            """
        ),
        spark.sql(
            f"""
            SELECT platform, account_id, 'handle' AS key_type, fam || '#' AS key,
                   CAST(NULL AS TIMESTAMP) AS ts, CAST(NULL AS STRING) AS post_id
            FROM (SELECT platform, account_id,
                         regexp_replace(regexp_extract(lower(handle), '^(.*?)[0-9]+$', 1),
                                        '[^\\p{{Alnum}}]', '') AS fam,
                         regexp_extract(handle, '([0-9]+)$', 1) AS digits
                  FROM accounts WHERE handle IS NOT NULL)
            WHERE length(digits) >= {int(cfg.handle_min_digits)}
              AND length(fam) >= {int(cfg.handle_min_stem)}
            """
        ),
        spark.sql(
            f"""
            SELECT platform, account_id, 'name' AS key_type, nm AS key,
                   CAST(NULL AS TIMESTAMP) AS ts, CAST(NULL AS STRING) AS post_id
            FROM (SELECT platform, account_id,
                         trim(regexp_replace(lower(display_name), '[\\t\\n\\f\\r ]+', ' '))
                             AS nm
                  FROM account_names)
            WHERE length(nm) >= {int(cfg.min_name_chars)}
            """
        ),
        spark.sql(
            """
            SELECT DISTINCT platform, follower_id AS account_id, 'follow' AS key_type,
                   followee_id AS key, CAST(NULL AS TIMESTAMP) AS ts,
                   CAST(NULL AS STRING) AS post_id
            FROM follows WHERE follower_id <> followee_id
            UNION
            SELECT DISTINCT platform, followee_id, 'follow', followee_id,
                   CAST(NULL AS TIMESTAMP), CAST(NULL AS STRING)
            FROM follows WHERE follower_id <> followee_id
            """
        ),
    ]


def spark_keys(spark: SparkSession, inputs: Path, cfg: SignalConfig) -> DataFrame:
    """Every key of the exported workspace tables in `inputs`, as rows
    (platform, account_id, key_type, key, ts, post_id): the same rows
    `cibwatch.signals.extract_keys` writes."""
    _load_inputs(spark, inputs)
    parts = (
        _text_keys(spark, cfg)
        + _link_keys(spark, cfg)
        + _engagement_keys(spark, cfg)
        + _account_keys(spark, cfg)
    )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


# --------------------------------------------------------------------------- kernel
@dataclass
class SparkKernel:
    """The kernel's tables on Spark: key uses, the candidate pairs' key pairs, per-pair
    statistics, the number of pair tests and each key type's number of assets (integer
    ids, as `cibwatch.signals.kernel` gives them)."""

    uses: DataFrame
    pairs: DataFrame
    stats: DataFrame
    tests: DataFrame
    users: DataFrame
    steps: list[DataFrame]

    def evidence(self, per: int) -> DataFrame:
        """The `per` rarest shared keys per pair and key type: the only key pairs the
        graph's evidence step reads (same ranking as `graph.build_edges`: by users,
        then by the key's text)."""
        self.pairs.createOrReplaceTempView("key_pairs")
        return self.pairs.sparkSession.sql(
            f"""
            SELECT kid, kt, a, b, ts_a, ts_b, n_users FROM (
                SELECT p.*, row_number() OVER (PARTITION BY p.a, p.b, p.kt
                                               ORDER BY p.n_users, i.key) AS rk
                FROM key_pairs p JOIN key_ids i ON i.kid = p.kid)
            WHERE rk <= {int(per)}
            """
        )

    def unpersist(self) -> None:
        for df in [self.pairs, self.uses, *self.steps]:
            df.unpersist()


def spark_kernel(
    spark: SparkSession,
    rows: DataFrame,
    kinds: DataFrame,
    ids: DataFrame,
    config: Config,
) -> SparkKernel:
    """`key_uses_sql` and the steps of `graph.pair_stats_steps` (`kernel_sql` inside),
    run on Spark over the integer-encoded keys (`key_rows`, `key_kinds`, `key_ids` of
    `signals.kernel.encode_steps`). Each step is cached under its name, as DuckDB's
    kernel makes each a temp table: planned as one query, Spark inlines the CTEs and
    recomputes the shared ones (acct twice, kept twice)."""
    from cibwatch.graph import pair_stats_steps
    from cibwatch.signals.kernel import key_uses_sql

    cfg = config.signals
    rows.createOrReplaceTempView("key_rows")
    kinds.createOrReplaceTempView("key_kinds")
    ids.createOrReplaceTempView("key_ids")
    uses = spark.sql(spark_sql(key_uses_sql(cfg, "key_rows"))).persist()
    uses.createOrReplaceTempView("key_uses")
    # the kernel's self-join runs inside the steps: counted as it streams, and kept
    # (`key_pairs`) for the candidate pairs only, as in the DuckDB kernel
    cached, results = [], {}
    for name, sql in pair_stats_steps(int(config.graph.min_shared_keys)):
        df = spark.sql(spark_sql(sql))
        results[name] = df
        if name != "pair_stats":
            df = df.persist()
            cached.append(df)
        df.createOrReplaceTempView(name)
    return SparkKernel(uses, results["key_pairs"], results["pair_stats"],
                       results["pair_tests"], results["users"], cached)


# --------------------------------------------------------------------------- engine
def _write(df: DataFrame, path: Path, ts_cols: tuple[str, ...] = ()) -> Path:
    """A Spark DataFrame as Parquet, timestamps as integer microseconds."""
    from pyspark.sql import functions as F

    for col in ts_cols:
        df = df.withColumn(col, F.unix_micros(F.col(col)))
    df.write.mode("overwrite").parquet(str(path))
    return path


def _read_sql(path: Path, ts_cols: tuple[str, ...] = ()) -> str:
    """DuckDB SELECT over Spark's Parquet output, microseconds back to timestamps."""
    if not any(path.glob("*.parquet")):
        raise EngineError(f"{path}: Spark wrote no Parquet file")
    replace = ", ".join(f"make_timestamp({c})::TIMESTAMP AS {c}" for c in ts_cols)
    star = f"* REPLACE ({replace})" if ts_cols else "*"
    return f"SELECT {star} FROM read_parquet({_lit(path.as_posix() + '/*.parquet')})"


def _lit(text: str) -> str:
    """A SQL string literal (a work folder may contain a quote)."""
    return "'" + text.replace("'", "''") + "'"


class SparkEngine:
    """Keys, kernel and pair aggregation on Spark; the rest on the workspace."""

    name = "spark"

    def __init__(self, config: Config, session: SparkSession | None = None) -> None:
        self.config = config
        self._spark = session
        self._own = False
        self._tmp: str | None = None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark, self._own = spark_session(self.config.engine)
        else:
            _session_settings(self._spark, self.config.engine)
        return self._spark

    def workdir(self) -> Path:
        if self.config.engine.spark_workdir:
            path = Path(self.config.engine.spark_workdir)
            path.mkdir(parents=True, exist_ok=True)
            return path
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="cibwatch-spark-")
        return Path(self._tmp)

    def export_inputs(self, con: duckdb.DuckDBPyConnection) -> Path:
        """posts, accounts, follows of the workspace as Parquet (timestamps in us)."""
        folder = self.workdir() / "input"
        folder.mkdir(parents=True, exist_ok=True)
        queries = {
            "posts": "SELECT platform, post_id, account_id, epoch_us(created_at) AS "
            "created_us, kind, text, title, urls, hashtags, media_hashes, parent_id, "
            "shared_id FROM posts",
            "accounts": "SELECT platform, account_id, handle, display_name, "
            "epoch_us(created_at) AS created_us, avatar_hash FROM accounts",
            "follows": "SELECT platform, follower_id, followee_id FROM follows",
        }
        for name, query in queries.items():
            target = (folder / f"{name}.parquet").as_posix()
            con.execute(f"COPY ({query}) TO {_lit(target)} (FORMAT parquet)")
        return folder

    def extract_keys(self, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        self.config = config
        inputs = self.export_inputs(con)
        keys = spark_keys(self.spark, inputs, config.signals)
        path = _write(keys, self.workdir() / "keys", ("ts",))
        self.spark.catalog.clearCache()
        con.execute("DELETE FROM keys")
        con.execute(
            "INSERT INTO keys SELECT platform, account_id, key_type, key, ts, post_id "
            f"FROM ({_read_sql(path, ('ts',))})"
        )
        return int(con.execute("SELECT count(*) FROM keys").fetchall()[0][0])

    def kernel(self, con: duckdb.DuckDBPyConnection, config: Config) -> None:
        """`graph.Kernel` on Spark: the workspace's keys get their integer dictionaries
        in DuckDB (`encode_steps`, one pass), Spark runs the kernel and the pair
        aggregation on the integer rows; `key_uses`, the evidence `key_pairs`,
        `pair_stats`, `pair_tests` and `users` come back as temp tables."""
        from cibwatch.signals.kernel import encode_steps

        work = self.workdir()
        *dicts, (_, rows_sql) = encode_steps(config.signals)
        for name, sql in dicts:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        files = {
            "key_rows": "SELECT kid, kt, aid, hrank, epoch_us(ts) AS ts_us, post_id "
            f"FROM ({rows_sql})",
            "key_kinds": "SELECT * FROM key_kinds",
            "key_ids": "SELECT kid, key FROM key_ids",
        }
        for name, query in files.items():
            target = (work / f"{name}.parquet").as_posix()
            con.execute(f"COPY ({query}) TO {_lit(target)} (FORMAT parquet)")
        spark = self.spark
        rows = spark.read.parquet((work / "key_rows.parquet").as_posix()).selectExpr(
            "kid", "kt", "aid", "hrank", "timestamp_micros(ts_us) AS ts", "post_id"
        )
        kinds = spark.read.parquet((work / "key_kinds.parquet").as_posix())
        ids = spark.read.parquet((work / "key_ids.parquet").as_posix())
        k = spark_kernel(spark, rows, kinds, ids, config)
        out = {
            "key_uses": _write(k.uses, work / "key_uses", ("ts",)),
            "key_pairs": _write(k.evidence(int(config.graph.evidence_per_type)),
                                work / "evidence", ("ts_a", "ts_b")),
            "pair_stats": _write(k.stats, work / "pair_stats"),
            "pair_tests": _write(k.tests, work / "pair_tests"),
            "users": _write(k.users, work / "users"),
        }
        k.unpersist()
        spark.catalog.clearCache()
        ts_cols = {"key_uses": ("ts",), "key_pairs": ("ts_a", "ts_b")}
        for name, path in out.items():
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {name} AS "
                f"{_read_sql(path, ts_cols.get(name, ()))}"
            )

    def build_edges(self, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        from cibwatch.graph import build_edges

        self.config = config
        return build_edges(con, config, kernel=self.kernel)

    def close(self) -> None:
        if self._own and self._spark is not None:
            self._spark.stop()
        self._spark = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

