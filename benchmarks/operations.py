"""Operations benchmark: cross-platform linking, known-operation attribution, history.

    nice .venv/bin/python benchmarks/operations.py --scale 1 --seed 7 --mode truth
    nice .venv/bin/python benchmarks/operations.py --scale 1 --seed 7 --mode detect

`truth`: clusters are the ground truth, one per operation and platform, WITHOUT their
operation ids; the linker must rebuild the operations (detection's keys are extracted
first, as the pipeline would). `detect`: the real `cibwatch detect` pipeline.

Figures (printed as JSON, recorded in benchmarks/RESULTS.md):
- ari: adjusted Rand index of operation ids over true-positive operator accounts;
- shared_ids: planted operations that share an operation id with another (want 0);
- pair_precision: of flagged asset pairs put in one operation, the share truly in one
  (organic accounts count as their own operation);
- split-half: the world cut at mid-time into two dataset folders; the first half is
  detected and its operations saved (named after the planted operation most of their
  assets belong to); the second half is ingested into the same workspace and detected
  again. attributed = second-half operators (first active after the cut) in an
  operation attributed to the right saved operation; organic_attributed = non-operators
  attributed to any saved operation. `fresh` repeats it in a new workspace holding only
  a realistic second export (`half2-export`, see `second_export`: the second half's
  posts, the account rows of everyone active in it, the follow graph among them) plus
  the exported signature files (matching by signature alone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn.metrics import adjusted_rand_score

import cibwatch
from cibwatch.config import Config
from cibwatch.operations import link_operations
from cibwatch.operations.signatures import export_known, import_known, save_operation
from cibwatch.signals import extract_keys
from cibwatch.synth import generate

ROOT = Path(__file__).resolve().parent / "work" / "operations"


def world(scale: float, seed: int) -> Path:
    out = ROOT / f"world-s{scale}-seed{seed}"
    if not (out / "labels.csv").exists():
        generate(out, scale=scale, seed=seed)
    return out


def read_labels(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("platform", "account_id", "operation_id",
                                               "role")}))
    return {
        (p, a): (o, r)
        for p, a, o, r in zip(*(t.column(c).to_pylist() for c in
                                ("platform", "account_id", "operation_id", "role")),
                              strict=True)
    }


def split_world(src: Path, out: Path) -> tuple[Path, Path, str]:
    """Two dataset folders cut at the middle of the posts' time span: posts by time,
    accounts by first activity (first post, else creation), follows with their accounts."""
    halves = (out / "half1", out / "half2")
    if (halves[1] / "posts.parquet").exists():
        return (*halves, (out / "cut.txt").read_text())
    for h in halves:
        h.mkdir(parents=True, exist_ok=True)
    (out / "split.duckdb").unlink(missing_ok=True)
    ws = cibwatch.open(out / "split.duckdb")
    con = ws.con
    ws.ingest(src, progress=False)
    cut = con.execute(
        "SELECT min(created_at) + (max(created_at) - min(created_at)) / 2 FROM posts"
    ).fetchall()[0][0]
    con.execute(
        """
        CREATE TEMP TABLE first_active AS
        SELECT a.platform, a.account_id,
               coalesce(min(p.created_at), any_value(a.created_at)) AS first_at
        FROM accounts a LEFT JOIN posts p USING (platform, account_id)
        GROUP BY a.platform, a.account_id
        """
    )
    for i, (h, op) in enumerate(zip(halves, ("<", ">="), strict=True)):
        con.execute(
            f"COPY (SELECT * EXCLUDE (extra) FROM posts WHERE created_at {op} ?) "
            f"TO '{h}/posts.parquet' (FORMAT parquet)", [cut])
        con.execute(
            f"""COPY (SELECT a.* EXCLUDE (extra) FROM accounts a JOIN first_active f
                      USING (platform, account_id)
                      WHERE coalesce(f.first_at, TIMESTAMP '1970-01-01') {op} ?)
                TO '{h}/accounts.parquet' (FORMAT parquet)""", [cut])
        first = "f1.first_at < ? AND f2.first_at < ?" if i == 0 else (
            "NOT (f1.first_at < ? AND f2.first_at < ?)")
        con.execute(
            f"""COPY (SELECT fo.* FROM follows fo
                      JOIN first_active f1 ON f1.platform = fo.platform
                       AND f1.account_id = fo.follower_id
                      JOIN first_active f2 ON f2.platform = fo.platform
                       AND f2.account_id = fo.followee_id
                      WHERE {first})
                TO '{h}/follows.parquet' (FORMAT parquet)""", [cut, cut])
    ws.close()
    (out / "cut.txt").write_text(str(cut))
    return (*halves, str(cut))


def second_export(split: Path, out: Path) -> Path:
    """The second half as a real second export would carry it (the `fresh` case):
    `half2`'s posts, the account rows of every account active in the second half (it
    posted then, was created then, or is first active then), and the follow graph among
    those accounts as the platform shows it at the export's end: every follow between
    two exported accounts created by then (all of them in the synthetic worlds; a
    follow's `created_at` is optional in the contract, so none is required)."""
    if (out / "posts.parquet").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with cibwatch.open(split / "split.duckdb") as ws:
        con = ws.con
        cut = (split / "cut.txt").read_text()
        con.execute(
            f"""
            CREATE TEMP TABLE exported AS
            SELECT DISTINCT platform, account_id FROM posts WHERE created_at >= '{cut}'
            UNION SELECT platform, account_id FROM accounts WHERE created_at >= '{cut}'
            UNION SELECT platform, account_id
                  FROM read_parquet('{split}/half2/accounts.parquet')
            """
        )
        con.execute(f"COPY (SELECT * FROM read_parquet('{split}/half2/posts.parquet')) "
                    f"TO '{out}/posts.parquet' (FORMAT parquet)")
        con.execute(
            f"""COPY (SELECT a.* EXCLUDE (extra) FROM accounts a
                      SEMI JOIN exported USING (platform, account_id))
                TO '{out}/accounts.parquet' (FORMAT parquet)""")
        con.execute(
            f"""COPY (SELECT fo.* FROM follows fo
                      SEMI JOIN exported e1 ON e1.platform = fo.platform
                       AND e1.account_id = fo.follower_id
                      SEMI JOIN exported e2 ON e2.platform = fo.platform
                       AND e2.account_id = fo.followee_id
                      WHERE fo.created_at IS NULL OR fo.created_at <= (
                            SELECT max(created_at) FROM posts))
                TO '{out}/follows.parquet' (FORMAT parquet)""")
    return out


def decoy_clusters(ws, negatives: Path, suffix: str) -> None:
    """Add the world's hard negatives (viral news, chain messages, activists: organic
    accounts that look coordinated) as clusters, one per group and platform, as if
    detection had flagged them: linking must not join them to planted operations."""
    con = ws.con
    con.execute(
        f"""
        INSERT INTO cluster_members
        SELECT 'decoy-' || "group" || '-' || platform || '{suffix}', platform, account_id,
               0.5, 'hard negative'
        FROM read_csv('{negatives}', all_varchar = true) n
        SEMI JOIN (SELECT platform, account_id FROM accounts
                   UNION SELECT platform, account_id FROM posts) x USING (platform, account_id)
        """
    )
    con.execute(
        "INSERT INTO clusters SELECT cluster_id, any_value(platform), count(*), 0.5, NULL "
        "FROM cluster_members WHERE cluster_id LIKE 'decoy-%' GROUP BY 1"
    )


def truth_clusters(ws, labels, suffix: str = "", fragment: int = 0) -> None:
    """Clusters = planted operators present in the workspace, one per operation and
    platform (cut into clusters of at most `fragment` assets when > 0, as a detector
    that finds an operation in pieces would); no operation tables (the linker builds
    them)."""
    con = ws.con
    rows = [(p, a, o) for (p, a), (o, r) in labels.items() if r == "operator"]
    con.register("_truth", pa.table({"platform": [r[0] for r in rows],
                                     "account_id": [r[1] for r in rows],
                                     "op": [r[2] for r in rows]}))
    con.execute("DELETE FROM cluster_members; DELETE FROM clusters")
    con.execute(
        f"""
        INSERT INTO cluster_members
        SELECT 't-' || op || '-' || platform || '{suffix}'
                   || CASE WHEN {int(fragment)} > 0
                      THEN '-' || (hash(account_id) % 1000003 % greatest(1, ceil(
                           count(*) OVER (PARTITION BY op, platform) / {max(1, fragment)})))
                      ELSE '' END,
               platform, account_id, 1.0, 'truth'
        FROM _truth t SEMI JOIN (SELECT platform, account_id FROM accounts
                                 UNION SELECT platform, account_id FROM posts) x
             USING (platform, account_id)
        """
    )
    con.execute(
        "INSERT INTO clusters SELECT cluster_id, any_value(platform), count(*), 1.0, NULL "
        "FROM cluster_members GROUP BY 1"
    )
    con.unregister("_truth")


def assignments(con) -> dict[tuple[str, str], tuple[str, str | None, str]]:
    """(platform, account_id) -> (operation id, saved operation name, cluster id)."""
    return {
        (p, a): (op, known, cluster)
        for p, a, op, known, cluster in con.execute(
            """
            SELECT m.platform, m.account_id, oc.operation_id, o.known_operation, m.cluster_id
            FROM cluster_members m JOIN operation_clusters oc USING (cluster_id)
            JOIN operations o USING (operation_id)
            """
        ).fetchall()
    }


def linking_scores(assigned, labels) -> dict:
    truth_op = {k: o for k, (o, r) in labels.items() if r == "operator"}
    tp = sorted(k for k in assigned if k in truth_op)
    ari = adjusted_rand_score([truth_op[k] for k in tp], [assigned[k][0] for k in tp])
    ids_per_op: dict[str, set[str]] = {}
    for k in tp:
        ids_per_op.setdefault(truth_op[k], set()).add(assigned[k][0])
    owners: dict[str, set[str]] = {}
    for op, ids in ids_per_op.items():
        for i in ids:
            owners.setdefault(i, set()).add(op)
    shared = sorted({op for ops in owners.values() if len(ops) > 1 for op in ops})
    # Pairwise precision of "same operation" over flagged assets, fake followers aside.
    flagged = [k for k in assigned if labels.get(k, ("", ""))[1] != "fake_follower"]
    by_op: dict[str, dict[str, int]] = {}
    for k in flagged:
        truth = truth_op.get(k, f"organic:{k[0]}:{k[1]}")
        slot = by_op.setdefault(assigned[k][0], {})
        slot[truth] = slot.get(truth, 0) + 1
    pairs = sum(sum(c.values()) * (sum(c.values()) - 1) // 2 for c in by_op.values())
    good = sum(n * (n - 1) // 2 for c in by_op.values() for n in c.values())
    # The same over pairs holding at least one operator: what linking can get wrong
    # about planted operations (pairs of two flagged organic accounts are detection's).
    op_pairs = op_good = 0
    for c in by_op.values():
        planted = {t: n for t, n in c.items() if not t.startswith("organic:")}
        n_planted, n_all = sum(planted.values()), sum(c.values())
        op_pairs += n_all * (n_all - 1) // 2 - (n_all - n_planted) * (n_all - n_planted - 1) // 2
        op_good += sum(n * (n - 1) // 2 for n in planted.values())
    planted_ops = {assigned[k][0] for k in tp}
    organic_joined = sum(1 for k in flagged if k not in truth_op and assigned[k][0] in planted_ops)
    # ... and of those, the ones linking put there: their own cluster has no operator.
    clusters_with_ops = {assigned[k][2] for k in tp}
    organic_linked = sum(
        1 for k in flagged
        if k not in truth_op and assigned[k][0] in planted_ops
        and assigned[k][2] not in clusters_with_ops
    )
    return {
        "organic_in_planted_operations": organic_joined,
        "organic_joined_by_linking": organic_linked,
        "true_positive_accounts": len(tp),
        "planted_operations": len(set(truth_op.values())),
        "operation_ids_per_planted_op": {op: len(ids) for op, ids in sorted(ids_per_op.items())},
        "ari": round(ari, 4),
        "shared_ids": shared,
        "pair_precision": round(good / pairs, 4) if pairs else None,
        "operator_pair_precision": round(op_good / op_pairs, 4) if op_pairs else None,
        "asset_precision": round(len(tp) / len(flagged), 4) if flagged else None,
        "operations": len({v[0] for v in assigned.values()}),
    }


def majority_names(assigned, labels) -> dict[str, str]:
    """operation id -> planted operation holding most of its (non-follower) assets."""
    votes: dict[str, dict[str, int]] = {}
    for k, (op, _, _) in assigned.items():
        o, r = labels.get(k, ("organic", "organic"))
        if r == "fake_follower":
            continue
        votes.setdefault(op, {})[o] = votes.setdefault(op, {}).get(o, 0) + 1
    out = {}
    for op, v in votes.items():
        best = max(sorted(v), key=v.get)
        if best != "organic" and v[best] * 2 > sum(v.values()):
            out[op] = best
    return out


def attribution_scores(assigned, labels, active: set, new: set) -> dict:
    """Operators active in the second half (and those first active there) attributed to
    the right saved operation; organic accounts attributed to any."""
    out = {}
    for label, accounts in (("active", active), ("new", new)):
        ops = [k for k in accounts if labels.get(k, ("", ""))[1] == "operator"]
        right = sum(1 for k in ops if k in assigned and assigned[k][1] == labels[k][0])
        flagged = sum(1 for k in ops if k in assigned)
        out[f"{label}_operators"] = len(ops)
        out[f"{label}_flagged"] = flagged
        out[f"{label}_attributed_right"] = right
        out[f"{label}_attributed_share"] = round(right / len(ops), 4) if ops else None
        # Linking's part: of the operators detection flagged, attributed right.
        out[f"{label}_attributed_share_of_flagged"] = (
            round(right / flagged, 4) if flagged else None)
    out["organic_attributed"] = sum(
        1 for k, (_, known, _) in assigned.items() if known is not None and k not in labels)
    return out


def run_stage(ws, mode: str, labels, cfg, suffix: str, fragment: int = 0,
              decoys: Path | None = None) -> float:
    t0 = time.perf_counter()
    if mode == "truth":
        extract_keys(ws.con, cfg)
        truth_clusters(ws, labels, suffix, fragment)
        if decoys is not None:
            decoy_clusters(ws, decoys, suffix)
        t1 = time.perf_counter()
        link_operations(ws.con, cfg)
        return time.perf_counter() - t1
    ws.detect(out=None, config=cfg)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mode", choices=("truth", "detect"), default="truth")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override, e.g. operations.min_link_strength=0.95")
    ap.add_argument("--full-only", action="store_true",
                    help="only the whole-world linking (no split-half runs): for big scales")
    ap.add_argument("--decoys", action="store_true",
                    help="truth mode: add the hard negatives as (false) clusters")
    ap.add_argument("--fragment", type=int, default=0,
                    help="truth mode: cut clusters into pieces of at most N assets")
    args = ap.parse_args()
    cfg = Config().with_overrides(args.overrides)
    src = world(args.scale, args.seed)
    labels = read_labels(src / "labels.csv")
    decoys = src / "hard_negatives.csv" if args.decoys else None
    work = ROOT / (f"{args.mode}-s{args.scale}-seed{args.seed}-f{args.fragment}"
                   f"{'-decoys' if args.decoys else ''}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report: dict = {"mode": args.mode, "scale": args.scale, "seed": args.seed,
                    "fragment": args.fragment, "decoys": args.decoys,
                    "overrides": args.overrides}

    # 1. The whole world: one operation id per planted operation?
    with cibwatch.open(work / "full.duckdb") as ws:
        ws.ingest(src, progress=False)
        report["posts"] = ws.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
        report["link_seconds" if args.mode == "truth" else "detect_seconds"] = round(
            run_stage(ws, args.mode, labels, cfg, "", args.fragment, decoys), 2)
        report["clusters"] = ws.con.execute("SELECT count(*) FROM clusters").fetchall()[0][0]
        report["full"] = linking_scores(assignments(ws.con), labels)
        t0 = time.perf_counter()
        before = {t: ws.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                  for t in ("operations", "operation_clusters", "operation_links",
                            "operation_evidence", "operation_history", "operation_assets")}
        link_operations(ws.con, cfg)
        report["relink_seconds"] = round(time.perf_counter() - t0, 2)
        report["relink_identical"] = all(
            ws.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() == rows
            for t, rows in before.items())
        report["empty_evidence_ops"] = ws.con.execute(
            "SELECT count(*) FROM operations o ANTI JOIN operation_evidence e "
            "USING (operation_id)").fetchall()[0][0]

    if args.full_only:
        print(json.dumps(report, indent=1, default=str))
        (work / "report.json").write_text(json.dumps(report, indent=1, default=str))
        return

    # 2. Split in two halves: save the first half's operations, ingest the second.
    half1, half2, cut = split_world(src, ROOT / f"split-s{args.scale}-seed{args.seed}")
    report["cut"] = cut
    with cibwatch.open(work / "incremental.duckdb") as ws:
        ws.ingest(half1, progress=False)
        run_stage(ws, args.mode, labels, cfg, "-h1", args.fragment, decoys)
        first = assignments(ws.con)
        report["first_half"] = linking_scores(first, labels)
        saved = majority_names(first, labels)
        sigdir = work / "signatures"
        sigdir.mkdir()
        for op_id, name in sorted(saved.items()):
            if ws.con.execute("SELECT 1 FROM known_operations WHERE name = ?",
                              [name]).fetchall():
                continue  # a second fragment of one planted op: the first one is saved
            save_operation(ws.con, cfg.operations, op_id, name)
            export_known(ws.con, name, sigdir / f"{name}.json")
        report["saved"] = sorted(set(saved.values()))
        ids_before = {k: v[0] for k, v in first.items()}
        ws.ingest(half2, progress=False)
        new_accounts = {
            (p, a) for p, a in ws.con.execute(
                f"SELECT platform, account_id FROM read_parquet('{half2}/accounts.parquet')"
            ).fetchall()
        }
        active = new_accounts | {
            (p, a) for p, a in ws.con.execute(
                f"SELECT DISTINCT platform, account_id FROM read_parquet('{half2}/posts.parquet')"
            ).fetchall()
        }
        t0 = time.perf_counter()
        run_stage(ws, args.mode, labels, cfg, "-h2", args.fragment, decoys)
        report["second_run_seconds"] = round(time.perf_counter() - t0, 2)
        second = assignments(ws.con)
        kept = [k for k in ids_before if k in second]
        report["ids_kept"] = round(
            sum(second[k][0] == ids_before[k] for k in kept) / len(kept), 4) if kept else None
        report["same_workspace"] = attribution_scores(second, labels, active, new_accounts)
        report["same_workspace"]["linking"] = linking_scores(second, labels)

    # 3. A new workspace with only a realistic second export and the signature files.
    export = second_export(half1.parent, half1.parent / "half2-export")
    report["second_export"] = {
        t: duckdb.sql(f"SELECT count(*) FROM read_parquet('{export}/{t}.parquet')").fetchall()[0][0]
        for t in ("posts", "accounts", "follows")}
    with cibwatch.open(work / "fresh.duckdb") as ws:
        for f in sorted(sigdir.glob("*.json")):
            import_known(ws.con, f)
        ws.ingest(export, progress=False)
        run_stage(ws, args.mode, labels, cfg, "-fresh", args.fragment, decoys)
        report["fresh_workspace"] = attribution_scores(assignments(ws.con), labels,
                                                       active, new_accounts)
    print(json.dumps(report, indent=1, default=str))
    (work / "report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
