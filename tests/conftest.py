"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the project root; tests needing it skip when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A small generated world (every operation style present), made once per test run."""
    from cibwatch.synth import generate

    out = tmp_path_factory.mktemp("world") / "small"
    generate(out, scale=0.05, seed=3)
    return out
