"""Saved (known) operations: signatures, attribution of new assets, merge, split, files."""

from __future__ import annotations

import json

import pytest
import test_operations_world as world

import cibwatch
from cibwatch.config import Config
from cibwatch.operations import attribution_lines, link_operations
from cibwatch.operations.signatures import (
    SignatureError,
    export_known,
    forget_known,
    import_known,
    list_known,
    merge_known,
    rename_known,
    save_operation,
    show,
    split_operation,
    validate_signature,
)

CFG = Config()


def op_of(con, cluster_id: str) -> str:
    return con.execute(
        "SELECT operation_id FROM operation_clusters WHERE cluster_id = ?", [cluster_id]
    ).fetchall()[0][0]


def names(con) -> dict[str, str | None]:
    """cluster -> known operation name of its operation."""
    return dict(
        con.execute(
            "SELECT cluster_id, known_operation FROM operation_clusters "
            "JOIN operations USING (operation_id)"
        ).fetchall()
    )


@pytest.fixture
def first_half(tmp_path):
    with cibwatch.open(tmp_path / "first.duckdb") as ws:
        world.build(ws)
        link_operations(ws.con, CFG)
        yield ws


def new_assets_only(ws) -> None:
    """Second half in a fresh workspace: later weeks, only assets never seen before,
    under new cluster ids."""
    world.build(ws, start_week=5, extra_accounts=3)
    rows = ws.con.execute(
        "SELECT cluster_id, platform, list(account_id ORDER BY account_id) "
        "FROM cluster_members GROUP BY 1, 2"
    ).fetchall()
    world.write_clusters(
        ws, {c + "-2": (p, [a for a in ids if "new" in a]) for c, p, ids in rows}
    )


def test_signature_holds_every_kind_of_evidence(first_half):
    con = first_half.con
    sig = save_operation(con, CFG.operations, op_of(con, "fa"), "Alpha")
    fams = sig["families"]
    assert len(fams["asset"]) == 9 and "youtube:ya0" in fams["asset"]
    assert {"content", "handle", "xref", "url"} <= set(fams)
    assert "truthchannelasia" in fams["handle"]
    assert sum(sig["time"]) > 0 and len(sig["time"]) == 168
    assert sig["platforms"] == {"facebook": {"account": 4}, "x": {"account": 3},
                                "youtube": {"channel": 2}}
    assert names(con)["fa"] == "Alpha" and names(con)["fb"] is None
    assert [k["name"] for k in list_known(con)] == ["Alpha"]
    with pytest.raises(SignatureError, match="exists"):
        save_operation(con, CFG.operations, op_of(con, "fb"), "Alpha")
    with pytest.raises(SignatureError, match="no operation"):
        save_operation(con, CFG.operations, "op-nope", "Beta")


def test_new_assets_are_attributed_to_the_saved_operation(first_half, tmp_path):
    con = first_half.con
    save_operation(con, CFG.operations, op_of(con, "fa"), "Alpha")
    path = export_known(con, "Alpha", tmp_path / "alpha.json")
    with cibwatch.open(tmp_path / "second.duckdb") as ws:
        import_known(ws.con, path)
        new_assets_only(ws)
        summary = link_operations(ws.con, CFG)
        assert names(ws.con) == {"fa-2": "Alpha", "xa-2": "Alpha", "ya-2": "Alpha",
                                 "fb-2": None, "xb-2": None}
        [att] = summary.attributions
        assert (att.name, att.new_assets, att.assets) == ("Alpha", 9, 9)
        assert att.strength >= CFG.operations.known_min_strength
        [line] = attribution_lines(ws.con)
        assert line.startswith("9 new assets attributed to Alpha")
        links = ws.con.execute(
            "SELECT cluster_a, cluster_b, evidence FROM operation_links "
            "WHERE cluster_a LIKE 'known:%' OR cluster_b LIKE 'known:%'"
        ).fetchall()
        assert len(links) == 3
        assert all(json.loads(e)["kind"] == "known_operation" for _, _, e in links)


def test_same_workspace_keeps_the_id_and_counts_only_new_assets(first_half):
    con = first_half.con
    op_a = op_of(con, "fa")
    save_operation(con, CFG.operations, op_a, "Alpha")
    world.build(first_half, start_week=3, extra_accounts=1)
    summary = link_operations(con, CFG)
    [att] = summary.attributions
    assert att.operation_id == op_a and att.new_assets == 3 and att.assets == 12


def test_rename_forget_and_show(first_half):
    con = first_half.con
    op_a = op_of(con, "fa")
    save_operation(con, CFG.operations, op_a, "Alpha")
    rename_known(con, "Alpha", "Spamouflage-like")
    assert names(con)["fa"] == "Spamouflage-like"
    doc = show(con, op_a)
    assert doc["kind"] == "operation" and doc["clusters"] == 3 and doc["history"]
    assert any(e["signal"] == "cross_platform_link" for e in doc["evidence"])
    assert show(con, "Spamouflage-like")["kind"] == "known"
    forget_known(con, "Spamouflage-like")
    assert list_known(con) == [] and names(con)["fa"] is None
    with pytest.raises(SignatureError, match="no saved operation"):
        forget_known(con, "Spamouflage-like")
    with pytest.raises(SignatureError, match="no operation or saved operation"):
        show(con, "nothing")


def test_split_keeps_parts_apart_and_merge_joins_them(first_half):
    con = first_half.con
    op_a = op_of(con, "fa")
    split_operation(con, CFG.operations, op_a, ["ya"], "Alpha video", rest_name="Alpha")
    link_operations(con, CFG)
    assert names(con) == {"fa": "Alpha", "xa": "Alpha", "ya": "Alpha video",
                          "fb": None, "xb": None}
    assert op_of(con, "fa") == op_a != op_of(con, "ya")
    merge_known(con, CFG.operations, ["Alpha", "Alpha video"], "Alpha")
    link_operations(con, CFG)
    assert op_of(con, "ya") == op_of(con, "fa") == op_a
    assert names(con)["ya"] == "Alpha"
    assert [k["name"] for k in list_known(con)] == ["Alpha"]
    with pytest.raises(SignatureError, match="at least one cluster"):
        split_operation(con, CFG.operations, op_a, ["fa", "xa", "ya"], "All")
    with pytest.raises(SignatureError, match="no cluster"):
        split_operation(con, CFG.operations, op_a, ["zz"], "Z")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=99), "newer than this cibwatch"),
        (lambda d: d.update(name=""), "name"),
        (lambda d: d.update(time=[1, 2, 3]), "time: must be a list of 168"),
        (lambda d: d["families"].update(bogus={"a": 1}), "families.bogus: unknown family"),
        (lambda d: d["families"].update(url={"x": "many"}), "count must be a positive"),
        (lambda d: d["families"].update(asset={"noplatform": 1}), "platform:account_id"),
        (lambda d: d.update(narratives="text"), "narratives"),
        (lambda d: d.update(saved_at="yesterday"), "saved_at"),
        (lambda d: d.update(source_operation_id=[1]), "source_operation_id"),
    ],
)
def test_import_rejects_bad_signatures_with_a_clear_message(first_half, tmp_path, change,
                                                            message):
    con = first_half.con
    save_operation(con, CFG.operations, op_of(con, "fa"), "Alpha")
    path = export_known(con, "Alpha", tmp_path / "alpha.json")
    data = json.loads(path.read_text())
    assert validate_signature(data)["name"] == "Alpha"
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SignatureError, match=message) as info:
        import_known(con, bad, replace=True)
    assert str(bad) in str(info.value)


def test_import_of_unreadable_files(first_half, tmp_path):
    con = first_half.con
    with pytest.raises(SignatureError, match="cannot read"):
        import_known(con, tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": ')
    with pytest.raises(SignatureError, match="not a JSON signature file"):
        import_known(con, broken)


def test_merge_of_current_operations_joins_them_next_run(first_half):
    con = first_half.con
    op_a, op_b = op_of(con, "fa"), op_of(con, "fb")
    merge_known(con, CFG.operations, [op_a, op_b], "Both")
    assert names(con) == dict.fromkeys(["fa", "xa", "ya", "fb", "xb"], "Both")
    link_operations(con, CFG)
    assert len({op_of(con, c) for c in ("fa", "xa", "ya", "fb", "xb")}) == 1
    assert [k["name"] for k in list_known(con)] == ["Both"]
