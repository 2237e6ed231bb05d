"""`cibwatch evaluate` on hand-built cases with known answers, and on a generated world."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from sklearn.metrics import adjusted_rand_score

from cibwatch.errors import ResultsError
from cibwatch.evaluate import evaluate

LABELS = [
    # platform, account_id, operation_id, role
    *[("facebook", f"a{i}", "opA", "operator") for i in range(6)],
    *[("x", f"00{i}", "opB", "operator") for i in range(4)],
    *[("facebook", f"f{i}", "opA", "fake_follower") for i in range(5)],
]
NEGATIVES = [
    *[("x", f"v{i}", "viral") for i in range(10)],
    *[("facebook", f"c{i}", "chain_message") for i in range(3)],
    ("x", "h0", "hyperactive"),
]
TRUTH = {
    "operations": {
        "opA": {"utc_offset_hours": 8.0, "shift_pattern": True, "echo_chamber_ratio": 0.9,
                "inauthentic_follower_share": 0.5,
                "assets": {"facebook": {"account": 6}}},
        "opB": {"utc_offset_hours": 3.5, "shift_pattern": False, "echo_chamber_ratio": 0.4,
                "inauthentic_follower_share": None, "assets": {"x": {"account": 4}}},
    }
}


def _write_csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def truth_dir(tmp_path) -> Path:
    d = tmp_path / "world"
    d.mkdir()
    _write_csv(d / "labels.csv", ["platform", "account_id", "operation_id", "role"], LABELS)
    _write_csv(d / "hard_negatives.csv", ["platform", "account_id", "group"], NEGATIVES)
    (d / "truth.json").write_text(json.dumps(TRUTH))
    return d


def results(tmp_path: Path, rows, ops=None, name="results") -> Path:
    d = tmp_path / name
    d.mkdir()
    _write_csv(d / "accounts.csv",
               ["platform", "account_id", "operation_id", "cluster_id", "score"], rows)
    if ops is None:
        ops = [{"operation_id": o} for o in sorted({r[2] for r in rows})]
    (d / "operations.json").write_text(json.dumps(ops))
    return d


def perfect_rows():
    return [(p, a, {"opA": "P1", "opB": "P2"}[o], f"c-{p}", 0.9)
            for p, a, o, role in LABELS if role == "operator"]


def perfect_ops():
    return [{"operation_id": "P1", "utc_offset_hours": 8.0, "shift_pattern": True,
             "echo_chamber_ratio": 0.9, "inauthentic_follower_share": 0.5,
             "assets": {"facebook": {"account": 6}}},
            {"operation_id": "P2", "utc_offset_hours": 3.5, "shift_pattern": False,
             "echo_chamber_ratio": 0.4, "inauthentic_follower_share": None,
             "assets": {"x": {"account": 4}}}]


def test_perfect_result_scores_one(tmp_path, truth_dir):
    r = evaluate(results(tmp_path, perfect_rows(), perfect_ops()), truth_dir / "labels.csv",
                 truth=truth_dir / "truth.json")
    acc = r["accounts"]
    assert (acc["precision"], acc["recall"], acc["f1"]) == (1.0, 1.0, 1.0)
    assert r["adjusted_rand_index"] == 1.0
    assert r["false_positives_by_group"] == {"viral": 0, "activist": 0, "chain_message": 0,
                                             "hyperactive": 0, "other": 0}
    a = r["operations"]["opA"]
    assert a["matched_operation"] == "P1" and a["recall"] == 1.0
    assert a["utc_offset_hours"]["error"] == 0.0
    assert a["shift_pattern"]["correct"] is True
    assert a["echo_chamber_ratio"]["error"] == 0.0
    assert a["inauthentic_follower_share"]["error"] == 0.0
    assert a["assets"]["abs_error"] == 0
    b = r["operations"]["opB"]
    assert b["utc_offset_hours"]["error"] == 0.0
    assert b["inauthentic_follower_share"]["error"] is None  # no follows: nothing to compare


def test_flagging_a_viral_event_lowers_precision_by_the_right_amount(tmp_path, truth_dir):
    rows = perfect_rows() + [("x", f"v{i}", "P3", "c-v", 0.6) for i in range(10)] + [
        ("x", "stranger", "P3", "c-v", 0.6)]
    r = evaluate(results(tmp_path, rows), truth_dir / "labels.csv")
    acc = r["accounts"]
    assert acc["precision"] == pytest.approx(10 / 21)
    assert acc["recall"] == 1.0
    assert acc["f1"] == pytest.approx(2 * (10 / 21) / (10 / 21 + 1))
    assert r["false_positives_by_group"]["viral"] == 10
    assert r["false_positives_by_group"]["other"] == 1
    assert r["hard_negatives"]["viral"] == {"accounts": 10, "flagged": 10}


def test_fake_followers_are_neutral(tmp_path, truth_dir):
    rows = perfect_rows()[:3] + [("facebook", f"f{i}", "P1", "c", 0.5) for i in range(5)]
    r = evaluate(results(tmp_path, rows), truth_dir / "labels.csv")
    acc = r["accounts"]
    assert acc["precision"] == 1.0
    assert acc["recall"] == pytest.approx(3 / 10)
    assert acc["fake_followers_flagged"] == 5 and acc["false_positives"] == 0


def test_ari_of_the_grouping_over_true_positives(tmp_path, truth_dir):
    # All ten operators in one predicted operation; one organic account flagged too.
    rows = [(p, a, "ALL", "c", 0.9) for p, a, _, role in LABELS if role == "operator"]
    rows.append(("x", "v0", "ALL", "c", 0.9))
    r = evaluate(results(tmp_path, rows), truth_dir / "labels.csv")
    truth = [o for _, _, o, role in LABELS if role == "operator"]
    assert r["adjusted_rand_index"] == pytest.approx(
        adjusted_rand_score(truth, ["ALL"] * len(truth)))
    assert r["adjusted_rand_index"] == 0.0
    # Split opA in two predicted operations: ARI strictly between 0 and 1.
    rows = [(p, a, {"opA": "P1" if a in ("a0", "a1") else "P9", "opB": "P2"}[o], "c", 0.9)
            for p, a, o, role in LABELS if role == "operator"]
    r = evaluate(results(tmp_path, rows, name="split"), truth_dir / "labels.csv",
                 truth=truth_dir / "truth.json")
    pred = [{"opA": "P1" if a in ("a0", "a1") else "P9", "opB": "P2"}[o]
            for _, a, o, role in LABELS if role == "operator"]
    assert r["adjusted_rand_index"] == pytest.approx(adjusted_rand_score(truth, pred))
    assert 0 < r["adjusted_rand_index"] < 1
    # opA is matched to the predicted operation holding most of its flagged assets.
    assert r["operations"]["opA"]["matched_operation"] == "P9"
    assert r["operations"]["opA"]["matched_share"] == pytest.approx(4 / 6)


def test_profile_errors(tmp_path, truth_dir):
    ops = perfect_ops()
    ops[0].update(utc_offset_hours=7.0, shift_pattern=False, echo_chamber_ratio=0.7,
                  inauthentic_follower_share=0.25,
                  assets={"facebook": {"account": 5, "page": 2}})
    r = evaluate(results(tmp_path, perfect_rows(), ops), truth_dir / "labels.csv",
                 truth=truth_dir / "truth.json")
    a = r["operations"]["opA"]
    assert a["utc_offset_hours"]["error"] == 1.0
    ops[1]["utc_offset_hours"] = -20.5  # the same clock as +3:30
    r2 = evaluate(results(tmp_path, perfect_rows(), ops, name="wrapped"),
                  truth_dir / "labels.csv", truth=truth_dir / "truth.json")
    assert r2["operations"]["opB"]["utc_offset_hours"]["error"] == 0.0
    assert a["shift_pattern"]["correct"] is False
    assert a["echo_chamber_ratio"]["error"] == pytest.approx(0.2)
    assert a["inauthentic_follower_share"]["error"] == pytest.approx(0.25)
    assert a["assets"]["abs_error"] == 3
    assert a["assets"]["rel_error"] == pytest.approx(0.5)


def test_negatives_default_to_the_file_beside_labels(tmp_path, truth_dir):
    rows = perfect_rows() + [("facebook", "c0", "P3", "c", 0.5)]
    r = evaluate(results(tmp_path, rows), truth_dir / "labels.csv")
    assert r["false_positives_by_group"]["chain_message"] == 1
    (truth_dir / "hard_negatives.csv").unlink()
    r = evaluate(results(tmp_path, rows, name="again"), truth_dir / "labels.csv")
    assert r["false_positives_by_group"]["other"] == 1


@pytest.mark.parametrize(
    ("accounts_csv", "message"),
    [
        (None, "accounts.csv not found"),
        ("platform,account_id,operation_id,cluster_id\nx,1,P,c\n", "lacks column(s) score"),
        ("platform,account_id,operation_id,cluster_id,score\nx,1,P,c,0.5\nx,2,P,c,high\n",
         "row 3: score 'high' is not a number"),
        ("platform,account_id,operation_id,cluster_id,score\nx,1,P,c,1.5\n",
         "row 2: score 1.5 is outside 0..1"),
        ("platform,account_id,operation_id,cluster_id,score\nx,,P,c,0.5\n",
         "row 2: empty account_id"),
        ("platform,account_id,operation_id,cluster_id,score\nx,1,P,c,0.5\nx,1,Q,c,0.5\n",
         "row 3: x account 1 listed twice"),
        ("platform,account_id,operation_id,cluster_id,score\nx,1,P,c\n",
         "row 2: wrong number of fields"),
    ],
)
def test_malformed_results_name_file_and_row(tmp_path, truth_dir, accounts_csv, message):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "operations.json").write_text("[]")
    if accounts_csv is not None:
        (d / "accounts.csv").write_text(accounts_csv)
    with pytest.raises(ResultsError) as err:
        evaluate(d, truth_dir / "labels.csv")
    assert message in str(err.value)
    assert "accounts.csv" in str(err.value)


def test_malformed_operations_and_labels(tmp_path, truth_dir):
    d = results(tmp_path, perfect_rows())
    (d / "operations.json").write_text('[{"operation_id": "P1"},\n{oops}]')
    with pytest.raises(ResultsError, match=r"operations.json, line 2: not valid JSON"):
        evaluate(d, truth_dir / "labels.csv")
    (d / "operations.json").unlink()
    with pytest.raises(ResultsError, match="operations.json not found"):
        evaluate(d, truth_dir / "labels.csv")
    d = results(tmp_path, perfect_rows(), name="ok")
    bad = _write_csv(tmp_path / "labels.csv", ["platform", "account_id", "operation_id", "role"],
                     [("x", "1", "opA", "operator"), ("x", "2", "opA", "boss")])
    with pytest.raises(ResultsError, match=r"labels.csv, row 3: role 'boss'"):
        evaluate(d, bad)
    with pytest.raises(ResultsError, match="not_here.csv: labels file not found"):
        evaluate(d, tmp_path / "not_here.csv")


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run the console entry point in-process: (exit code, stdout, stderr)."""
    from cibwatch import cli

    monkeypatch.setattr(sys, "argv", ["cibwatch", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_table_writes_json_and_fails_cleanly(tmp_path, truth_dir, monkeypatch,
                                                        capsys):
    d = results(tmp_path, perfect_rows(), perfect_ops())
    out = tmp_path / "scores.json"
    code, stdout, stderr = _cli(monkeypatch, capsys, "evaluate", str(d), "--labels",
                                str(truth_dir / "labels.csv"), "--truth",
                                str(truth_dir / "truth.json"), "--json", str(out))
    assert code == 0, stderr
    assert "precision" in stdout and "viral" in stdout
    assert json.loads(out.read_text())["accounts"]["f1"] == 1.0
    (d / "accounts.csv").write_text("platform,account_id\n")
    code, stdout, stderr = _cli(monkeypatch, capsys, "evaluate", str(d), "--labels",
                                str(truth_dir / "labels.csv"))
    assert code == 2
    assert "accounts.csv" in stderr and "Traceback" not in stderr


def test_truth_as_results_scores_perfectly_on_a_generated_world(tmp_path, small_world):
    """Results written from labels.csv and truth.json of a real generated world: F1 1 and
    zero profile errors (the truth figures are consistent with the labels)."""
    labels = list(csv.DictReader((small_world / "labels.csv").open()))
    truth = json.loads((small_world / "truth.json").read_text())
    rows = [(r["platform"], r["account_id"], r["operation_id"], r["operation_id"], 1.0)
            for r in labels if r["role"] == "operator"]
    ops = [{"operation_id": name, **{k: t[k] for k in (
        "utc_offset_hours", "shift_pattern", "echo_chamber_ratio",
        "inauthentic_follower_share", "assets")}} for name, t in truth["operations"].items()]
    r = evaluate(results(tmp_path, rows, ops), small_world / "labels.csv",
                 truth=small_world / "truth.json")
    assert r["accounts"]["f1"] == 1.0 and r["adjusted_rand_index"] == 1.0
    for e in r["operations"].values():
        assert e["assets"]["abs_error"] == 0
        assert e["echo_chamber_ratio"]["error"] == 0.0


def test_naive_baseline_is_fooled_by_the_hard_negatives(tmp_path, small_world):
    """benchmarks/baseline.py (same URL / same re-share within 60 s, connected
    components) writes a valid results folder and flags viral hard negatives."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "baseline.py"
    spec = importlib.util.spec_from_file_location("naive_baseline", path)
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    out = tmp_path / "naive"
    summary = baseline.run(small_world, out)
    assert summary["flagged"] > 0
    r = evaluate(out, small_world / "labels.csv", truth=small_world / "truth.json")
    assert r["false_positives_by_group"]["viral"] >= 0.5 * r["hard_negatives"]["viral"]["accounts"]
    assert r["accounts"]["precision"] < 0.7
