"""Charts drawn offline: Altair specs rendered to SVG by vl-convert (no browser, no network).

The report embeds each SVG as a base64 data URI in an <img>: an SVG shown that way never
runs script, whatever text from the data ended up in its labels.
"""

from __future__ import annotations

import base64
from typing import Any

import altair as alt
import vl_convert as vlc

from cibwatch.report.collect import DAYS

WIDTH = 620


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def render(chart: alt.TopLevelMixin) -> str:
    """SVG text of an Altair chart."""
    return vlc.vegalite_to_svg(chart.to_json())


def _hours(value: Any) -> float | None:
    try:
        h, m = str(value).split(":")[:2]
        return int(h) + int(m) / 60
    except (ValueError, AttributeError):
        return None


def heatmap(counts: list[int] | None, title: str,
            breaks: list[dict] | None = None) -> str | None:
    """Hour-of-week heatmap (days down, hours across); breaks outlined across all days."""
    if not counts or len(counts) != 168 or not any(counts):
        return None
    cells = [{"day": DAYS[i // 24], "d": i // 24, "hour": i % 24, "end": i % 24 + 1,
              "posts": int(c)} for i, c in enumerate(counts)]
    x = alt.X("hour:Q", scale=alt.Scale(domain=[0, 24], nice=False),
              axis=alt.Axis(values=list(range(0, 25, 3)), title="hour of day"))
    y = alt.Y("day:O", sort=DAYS, title=None)
    base = alt.Chart(alt.Data(values=cells)).mark_rect().encode(
        x=x, x2="end:Q", y=y,
        color=alt.Color("posts:Q", scale=alt.Scale(scheme="blues"), title="posts"),
        tooltip=["day:O", "hour:Q", "posts:Q"],
    )
    layers = [base]
    spans = []
    for b in breaks or []:
        if not isinstance(b, dict):
            continue
        start, end = _hours(b.get("start")), _hours(b.get("end"))
        if start is not None and end is not None and end > start:
            spans.append({"start": start, "end": end, "name": str(b.get("name", "break"))[:20]})
    if spans:
        marks = alt.Chart(alt.Data(values=spans))
        layers.append(marks.mark_rect(fill=None, stroke="#c0392b", strokeWidth=2,
                                      strokeDash=[4, 2]).encode(
            x=alt.X("start:Q"), x2="end:Q"))
        layers.append(marks.mark_text(dy=-8, color="#c0392b", fontSize=10, baseline="bottom")
                      .encode(x=alt.X("mid:Q"), y=alt.value(0), text="name:N")
                      .transform_calculate(mid="(datum.start + datum.end) / 2"))
    chart = alt.layer(*layers).properties(width=WIDTH - 120, height=170, title=title)
    return render(chart)


def timeline(points: list[dict] | None) -> str | None:
    """Posts per day (and active assets per day when known)."""
    rows = [{"date": str(p["date"])[:10], "posts": int(p.get("posts") or 0),
             "assets": int(p.get("assets") or 0)} for p in points or [] if p.get("date")]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).encode(x=alt.X("date:T", title=None))
    layers = [base.mark_bar(color="#2c7fb8", opacity=0.8).encode(
        y=alt.Y("posts:Q", title="posts per day"), tooltip=["date:T", "posts:Q", "assets:Q"])]
    if any(r["assets"] for r in rows):
        layers.append(base.mark_line(color="#d95f0e", point=True).encode(
            y=alt.Y("assets:Q", title="active assets")))
        chart = alt.layer(*layers).resolve_scale(y="independent")
    else:
        chart = layers[0]
    return render(chart.properties(width=WIDTH - 120, height=180))


def network(net: dict[str, Any] | None) -> str | None:
    """The co-activity network from its fixed layout: nodes by cluster, edges by weight."""
    if not net or not net.get("nodes"):
        return None
    layout = net["layout"]
    nodes = [{"x": layout[n["id"]][0], "y": layout[n["id"]][1],
              "cluster": str(n.get("cluster_id") or "")[:40],
              "type": str(n.get("asset_type") or "account"),
              "score": float(n.get("score") or 0)} for n in net["nodes"]]
    edges = [{"x": layout[e["source"]][0], "y": layout[e["source"]][1],
              "x2": layout[e["target"]][0], "y2": layout[e["target"]][1],
              "w": e["weight"]} for e in net["edges"]]
    axis = alt.Axis(labels=False, ticks=False, grid=False, domain=False, title=None)
    layers = []
    if edges:
        layers.append(alt.Chart(alt.Data(values=edges)).mark_rule(color="#999").encode(
            x=alt.X("x:Q", axis=axis), y=alt.Y("y:Q", axis=axis), x2="x2:Q", y2="y2:Q",
            strokeWidth=alt.StrokeWidth("w:Q", scale=alt.Scale(range=[0.3, 2.5]), legend=None),
            opacity=alt.value(0.5)))
    links = _cluster_links(net, nodes)
    if links:
        layers.append(alt.Chart(alt.Data(values=links)).mark_rule(
            color="#c0392b", strokeDash=[6, 4], strokeWidth=1.5).encode(
            x=alt.X("x:Q", axis=axis), y=alt.Y("y:Q", axis=axis), x2="x2:Q", y2="y2:Q"))
    layers.append(alt.Chart(alt.Data(values=nodes)).mark_point(filled=True, size=60).encode(
        x=alt.X("x:Q", axis=axis), y=alt.Y("y:Q", axis=axis),
        color=alt.Color("cluster:N", title="cluster"),
        shape=alt.Shape("type:N", title="asset type"),
        opacity=alt.value(0.9)))
    chart = alt.layer(*layers).properties(width=WIDTH - 160, height=360).configure_view(
        strokeWidth=0).configure_legend(titleLimit=300, labelLimit=200)
    return render(chart)


def _cluster_links(net: dict[str, Any], nodes: list[dict]) -> list[dict]:
    """Cross-platform links between clusters, drawn between the clusters' centroids."""
    sums: dict[str, list[float]] = {}
    for n in nodes:
        acc = sums.setdefault(n["cluster"], [0.0, 0.0, 0])
        acc[0] += n["x"]
        acc[1] += n["y"]
        acc[2] += 1
    centre = {c: (x / k, y / k) for c, (x, y, k) in sums.items()}
    out = []
    for link in net.get("cluster_links") or []:
        a, b = str(link["a"])[:40], str(link["b"])[:40]
        if a in centre and b in centre:
            out.append({"x": centre[a][0], "y": centre[a][1],
                        "x2": centre[b][0], "y2": centre[b][1]})
    return out
