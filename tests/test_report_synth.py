"""The report on the generated world: ground-truth operations, real characterise profiles."""

from __future__ import annotations

import csv
import json

import pytest
import stix2
from stix2validator import ValidationOptions, validate_file
from support import truth_as_results

import cibwatch
from cibwatch.characterise import characterise
from cibwatch.config import Config
from cibwatch.report import build_report
from cibwatch.report.collect import tally_phrase


@pytest.fixture(scope="module")
def synth_report(small_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_report")
    with cibwatch.open(root / "ws.duckdb") as ws:
        ws.ingest(small_world, progress=False)
        truth_as_results(ws, small_world / "labels.csv")
        characterise(ws.con, Config())
        written = build_report(ws, root / "out", formats=["html", "indicators", "stix",
                                                          "enforcement"])
        expected = ws.con.execute(
            """
            SELECT t.operation_id, t.platform, coalesce(a.asset_type, 'account'), count(*)
            FROM truth_labels t LEFT JOIN accounts a USING (platform, account_id)
            GROUP BY ALL
            """).fetchall()
        profiles = {op: json.loads(p) for op, p in ws.con.execute(
            "SELECT operation_id, profile FROM operation_profiles").fetchall()}
    return {"written": written, "expected": expected, "profiles": profiles}


@pytest.mark.slow
def test_synth_report_counts_every_operator(synth_report):
    with synth_report["written"]["indicators"].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    assert len({r[4].split(";")[0] for r in rows}) == len(synth_report["profiles"]) >= 4
    for op, platform, asset_type, n in synth_report["expected"]:
        phrase = tally_phrase(platform, asset_type, n)
        assert [op, phrase] in [[r[4].split(";")[0], r[3]] for r in rows], (op, phrase)
    with synth_report["written"]["enforcement"].open(newline="", encoding="utf-8") as fh:
        assert len(list(csv.reader(fh))) - 1 == sum(n for *_, n in synth_report["expected"])


@pytest.mark.slow
def test_synth_tags_follow_the_profiles(synth_report):
    with synth_report["written"]["indicators"].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    for op, profile in synth_report["profiles"].items():
        procedures = {r[2].split()[0] for r in rows if r[4].split(";")[0] == op}
        shift = bool((profile.get("time") or {}).get("shift_pattern"))
        assert ("3.1.1" in procedures) == shift, op
        share = (profile.get("followers") or {}).get("inauthentic_follower_share") or 0
        assert bool(procedures & {"7.2.2", "7.2.4", "7.2.5"}) <= (share >= 0.2), op


@pytest.mark.slow
def test_synth_html_and_stix(synth_report):
    html = synth_report["written"]["html"].read_text(encoding="utf-8")
    assert html.count('class="operation"') == len(synth_report["profiles"])
    assert html.count("data:image/svg+xml;base64,") >= 3 * len(synth_report["profiles"])
    path = synth_report["written"]["stix"]
    assert validate_file(str(path), ValidationOptions()).is_valid
    bundle = stix2.parse(path.read_text(encoding="utf-8"), allow_custom=True)
    accounts = [o for o in bundle.objects if o.type == "user-account"]
    assert len(accounts) == sum(n for *_, n in synth_report["expected"])
