"""The label standard (labels/*.yaml) loaded as data: label sets, framing lexicon, versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def labels_dir() -> Path:
    """The installed labels/ folder (package data of stancelens.labels)."""
    return Path(str(resources.files("stancelens.labels")))


def load_yaml(name: str, directory: Path | None = None) -> Any:
    path = (directory or labels_dir()) / name
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@dataclass(frozen=True)
class LabelStandard:
    """Stance, framing and voice label sets plus the framing lexicon."""

    version: str
    stance: tuple[str, ...]
    framing: tuple[str, ...]
    voice: tuple[str, ...]
    framing_terms: dict[str, tuple[str, ...]] = field(hash=False)
    framing_priority: tuple[str, ...] = ()
    descriptors: tuple[dict, ...] = ()
    naming_verbs: tuple[str, ...] = ()
    speech_verbs: tuple[str, ...] = ()
    evaluation_verbs: tuple[str, ...] = ()
    negation_cues: tuple[str, ...] = ()
    # Descriptor head nouns and pronouns with the actor kinds they can refer to (framing.yaml
    # `resolution:`, GUIDELINES.md §8); empty leaves descriptors and pronouns unresolved.
    resolution: dict = field(default_factory=dict, hash=False)

    def check(self, task: str, label: str, where: str = "") -> None:
        allowed = {"stance": self.stance, "framing": self.framing, "voice": self.voice}[task]
        if label not in allowed:
            raise ValueError(
                f"{where}expected a {task} label in {list(allowed)}, found {label!r}; "
                "use a name from labels/labels.yaml"
            )

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "stance": list(self.stance),
            "framing": list(self.framing),
            "voice": list(self.voice),
            "framing_terms": {k: list(v) for k, v in self.framing_terms.items()},
            "framing_priority": list(self.framing_priority),
        }


def load_label_standard(directory: Path | None = None) -> LabelStandard:
    labels = load_yaml("labels.yaml", directory)
    lexicon = load_yaml("framing.yaml", directory)
    return LabelStandard(
        version=str(labels["version"]),
        stance=tuple(labels["stance"]),
        framing=tuple(labels["framing"]),
        voice=tuple(labels["voice"]),
        framing_terms={k: tuple(v) for k, v in lexicon["terms"].items()},
        framing_priority=tuple(lexicon["priority"]),
        descriptors=tuple(lexicon.get("descriptors", [])),
        naming_verbs=tuple(lexicon.get("naming_verbs", [])),
        speech_verbs=tuple(lexicon.get("speech_verbs", [])),
        evaluation_verbs=tuple(lexicon.get("evaluation_verbs", [])),
        negation_cues=tuple(lexicon.get("negation_cues", [])),
        resolution=dict(lexicon.get("resolution") or {}),
    )


@lru_cache(maxsize=1)
def default_label_standard() -> LabelStandard:
    return load_label_standard()
