"""Linking on the synthetic world: truth clusters without operation ids -> operations.

Scale 0.3 (30k posts), not the shared scale-0.05 world: at 5k posts the smaller
operations have one asset per platform and post a large share of all the world's texts,
so the chance model (docs/operations.md) rightly finds too little evidence to link them.
"""

from __future__ import annotations

import pytest

import cibwatch
from cibwatch.config import Config
from cibwatch.operations import link_operations
from cibwatch.signals import extract_keys
from cibwatch.synth import generate


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("ops-world") / "w"
    generate(out, scale=0.3, seed=5)
    return out


def test_planted_operations_are_rebuilt_across_platforms(world, tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as ws:
        ws.ingest(world, progress=False)
        con = ws.con
        extract_keys(con, Config())
        labels = (world / "labels.csv").as_posix()
        con.execute(
            f"""
            CREATE TEMP TABLE truth AS
            SELECT * FROM read_csv('{labels}', all_varchar = true) WHERE role = 'operator'
            """
        )
        # One cluster per planted operation and platform, as detection would find them,
        # plus the hard negatives as false clusters; no operation ids given.
        negatives = (world / "hard_negatives.csv").as_posix()
        con.execute(
            f"""
            INSERT INTO cluster_members
            SELECT 'c-' || md5(operation_id || platform)[:8], platform, account_id, 1.0, 't'
            FROM truth
            UNION ALL
            SELECT 'n-' || md5("group" || platform)[:8], platform, account_id, 0.5, 'neg'
            FROM read_csv('{negatives}', all_varchar = true)
            """
        )
        con.execute(
            "INSERT INTO clusters SELECT cluster_id, any_value(platform), count(*), "
            "max(score), NULL FROM cluster_members GROUP BY 1"
        )
        link_operations(con, Config())
        rows = con.execute(
            """
            SELECT t.operation_id, count(DISTINCT oc.operation_id),
                   count(DISTINCT t.platform)
            FROM truth t JOIN cluster_members m USING (platform, account_id)
            JOIN operation_clusters oc USING (cluster_id) GROUP BY 1
            """
        ).fetchall()
        assert len(rows) == 5
        assert all(n_ids == 1 for _, n_ids, _ in rows), rows
        assert max(n_platforms for *_, n_platforms in rows) >= 5
        # No two planted operations share an id, and no hard negative joins one.
        shared = con.execute(
            """
            SELECT oc.operation_id, count(DISTINCT t.operation_id)
            FROM truth t JOIN cluster_members m USING (platform, account_id)
            JOIN operation_clusters oc USING (cluster_id)
            GROUP BY 1 HAVING count(DISTINCT t.operation_id) > 1
            """
        ).fetchall()
        assert shared == []
        mixed = con.execute(
            """
            SELECT count(*) FROM cluster_members m JOIN operation_clusters oc USING (cluster_id)
            WHERE m.cluster_id LIKE 'n-%' AND oc.operation_id IN (
                SELECT oc2.operation_id FROM operation_clusters oc2
                WHERE oc2.cluster_id LIKE 'c-%')
            """
        ).fetchall()[0][0]
        assert mixed == 0
        assert con.execute(
            "SELECT count(*) FROM operations o ANTI JOIN operation_evidence USING (operation_id)"
        ).fetchall()[0][0] == 0
