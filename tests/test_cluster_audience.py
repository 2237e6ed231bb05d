"""An operation's real audience is not attached to it: engaging its posts (reactions,
comments, re-shares, follows of its assets) is what real readers do, so that engagement
attaches an asset only when it is most of what the asset does, or a practice, not a
handful of moments. Hand-built posts and follows; keys from the real signal stage; the
cluster's edges are inserted directly (the graph stage is not run)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import combinations

import pandas as pd

from cibwatch import cluster, signals
from cibwatch.config import Config
from cibwatch.workspace import Workspace

T0 = datetime(2024, 3, 1)
OPS = [f"op{i}" for i in range(6)]


def load(con, posts: list[dict], follows: list[tuple[str, str]]) -> None:
    ids = sorted({p["account_id"] for p in posts} | {a for f in follows for a in f})
    con.register("_a", pd.DataFrame({"platform": "x", "account_id": ids, "handle": ids}))
    con.execute("INSERT INTO accounts BY NAME SELECT * FROM _a")
    con.register("_p", pd.DataFrame(posts).assign(platform="x"))
    con.execute("INSERT INTO posts BY NAME SELECT * FROM _p")
    if follows:
        con.register("_f", pd.DataFrame(follows, columns=["follower_id", "followee_id"])
                     .assign(platform="x"))
        con.execute("INSERT INTO follows BY NAME SELECT * FROM _f")
        con.unregister("_f")
    con.unregister("_a")
    con.unregister("_p")


def world(con, fan_actions: list[tuple[str, str]], fan_texts: int,
          popular: bool = False) -> None:
    """Six operators posting and reacting to one another's posts (an echo chamber), 200
    organic accounts posting and reacting among themselves, and 'fan': `fan_texts` posts
    of its own plus `fan_actions` ((kind, target): 'react' on an operator's post 'op', an
    organic one 'org', organic post number N 'org:N', or 'follow' an operator).
    `popular`: the operators also react to organic posts 0-2 (of o0, o1, o2)."""
    posts: list[dict] = []
    follows: list[tuple[str, str]] = []

    def post(aid: str, ts: datetime, kind: str = "post", parent: str | None = None,
             text: str | None = None) -> str:
        pid = f"p{len(posts)}"
        posts.append(dict(post_id=pid, account_id=aid, created_at=ts, kind=kind,
                          parent_id=parent, text=text))
        return pid

    op_posts = [post(OPS[k % 6], T0 + timedelta(hours=k), text=f"op text {k}")
                for k in range(24)]
    for i, a in enumerate(OPS):
        for k in range(12):
            target = op_posts[(i * 5 + k) % 24]
            if target not in {p["post_id"] for p in posts if p["account_id"] == a}:
                post(a, T0 + timedelta(days=2, minutes=k), "reaction", parent=target)
    org = [f"o{i}" for i in range(200)]
    org_posts = [post(a, T0 + timedelta(hours=i % 500), text=f"own words {i}")
                 for i, a in enumerate(org)]
    for i, a in enumerate(org):
        for j in (1, 7, 31):
            post(a, T0 + timedelta(days=3, minutes=i), "reaction",
                 parent=org_posts[(i + j) % 200])
        follows.append((a, org[(i + 3) % 200]))
    if popular:
        for i, a in enumerate(OPS):
            for n in range(3):
                post(a, T0 + timedelta(days=3, hours=i, minutes=n), "reaction",
                     parent=org_posts[n])
    for n_op, (kind, target) in enumerate(fan_actions):
        if kind == "follow":
            follows.append(("fan", OPS[n_op % 6]))
        elif target.startswith("org:"):
            post("fan", T0 + timedelta(days=4, hours=n_op), "reaction",
                 parent=org_posts[int(target[4:])])
        elif target == "op":
            post("fan", T0 + timedelta(days=4, hours=n_op), "reaction",
                 parent=op_posts[(3 * n_op) % 24])
        else:
            post("fan", T0 + timedelta(days=4, hours=n_op), "reaction",
                 parent=org_posts[(11 * n_op) % 200])
    for k in range(fan_texts):
        post("fan", T0 + timedelta(days=5, hours=k),
             text=f"the fan's own long thoughts about the weather, number {k}")
    load(con, posts, follows)
    signals.extract_keys(con, Config())
    sig = json.dumps({"react": {"count": 4, "expected": 0.001, "weight": 1.0},
                      "engage": {"count": 3, "expected": 0.001, "weight": 1.0}})
    for a, b in combinations(OPS, 2):
        con.execute("INSERT INTO edges VALUES ('x', ?, ?, 10.0, 1e-9, 1e-6, 7, ?)",
                    [a, b, sig])


def attached(con, config: Config | None = None) -> dict[str, str]:
    cluster.find_clusters(con, config or Config())
    rows = con.execute("SELECT account_id, reason FROM cluster_members").fetchall()
    assert {a for a, _ in rows} >= set(OPS)
    return {a: r for a, r in rows if a not in OPS}


def test_a_reader_of_the_operation_is_not_its_asset(tmp_path):
    """3 reactions on the operation's posts and 3 elsewhere: a quarter of its keys are
    the cluster's, all of them by engaging it."""
    con = Workspace(tmp_path / "a.duckdb").con
    world(con, [("react", "op")] * 3 + [("react", "org")] * 3, fan_texts=0)
    assert attached(con) == {}
    # counting its engagement of the cluster as shared keys at the plain key share
    # attaches it: that is the rule at work
    looser = Config().with_overrides(["cluster.attach_audience_key_share=0.25"])
    found = attached(con, looser)
    assert set(found) == {"fan"}
    assert "keys are the cluster's" in found["fan"]


def test_engagement_that_is_most_of_what_it_does_attaches(tmp_path):
    """An asset whose only activity is reacting to the operation's posts and following its
    assets (8 actions, under the ties test's 10): most of its keys are the cluster's, so
    its engagement of the cluster counts in the key test."""
    con = Workspace(tmp_path / "a.duckdb").con
    world(con, [("react", "op")] * 6 + [("follow", "op")] * 2, fan_texts=0)
    found = attached(con)
    assert set(found) == {"fan"}
    assert "keys are the cluster's (" in found["fan"]  # all its keys, not "besides"


def test_a_handful_of_engagements_is_not_a_practice(tmp_path):
    """3 of its 4 engagements/follows go to the cluster and nothing else ties it: a reader
    who found the operation's posts. 10 of 12 is a practice, even when the asset's many
    posts of its own keep its share of the cluster's keys low."""
    con = Workspace(tmp_path / "a.duckdb").con
    world(con, [("react", "op"), ("react", "op"), ("follow", "op"), ("react", "org")],
          fan_texts=8)
    assert attached(con) == {}
    looser = Config().with_overrides(["cluster.attach_min_out_ties=2"])
    assert set(attached(con, looser)) == {"fan"}
    con = Workspace(tmp_path / "b.duckdb").con
    world(con, [("react", "op")] * 9 + [("follow", "op"), ("react", "org"), ("react", "org")],
          fan_texts=40)
    found = attached(con)
    assert set(found) == {"fan"}
    assert "10 of its 12 engagements/follows go to the cluster" in found["fan"]
    assert "the cluster's besides its engagement of it" in found["fan"]  # not key-attached


def test_a_reaction_and_the_engagement_it_implies_are_one_coincidence(tmp_path):
    """The operators also react to three organic posts (of o0, o1, o2). A fan reacting to
    two of them shares 2 post keys and the 2 engagement keys of their authors with the
    cluster: 2 moments, below `attach_min_keys`, not 4 keys (counted as 4, the fan and
    the two authors are attached)."""
    con = Workspace(tmp_path / "a.duckdb").con
    world(con, [("react", "org:0"), ("react", "org:1")], fan_texts=4, popular=True)
    assert attached(con) == {}
