"""Shared fixtures: a seeded RNG and the ../shared folder of public vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SHARED_DIR = Path(__file__).resolve().parent.parent.parent / "shared"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of ../shared (vectors, docs, recordings); skips the test if it is absent."""
    if not (SHARED_DIR / "vectors" / "telegrams.jsonl").is_file():
        pytest.skip(f"shared test data not found at {SHARED_DIR}")
    return SHARED_DIR


def load_vectors() -> list[dict]:
    """All telegram vectors, or [] when ../shared is absent (tests then skip)."""
    path = SHARED_DIR / "vectors" / "telegrams.jsonl"
    if not path.is_file():
        return []
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]
