"""graph.gexf and graph.graphml for Gephi: the operations' assets and co-activity links.

Nodes carry platform, asset type, cluster, operation and score; edges their weight and
the signals behind them. Strings from the data are stripped of characters XML forbids.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import networkx as nx

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _XML_BAD.sub("", "" if value is None else str(value))


def build_graph(views: list[dict[str, Any]]) -> nx.Graph:
    g = nx.Graph()
    for view in views:
        for m in view["members"]:
            node = f"{m['platform']}:{m['account_id']}"
            g.add_node(
                _text(node),
                label=_text(m["handle"] or m["account_id"]),
                platform=_text(m["platform"]),
                account_id=_text(m["account_id"]),
                asset_type=_text(m["asset_type"]),
                cluster=_text(m["cluster_id"]),
                operation=_text(view["id"]),
                score=float(m["score"] or 0.0),
            )
        for e in view["network"]["all_edges"]:
            g.add_edge(_text(e["source"]), _text(e["target"]), weight=float(e["weight"]),
                       signals=_text(";".join(e["signals"])), operation=_text(view["id"]))
    return g


def write_gexf(views: list[dict[str, Any]], path: str | Path) -> int:
    g = build_graph(views)
    nx.write_gexf(g, path)
    return g.number_of_nodes()


def write_graphml(views: list[dict[str, Any]], path: str | Path) -> int:
    g = build_graph(views)
    nx.write_graphml(g, path)
    return g.number_of_nodes()
