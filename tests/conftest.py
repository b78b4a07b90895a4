"""Shared pytest fixtures: the repository root and the example policies."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def example_policy():  # type: ignore[no-untyped-def]
    """The compiled example policies in policies/."""
    import charter

    return charter.load(ROOT / "policies")
