"""`cibwatch detect` end to end on synthetic worlds: wall time, CPU time, peak RSS, quality.

Runs the real command (ingest included) in a child process on a CSV dataset folder, so the
figures are what a user sees. Worlds are generated once into benchmarks/work/ (gitignored),
and again after the generator's code changes.

    .venv/bin/python benchmarks/detect.py --scales 1 10            # 100k and 1M posts
    nice .venv/bin/python benchmarks/detect.py --scales 100        # 10M posts, run once
    .venv/bin/python benchmarks/detect.py --scales 1 --seeds 1 2 3 # quality over seeds
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
CIBWATCH = str(ROOT / ".venv" / "bin" / "cibwatch")
HARD_NEGATIVE_GROUPS = ("viral", "activist", "chain_message", "hyperactive")


def synth_version() -> str:
    """Digest of the generator's source: a cached world is stale once it changes."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "cibwatch" / "synth").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def world(scale: float, seed: int) -> Path:
    """The CSV world for (scale, seed), generated on first use and again whenever the
    generator's code has changed since (its digest is kept in `synth-version`)."""
    out = WORK / f"world-s{scale:g}-seed{seed}"
    stamp, version = out / "synth-version", synth_version()
    fresh = stamp.exists() and stamp.read_text().strip() == version
    if not (fresh and (out / "labels.csv").exists()):
        shutil.rmtree(out, ignore_errors=True)
        from cibwatch.synth import generate

        generate(out, scale=scale, seed=seed, fmt="csv")
        stamp.write_text(version + "\n")
    return out


def score(results: Path, dataset: Path) -> dict:
    """Account precision/recall/F1 (fake followers neutral), hard negatives flagged, and
    operations of 8+ assets with at least one asset found."""
    labels = {}
    with (dataset / "labels.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            labels[(r["platform"], r["account_id"])] = (r["operation_id"], r["role"])
    negatives = {}
    path = dataset / "hard_negatives.csv"
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                negatives[(r["platform"], r["account_id"])] = r["group"]
    with (results / "accounts.csv").open(encoding="utf-8") as fh:
        flagged = {(r["platform"], r["account_id"]) for r in csv.DictReader(fh)}
    operators = {k for k, (_, role) in labels.items() if role == "operator"}
    tp = len(flagged & operators)
    fp = len({k for k in flagged if k not in labels})
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(operators) if operators else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    sizes: dict[str, int] = {}
    found: dict[str, int] = {}
    for k in operators:
        op = labels[k][0]
        sizes[op] = sizes.get(op, 0) + 1
        found[op] = found.get(op, 0) + (k in flagged)
    neg_hits: dict[str, int] = {}
    for k in flagged:
        if k in negatives and k not in labels:
            neg_hits[negatives[k]] = neg_hits.get(negatives[k], 0) + 1
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "false_positives": fp,
        "hard_negatives_flagged": neg_hits,
        "operations": {op: f"{found[op]}/{n}" for op, n in sorted(sizes.items())},
        "missed_operations_8plus": [op for op, n in sizes.items() if n >= 8 and not found[op]],
    }


def run_detect(dataset: Path, tag: str, nice: bool = False) -> dict:
    """Time `cibwatch detect DATASET --out R --workspace W` in a child process."""
    ws = WORK / f"{tag}.duckdb"
    out = WORK / f"{tag}-results"
    for p in (ws, Path(str(ws) + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [CIBWATCH, "detect", str(dataset), "--out", str(out), "--workspace", str(ws), "-q"]
    if nice:
        cmd = ["nice", *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"detect failed:\n{proc.stdout}\n{proc.stderr}")
    stages = {}
    import duckdb

    con = duckdb.connect(str(ws), read_only=True)
    summary = con.execute("SELECT summary FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
    n_posts = con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    con.close()
    if summary and summary[0][0]:
        stages = json.loads(summary[0][0]).get("seconds", {})
    return {
        "posts": n_posts,
        "wall_s": round(wall, 1),
        "cpu_s": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1
        ),
        "peak_rss_gib": round(after.ru_maxrss / 2**20, 2),
        "stages_s": stages,
        "results": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--nice", action="store_true", help="run detect under nice")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print("| scale | seed | posts | wall s | CPU s | peak RSS GiB | P | R | F1 | hard negatives "
          "flagged | stages (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scale in args.scales:
        for seed in args.seeds:
            dataset = world(scale, seed)
            m = run_detect(dataset, f"detect-s{scale:g}-seed{seed}", nice=args.nice)
            q = score(m["results"], dataset)
            print(
                f"| {scale:g} | {seed} | {m['posts']:,} | {m['wall_s']} | {m['cpu_s']} | "
                f"{m['peak_rss_gib']} | {q['precision']} | {q['recall']} | {q['f1']} | "
                f"{q['hard_negatives_flagged'] or 0} | {m['stages_s']} |",
                flush=True,
            )
            print(f"<!-- operations found: {q['operations']}; missed 8+: "
                  f"{q['missed_operations_8plus']} -->", flush=True)
    if os.environ.get("CIBWATCH_BENCH_KEEP") != "1":
        for p in WORK.glob("detect-s*-results"):
            shutil.rmtree(p, ignore_errors=True)


if __name__ == "__main__":
    main()
