"""Engines: where the heavy part of detection runs (key extraction, the co-activity
kernel and the pair aggregation). Everything after it (significance, clusters,
operations, profiles, results) runs on the DuckDB workspace whatever the engine: the
graph that comes out of the pair aggregation is small enough for one machine.

- `duckdb` (default): in process, the workspace itself.
- `spark`: the same keys and the same kernel SQL on Apache Spark (PySpark), for data that
  outgrows one machine; results come back into the workspace as Parquet files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cibwatch.errors import CibwatchError

if TYPE_CHECKING:
    import duckdb

    from cibwatch.config import Config

__all__ = ["ENGINES", "DuckDBEngine", "Engine", "EngineError", "get_engine"]


class EngineError(CibwatchError):
    """An unknown engine name, or an engine that cannot start (no Java, no pyspark)."""


class Engine(Protocol):
    name: str

    def extract_keys(self, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        """Replace the workspace's `keys` table; returns its row count."""
        ...

    def build_edges(self, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        """Replace `edges` and `edge_evidence`; returns the edge count."""
        ...

    def close(self) -> None: ...


class DuckDBEngine:
    """The default: signals and graph straight on the workspace connection."""

    name = "duckdb"

    def __init__(self, config: Config | None = None) -> None:
        self.config = config

    def extract_keys(self, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        from cibwatch.signals import extract_keys

        return extract_keys(con, config)

    def build_edges(self, con: duckdb.DuckDBPyConnection, config: Config) -> int:
        from cibwatch.graph import build_edges

        return build_edges(con, config)

    def close(self) -> None:
        return None


def _spark(config: Config) -> Engine:
    from cibwatch.engines.spark import SparkEngine

    return SparkEngine(config)


ENGINES = {"duckdb": DuckDBEngine, "spark": _spark}


def get_engine(name: str, config: Config) -> Engine:
    """The engine called `name` (`duckdb` or `spark`), set up from `config.engine`."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise EngineError(
            f"unknown engine {name!r}: choose one of {', '.join(sorted(ENGINES))}"
        ) from None
    return factory(config)
