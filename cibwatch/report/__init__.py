"""Reports and exports an investigator can publish and share.

`build_report(ws, out_dir)` writes, for every operation (or one):

- report.html (self-contained, no script) and report.pdf, report.md (+ charts/*.svg)
- indicators.csv in Meta's takedown layout, tagged with the Online Operations Kill Chain
- stix-bundle.json (STIX 2.1: campaign, intrusion-set, DISARM attack-patterns, ...)
- graph.gexf and graph.graphml for Gephi
- enforcement.csv and enforcement.parquet: every asset to action, with evidence

Each file written is recorded in the audit log (`export`). File names are fixed; ids
from the data only appear in them sanitised (`collect.safe_name`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from cibwatch import audit
from cibwatch.config import ReportConfig
from cibwatch.report.collect import ReportError, operation_views
from cibwatch.report.context import prepare
from cibwatch.report.enforcement import enforcement_rows, write_enforcement
from cibwatch.report.graphs import write_gexf, write_graphml
from cibwatch.report.html import render_html
from cibwatch.report.indicators import write_indicators
from cibwatch.report.markdown import render_markdown
from cibwatch.report.stix import write_stix

FORMATS = ("html", "pdf", "md", "indicators", "stix", "gexf", "graphml", "enforcement")
ALIASES = {"markdown": "md", "csv": "indicators", "graphs": ("gexf", "graphml"),
           "graph": ("gexf", "graphml"), "all": FORMATS}

__all__ = ["FORMATS", "ReportError", "build_report", "enforcement_rows", "export_enforcement",
           "export_graphs", "export_html", "export_indicators", "export_markdown",
           "export_pdf", "export_stix", "operation_views", "prepare"]


def _con(ws: Any) -> duckdb.DuckDBPyConnection:
    return ws.con if hasattr(ws, "con") else ws


def parse_formats(formats: Iterable[str] | None) -> list[str]:
    """Normalise format names ('markdown', 'graphs', 'all', comma lists); error on unknown."""
    if not formats:
        return list(FORMATS)
    out: list[str] = []
    for item in formats:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            expanded = ALIASES.get(name, name)
            for f in (expanded,) if isinstance(expanded, str) else expanded:
                if f not in FORMATS:
                    raise ReportError(
                        f"unknown report format {name!r}; choose from {', '.join(FORMATS)}")
                if f not in out:
                    out.append(f)
    return out


def _record(con, path: Path, detail: str, user: str | None = None) -> None:
    audit.record(con, "export", str(path), detail, user=user)


def _ids(views: list[dict]) -> str:
    ids = ", ".join(str(v["id"]) for v in views[:20])
    more = f" and {len(views) - 20} more" if len(views) > 20 else ""
    return f"{len(views)} operation(s): {ids}{more}"


def export_html(con, views: list[dict], path: Path, user: str | None = None) -> Path:
    path.write_text(render_html(views), encoding="utf-8")
    _record(con, path, "report.html, " + _ids(views), user)
    return path


def export_pdf(con, views: list[dict], path: Path, user: str | None = None) -> Path:
    from cibwatch.report.pdf import write_pdf

    write_pdf(render_html(views, for_print=True), path)
    _record(con, path, "report.pdf, " + _ids(views), user)
    return path


def export_markdown(con, views: list[dict], path: Path, user: str | None = None) -> Path:
    chart_dir = path.parent / "charts"
    files: dict[str, dict[str, str]] = {}
    for v in views:
        for name, svg in v.get("charts", {}).items():
            chart_dir.mkdir(exist_ok=True)
            target = chart_dir / f"{v['safe_id']}-{name.replace('_', '-')}.svg"
            target.write_text(svg, encoding="utf-8")
            files.setdefault(v["safe_id"], {})[name] = f"charts/{target.name}"
    path.write_text(render_markdown(views, files), encoding="utf-8")
    _record(con, path, "report.md, " + _ids(views), user)
    return path


def export_indicators(con, views: list[dict], path: Path,
                      config: ReportConfig | None = None, user: str | None = None) -> Path:
    n = write_indicators(views, path, config)
    _record(con, path, f"indicators.csv, {n} indicators, " + _ids(views), user)
    return path


def export_stix(con, views: list[dict], path: Path, user: str | None = None) -> Path:
    n = write_stix(views, path)
    _record(con, path, f"STIX 2.1 bundle, {n} objects, " + _ids(views), user)
    return path


def export_graphs(con, views: list[dict], gexf: Path | None, graphml: Path | None,
                  user: str | None = None) -> None:
    if gexf is not None:
        n = write_gexf(views, gexf)
        _record(con, gexf, f"GEXF graph, {n} nodes, " + _ids(views), user)
    if graphml is not None:
        n = write_graphml(views, graphml)
        _record(con, graphml, f"GraphML graph, {n} nodes, " + _ids(views), user)


def export_enforcement(con, path: Path, parquet: Path | None = None,
                       confirmed_only: bool = False, operation_id: str | None = None,
                       user: str | None = None) -> int:
    rows = enforcement_rows(con, confirmed_only=confirmed_only, operation_id=operation_id)
    n = write_enforcement(rows, path, parquet)
    scope = "confirmed operations" if confirmed_only else "operations not rejected"
    for target in (path, parquet):
        if target is not None:
            _record(con, target, f"enforcement list, {n} assets of {scope}"
                    + (f", operation {operation_id}" if operation_id else ""), user)
    return n


def build_report(
    ws: Any,
    out_dir: str | Path,
    operation_id: str | None = None,
    formats: Iterable[str] | None = None,
    config: ReportConfig | None = None,
    confirmed_only: bool = False,
    user: str | None = None,
) -> dict[str, Path]:
    """Write the chosen exports (default: all) into `out_dir`; returns {name: path}.

    `ws` is a writable Workspace (or its DuckDB connection): every file is audited as
    `export` by `user` (default: the operating-system user, as for the CLI).
    """
    con = _con(ws)
    config = config or ReportConfig()
    chosen = parse_formats(formats)
    views = operation_views(con, operation_id, config)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out}: cannot create the report folder: {exc}") from exc
    if confirmed_only:
        views = [v for v in views if v["review_status"] == "confirmed"]
    needs_charts = bool({"html", "pdf", "md"} & set(chosen))
    prepare(views, config, draw=needs_charts)
    written: dict[str, Path] = {}
    if "html" in chosen:
        written["html"] = export_html(con, views, out / "report.html", user)
    if "pdf" in chosen:
        written["pdf"] = export_pdf(con, views, out / "report.pdf", user)
    if "md" in chosen:
        written["md"] = export_markdown(con, views, out / "report.md", user)
    if "indicators" in chosen:
        written["indicators"] = export_indicators(con, views, out / "indicators.csv", config,
                                                  user)
    if "stix" in chosen:
        written["stix"] = export_stix(con, views, out / "stix-bundle.json", user)
    gexf = out / "graph.gexf" if "gexf" in chosen else None
    graphml = out / "graph.graphml" if "graphml" in chosen else None
    if gexf or graphml:
        export_graphs(con, views, gexf, graphml, user)
        written.update({k: p for k, p in (("gexf", gexf), ("graphml", graphml)) if p})
    if "enforcement" in chosen:
        export_enforcement(con, out / "enforcement.csv", out / "enforcement.parquet",
                           confirmed_only=confirmed_only, operation_id=operation_id,
                           user=user)
        written["enforcement"] = out / "enforcement.csv"
        written["enforcement_parquet"] = out / "enforcement.parquet"
    return written
