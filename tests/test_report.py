"""The report and its exports, on a small hand-built workspace (tests/test_report_world.py).

One report is built per module; the HTML is opened once in headless Chromium.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
import stix2
from pypdf import PdfReader
from stix2validator import ValidationOptions, validate_file
from test_report_world import (
    BIG_OP,
    FORMULA_HANDLE,
    FORMULA_TEXT,
    IMG_HANDLE,
    OWN_DOMAIN,
    QUOTE_URL,
    SCRIPT_POST,
    SMALL_OP,
    build_world,
)

import cibwatch
from cibwatch.report import build_report, enforcement_rows, parse_formats
from cibwatch.report.collect import ReportError, safe_name, tally_text
from cibwatch.report.disarm import framework
from cibwatch.report.killchain import taxonomy
from cibwatch.report.markdown import md

SECTIONS = ["Summary", "Assets", "Platforms", "Time zone and working hours",
            "Activity timeline", "Narratives", "Engagement, reach and followers", "Network",
            "Strongest evidence", "Online Operations Kill Chain and DISARM"]
# Operators in the hand-built world after the analyst's exclusion of fb011.
BIG_ASSETS = 11 + 3 + 1 + 4
SMALL_ASSETS = 3


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    ws_path = build_world(root / "ws.duckdb")
    with cibwatch.open(ws_path) as ws:
        written = build_report(ws, root / "out")
        audit = ws.con.execute(
            "SELECT action, target, detail FROM audit_log ORDER BY seq").fetchall()
    return {"root": root, "ws": ws_path, "out": root / "out", "written": written,
            "audit": audit}


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# ------------------------------------------------------------------------ files and audit
def test_every_export_is_written_and_audited(built):
    names = {p.name for p in built["out"].iterdir()}
    expected = {"report.html", "report.pdf", "report.md", "indicators.csv",
                "stix-bundle.json", "graph.gexf", "graph.graphml", "enforcement.csv",
                "enforcement.parquet", "charts"}
    assert names == expected
    audited = {Path(t).name for action, t, _ in built["audit"] if action == "export"}
    assert audited == expected - {"charts"}
    html_entry = next(d for a, t, d in built["audit"] if t.endswith("report.html"))
    assert BIG_OP in html_entry and SMALL_OP in html_entry


def test_no_output_path_from_data(built):
    charts = sorted(p.name for p in (built["out"] / "charts").iterdir())
    assert charts and all(p.startswith(("op_spamo_evil-", "op-small-")) for p in charts)
    assert all(".." not in p and "/" not in p for p in charts)
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("") == "operation"


def test_tally_in_words_like_a_takedown_report():
    rows = [{"platform": "facebook", "asset_type": "account", "count": 7704},
            {"platform": "facebook", "asset_type": "page", "count": 954},
            {"platform": "facebook", "asset_type": "group", "count": 15},
            {"platform": "instagram", "asset_type": "account", "count": 15}]
    assert tally_text(rows) == ("7,704 Facebook accounts, 954 Pages, 15 Groups and "
                                "15 Instagram accounts")


def test_unknown_operation_and_format_are_clear_errors(built, tmp_path):
    with cibwatch.open(built["ws"]) as ws, pytest.raises(ReportError, match="no operation"):
        build_report(ws, tmp_path / "x", operation_id="nope")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ReportError, match="unknown report format 'pdff'"):
        parse_formats(["html,pdff"])
    assert parse_formats(["graphs", "markdown"]) == ["gexf", "graphml", "md"]


# ------------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def page(built):
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium missing: run scripts/system-deps.sh")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        pg = browser.new_page()
        events = {"dialogs": [], "requests": [], "errors": []}
        pg.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
        pg.on("request", lambda r: events["requests"].append(r.url))
        pg.on("pageerror", lambda e: events["errors"].append(str(e)))
        pg.goto((built["out"] / "report.html").as_uri())
        pg.wait_for_load_state("load")
        yield pg, events
        browser.close()


@pytest.mark.browser
def test_html_runs_no_script_from_the_data(page):
    pg, events = page
    assert events["dialogs"] == []
    assert pg.evaluate("typeof window.__pwned") == "undefined"
    assert pg.evaluate("document.querySelectorAll('script').length") == 0
    assert pg.evaluate("document.querySelectorAll('[onerror]').length") == 0
    text = pg.inner_text("body")
    assert SCRIPT_POST in text  # shown verbatim, as text
    assert IMG_HANDLE in text
    assert "Shift office <b>network</b>" in text
    csp = pg.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
    assert "default-src 'none'" in csp and "script-src" not in csp


@pytest.mark.browser
def test_html_makes_no_outside_request(page):
    _, events = page
    assert events["requests"], "the page was not loaded"
    assert all(u.startswith(("file:", "data:")) for u in events["requests"]), events["requests"]


@pytest.mark.browser
def test_html_has_every_section_and_chart(page):
    pg, _ = page
    ops = pg.eval_on_selector_all("section.operation", "els => els.map(e => e.id)")
    assert ops == [f"op-{safe_name(BIG_OP)}", f"op-{safe_name(SMALL_OP)}"]
    for op_id in ops:
        headings = pg.eval_on_selector_all(f"#{op_id} h3", "els => els.map(e => e.innerText)")
        assert headings == SECTIONS
    big = f"#op-{safe_name(BIG_OP)}"
    for chart in ("heatmap-local", "heatmap-utc", "timeline", "network"):
        width = pg.eval_on_selector(f"{big} .chart-{chart} img", "i => i.naturalWidth")
        assert width > 100, chart
    assert "dashed red lines join clusters" in pg.inner_text(f"{big} .chart-network")
    tally = pg.inner_text(f"{big} .tally")
    assert tally == "11 Facebook accounts, 3 Pages, 1 Group and 4 X accounts"
    tags = pg.inner_text(f"{big} table.disarm")
    for tid in ("T0150.008", "T0116.001", "T0119.002"):
        assert tid in tags
    killchain = pg.inner_text(f"{big} table.killchain")
    assert "3.1.1 Working to a regular shift pattern" in killchain
    when = pg.inner_text(f"{big} .section-time")
    assert "Team 2: 7 accounts, 300 posts; work 09:30–12:30" in when
    engagement = pg.inner_text(f"{big} .section-engagement")
    assert "Category One" in engagement
    assert "Authentic reach: 1 authentic account engaged with it, with 400 followers" in engagement


@pytest.mark.browser
def test_html_sections_without_data_say_so(page):
    pg, _ = page
    small = pg.inner_text("#op-op-small")
    for reason in ("Not available: no time profile", "Not available: no narrative profile",
                   "Not available: no engagement profile", "Not available: no follower profile",
                   "Not available: no operation-level evidence recorded"):
        assert reason in small
    assert pg.eval_on_selector("#op-op-small .chart-heatmap-utc img", "i => i.naturalWidth") > 100


# ----------------------------------------------------------------------------------- pdf
def test_pdf_has_a_page_run_per_operation(built):
    reader = PdfReader(built["out"] / "report.pdf")
    pages = [p.extract_text() or "" for p in reader.pages]
    assert len(pages) >= 3
    big = next(i for i, t in enumerate(pages) if "Operation id op:spamo" in t)
    small = next(i for i, t in enumerate(pages) if "Operation id op-small" in t)
    assert 0 < big < small
    joined = "\n".join(pages)
    for section in ("Summary", "Strongest evidence", "Kill Chain"):
        assert section in joined
    assert "<script>" in joined  # the hostile post is printed as text


# ------------------------------------------------------------------------------ markdown
def test_markdown_escapes_the_data(built):
    text = (built["out"] / "report.md").read_text(encoding="utf-8")
    assert "<script" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "](charts/op_spamo_evil-heatmap-local.svg)" in text
    assert md("[x](javascript:alert(1))") == "\\[x\\](javascript:alert(1))"
    assert md("- item") == "\\- item"


def test_cluster_links_show_their_readable_detail(built):
    text = (built["out"] / "report.html").read_text(encoding="utf-8")
    assert "both link" in text
    assert '"families"' not in text and "threshold" not in text


# ---------------------------------------------------------------------------- indicators
def test_indicators_follow_metas_layout(built, shared_data):
    rows = _read_csv(built["out"] / "indicators.csv")
    meta = _read_csv(shared_data / "meta-threat-research" /
                     "Q2_2023_Spamouflage_China_based_CIB_indicators.csv")
    assert rows[0] == meta[0] == ["Tactic", "Technique", "Procedure", "Indicator", "Note"]
    kc = {tuple(r[:3]) for r in _read_csv(
        shared_data / "meta-threat-research" / "Online_Operations_Killchain-TTPs.csv")[1:]}
    assert all(tuple(r[:3]) in kc for r in rows[1:])
    indicators = [r[3] for r in rows[1:]]
    for tally in ("11 Facebook accounts", "3 Facebook Pages", "1 Facebook Group",
                  "4 X accounts", "3 X accounts"):
        assert tally in indicators
    facebook = [r for r in rows if r[3] == "3 Facebook Pages"][0]
    assert facebook[:3] == ["0. Acquiring assets", "0.9 Acquiring social media accounts",
                            "0.9.1 Acquiring Facebook assets"]
    assert "https://twitter[.]com/lily_2023" in indicators
    assert "truth-daily[.]example" in indicators
    assert not any("facebook.com" in i or "facebook[.]com" in i for i in indicators)
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for c in r)
    assert "'" + FORMULA_TEXT in indicators
    procedures = {r[2] for r in rows[1:]}
    assert "3.1.1 Working to a regular shift pattern" in procedures
    assert "7.2.2 Acquiring Page followers" in procedures


def test_shipped_reference_data_matches_the_sources(shared_data):
    shipped = Path(cibwatch.__file__).parent / "data"
    assert (shipped / "killchain" / "Online_Operations_Killchain-TTPs.csv").read_bytes() == (
        shared_data / "meta-threat-research" / "Online_Operations_Killchain-TTPs.csv"
    ).read_bytes()
    assert (shipped / "killchain" / "LICENSE").exists()
    assert (shipped / "disarm" / "LICENSE.md").exists()
    assert taxonomy()["0.9.4"][2] == "0.9.4 Acquiring X / Twitter accounts"
    source = json.loads((shared_data / "disarm" / "DISARM.json").read_text(encoding="utf-8"))
    patterns = {
        next(r["external_id"] for r in o["external_references"] if "external_id" in r):
        (o["id"], o["name"]) for o in source["objects"] if o["type"] == "attack-pattern"}
    ours = framework()["by_id"]
    assert len(ours) == len(patterns) == 391
    for tid, (stix_id, name) in patterns.items():
        assert ("attack-pattern--" + ours[tid]["stix_uuid"], ours[tid]["name"]) == (stix_id, name)


# ---------------------------------------------------------------------------------- stix
def test_stix_bundle_is_valid_and_self_contained(built, shared_data):
    path = built["out"] / "stix-bundle.json"
    result = validate_file(str(path), ValidationOptions())
    assert result.is_valid, [str(e) for o in result.object_results for e in o.errors]
    bundle = stix2.parse(path.read_text(encoding="utf-8"), allow_custom=True)
    by_id = {o.id: o for o in bundle.objects}

    def refs(value):
        if isinstance(value, dict) or hasattr(value, "items"):
            for k, v in value.items():
                if k.endswith("_ref") and isinstance(v, str):
                    yield v
                elif k.endswith("_refs"):
                    yield from v
                else:
                    yield from refs(v)
        elif isinstance(value, list):
            for v in value:
                yield from refs(v)

    dangling = {r for o in bundle.objects for r in refs(dict(o)) if r not in by_id}
    assert not dangling
    types = [o.type for o in bundle.objects]
    assert types.count("campaign") == types.count("intrusion-set") == 2
    assert types.count("user-account") == BIG_ASSETS + SMALL_ASSETS
    assert types.count("report") == 1
    disarm_ids = {r.external_id for o in bundle.objects if o.type == "attack-pattern"
                  for r in o.external_references if r.source_name == "DISARM"}
    assert {"T0150.008", "T0116.001", "T0119.002", "T0149.001"} <= disarm_ids
    source = (shared_data / "disarm" / "DISARM.json").read_text(encoding="utf-8")
    for o in bundle.objects:
        if o.type == "attack-pattern":
            assert o.id in source
    patterns = [o.pattern for o in bundle.objects if o.type == "indicator"]
    assert f"[domain-name:value = '{OWN_DOMAIN}']" in patterns
    escaped = QUOTE_URL.replace("\\", "\\\\").replace("'", "\\'")
    assert f"[url:value = '{escaped}']" in patterns
    logins = {o.get("account_login") for o in bundle.objects if o.type == "user-account"}
    assert IMG_HANDLE in logins and "user_fb011" not in logins


# -------------------------------------------------------------------------------- graphs
@pytest.mark.parametrize("name,reader", [("graph.gexf", nx.read_gexf),
                                          ("graph.graphml", nx.read_graphml)])
def test_graphs_load_with_networkx(built, name, reader):
    g = reader(built["out"] / name)
    assert g.number_of_nodes() == BIG_ASSETS + SMALL_ASSETS
    node = g.nodes["facebook:fb000"]
    assert node["platform"] == "facebook" and node["asset_type"] == "account"
    assert node["cluster"] == "c-fb" and node["operation"] == BIG_OP
    assert float(node["score"]) == pytest.approx(0.9)
    assert "facebook:fb011" not in g  # excluded by an analyst
    edge = g.edges["facebook:fb000", "facebook:fb001"]
    assert float(edge["weight"]) == pytest.approx(2.0)
    assert edge["signals"] == "creation_batch;text_fingerprint"


# --------------------------------------------------------------------------- enforcement
def test_enforcement_lists_assets_minus_exclusions(built):
    rows = _read_csv(built["out"] / "enforcement.csv")
    header, body = rows[0], rows[1:]
    assert header[:3] == ["operation_id", "operation_name", "review_status"]
    assert "evidence_summary" in header
    assert len(body) == BIG_ASSETS + SMALL_ASSETS
    ids = {(r[3], r[4]) for r in body}
    assert ("facebook", "fb011") not in ids and ("facebook", "fb000") in ids
    handles = {r[header.index("handle")] for r in body}
    assert "'" + FORMULA_HANDLE in handles and FORMULA_HANDLE not in handles
    fb0 = next(r for r in body if r[4] == "fb000")
    assert "text_fingerprint" in fb0[header.index("evidence_summary")]
    table = pq.read_table(built["out"] / "enforcement.parquet")
    assert table.num_rows == len(body)
    assert FORMULA_HANDLE in table.column("handle").to_pylist()


def test_enforcement_follows_review_decisions(built, tmp_path):
    path = tmp_path / "ws.duckdb"
    shutil.copy(built["ws"], path)
    with cibwatch.open(path) as ws:
        con = ws.con
        assert enforcement_rows(con, confirmed_only=True) == []
        con.execute("INSERT INTO reviews VALUES ('operation', ?, 'confirmed', NULL, 'ana', "
                    "now()::TIMESTAMP)", [SMALL_OP])
        con.execute("INSERT INTO reviews VALUES ('operation', ?, 'rejected', NULL, 'ana', "
                    "now()::TIMESTAMP)", [BIG_OP])
        confirmed = enforcement_rows(con, confirmed_only=True)
        assert {r["operation_id"] for r in confirmed} == {SMALL_OP}
        assert {r["review_status"] for r in confirmed} == {"confirmed"}
        everything = enforcement_rows(con)
        assert {r["operation_id"] for r in everything} == {SMALL_OP}  # rejected left out
        written = build_report(ws, tmp_path / "out", formats=["html"], user="ana")
        html = written["html"].read_text(encoding="utf-8")
        last = con.execute("SELECT user_name, action, target FROM audit_log "
                           "ORDER BY seq DESC LIMIT 1").fetchall()[0]
        assert last == ("ana", "export", str(written["html"]))
        assert 'id="op-op-small"' in html and "op_spamo_evil" not in html


# ----------------------------------------------------------------------------------- cli
def _cli(monkeypatch, *args: str) -> int:
    """Run the real console entry point in-process; returns its exit code."""
    from cibwatch.cli import main

    monkeypatch.setattr(sys, "argv", ["cibwatch", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_writes_one_operation_and_fails_cleanly(built, tmp_path, monkeypatch, capfd):
    path = tmp_path / "ws.duckdb"
    shutil.copy(built["ws"], path)
    out = tmp_path / "one"
    code = _cli(monkeypatch, "report", "--workspace", str(path), "--out", str(out),
                "--operation", BIG_OP, "--format", "indicators,stix")
    assert code == 0, capfd.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["indicators.csv", "stix-bundle.json"]
    rows = _read_csv(out / "indicators.csv")
    assert not any(r[4].startswith("Shift office") for r in rows[1:])  # one op: no prefix
    capfd.readouterr()
    code = _cli(monkeypatch, "report", "--workspace", str(path), "--out",
                str(tmp_path / "bad"), "--operation", "nope")
    err = capfd.readouterr().err
    assert code == 2
    assert "no operation 'nope'" in err and "Traceback" not in err


def test_malformed_profile_renders_as_not_available(built, tmp_path):
    path = tmp_path / "ws.duckdb"
    shutil.copy(built["ws"], path)
    garbage = {
        "time": {"utc_offset_hours": "eight", "breaks": ["lunch"], "hour_of_week_utc": [1, 2],
                 "shift_pattern": True, "work_hours": {"start": 9}},
        "engagement": {"echo_chamber_ratio": "high", "breakout": "big",
                       "authentic_amplifiers": "many"},
        "followers": None,
        "narratives": [{"label": None, "examples": "not a list", "share": "most"}, "x"],
        "assets": {"creation_batches": {"a": 1}, "reused_avatars": [{"assets": "12"}]},
        "activity_timeline": "daily",
        "posts": "many",
    }
    with cibwatch.open(path) as ws:
        ws.con.execute("INSERT INTO operation_profiles VALUES (?, ?)",
                       [SMALL_OP, json.dumps(garbage)])
        written = build_report(ws, tmp_path / "out", operation_id=SMALL_OP,
                               formats=["html", "md", "indicators", "stix"])
    html = written["html"].read_text(encoding="utf-8")
    assert "Not available: no follower profile" in html
    assert "UTC+8" not in html and "3.1.1" in html  # office shift claimed, offset unknown
    assert validate_file(str(written["stix"]), ValidationOptions()).is_valid


def test_empty_workspace_still_makes_every_file(tmp_path):
    with cibwatch.open(tmp_path / "ws.duckdb") as ws:
        written = build_report(ws, tmp_path / "out", formats=["html", "indicators", "stix",
                                                              "gexf", "enforcement"])
    assert "Not available: no operations in the workspace" in written["html"].read_text(
        encoding="utf-8")
    assert _read_csv(written["indicators"]) == [["Tactic", "Technique", "Procedure",
                                                  "Indicator", "Note"]]
    assert validate_file(str(written["stix"]), ValidationOptions()).is_valid
    assert _read_csv(written["enforcement"])[1:] == []
