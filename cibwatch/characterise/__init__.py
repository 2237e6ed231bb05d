"""Characterise each operation and cluster: time, engagement, followers, narratives, assets.

`characterise(con, config)` reads the detection results (operations, operation_clusters,
cluster_members) with the input tables and writes one JSON profile per operation
(`operation_profiles`) and per cluster (`cluster_profiles`), shaped as docs/profile.md.
Every module computes its section for all groups at once from a temp table
`cw_members(gid, platform, account_id)`, where a group is an operation (`o:ID`) or a
cluster (`c:ID`); a cluster that is its operation's only cluster shares its profile.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from cibwatch.characterise import assets, engagement, followers, narratives
from cibwatch.characterise import time as time_
from cibwatch.config import CharacteriseConfig, Config

MEMBERS = "cw_members"
_TEMP = ("cw_members", "cw_engagements", "cw_follow_rows", "cw_follow_bursts",
         "cw_followers", "cw_creation_bursts", "cw_follower_flags", "cw_texts",
         "cw_gazetteer", "cw_engager_nodes")


def characterise(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Write one profile per operation and per cluster (docs/profile.md)."""
    profiles = build_profiles(con, config)
    con.execute("DELETE FROM operation_profiles")
    con.execute("DELETE FROM cluster_profiles")
    rows_o = [(gid[2:], json.dumps(p, ensure_ascii=False, default=str))
              for gid, p in profiles.items() if gid.startswith("o:")]
    rows_c = [(gid[2:], json.dumps(p, ensure_ascii=False, default=str))
              for gid, p in profiles.items() if gid.startswith("c:")]
    for table, rows in (("operation_profiles", rows_o), ("cluster_profiles", rows_c)):
        if rows:
            # One Arrow insert: `executemany` costs ~2 ms a row (0.3-0.7 s at 160 rows).
            con.register("_cw_profiles", pa.table(
                {"gid": [r[0] for r in rows], "profile": [r[1] for r in rows]},
                schema=pa.schema([("gid", pa.string()), ("profile", pa.string())])))
            con.execute(f"INSERT INTO {table} SELECT gid, profile FROM _cw_profiles")
            con.unregister("_cw_profiles")


def build_profiles(con: duckdb.DuckDBPyConnection, config: Config) -> dict[str, dict]:
    """Profiles keyed `o:OPERATION_ID` / `c:CLUSTER_ID`, without writing them."""
    cfg = config.characterise
    _members(con)
    operation_of = dict(con.execute(
        "SELECT 'c:' || cluster_id, 'o:' || operation_id FROM operation_clusters").fetchall())
    try:
        # The statements run in order on two worker threads, each with its own connection
        # (`con` and a cursor of it: a connection is never used by two threads at once,
        # and many statements here keep less than two cores busy); DuckDB releases the
        # GIL while one runs, and so does the time fits' matrix product, on another:
        # meanwhile this thread finds themes, then helps with the fits left. One BLAS
        # thread throughout (`time.loglik`).
        with (time_.one_blas_thread(), ThreadPoolExecutor(1) as sql,
              ThreadPoolExecutor(1) as side, ThreadPoolExecutor(1) as helper):
            side_f = side.submit(_side_tables, con.cursor(), cfg)
            sample_f = sql.submit(narratives.narrative_texts, con, MEMBERS, cfg)
            acts_f = sql.submit(time_.activities, con, MEMBERS, cfg)
            rest_f = sql.submit(_tables, con, cfg)
            fits = _TimeFits(acts_f, cfg)
            fits_f = helper.submit(fits.run)
            themes = narratives.theme_profiles(sample_f.result(), cfg, operation_of)
            fits.run()
            fits_f.result()
            acts, times = acts_f.result(), fits.done
            texts, gids = rest_f.result()
            sections, basics = side_f.result()
        for gid, prof in themes.items():
            texts.setdefault(gid, narratives.empty()).update(prof)
        profiles: dict[str, dict[str, Any]] = {}
        for gid in gids:
            prof: dict[str, Any] = {}
            if gid in times:
                prof["time"] = times[gid]
            else:
                prof["time"] = time_.time_profile(time_.Activity(
                    np.zeros(time_.BINS), np.zeros(0, np.int64), np.zeros(0), 0, "all"),
                    cfg)[0]
            for name, values in sections.items():
                prof[name] = values.get(gid)
            prof.update(texts.get(gid, {"narratives": [], "languages": {},
                                        "targets": {"countries": [], "people": []},
                                        "top_domains": [], "top_hashtags": []}))
            prof.update(basics.get(gid, {}))
            profiles[gid] = prof
        _cluster_views(con, profiles, acts, cfg)
        return profiles
    finally:
        for table in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {table}")


class _TimeFits:
    """Every group's `time` section (in `done`), fitted by whichever threads call `run`,
    each taking the next group left: a group's fit does not depend on the others."""

    def __init__(self, acts: Future, cfg: CharacteriseConfig):
        self._acts, self._cfg = acts, cfg
        self._lock = threading.Lock()
        self._todo: Iterator[tuple[str, time_.Activity]] | None = None
        self.done: dict[str, dict] = {}

    def run(self) -> None:
        time_.templates(self._cfg)  # built once per run, while the activity query runs
        acts = self._acts.result()
        while True:
            with self._lock:
                if self._todo is None:
                    self._todo = iter(list(acts.items()))
                item = next(self._todo, None)
            if item is None:
                return
            self.done[item[0]] = time_.time_profile(item[1], self._cfg)[0]


def _tables(con: duckdb.DuckDBPyConnection, cfg: CharacteriseConfig
            ) -> tuple[dict[str, dict], list[str]]:
    """The narratives' tables, after `narratives.narrative_texts` (which makes the
    `cw_texts` they read), and the groups."""
    texts = narratives.narrative_tables(con, MEMBERS, cfg)
    gids = [r[0] for r in con.execute(f"SELECT DISTINCT gid FROM {MEMBERS}").fetchall()]
    return texts, gids


def _side_tables(con: duckdb.DuckDBPyConnection, cfg: CharacteriseConfig
                 ) -> tuple[dict[str, dict], dict[str, dict]]:
    """The sections that are SQL alone (engagement, followers, assets) and the basics, on
    a connection of their own (`con`, closed here), which gets its own `cw_members`."""
    try:
        _members(con)
        sections = {
            "engagement": engagement.engagement_profiles(con, MEMBERS, cfg),
            "followers": followers.follower_profiles(con, MEMBERS, cfg),
            "assets": assets.asset_profiles(con, MEMBERS, cfg),
        }
        return sections, _basics(con)
    finally:
        for table in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.close()


def _members(con: duckdb.DuckDBPyConnection) -> None:
    """Groups to profile: every operation, and every cluster that is not simply the whole
    of its operation (those share the operation's profile)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {MEMBERS} AS
        WITH solo AS (
            SELECT cluster_id FROM operation_clusters
            WHERE operation_id IN (SELECT operation_id FROM operation_clusters
                                   GROUP BY operation_id HAVING count(*) = 1)
        )
        SELECT DISTINCT 'o:' || oc.operation_id AS gid, m.platform, m.account_id
        FROM operation_clusters oc JOIN cluster_members m USING (cluster_id)
        UNION
        SELECT DISTINCT 'c:' || cluster_id, platform, account_id FROM cluster_members
        WHERE cluster_id NOT IN (SELECT cluster_id FROM solo)
        """
    )


def _basics(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for gid, platforms, first, last, n in con.execute(
        f"""
        SELECT m.gid, list(DISTINCT m.platform ORDER BY m.platform), min(p.created_at),
               max(p.created_at), count(p.post_id)
        FROM {MEMBERS} m LEFT JOIN posts p USING (platform, account_id)
        GROUP BY m.gid
        """
    ).fetchall():
        out[gid] = {"platforms": list(platforms),
                    "first_seen": first.isoformat() if first else None,
                    "last_seen": last.isoformat() if last else None,
                    "posts": int(n), "activity_timeline": []}
    for gid, day, posts, n_assets in con.execute(
        f"""
        WITH a AS (  -- per asset and day first: no DISTINCT over (platform, account)
            SELECT m.gid, CAST(p.created_at AS DATE) AS d, count(*) AS n
            FROM posts p JOIN {MEMBERS} m USING (platform, account_id)
            GROUP BY m.gid, d, p.platform, p.account_id
        )
        SELECT gid, strftime(d, '%Y-%m-%d') AS day, sum(n)::BIGINT, count(*)
        FROM a GROUP BY gid, d ORDER BY 1, 2
        """
    ).fetchall():
        out[gid]["activity_timeline"].append(
            {"date": day, "posts": int(posts), "assets": int(n_assets)})
    return out


def _cluster_views(con: duckdb.DuckDBPyConnection, profiles: dict[str, dict],
                   acts: dict[str, time_.Activity], cfg) -> None:
    """Copy solo clusters' profiles from their operation and put every cluster's shift,
    in the operation's local time, into the operation's `time.clusters`."""
    for op_id, cluster_id, n in con.execute(
        """
        SELECT operation_id, cluster_id, count(*) OVER (PARTITION BY operation_id)
        FROM operation_clusters ORDER BY 1, 2
        """
    ).fetchall():
        op = profiles.get(f"o:{op_id}")
        if op is None:
            continue
        gid = f"c:{cluster_id}" if n > 1 else f"o:{op_id}"
        if n == 1:
            profiles[f"c:{cluster_id}"] = {**op, "operation_id": op_id}
        else:
            profiles.setdefault(gid, {})["operation_id"] = op_id
        op_time, own = op.get("time"), (profiles.get(gid) or {}).get("time")
        if op_time is None or own is None or gid not in acts:
            continue
        op_time["clusters"][cluster_id] = time_.cluster_shift(acts[gid], op_time, own, cfg)
    for gid, prof in profiles.items():
        t = prof.get("time")
        if gid.startswith("o:") and t is not None:
            t["cluster_shifts_differ"] = time_.shifts_differ(t["clusters"])
