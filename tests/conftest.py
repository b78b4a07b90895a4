"""Shared pytest fixtures: the repository root and the example policies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# `charter eval`/`serve` default to a SQLite file under the working directory; tests that do not name
# a store get a fresh in-memory one instead (tests of the default unset this).
os.environ.setdefault("CHARTER_STORE", "memory://")


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def example_policy():  # type: ignore[no-untyped-def]
    """The compiled example policies in policies/."""
    import charter

    return charter.load(ROOT / "policies")
