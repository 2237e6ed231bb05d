"""Known operations: saved signatures, matched against every later run.

A signature is what an analyst would use to recognise an operation again: its content
fingerprints and near-duplicate groups, links, domains, media, the names its assets go
by on every platform (handles, display names, avatars, cross-reference names), the
assets themselves, its hour-of-week fingerprint and its narratives. It is one JSON
document (`FORMAT`, `VERSION`), stored in `known_operations` and exported as a file
that other teams can import. Linking treats each saved signature as one more node, so
new clusters are attributed to it with the same rarity-weighted evidence as any link.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cibwatch.config import OperationsConfig
from cibwatch.errors import CibwatchError
from cibwatch.operations.features import KEYS_TABLE, build_asset_keys, time_vectors

FORMAT = "cibwatch-operation-signature"
VERSION = 1
FAMILIES = (
    "content", "neardup", "url", "domain", "media", "xref", "handle", "name", "avatar",
    "engagement", "asset",
)
MAX_NAME = 200


class SignatureError(CibwatchError):
    """A signature file or a known-operation command is invalid."""


# ------------------------------------------------------------------------- reading
def load_known(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Saved signatures by name."""
    return {
        name: json.loads(sig)
        for name, sig in con.execute(
            "SELECT name, signature FROM known_operations ORDER BY name"
        ).fetchall()
    }


def _known(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    sig = load_known(con).get(name)
    if sig is None:
        raise SignatureError(f"no saved operation named {name!r} (see `cibwatch ops list`)")
    return sig


def _operation_clusters(con: duckdb.DuckDBPyConnection, operation_id: str) -> list[str]:
    rows = con.execute(
        "SELECT cluster_id FROM operation_clusters WHERE operation_id = ? ORDER BY 1",
        [operation_id],
    ).fetchall()
    if not rows:
        raise SignatureError(
            f"no operation {operation_id!r} in this workspace (see `cibwatch ops list`)"
        )
    return [r[0] for r in rows]


# ------------------------------------------------------------------------- building
def build_signature(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    operation_id: str,
    name: str,
    clusters: list[str] | None = None,
) -> dict[str, Any]:
    """The signature of an operation (or of some of its clusters) as it is now."""
    cids = clusters if clusters is not None else _operation_clusters(con, operation_id)
    con.register("_op_sig_clusters", pa.table({"cluster_id": pa.array(cids, pa.string())}))
    # With all its clusters, the operation's earlier assets (gone quiet) belong too.
    earlier = (
        "UNION SELECT platform, account_id FROM operation_assets WHERE operation_id = ?"
        if clusters is None
        else ""
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _op_sig_scope AS
        SELECT platform, account_id FROM cluster_members
        WHERE cluster_id IN (SELECT cluster_id FROM _op_sig_clusters)
        {earlier}
        """,
        [operation_id] if earlier else [],
    )
    con.unregister("_op_sig_clusters")
    build_asset_keys(con, cfg, scope="_op_sig_scope", with_assets=True)
    families: dict[str, dict[str, int]] = {}
    for family, key, n in con.execute(
        f"""
        SELECT family, key, n FROM (
            SELECT family, key, count(*) AS n,
                   row_number() OVER (PARTITION BY family ORDER BY count(*) DESC, key) AS r
            FROM {KEYS_TABLE} GROUP BY family, key)
        WHERE r <= {int(cfg.signature_max_keys)} OR family = 'asset'
        ORDER BY family, n DESC, key
        """
    ).fetchall():
        families.setdefault(family, {})[key] = int(n)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _op_sig_members AS "
        "SELECT 'sig' AS node, platform, account_id FROM _op_sig_scope"
    )
    vector = time_vectors(con, "_op_sig_members").get("sig", [0] * 168)
    platforms: dict[str, dict[str, int]] = {}
    for platform, asset_type, n in con.execute(
        """
        SELECT s.platform, coalesce(a.asset_type, 'account'), count(*)
        FROM _op_sig_scope s LEFT JOIN accounts a USING (platform, account_id)
        GROUP BY ALL ORDER BY 1, 2
        """
    ).fetchall():
        platforms.setdefault(platform, {})[asset_type] = int(n)
    profile = con.execute(
        "SELECT profile FROM operation_profiles WHERE operation_id = ?", [operation_id]
    ).fetchall()
    narratives = []
    if profile and profile[0][0]:
        for item in json.loads(profile[0][0]).get("narratives") or []:
            if isinstance(item, dict) and "label" in item:
                narratives.append(
                    {
                        "label": str(item["label"]),
                        "share": float(item.get("share") or 0.0),
                        "examples": [str(x) for x in item.get("examples") or []][:5],
                    }
                )
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "saved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source_operation_id": operation_id,
        "platforms": platforms,
        "families": families,
        "time": vector,
        "narratives": narratives,
    }


def _store(con: duckdb.DuckDBPyConnection, sig: dict, replace: bool = False) -> None:
    name = sig["name"]
    exists = con.execute("SELECT 1 FROM known_operations WHERE name = ?", [name]).fetchall()
    if exists and not replace:
        raise SignatureError(
            f"a saved operation named {name!r} exists (use --replace, or another name)"
        )
    con.execute("DELETE FROM known_operations WHERE name = ?", [name])
    saved = datetime.fromisoformat(str(sig["saved_at"]).replace("Z", "+00:00"))
    if saved.tzinfo is not None:
        saved = saved.astimezone(UTC).replace(tzinfo=None)
    con.execute(
        "INSERT INTO known_operations VALUES (?, ?, ?, ?)",
        [name, saved, sig.get("source_operation_id"), json.dumps(sig)],
    )


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise SignatureError(
            f"operation name {name[:40]!r}: must be 1-{MAX_NAME} printable characters"
        )
    return name


# ------------------------------------------------------------------------- commands
def save_operation(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    operation_id: str,
    name: str,
    replace: bool = False,
) -> dict:
    """Store the signature of a current operation under `name`; label the operation."""
    name = _check_name(name)
    sig = build_signature(con, cfg, operation_id, name)
    _store(con, sig, replace=replace)
    con.execute(
        "UPDATE operations SET name = ?, known_operation = ? WHERE operation_id = ?",
        [name, name, operation_id],
    )
    return sig


def rename_known(con: duckdb.DuckDBPyConnection, old: str, new: str) -> None:
    sig = _known(con, old)
    new = _check_name(new)
    if new != old and new in load_known(con):
        raise SignatureError(f"a saved operation named {new!r} exists")
    sig["name"] = new
    con.execute("DELETE FROM known_operations WHERE name = ?", [old])
    _store(con, sig)
    con.execute(
        "UPDATE operations SET name = ?, known_operation = ? WHERE known_operation = ?",
        [new, new, old],
    )


def forget_known(con: duckdb.DuckDBPyConnection, name: str) -> None:
    _known(con, name)
    con.execute("DELETE FROM known_operations WHERE name = ?", [name])
    con.execute(
        "UPDATE operations SET name = NULL, known_operation = NULL WHERE known_operation = ?",
        [name],
    )


def _resolve(con, cfg, target: str) -> dict:
    """A saved name, else a current operation id (its signature built now)."""
    known = load_known(con)
    if target in known:
        return known[target]
    return build_signature(con, cfg, target, target)


def merge_known(
    con: duckdb.DuckDBPyConnection, cfg: OperationsConfig, targets: list[str], into: str
) -> dict:
    """One saved operation from several (saved names or current operation ids): key
    sets, time fingerprints and narratives added up. The others are forgotten; the next
    detect joins every cluster that matches the merged signature."""
    if len(targets) < 2:
        raise SignatureError("merge needs at least two operations")
    into = _check_name(into)
    sigs = [_resolve(con, cfg, t) for t in targets]
    merged = sigs[0] | {"name": into, "saved_at": datetime.now(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")}
    families: dict[str, dict[str, int]] = {}
    platforms: dict[str, dict[str, int]] = {}
    vector = [0] * 168
    narratives = []
    for sig in sigs:
        for fam, keys in sig["families"].items():
            bucket = families.setdefault(fam, {})
            for key, n in keys.items():
                bucket[key] = bucket.get(key, 0) + int(n)
        for platform, tally in sig.get("platforms", {}).items():
            for asset_type, n in tally.items():
                slot = platforms.setdefault(platform, {})
                slot[asset_type] = slot.get(asset_type, 0) + int(n)
        vector = [a + int(b) for a, b in zip(vector, sig.get("time") or [0] * 168, strict=True)]
        narratives.extend(sig.get("narratives") or [])
    merged.update(families=families, platforms=platforms, time=vector, narratives=narratives)
    merged["merged_from"] = [s["name"] for s in sigs]
    known = load_known(con)
    for t in targets:
        if t in known:
            con.execute("DELETE FROM known_operations WHERE name = ?", [t])
            con.execute(
                "UPDATE operations SET name = ?, known_operation = ? WHERE known_operation = ?",
                [into, into, t],
            )
        else:
            con.execute(
                "UPDATE operations SET name = ?, known_operation = ? WHERE operation_id = ?",
                [into, into, t],
            )
    _store(con, merged, replace=True)
    return merged


def split_operation(
    con: duckdb.DuckDBPyConnection,
    cfg: OperationsConfig,
    operation_id: str,
    clusters: list[str],
    name: str,
    rest_name: str | None = None,
) -> tuple[dict, dict]:
    """Save `clusters` of an operation as a new known operation `name`, and the rest as
    `rest_name` (default: the operation's saved name, else its id). Two saved operations
    are never joined, so the next detect keeps them apart."""
    all_clusters = _operation_clusters(con, operation_id)
    unknown = sorted(set(clusters) - set(all_clusters))
    if unknown:
        raise SignatureError(f"operation {operation_id!r} has no cluster {unknown[0]!r}")
    rest = [c for c in all_clusters if c not in set(clusters)]
    if not rest:
        raise SignatureError("split must leave at least one cluster in the operation")
    current = con.execute(
        "SELECT known_operation FROM operations WHERE operation_id = ?", [operation_id]
    ).fetchall()
    rest_name = _check_name(rest_name or (current[0][0] if current and current[0][0]
                                          else operation_id))
    name = _check_name(name)
    if name == rest_name:
        raise SignatureError("the two parts of a split need different names")
    part = build_signature(con, cfg, operation_id, name, clusters=sorted(clusters))
    remainder = build_signature(con, cfg, operation_id, rest_name, clusters=rest)
    _store(con, part)
    _store(con, remainder, replace=True)
    con.execute(
        "UPDATE operations SET name = ?, known_operation = ? WHERE operation_id = ?",
        [rest_name, rest_name, operation_id],
    )
    return part, remainder


# ------------------------------------------------------------------------- files
def export_known(con: duckdb.DuckDBPyConnection, name: str, path: str | Path) -> Path:
    path = Path(path)
    sig = _known(con, name)
    try:
        path.write_text(json.dumps(sig, indent=1, ensure_ascii=False), encoding="utf-8")
    except OSError as exc:
        raise SignatureError(f"{path}: cannot write signature: {exc.strerror}") from exc
    return path


def import_known(
    con: duckdb.DuckDBPyConnection, path: str | Path, replace: bool = False,
    name: str | None = None,
) -> dict:
    """Read, validate and store a signature file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read signature: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(f"{path}: not a JSON signature file: {exc}") from exc
    sig = validate_signature(data, str(path))
    if name is not None:
        sig["name"] = _check_name(name)
    _store(con, sig, replace=replace)
    return sig


def validate_signature(data: Any, source: str = "signature") -> dict:
    """The signature if it is well formed, else a SignatureError naming the field."""

    def bad(field: str, why: str) -> SignatureError:
        return SignatureError(f"{source}: {field}: {why}")

    if not isinstance(data, dict):
        raise bad("top level", "must be a JSON object")
    if data.get("format") != FORMAT:
        raise bad("format", f"must be {FORMAT!r} (is this a cibwatch signature file?)")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad("version", "must be an integer")
    if version > VERSION:
        raise bad("version", f"{version} is newer than this cibwatch reads ({VERSION})")
    if version < 1:
        raise bad("version", "must be at least 1")
    if not isinstance(data.get("name"), str):
        raise bad("name", "must be a string")
    try:
        _check_name(data["name"])
    except SignatureError as exc:
        raise bad("name", str(exc)) from None
    families = data.get("families")
    if not isinstance(families, dict):
        raise bad("families", "must be an object of {family: {key: count}}")
    for fam, keys in families.items():
        if fam not in FAMILIES:
            raise bad(f"families.{fam}", f"unknown family (known: {', '.join(FAMILIES)})")
        if not isinstance(keys, dict):
            raise bad(f"families.{fam}", "must be an object of {key: count}")
        for key, n in keys.items():
            if not key or not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise bad(f"families.{fam}[{key[:40]!r}]", "count must be a positive integer")
        if fam == "asset" and any(":" not in k for k in keys):
            raise bad("families.asset", "keys must be 'platform:account_id'")
    vector = data.get("time", [0] * 168)
    if (
        not isinstance(vector, list)
        or len(vector) != 168
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in vector)
        or not all(math.isfinite(v) and v >= 0 for v in vector)
    ):
        raise bad("time", "must be a list of 168 non-negative numbers (hour of week, UTC)")
    narratives = data.get("narratives", [])
    if not isinstance(narratives, list) or not all(
        isinstance(n, dict) and isinstance(n.get("label"), str) for n in narratives
    ):
        raise bad("narratives", "must be a list of objects with a 'label'")
    platforms = data.get("platforms", {})
    if not isinstance(platforms, dict) or not all(
        isinstance(t, dict) and all(isinstance(v, int) for v in t.values())
        for t in platforms.values()
    ):
        raise bad("platforms", "must be {platform: {asset_type: count}}")
    origin = data.get("source_operation_id")
    if origin is not None and not isinstance(origin, str):
        raise bad("source_operation_id", "must be a string or null")
    saved_at = data.get("saved_at")
    try:
        datetime.fromisoformat(str(saved_at).replace("Z", "+00:00"))
    except ValueError:
        raise bad("saved_at", "must be an ISO 8601 timestamp") from None
    out = dict(data)
    out["time"] = [int(v) for v in vector]
    out["version"] = VERSION
    out.setdefault("narratives", narratives)
    out.setdefault("platforms", platforms)
    return out


# ------------------------------------------------------------------------- views
def list_known(con: duckdb.DuckDBPyConnection) -> list[dict]:
    out = []
    for name, sig in load_known(con).items():
        fams = sig["families"]
        out.append(
            {
                "name": name,
                "saved_at": sig.get("saved_at"),
                "source_operation_id": sig.get("source_operation_id"),
                "assets": len(fams.get("asset", {})),
                "platforms": sorted(sig.get("platforms", {})),
                "keys": {f: len(k) for f, k in sorted(fams.items())},
            }
        )
    return out


def list_operations(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rows = con.execute(
        """
        SELECT o.operation_id, o.name, o.confidence, o.known_operation, o.first_seen,
               o.last_seen, count(DISTINCT oc.cluster_id) AS clusters,
               count(DISTINCT (m.platform, m.account_id)) AS assets,
               list(DISTINCT m.platform ORDER BY m.platform) AS platforms
        FROM operations o
        LEFT JOIN operation_clusters oc USING (operation_id)
        LEFT JOIN cluster_members m USING (cluster_id)
        GROUP BY ALL ORDER BY assets DESC, o.operation_id
        """
    ).fetchall()
    keys = ["operation_id", "name", "confidence", "known_operation", "first_seen",
            "last_seen", "clusters", "assets", "platforms"]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def show(con: duckdb.DuckDBPyConnection, target: str) -> dict:
    """An operation (by id) with clusters, links, evidence and history; else a saved one."""
    ops = [o for o in list_operations(con) if o["operation_id"] == target]
    if ops:
        op = ops[0]
        op["links"] = [
            {"cluster_a": a, "cluster_b": b, "strength": s, "evidence": json.loads(e)}
            for a, b, s, e in con.execute(
                "SELECT cluster_a, cluster_b, strength, evidence FROM operation_links "
                "WHERE operation_id = ? ORDER BY strength DESC, 1, 2",
                [target],
            ).fetchall()
        ]
        op["evidence"] = [
            {"signal": s, "strength": st, "detail": d}
            for s, st, d in con.execute(
                "SELECT signal, strength, detail FROM operation_evidence "
                "WHERE operation_id = ? ORDER BY strength DESC, signal, detail",
                [target],
            ).fetchall()
        ]
        op["history"] = [
            {"week": str(w), "assets": a, "posts": p, "new_assets": n, "quiet_assets": q}
            for w, a, p, n, q in con.execute(
                "SELECT week, assets, posts, new_assets, quiet_assets FROM operation_history "
                "WHERE operation_id = ? ORDER BY week",
                [target],
            ).fetchall()
        ]
        return {"kind": "operation", **op}
    known = load_known(con)
    if target in known:
        return {"kind": "known", **known[target]}
    raise SignatureError(f"no operation or saved operation {target!r} (see `cibwatch ops list`)")
