"""A user's own annotations added to a training run (`stancelens train --add FILE --from MODEL`).

The files are any format `stancelens evaluate` reads (project JSONL, a Label Studio export, CSV), with
the actor ids of the user's actor set; each sentence becomes a training row of origin `added`, seen
`added_repeat` times per epoch. A short fine-tune keeps a seeded share of the recipe's own rows
(`replay_fraction`) so that the model rehearses what it knew while it learns the new domain.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from stancelens.model.labelset import LabelStandard
from stancelens.model.registry import Registry, default_registry
from stancelens.training import data as D
from stancelens.training.config import TrainingConfig

ORIGIN = "added"
Progress = Callable[[str], None]


class AddedDataError(ValueError):
    pass


def added_registry(config: TrainingConfig) -> Registry | None:
    """The registry the added files are read with: the label standard's plus the user's actor set."""
    if not config.added_actors:
        return None
    from stancelens.model.actor_set import ActorSetError, apply_actor_set, read_actor_set

    try:
        return apply_actor_set(default_registry(), read_actor_set(config.added_actors, default_registry()), "add")
    except ActorSetError as exc:
        raise AddedDataError(f"added_actors: {exc}") from exc


def load_added(config: TrainingConfig, standard: LabelStandard, say: Progress, train: dict, valid: dict,
               hashes: dict) -> list[dict]:
    """Read every added file: `added_valid_fraction` of its sentences (by content hash) to `valid[ORIGIN]`,
    where they take part in choosing the epoch, the rest to `train[ORIGIN]`; returns one record per file
    for metrics.json and the data card (path, sha256, counts, licence note)."""
    if not config.added_paths:
        return []
    from stancelens.training.annotation_io import load_any

    registry = added_registry(config)
    rows: list[dict] = []
    records = []
    for name in config.added_paths:
        path = Path(name)
        try:
            docs = load_any(path, registry=registry)
        except ValueError as exc:
            raise AddedDataError(f"--add {path}: {exc}") from exc
        file_rows = list(D.document_examples(docs, str(path), standard, ORIGIN))
        if not file_rows:
            raise AddedDataError(f"--add {path}: expected annotated sentences with actor mentions, found none; check "
                                 "that the file holds annotations (not only predictions) and the --actors set")
        digest = D.file_sha256(path)
        hashes[str(path)] = digest
        records.append({
            "path": str(path), "sha256": digest, "documents": len(docs), "sentences": len(file_rows),
            "pairs": sum(len(r["pair_label"]) for r in file_rows),
            "framed_mentions": sum(1 for r in file_rows for y in r["framing"] if y != standard.framing.index("none")),
            "licence_note": config.added_licence,
        })
        rows.extend(file_rows)
    held = [r for r in rows if D.in_validation(r["text"], config.added_valid_fraction)]
    train[ORIGIN] = [r for r in rows if not D.in_validation(r["text"], config.added_valid_fraction)]
    if held:
        valid[ORIGIN] = held
    say(f"added annotations: {len(rows)} sentences from {len(records)} file(s): {len(train[ORIGIN])} train (seen "
        f"{config.added_repeat}x per epoch), {len(held)} held out to choose the epoch")
    return records


def keep_replay(config: TrainingConfig, train: dict, pools: dict, say: Progress) -> None:
    """Keep a seeded `replay_fraction` of every origin but the added one (and no fresh neutral draws)."""
    if config.replay_fraction >= 1:
        return
    rng = random.Random(config.seed + 1)
    for origin, rows in train.items():
        if origin == ORIGIN:
            continue
        keep = max(1, round(len(rows) * config.replay_fraction)) if rows else 0
        train[origin] = rng.sample(rows, keep)
    pools.clear()
    say("replay: " + ", ".join(f"{o} {len(r)}" for o, r in train.items() if o != ORIGIN)
        + f" rows kept ({config.replay_fraction:.0%} of the recipe's)")
