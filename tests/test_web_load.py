"""A small, bounded run of benchmarks/web_load.py against a live server: concurrent
analysts get every page right and quickly (the scale-1 figure is in RESULTS.md)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from test_web_world import build_workspace, serving, tokens

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "web_load.py"


def _bench():
    spec = importlib.util.spec_from_file_location("web_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bounded_load_on_loopback(tmp_path):
    bench = _bench()
    ws = build_workspace(tmp_path / "ws.duckdb")
    token = tokens(ws)["vic"]
    with serving(ws) as s:
        targets = bench.targets_for(["op-spam", "op-small"])
        asyncio.run(bench.run_load(s.url, token, targets, len(targets), 1, 60))  # warm-up
        result = asyncio.run(bench.run_load(s.url, token, targets, 240, 4, 60))
    assert result["requests"] == 240
    kinds = result["kinds"]
    assert set(kinds) == {"operation_page", "operation_api", "network_api", "overview_page"}
    assert all(k["errors"] == 0 for k in kinds.values())
    # server and clients share one process and two cores with the rest of the suite: a
    # bound that only catches pathologies (a global lock, a per-request stall)
    assert kinds["operation_page"]["p95_ms"] < 5000
