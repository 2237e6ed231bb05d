"""Operations: join single-platform clusters into operations, recognise saved (known)
operations, keep operation ids stable across runs and record each operation's history.

- `features`: evidence keys per asset (detection's keys plus titles/sentences,
  cross-platform references and handles);
- `linking`: rarity-weighted links between clusters and saved signatures, and the
  `operations` tables;
- `signatures`: saving, listing, merging, splitting, exporting and importing signatures;
- `history`: stable ids by member overlap, `operation_assets` and `operation_history`.
"""

from __future__ import annotations

from cibwatch.operations.linking import Attribution, LinkSummary, link_operations

__all__ = ["Attribution", "LinkSummary", "attribution_lines", "link_operations"]


def attribution_lines(con) -> list[str]:
    """The run's "N new assets attributed to NAME" sentences (for detect's output)."""
    rows = con.execute(
        "SELECT detail FROM operation_evidence WHERE signal = 'known_operation' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]
