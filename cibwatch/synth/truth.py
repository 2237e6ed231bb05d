"""Ground truth: labels, hard-negative groups and `truth.json`.

Figures that the contract defines on data (echo-chamber ratio, inauthentic-follower
share, asset tally) are measured on the generated rows exactly as SCHEMA.md and
docs/synth.md define them, so a perfect detector can match them exactly:

- echo_chamber_ratio: rows of kind comment, reply, share or reaction whose target
  (`parent_id` or `shared_id`) is a post written by one of the operation's operators;
  the share of those rows written by the operation's operators.
- inauthentic_follower_share: distinct accounts following at least one operator of the
  operation (follows table, same platform); the share of them that are inauthentic,
  i.e. labelled `fake_follower` of any operation or `operator` of any operation.
- assets: operators only, {platform: {asset_type: n}}.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cibwatch.synth.world import ENGAGEMENT_KINDS, PLATFORMS, World

NEGATIVE_GROUPS = ("viral", "activist", "chain_message", "hyperactive")


def label_table(w: World, acc_ids: np.ndarray) -> pa.Table:
    """labels.csv: platform, account_id, operation_id, role (one row per labelled asset)."""
    idx = np.concatenate([i for i, _, _ in w.labels])
    op = np.concatenate([np.full(len(i), o, dtype=object) for i, o, _ in w.labels])
    role = np.concatenate([np.full(len(i), r, dtype=object) for i, _, r in w.labels])
    order = np.lexsort((acc_ids[idx].astype(str), op.astype(str)))
    return pa.table({
        "platform": pa.array(np.array(PLATFORMS, dtype=object)[w.acc_platform[idx]][order]),
        "account_id": pa.array(acc_ids[idx][order], pa.string()),
        "operation_id": pa.array(op[order], pa.string()),
        "role": pa.array(role[order], pa.string()),
    })


def negatives_table(w: World, acc_ids: np.ndarray) -> pa.Table:
    """hard_negatives.csv: platform, account_id, group."""
    idx = np.concatenate([i for i, _ in w.negatives])
    grp = np.concatenate([np.full(len(i), g, dtype=object) for i, g in w.negatives])
    return pa.table({
        "platform": pa.array(np.array(PLATFORMS, dtype=object)[w.acc_platform[idx]]),
        "account_id": pa.array(acc_ids[idx], pa.string()),
        "group": pa.array(grp, pa.string()),
    })


def clusters_table(w: World, acc_ids: np.ndarray) -> pa.Table:
    """truth_clusters.csv: platform, account_id, operation_id, cluster (the office or
    team each operator belongs to), for checking per-cluster profiles."""
    rows = w.info.get("cluster_members", {})
    idx = [m for _, m in rows.values()]
    idx = np.concatenate(idx) if idx else np.empty(0, np.int64)
    op = np.concatenate([np.full(len(m), o, dtype=object) for o, m in rows.values()] or
                        [np.empty(0, object)])
    cl = np.concatenate([np.full(len(m), c, dtype=object) for c, (_, m) in rows.items()] or
                        [np.empty(0, object)])
    return pa.table({
        "platform": pa.array(np.array(PLATFORMS, dtype=object)[w.acc_platform[idx]],
                             pa.string()),
        "account_id": pa.array(acc_ids[idx], pa.string()),
        "operation_id": pa.array(op, pa.string()),
        "cluster": pa.array(cl, pa.string()),
    })


def measure(w: World, operations: dict) -> dict:
    """Add the figures measured on the data to each operation's truth entry."""
    n = w.n_accounts
    inauthentic = np.zeros(n, bool)
    for idx, _, _ in w.labels:
        inauthentic[idx] = True
    fa, fb, _ = w.follow_arrays()
    eng = np.isin(w.post_kind, ENGAGEMENT_KINDS) & (w.post_target >= 0)
    eng_rows = np.flatnonzero(eng)
    tgt_author = w.post_author[w.post_target[eng_rows]]
    eng_author = w.post_author[eng_rows]
    out = {}
    for name, entry in operations.items():
        ops = np.zeros(n, bool)
        fake = np.zeros(n, bool)
        for idx, op, role in w.labels:
            if op == name:
                (ops if role == "operator" else fake)[idx] = True
        received = ops[tgt_author]
        own = received & ops[eng_author]
        followers = np.unique(fa[ops[fb]])
        tally: dict[str, dict[str, int]] = {}
        op_idx = np.flatnonzero(ops)
        for p, t in zip(w.acc_platform[op_idx], w.acc_type[op_idx], strict=True):
            tally.setdefault(PLATFORMS[p], {}).setdefault(t, 0)
            tally[PLATFORMS[p]][t] += 1
        n_posts = int(ops[w.post_author].sum())
        active = np.zeros(n, bool)
        active[w.post_author] = True
        members = entry.pop("_members", {})
        w.info.setdefault("cluster_members", {}).update(
            {c: (name, m) for c, m in members.items()})
        for cluster in entry.get("clusters", []):
            m = members.get(cluster["cluster"])
            if m is not None:
                ct: dict[str, dict[str, int]] = {}
                for p, t in zip(w.acc_platform[m], w.acc_type[m], strict=True):
                    ct.setdefault(PLATFORMS[p], {}).setdefault(t, 0)
                    ct[PLATFORMS[p]][t] += 1
                cluster["tally"] = ct
        out[name] = {
            **entry,
            "operators": int(ops.sum()),
            "fake_followers": int(fake.sum()),
            "assets": {p: dict(sorted(v.items())) for p, v in sorted(tally.items())},
            "platforms": sorted(tally),
            "posts": n_posts,
            "silent_operators": int((ops & ~active).sum()),
            "echo_chamber_ratio": float(own.sum() / received.sum()) if received.any() else None,
            "engagements_received": int(received.sum()),
            "engagements_own": int(own.sum()),
            "inauthentic_follower_share": (
                float(inauthentic[followers].mean()) if len(followers) else None
            ),
            "distinct_followers": int(len(followers)),
            "inauthentic_followers": int(inauthentic[followers].sum()),
        }
    return out
