"""Not tests: a small hand-built world for the operations tests: two operations over three
platforms, organic accounts sharing viral content with both, and clusters as detection
would write them (no operation tables: the linker under test builds those)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from cibwatch.config import Config
from cibwatch.signals import extract_keys

START = datetime(2024, 1, 1)  # a Monday

HEADLINES_A = [
    f"Exclusive report {i}: western labs hid the truth about the outbreak in region {i}"
    for i in range(8)
]
HEADLINES_B = [
    f"Local voices {i}: the harbour expansion will ruin fishing families in district {i}"
    for i in range(6)
]
VIRAL = [
    "Breaking: earthquake of magnitude six hits the northern coast this morning",
    "Watch the final minutes of the championship game everyone is talking about",
    "The central bank raised interest rates by half a point on Thursday afternoon",
    "Record heat expected across the southern plains for the rest of the week",
    "Famous tenor cancels the autumn tour after a sudden illness, fans heartbroken",
    "New study links daily walking to a longer and healthier life in old age",
]
ORGANIC = 300
RARE_SHARED = "A quiet exhibition of river paintings opens in the old mill next week"


def _clusters():
    """cluster_id -> (platform, [account ids], hours of day (UTC) it posts in)."""
    return {
        "fa": ("facebook", [f"fa{i}" for i in range(4)], range(1, 9)),
        "xa": ("x", [f"xa{i}" for i in range(3)], range(1, 9)),
        "ya": ("youtube", ["ya0", "ya1"], range(1, 9)),
        "fb": ("facebook", [f"fb{i}" for i in range(4)], range(13, 21)),
        "xb": ("x", [f"xb{i}" for i in range(3)], range(13, 21)),
    }


def build(ws, weeks: int = 3, start_week: int = 0, extra_accounts: int = 0) -> None:
    """Insert accounts, posts and clusters into `ws`, run detection's key extraction.

    `start_week` shifts the data in time; `extra_accounts` adds that many new accounts
    to each cluster (new assets of the same operations, for incremental runs).
    """
    con = ws.con
    accounts, posts = [], []
    clusters = _clusters()
    handles = {"ya0": "truthchannel_asia", "ya1": "truthchannel_two"}
    for cid, (platform, ids, hours) in clusters.items():
        ids = ids + [f"{cid}new{start_week}_{i}" for i in range(extra_accounts)]
        clusters[cid] = (platform, ids, hours)
        for n, acc in enumerate(ids):
            kind = "channel" if platform == "youtube" else "account"
            accounts.append((platform, acc, kind, handles.get(acc, f"{acc}_handle"), acc))
            heads = HEADLINES_A if cid.endswith("a") else HEADLINES_B
            for w in range(start_week, start_week + weeks):
                for d in range(5):
                    for k, head in enumerate(heads):
                        if (k + n + d) % 3:
                            continue
                        ts = START + timedelta(
                            weeks=w, days=d, hours=list(hours)[(k + n) % len(hours)],
                            minutes=n,
                        )
                        pid = f"{acc}-{w}-{d}-{k}"
                        urls = []
                        text, title = head, None
                        if platform == "facebook":
                            text = f"Must read. {head}. Share before they delete it"
                            if cid == "fa":
                                urls = ["https://www.youtube.com/@truthchannel_asia"]
                        if platform == "youtube":
                            text, title = "Subscribe for more", head
                        posts.append((platform, pid, acc, ts, text, title, urls))
                for j, viral in enumerate(VIRAL):
                    ts = START + timedelta(weeks=w, days=5, hours=list(hours)[0] + j)
                    posts.append((platform, f"{acc}-{w}-v{j}", acc, ts, viral, None, []))
    # One coincidence between the two operations: a rare text, once each.
    posts.append(("facebook", "fa0-rare", "fa0", START + timedelta(hours=3), RARE_SHARED,
                  None, []))
    posts.append(("facebook", "fb0-rare", "fb0", START + timedelta(hours=15), RARE_SHARED,
                  None, []))
    # Organic accounts on both platforms: viral texts and their own words (enough of
    # them that the operations are a small part of the world, as in real data).
    for i in range(ORGANIC):
        platform = "facebook" if i % 2 else "x"
        acc = f"org{i}"
        accounts.append((platform, acc, "account", f"person_{i}", f"Person {i}"))
        for j, viral in enumerate(VIRAL):
            ts = START + timedelta(weeks=start_week, days=j, hours=(i * 7) % 24)
            posts.append((platform, f"{acc}-v{j}-{start_week}", acc, ts, viral, None, []))
        for j in range(8):
            ts = START + timedelta(weeks=start_week, days=j % 7, hours=(i + j) % 24)
            posts.append((platform, f"{acc}-own-{start_week}-{j}", acc, ts,
                          f"my own thoughts number {i}-{j} on a sunny afternoon in town",
                          None, []))
    cols = ["platform", "account_id", "asset_type", "handle", "display_name"]
    con.register("_w_accounts", pa.table(dict(zip(cols, zip(*accounts, strict=True),
                                                  strict=True))))
    con.execute(
        f"INSERT INTO accounts ({', '.join(cols)}) SELECT * FROM _w_accounts "
        "ANTI JOIN accounts USING (platform, account_id)"
    )
    cols = ["platform", "post_id", "account_id", "created_at", "text", "title", "urls"]
    table = pa.table(
        dict(zip(cols, zip(*posts, strict=True), strict=True)),
        schema=pa.schema([(c, pa.list_(pa.string()) if c == "urls" else
                           pa.timestamp("us") if c == "created_at" else pa.string())
                          for c in cols]),
    )
    con.register("_w_posts", table)
    con.execute(f"INSERT INTO posts ({', '.join(cols)}) SELECT * FROM _w_posts")
    con.unregister("_w_posts")
    con.unregister("_w_accounts")
    extract_keys(con, Config())
    write_clusters(ws, {cid: (p, ids) for cid, (p, ids, _) in clusters.items()})


def write_clusters(ws, clusters: dict[str, tuple[str, list[str]]]) -> None:
    """Replace clusters/cluster_members as detection would (evidence included)."""
    con = ws.con
    con.execute("DELETE FROM cluster_members")
    con.execute("DELETE FROM clusters")
    for cid, (platform, ids) in sorted(clusters.items()):
        evidence = (
            '[{"signal": "text", "strength": 0.9, "detail": "same texts within hours"}]'
        )
        con.execute(
            "INSERT INTO clusters VALUES (?, ?, ?, 0.9, ?)", [cid, platform, len(ids), evidence]
        )
        con.execute(
            "INSERT INTO cluster_members SELECT ?, ?, unnest(?), 0.9, 'test'",
            [cid, platform, ids],
        )
