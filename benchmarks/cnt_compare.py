"""cibwatch vs the coordination-network-toolkit (CNT) on the same synthetic world.

CNT (PyPI `coordination-network-toolkit`, the `bench` extra) builds co-tweet, co-retweet,
co-link, co-reply and co-similar-tweet networks within a fixed time window. Here: a 60 s
window for all five, edges of weight >= 2 combined, every account on such an edge counted
as flagged. CNT is single-platform, so ids are prefixed with the platform; reactions
(no text, no CNT equivalent) are left out. CNT's CSV reader turns an empty `urls` cell
into the URL '', which links every link-less message: those rows are deleted after
`preprocess` for a fair run.

    nice .venv/bin/python -m benchmarks.cnt_compare --scale 10 --seed 1
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import time
from pathlib import Path

import duckdb

from benchmarks.detect import WORK, run_detect, score, world

COMMANDS = ("co_tweet", "co_retweet", "co_link", "co_reply", "co_similar_tweet")


def cnt_input(dataset: Path, out_csv: Path) -> int:
    """posts.csv in CNT's CSV layout (ids prefixed with the platform)."""
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
            SELECT platform || ':' || post_id AS message_id,
                   platform || ':' || account_id AS user_id,
                   account_id AS username,
                   CASE WHEN shared_id IS NULL OR shared_id = '' THEN ''
                        ELSE platform || ':' || shared_id END AS repost_id,
                   CASE WHEN parent_id IS NULL OR parent_id = '' THEN ''
                        ELSE platform || ':' || parent_id END AS reply_id,
                   coalesce(text, '') AS message,
                   CAST(epoch(CAST(created_at AS TIMESTAMPTZ)) AS BIGINT) AS timestamp,
                   coalesce(urls, '') AS urls
            FROM read_csv('{dataset}/posts*.csv', all_varchar = true, union_by_name = true)
            WHERE coalesce(kind, 'post') <> 'reaction'
        ) TO '{out_csv}' (HEADER, QUOTE '"')
        """
    )
    return con.execute(f"SELECT count(*) FROM read_csv('{out_csv}')").fetchall()[0][0]


def run_cnt(dataset: Path) -> dict:
    from coordination_network_toolkit import compute_networks as cn
    from coordination_network_toolkit import preprocess
    from coordination_network_toolkit.output import get_edge_rows

    db = WORK / "cnt.db"
    db.unlink(missing_ok=True)
    src = WORK / "cnt-input.csv"
    rows = cnt_input(dataset, src)
    t0 = time.perf_counter()
    cpu0 = _cpu()
    preprocess.preprocess_csv_files(str(db), [str(src)])
    with sqlite3.connect(db) as lite:
        removed = lite.execute("DELETE FROM message_url WHERE url = ''").rowcount
    t_pre = time.perf_counter() - t0
    window, threads = 60, 2
    cn.compute_co_tweet_network(str(db), window, min_edge_weight=2, n_threads=threads)
    cn.compute_co_retweet_parallel(str(db), window, min_edge_weight=2, n_threads=threads)
    cn.compute_co_link_network(str(db), window, min_edge_weight=2, n_threads=threads)
    cn.compute_co_reply_network(str(db), window, min_edge_weight=2, n_threads=threads)
    cn.compute_co_similar_tweet(str(db), window, min_edge_weight=2, n_threads=threads)
    weights: dict[tuple[str, str], float] = {}
    for command in COMMANDS:
        for row in get_edge_rows(str(db), command):
            a, b, w = row[0], row[1], row[2]
            key = (min(a, b), max(a, b))
            weights[key] = weights.get(key, 0) + float(w)
    wall = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    flagged = {u for (a, b), w in weights.items() if w >= 2 for u in (a, b)}
    out = WORK / "cnt-results"
    out.mkdir(exist_ok=True)
    with (out / "accounts.csv").open("w", encoding="utf-8") as fh:
        fh.write("platform,account_id,operation_id,cluster_id,score\n")
        for user in sorted(flagged):
            platform, _, account = user.partition(":")
            fh.write(f"{platform},{account},cnt,cnt,1\n")
    return {"rows": rows, "removed_empty_urls": removed, "preprocess_s": round(t_pre, 1),
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "results": out}


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (CNT's worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    dataset = world(args.scale, args.seed)
    print(f"load average before: {os.getloadavg()}", flush=True)
    ours = run_detect(dataset, f"cnt-compare-s{args.scale:g}", nice=False)
    q_ours = score(ours["results"], dataset)
    theirs = run_cnt(dataset)
    q_theirs = score(theirs["results"], dataset)
    print(f"world: scale {args.scale:g} seed {args.seed}, {ours['posts']:,} posts; CNT input "
          f"{theirs['rows']:,} rows, {theirs['removed_empty_urls']:,} empty-URL rows removed")
    print(f"load average after: {os.getloadavg()}; CNT preprocess {theirs['preprocess_s']} s")
    print("| system | wall s | CPU s | P | R | F1 | hard negatives flagged | operations found |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, m, q in (("cibwatch detect (ingest included)", ours, q_ours),
                       ("CNT 5 networks, 60 s, weight >= 2", theirs, q_theirs)):
        print(f"| {name} | {m['wall_s']} | {m['cpu_s']} | {q['precision']} | {q['recall']} | "
              f"{q['f1']} | {q['hard_negatives_flagged'] or 0} | {q['operations']} |")
    print(f"speed ratio CNT / cibwatch: wall {theirs['wall_s'] / ours['wall_s']:.2f}x, "
          f"CPU {theirs['cpu_s'] / ours['cpu_s']:.2f}x")
    print(f"cibwatch stages (s): {ours['stages_s']}; peak RSS {ours['peak_rss_gib']} GiB")


if __name__ == "__main__":
    main()
