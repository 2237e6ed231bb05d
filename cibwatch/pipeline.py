"""The detect pipeline: signals -> graph -> clusters -> operations -> characterise -> results.

Each stage is a function over workspace tables; this module only runs them in order,
records the run and reports progress.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cibwatch.config import Config, ConfigError
from cibwatch.workspace import scalar

if TYPE_CHECKING:
    from cibwatch.workspace import Workspace

Progress = Callable[[str], None]


@dataclass
class DetectResult:
    run_id: str
    flagged_assets: int
    operations: int
    seconds: dict[str, float] = field(default_factory=dict)
    out: Path | None = None


def _import_stages() -> None:
    from cibwatch import characterise, cluster, operations, results  # noqa: F401
    from cibwatch.engines import get_engine  # noqa: F401


def preload() -> threading.Thread:
    """Import the stage modules (SciPy, scikit-learn, igraph: ~2 s) on a background thread,
    e.g. while DuckDB ingests, which leaves the GIL free most of the time."""
    thread = threading.Thread(target=_import_stages, name="cibwatch-preload")
    thread.start()
    return thread


def _duckdb_settings(ws: Workspace, cfg: Config) -> None:
    """Cap DuckDB's memory (it spills to disk beyond it) and threads for the run, and
    silence DuckDB's own progress bars: the CLI reports the stages, and `-q` means quiet."""
    import duckdb

    limit = cfg.engine.duckdb_memory_limit.replace("'", "''")
    ws.con.execute("SET enable_progress_bar = false")
    try:
        ws.con.execute(f"SET memory_limit = '{limit}'")
        if cfg.engine.duckdb_threads > 0:
            ws.con.execute(f"SET threads = {int(cfg.engine.duckdb_threads)}")
    except duckdb.Error as exc:
        raise ConfigError(
            f"engine.duckdb_memory_limit / engine.duckdb_threads: {exc}".splitlines()[0]
        ) from None


def detect(
    ws: Workspace,
    out: str | Path | None = None,
    config: Config | None = None,
    progress: Progress | None = None,
    engine: str | None = None,
) -> DetectResult:
    """Find coordinated clusters, join them into operations, profile them, write results.

    `engine` (default `config.engine.name`) runs keys, kernel and pair aggregation: see
    `cibwatch.engines`."""
    from cibwatch import characterise, cluster, operations, results
    from cibwatch.engines import get_engine

    cfg = config or Config()
    if engine is not None:
        cfg = cfg.updated({"engine": {"name": engine}}, source="--engine")
    eng = get_engine(cfg.engine.name, cfg)
    say = progress or (lambda _msg: None)
    _duckdb_settings(ws, cfg)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    ws.con.execute(
        "INSERT INTO runs VALUES (?, now()::TIMESTAMP, NULL, 'running', ?, NULL)",
        [run_id, json.dumps(cfg.to_dict())],
    )
    stages: list[tuple[str, Callable[[], object]]] = [
        ("signals", lambda: eng.extract_keys(ws.con, cfg)),
        ("graph", lambda: eng.build_edges(ws.con, cfg)),
        ("clusters", lambda: cluster.find_clusters(ws.con, cfg)),
        ("operations", lambda: operations.link_operations(ws.con, cfg)),
        ("characterise", lambda: characterise.characterise(ws.con, cfg)),
    ]
    seconds: dict[str, float] = {}
    try:
        for name, stage in stages:
            say(name)
            t0 = time.perf_counter()
            stage()
            seconds[name] = round(time.perf_counter() - t0, 3)
    finally:
        eng.close()
    out_path = None
    if out is not None:
        say("results")
        out_path = results.write_results(ws.con, out)
    flagged = scalar(ws.con, "SELECT count(*) FROM cluster_members")
    n_ops = scalar(ws.con, "SELECT count(*) FROM operations")
    summary = {"flagged_assets": flagged, "operations": n_ops, "seconds": seconds}
    ws.con.execute(
        "UPDATE runs SET finished_at = now()::TIMESTAMP, status = 'done', summary = ? "
        "WHERE run_id = ?",
        [json.dumps(summary), run_id],
    )
    return DetectResult(run_id, flagged, n_ops, seconds, out_path)
