"""The synthetic world: organic people, hard negatives and planted operations with
ground truth, written as a dataset folder in the input format of SCHEMA.md.

    from cibwatch.synth import generate
    summary = generate("world/", scale=1.0, seed=7)        # ~100k posts

Beside the input tables it writes `labels.csv`, `hard_negatives.csv`, `truth.json` and
`truth_clusters.csv`, which detection never reads. The same seed gives the same files.
See docs/synth.md.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np

from cibwatch.synth import negatives, operations, population, truth, writer
from cibwatch.synth.rhythms import Calendar
from cibwatch.synth.world import PLATFORMS, World

__all__ = ["generate", "WORLD_START", "WORLD_DAYS", "FORMATS"]

# A Monday; the 70 days include Qingming (4-6 April) and Labour Day (1-5 May) holidays.
WORLD_START = dt.datetime(2024, 3, 11, tzinfo=dt.UTC)
WORLD_DAYS = 70
FORMATS = writer.FORMATS
INPUT_TABLES = ("accounts", "posts", "follows")


def build(scale: float = 1.0, seed: int = 0) -> tuple[World, dict]:
    """Build the world in memory: (world, truth)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rng = np.random.default_rng(seed)
    cal = Calendar(start=int(WORLD_START.timestamp()), days=WORLD_DAYS)
    w = World(rng=rng, cal=cal, scale=scale, seed=seed)
    pop = population.build(w, scale)
    population.organic_posts(w, pop, scale)
    negs = negatives.all_negatives(w, pop, scale)
    ops = operations.all_operations(w, pop, scale)
    pop.grow(w.n_accounts)
    population.organic_engagement(w, pop)
    population.organic_follows(w, pop)
    measured = truth.measure(w, ops)
    return w, {"operations": measured, "hard_negatives": negs}


def generate(out_dir: str | Path, scale: float = 1.0, seed: int = 0, fmt: str = "csv") -> dict:
    """Write the world to `out_dir` (created; earlier table files there are replaced).

    Returns a summary: rows per table, files, seconds, posts per second."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    w, world_truth = build(scale, seed)
    accounts, posts, follows, acc_ids = w.tables()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        stem = old.name.split(".")[0].split("-")[0]
        if stem in INPUT_TABLES and old.is_file():
            old.unlink()
    files = writer.write_dataset(
        out, {"accounts": accounts, "posts": posts, "follows": follows}, fmt
    )
    writer.write_csv(truth.label_table(w, acc_ids), out / "labels.csv")
    writer.write_csv(truth.negatives_table(w, acc_ids), out / "hard_negatives.csv")
    writer.write_csv(truth.clusters_table(w, acc_ids), out / "truth_clusters.csv")
    seconds = time.perf_counter() - started
    world = {
        "seed": seed,
        "scale": scale,
        "format": fmt,
        "start": WORLD_START.isoformat().replace("+00:00", "Z"),
        "end": (WORLD_START + dt.timedelta(days=WORLD_DAYS)).isoformat().replace("+00:00", "Z"),
        "days": WORLD_DAYS,
        "platforms": list(PLATFORMS),
        "accounts": accounts.num_rows,
        "posts": posts.num_rows,
        "follows": follows.num_rows,
        "files": files,
    }
    writer.write_json({"world": world, **world_truth}, out / "truth.json")
    return {**world, "seconds": round(seconds, 3),
            "posts_per_second": round(posts.num_rows / seconds) if seconds else None}
