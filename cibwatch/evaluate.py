"""Score a results folder against ground truth (labels.csv, truth.json, hard_negatives.csv).

Account level: precision, recall and F1 over operators; assets labelled `fake_follower`
are neutral (neither a hit nor a false alarm, SCHEMA.md). False positives are broken
down by hard-negative group. The operation grouping is scored with the adjusted Rand
index over true positives. Each true operation is matched to the predicted operation
holding most of its flagged assets, and that operation's profile (UTC offset, shift
pattern, echo-chamber ratio, inauthentic-follower share, asset tally) is compared with
the truth.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from cibwatch.errors import ResultsError

RESULT_COLUMNS = ("platform", "account_id", "operation_id", "cluster_id", "score")
LABEL_COLUMNS = ("platform", "account_id", "operation_id", "role")
NEGATIVE_COLUMNS = ("platform", "account_id", "group")
NEGATIVE_GROUPS = ("viral", "activist", "chain_message", "hyperactive")
ROLES = ("operator", "fake_follower")

Key = tuple[str, str]


def _rows(path: Path, required: tuple[str, ...], what: str) -> list[tuple[int, dict]]:
    """(line number, row) for each data row of a CSV with the required columns."""
    if not path.is_file():
        raise ResultsError(f"{path}: {what} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # a BOM is tolerated
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise ResultsError(
                    f"{path}: {what} lacks column(s) {', '.join(missing)} "
                    f"(header: {', '.join(header) or 'none'})"
                )
            out = []
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    raise ResultsError(f"{path}, row {line}: wrong number of fields")
                out.append((line, row))
            return out
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: {what} is not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ResultsError(f"{path}: {what} is not valid CSV ({exc})") from exc


def _need(path: Path, line: int, row: dict, cols: tuple[str, ...]) -> None:
    for col in cols:
        if not (row.get(col) or "").strip():
            raise ResultsError(f"{path}, row {line}: empty {col}")


def read_results(results_dir: str | Path) -> tuple[dict[Key, dict], list[dict]]:
    """accounts.csv as {(platform, account_id): row} and operations.json as a list."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(f"{results_dir}: results folder not found")
    path = results_dir / "accounts.csv"
    flagged: dict[Key, dict] = {}
    for line, row in _rows(path, RESULT_COLUMNS, "results accounts.csv"):
        _need(path, line, row, ("platform", "account_id", "operation_id"))
        try:
            score = float(row["score"])
        except ValueError:
            raise ResultsError(
                f"{path}, row {line}: score {row['score']!r} is not a number"
            ) from None
        if not 0.0 <= score <= 1.0 or math.isnan(score):
            raise ResultsError(f"{path}, row {line}: score {score} is outside 0..1")
        key = (row["platform"], row["account_id"])
        if key in flagged:
            raise ResultsError(f"{path}, row {line}: {key[0]} account {key[1]} listed twice")
        flagged[key] = {"operation_id": row["operation_id"], "cluster_id": row["cluster_id"],
                        "score": score, "line": line}
    ops_path = results_dir / "operations.json"
    if not ops_path.is_file():
        raise ResultsError(f"{ops_path}: operations.json not found")
    try:
        ops = json.loads(ops_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f", line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ResultsError(f"{ops_path}{where}: not valid JSON ({exc})") from exc
    if not isinstance(ops, list):
        raise ResultsError(f"{ops_path}: expected a JSON array of operations")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("operation_id"), str):
            raise ResultsError(f"{ops_path}, item {i}: an object with operation_id expected")
    return flagged, ops


def read_labels(path: str | Path) -> tuple[dict[Key, str], dict[Key, str]]:
    """labels.csv as ({key: operation} for operators, {key: operation} for fake followers)."""
    path = Path(path)
    operators: dict[Key, str] = {}
    fakes: dict[Key, str] = {}
    for line, row in _rows(path, LABEL_COLUMNS, "labels file"):
        _need(path, line, row, LABEL_COLUMNS)
        role = row["role"].strip()
        if role not in ROLES:
            raise ResultsError(
                f"{path}, row {line}: role {role!r} is not one of {', '.join(ROLES)}"
            )
        key = (row["platform"], row["account_id"])
        (operators if role == "operator" else fakes)[key] = row["operation_id"]
    for key in operators:
        fakes.pop(key, None)
    return operators, fakes


def read_negatives(path: str | Path) -> dict[Key, str]:
    """hard_negatives.csv as {key: group}; an account in several groups keeps the first
    in NEGATIVE_GROUPS order."""
    path = Path(path)
    out: dict[Key, str] = {}
    rank = {g: i for i, g in enumerate(NEGATIVE_GROUPS)}
    for line, row in _rows(path, NEGATIVE_COLUMNS, "hard negatives file"):
        _need(path, line, row, NEGATIVE_COLUMNS)
        group = row["group"].strip()
        if group not in rank:
            raise ResultsError(
                f"{path}, row {line}: group {group!r} is not one of {', '.join(NEGATIVE_GROUPS)}"
            )
        key = (row["platform"], row["account_id"])
        if key not in out or rank[group] < rank[out[key]]:
            out[key] = group
    return out


def read_truth(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: truth file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("operations"), dict):
        raise ResultsError(f"{path}: expected an object with an 'operations' object")
    return data


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _diff(truth: Any, predicted: Any, circle: float | None = None) -> dict:
    """{truth, predicted, error = |predicted - truth|}; on a circle (UTC offsets: 24 h,
    so -11 and +13 are the same clock) the shorter way round."""
    t, p = _number(truth), _number(predicted)
    if t is None or p is None:
        return {"truth": truth, "predicted": predicted, "error": None}
    err = abs(p - t)
    if circle:
        err = min(err % circle, circle - err % circle)
    return {"truth": truth, "predicted": predicted, "error": round(err, 6)}


def _tally_error(truth: dict | None, predicted: Any) -> dict:
    """Absolute and relative error of an asset tally {platform: {asset_type: n}}."""
    out = {"truth": truth, "predicted": predicted, "abs_error": None, "rel_error": None}
    if not isinstance(truth, dict) or not isinstance(predicted, dict):
        return out
    err = 0
    total = 0
    keys = {(p, t) for p, v in truth.items() for t in v} | {
        (p, t) for p, v in predicted.items() if isinstance(v, dict) for t in v
    }
    for p, t in keys:
        tv = truth.get(p, {}).get(t, 0)
        pv = (predicted.get(p) or {}).get(t, 0) if isinstance(predicted.get(p), dict) else 0
        pv = pv if isinstance(pv, int | float) else 0
        err += abs(pv - tv)
        total += tv
    out["abs_error"] = err
    out["rel_error"] = round(err / total, 6) if total else None
    return out


def evaluate(
    results_dir: str | Path,
    labels: str | Path,
    truth: str | Path | None = None,
    negatives: str | Path | None = None,
) -> dict:
    """Score `results_dir` (accounts.csv + operations.json) against `labels` (and
    optionally truth.json and hard_negatives.csv; the latter defaults to the file beside
    labels.csv when present). Returns a JSON-ready dict (see docs/synth.md)."""
    from sklearn.metrics import adjusted_rand_score

    labels = Path(labels)
    flagged, ops = read_results(results_dir)
    operators, fakes = read_labels(labels)
    if negatives is None and (labels.parent / "hard_negatives.csv").is_file():
        negatives = labels.parent / "hard_negatives.csv"
    neg = read_negatives(negatives) if negatives is not None else {}
    truth_data = read_truth(truth) if truth is not None else None

    scored = {k: v for k, v in flagged.items() if k not in fakes}
    tp = [k for k in scored if k in operators]
    fp = [k for k in scored if k not in operators]
    fn = [k for k in operators if k not in scored]
    precision = _ratio(len(tp), len(tp) + len(fp))
    recall = _ratio(len(tp), len(operators))
    f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0

    fp_groups = Counter(neg.get(k, "other") for k in fp)
    by_group = {g: fp_groups.get(g, 0) for g in (*NEGATIVE_GROUPS, "other")}
    neg_sizes = Counter(neg.values())
    hard = {g: {"accounts": neg_sizes.get(g, 0), "flagged": fp_groups.get(g, 0)}
            for g in NEGATIVE_GROUPS}

    ari = None
    if len(tp) >= 2:
        ari = float(adjusted_rand_score([operators[k] for k in tp],
                                        [scored[k]["operation_id"] for k in tp]))

    pred_ops = {op["operation_id"]: op for op in ops}
    true_truth = truth_data["operations"] if truth_data else {}
    per_op = {}
    for name in sorted(set(operators.values()) | set(true_truth)):
        members = [k for k, o in operators.items() if o == name]
        found = [k for k in members if k in scored]
        votes = Counter(scored[k]["operation_id"] for k in found)
        matched, held = votes.most_common(1)[0] if votes else (None, 0)
        entry: dict[str, Any] = {
            "operators": len(members),
            "found": len(found),
            "recall": round(_ratio(len(found), len(members)), 6),
            "matched_operation": matched,
            "matched_share": round(_ratio(held, len(found)), 6),
        }
        t = true_truth.get(name)
        p = pred_ops.get(matched, {}) if matched is not None else {}
        if t is not None:
            entry["utc_offset_hours"] = _diff(t.get("utc_offset_hours"),
                                              p.get("utc_offset_hours"), circle=24.0)
            ts, ps = t.get("shift_pattern"), p.get("shift_pattern")
            entry["shift_pattern"] = {
                "truth": ts, "predicted": ps,
                "correct": None if matched is None or not isinstance(ps, bool) else ps == ts,
            }
            entry["echo_chamber_ratio"] = _diff(t.get("echo_chamber_ratio"),
                                                p.get("echo_chamber_ratio"))
            entry["inauthentic_follower_share"] = _diff(t.get("inauthentic_follower_share"),
                                                        p.get("inauthentic_follower_share"))
            entry["assets"] = _tally_error(t.get("assets"), p.get("assets"))
        per_op[name] = entry

    return {
        "results": str(results_dir),
        "labels": str(labels),
        "accounts": {
            "flagged": len(flagged),
            "scored": len(scored),
            "true_positives": len(tp),
            "false_positives": len(fp),
            "false_negatives": len(fn),
            "fake_followers_flagged": len(flagged) - len(scored),
            "operators": len(operators),
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
        },
        "false_positives_by_group": by_group,
        "hard_negatives": hard,
        "adjusted_rand_index": None if ari is None else round(ari, 6),
        "predicted_operations": len(pred_ops),
        "operations": per_op,
    }


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def render(result: dict, console) -> None:
    """Rich tables of an evaluation (ids are data: shown through terminal_safe)."""
    from rich.table import Table

    from cibwatch.safety import terminal_safe

    acc = result["accounts"]
    top = Table(title="Account-level scores (fake followers neutral)")
    for col in ("flagged", "TP", "FP", "FN", "fake foll.", "precision", "recall", "F1",
                "ARI"):
        top.add_column(col, justify="right")
    ari = result["adjusted_rand_index"]
    top.add_row(str(acc["flagged"]), str(acc["true_positives"]), str(acc["false_positives"]),
                str(acc["false_negatives"]), str(acc["fake_followers_flagged"]),
                f"{acc['precision']:.3f}", f"{acc['recall']:.3f}", f"{acc['f1']:.3f}",
                "n/a" if ari is None else f"{ari:.3f}")
    console.print(top)

    fp = Table(title="False positives by hard-negative group")
    for g in result["false_positives_by_group"]:
        fp.add_column(g, justify="right")
    fp.add_row(*[
        f"{n}" + (f" / {result['hard_negatives'][g]['accounts']}"
                  if g in result["hard_negatives"] else "")
        for g, n in result["false_positives_by_group"].items()
    ])
    console.print(fp)

    ops = Table(title="Per operation: true/predicted offset and shift, absolute errors "
                "(matched to the predicted operation holding most of its flagged assets)")
    ops.add_column("operation", min_width=11, overflow="fold")
    ops.add_column("recall")
    ops.add_column("matched", min_width=8, overflow="fold")
    for col in ("offset", "shift", "echo", "foll.", "tally"):
        ops.add_column(col)

    def num(v: Any, spec: str) -> str:
        return "-" if _number(v) is None else format(v, spec)

    for name, e in result["operations"].items():
        off = e.get("utc_offset_hours", {})
        sh = e.get("shift_pattern", {})
        ops.add_row(
            terminal_safe(name), f"{e['recall']:.2f}",
            "-" if e["matched_operation"] is None else terminal_safe(e["matched_operation"]),
            f"{num(off.get('truth'), 'g')}/{num(off.get('predicted'), 'g')}",
            f"{_yes(sh.get('truth'))}/{_yes(sh.get('predicted'))}",
            num(e.get("echo_chamber_ratio", {}).get("error"), ".2f"),
            num(e.get("inauthentic_follower_share", {}).get("error"), ".2f"),
            num(e.get("assets", {}).get("rel_error"), ".2f"),
        )
    console.print(ops)
