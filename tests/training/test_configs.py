"""The shipped training recipes load, and the previous default differs from the default only where it says."""

import dataclasses

import pytest

from stancelens.training.config import TrainingConfig
from tests.helpers import ROOT

CONFIGS = ROOT / "training" / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_recipe_loads(name):
    TrainingConfig.from_yaml(CONFIGS / name)


def test_the_previous_default_is_the_default_without_relabelled_lines():
    """README's comparison row: training/configs/previous.yaml must stay the current recipe minus the relabelled
    DSE lines, or the row stops meaning what it says."""
    default = dataclasses.asdict(TrainingConfig.from_yaml(CONFIGS / "default.yaml"))
    previous = dataclasses.asdict(TrainingConfig.from_yaml(CONFIGS / "previous.yaml"))
    assert default["relabelled_path"] and previous["relabelled_path"] is None
    assert {k for k in default if default[k] != previous[k]} <= {"relabelled_path", "relabelled_repeat"}
