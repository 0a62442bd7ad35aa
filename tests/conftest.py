from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
GOLD = ROOT / "labels" / "gold" / "seeds.jsonl"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def registry():
    from stancelens.model.registry import default_registry

    return default_registry()


@pytest.fixture(scope="session")
def gold_docs():
    from stancelens.model.annotation import read_annotations

    return list(read_annotations(GOLD))
