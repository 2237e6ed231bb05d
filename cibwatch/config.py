"""Every default of cibwatch, in one place, each with the reason it has that value.

A `Config` is a tree of frozen dataclasses, one section per pipeline stage. It can be
read from TOML (`[signals]`, `[graph]`, ... tables) and overridden from the command line
with dotted keys (`--set graph.fdr=0.01`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file or override names an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class IngestConfig:
    # Rows per Arrow batch when streaming big files: bounds memory, keeps DuckDB busy.
    batch_rows: int = 500_000
    # Rows shown per quarantine listing by default: enough to see the pattern.
    quarantine_preview: int = 20


@dataclass(frozen=True)
class SignalConfig:
    """Key extraction and the co-activity kernel (filled by the detection stage)."""

    # Shortest normalised text used as an exact fingerprint: "lol" or "+1" is not a key.
    min_text_chars: int = 25


@dataclass(frozen=True)
class GraphConfig:
    """Rarity weights, the null model and false-discovery-rate control."""

    # Benjamini-Hochberg level on candidate edges: 1 in 1,000 kept edges may be chance.
    fdr: float = 0.001


@dataclass(frozen=True)
class ClusterConfig:
    """Leiden clustering and cluster scoring."""

    # Smallest cluster reported: a pair can be friends, three lock-step assets is a pattern.
    min_cluster_size: int = 3
    # Fixed seed so that reruns on unchanged data give the same clusters.
    seed: int = 42


@dataclass(frozen=True)
class CharacteriseConfig:
    """Time, engagement, follower, narrative and asset profiles."""

    # Example texts kept per narrative: what a takedown report quotes.
    narrative_examples: int = 3


@dataclass(frozen=True)
class OperationsConfig:
    """Cross-platform linking and known-operation matching."""

    # Lowest link strength that merges two clusters into one operation.
    min_link_strength: float = 0.5


@dataclass(frozen=True)
class ServeConfig:
    # Loopback only unless the analyst decides otherwise.
    host: str = "127.0.0.1"
    port: int = 8765


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    signals: SignalConfig = field(default_factory=SignalConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    characterise: CharacteriseConfig = field(default_factory=CharacteriseConfig)
    operations: OperationsConfig = field(default_factory=OperationsConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a TOML file whose tables are the config sections."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        return cls().updated(data, source=str(path))

    def updated(self, data: dict[str, Any], source: str = "config") -> Config:
        """A copy with the values of a nested dict (`{"graph": {"fdr": 0.01}}`) applied."""
        sections = {}
        for name, values in data.items():
            if name not in {f.name for f in dataclasses.fields(self)}:
                raise ConfigError(f"{source}: unknown config section [{name}]")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table")
            section = getattr(self, name)
            sections[name] = _update_section(section, values, f"{source}: [{name}]")
        return dataclasses.replace(self, **sections)

    def with_overrides(self, overrides: list[str]) -> Config:
        """Apply `section.key=value` strings, values parsed as TOML scalars."""
        data: dict[str, dict[str, Any]] = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"override {item!r}: expected section.key=value")
            try:
                value = tomllib.loads(f"v = {raw.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw.strip()
            data.setdefault(section, {})[name] = value
        return self.updated(data, source="--set")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _update_section(section: Any, values: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section)}
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}")
        current = getattr(section, key)
        if isinstance(current, bool) != isinstance(value, bool) or (
            isinstance(current, int | float) and not isinstance(value, int | float)
        ):
            raise ConfigError(f"{where}: {key} must be {type(current).__name__}")
        if isinstance(current, float) and isinstance(value, int):
            value = float(value)
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(section, **changes)


DEFAULT = Config()
