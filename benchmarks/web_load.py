"""Workbench load test: latency of operation pages under concurrent analysts.

    nice .venv/bin/python benchmarks/web_load.py --scale 1 --seed 7

Builds (once, cached under benchmarks/work/web/) a synthetic world, ingests it and runs the
real detect pipeline (`--results truth` uses the ground-truth operations instead), then
starts `cibwatch serve` in a subprocess on a free loopback port and sends a bounded mix of
requests from `--concurrency` httpx clients: operation pages (HTML), operation detail and
network JSON, the overview. It stops after `--requests` requests or `--max-seconds`,
whichever comes first, and prints latency percentiles per kind as JSON. The headline
figure is the p95 of operation pages (target: under 200 ms on the scale-1 world). Views
are memoised until the next write, so a first pass over every target (one client) is
reported apart as `cold`: the cost of the first visit after a decision or a detect run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent / "work" / "web"
BIN = Path(sys.executable).parent / "cibwatch"


async def run_load(base_url: str, token: str, targets: list[tuple[str, str]], requests: int,
                   concurrency: int, max_seconds: float) -> dict:
    """Send `requests` GETs (cycling through `targets`, (kind, path) pairs) from
    `concurrency` clients; per kind: count, errors and latency percentiles in ms."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as c:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                kind, path = targets[i % len(targets)]
                t0 = time.perf_counter()
                r = await c.get(path)
                ms = (time.perf_counter() - t0) * 1000
                latencies.setdefault(kind, []).append(ms)
                if r.status_code != 200:
                    errors[kind] = errors.get(kind, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    out = {"requests": sum(len(v) for v in latencies.values()), "seconds": round(wall, 2),
           "concurrency": concurrency, "kinds": {}}
    out["requests_per_second"] = round(out["requests"] / wall, 1)
    for kind, values in latencies.items():
        a = np.array(values)
        out["kinds"][kind] = {
            "n": len(values), "errors": errors.get(kind, 0),
            "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1),
            "max_ms": round(float(a.max()), 1),
        }
    return out


def targets_for(operation_ids: list[str]) -> list[tuple[str, str]]:
    """The request mix: per operation its page, detail JSON and network JSON; one
    overview every few operations."""
    out: list[tuple[str, str]] = []
    for i, op in enumerate(operation_ids):
        out += [("operation_page", f"/operations/{op}"), ("operation_api", f"/api/operations/{op}"),
                ("operation_page", f"/operations/{op}"), ("network_api",
                                                           f"/api/operations/{op}/network")]
        if i % 3 == 0:
            out.append(("overview_page", "/"))
    return out


def prepare(scale: float, seed: int, results: str) -> tuple[Path, dict]:
    """World, workspace with results, and a bench user; cached between runs."""
    import cibwatch
    from cibwatch.config import Config
    from cibwatch.synth import generate

    ROOT.mkdir(parents=True, exist_ok=True)
    world = ROOT / f"world-s{scale}-seed{seed}"
    ws_path = ROOT / f"ws-s{scale}-seed{seed}-{results}.duckdb"
    info: dict = {}
    if not (world / "labels.csv").exists():
        t0 = time.perf_counter()
        generate(world, scale=scale, seed=seed)
        info["synth_seconds"] = round(time.perf_counter() - t0, 1)
    if not ws_path.exists():
        partial = ws_path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with cibwatch.open(partial) as ws:
            t0 = time.perf_counter()
            ws.ingest(world, progress=False)
            info["ingest_seconds"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            if results == "truth":
                sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
                from support import truth_as_results

                truth_as_results(ws, world / "labels.csv")
                # profile the true operations as detect would (docs/profile.md)
                from cibwatch.characterise import characterise

                characterise(ws.con, Config())
            else:
                ws.detect()
            info["results_seconds"] = round(time.perf_counter() - t0, 1)
        partial.rename(ws_path)
    return ws_path, info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--results", choices=("detect", "truth"), default="detect")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()

    import cibwatch
    from cibwatch.users import add_user, mint_token
    from cibwatch.workspace import scalar

    ws_path, info = prepare(args.scale, args.seed, args.results)
    with cibwatch.open(ws_path) as ws:
        add_user(ws.con, "bench", "analyst", "bench-password-1")
        token = mint_token(ws.con, "bench", "web_load benchmark")
        ops = [r[0] for r in ws.con.execute(
            "SELECT operation_id FROM operations ORDER BY operation_id").fetchall()]
        sizes = ws.con.execute(
            "SELECT sum(n), max(n) FROM (SELECT oc.operation_id, count(*) AS n FROM "
            "operation_clusters oc JOIN cluster_members m USING (cluster_id) GROUP BY 1)"
        ).fetchall()[0]
        posts = scalar(ws.con, "SELECT count(*) FROM posts")
    if not ops:
        sys.exit("no operations in the workspace: nothing to load-test")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([str(BIN), "serve", "--workspace", str(ws_path),
                               "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(base + "/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.time() > deadline:
                sys.exit(f"server did not start: {server.stderr.read()}")
            time.sleep(0.3)
        targets = targets_for(ops)
        # first visit of every target (views built, then memoised until the next write):
        # reported apart as "cold"
        cold = asyncio.run(run_load(base, token, targets, len(targets), 1, 300))
        result = asyncio.run(run_load(base, token, targets, args.requests, args.concurrency,
                                      args.max_seconds))
    finally:
        server.terminate()
        server.wait(30)
    result["cold"] = {k: {"n": v["n"], "p50_ms": v["p50_ms"], "max_ms": v["max_ms"]}
                      for k, v in cold["kinds"].items()}
    result.update({"scale": args.scale, "seed": args.seed, "results": args.results,
                   "operations": len(ops), "flagged_assets": sizes[0],
                   "largest_operation": sizes[1], "posts": posts, **info})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
