"""A second annotation of a resolution set (issue #14): the same items judged again by a reader who saw only
the codebook, checked against the first. It says how far two readers of the codebook agree (Krippendorff's
alpha per question) and how the system does on the items where both agree, which separates the system's
errors from the set's open readings. An adjudication of their disagreements (same format, the final label
of each disputed item) gives the set's labels with those items settled, and the system against them.

Format (JSONL, one item per line, labels/resolution/TASK.md): `doc_id`, `sentence` (0-based), `span`,
`occurrence` (1 = first whole-word occurrence in the sentence), `question` — `refers_to` (a descriptor or
pronoun line) with `actor` (registry id or null: not a mention), or `voice` (a framed mention) with `voice`
(author, quoted, reported), `speaker` (actor id or null) and `speaker_text` (or null). Other fields (`why`)
are the annotator's notes and are ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from stancelens.training.agreement import krippendorff_alpha
from stancelens.training.resolution_score import ItemReading, Speech, same_speaker

QUESTIONS = ("refers_to", "voice")
VOICES = ("author", "quoted", "reported")
ItemKey = tuple[str, int, str, int, str]


class SecondPassError(ValueError):
    """A second-pass file that cannot be read or does not fit the resolution set: file, line, field."""


@dataclass(frozen=True)
class SecondAnswer:
    """What the second reader said of one item: `actor` for refers_to, the rest for voice."""

    actor: str | None = None
    voice: str | None = None
    speaker: str | None = None
    speaker_text: str | None = None


def read_second_pass(paths: Sequence[Path]) -> dict[ItemKey, SecondAnswer]:
    """Every answer of the files, keyed like ItemReading.key; errors name file, line and field. Reads an
    adjudication too (labels/resolution/adjudication.jsonl: the same fields, plus both passes' labels)."""
    answers: dict[ItemKey, SecondAnswer] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise SecondPassError(f"{path}: no such file; expected a second pass or adjudication such as "
                                  "labels/resolution/second_pass.jsonl")
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{path}, line {number}"
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise SecondPassError(f"{where}: expected one JSON object, found invalid JSON ({exc.msg}); fix the "
                                      "line") from exc
            key, answer = _answer(item, where)
            if key in answers:
                raise SecondPassError(f"{where}: expected one answer per item, found a second answer for "
                                      f"{key[0]} sentence {key[1]} {key[2]!r} ({key[4]}); keep one")
            answers[key] = answer
    return answers


def _field(item: dict, name: str, kind: type, where: str, nullable: bool = False):
    value = item.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SecondPassError(f"{where}: field {name!r}: expected {kind.__name__}{' or null' if nullable else ''}, "
                              f"found {value!r}; fix the line (labels/resolution/TASK.md)")
    return value


def _answer(item: object, where: str) -> tuple[ItemKey, SecondAnswer]:
    if not isinstance(item, dict):
        raise SecondPassError(f"{where}: expected a JSON object, found {type(item).__name__}; one item per line")
    question = _field(item, "question", str, where)
    if question not in QUESTIONS:
        raise SecondPassError(f"{where}: field 'question': expected one of {', '.join(QUESTIONS)}, found "
                              f"{question!r}")
    sentence, occurrence = _field(item, "sentence", int, where), _field(item, "occurrence", int, where)
    if sentence < 0 or occurrence < 1:
        raise SecondPassError(f"{where}: expected sentence >= 0 and occurrence >= 1, found {sentence} and "
                              f"{occurrence}")
    key = (_field(item, "doc_id", str, where), sentence, _field(item, "span", str, where), occurrence, question)
    if question == "refers_to":
        return key, SecondAnswer(actor=_field(item, "actor", str, where, nullable=True))
    voice = _field(item, "voice", str, where)
    if voice not in VOICES:
        raise SecondPassError(f"{where}: field 'voice': expected one of {', '.join(VOICES)}, found {voice!r}")
    return key, SecondAnswer(voice=voice, speaker=_field(item, "speaker", str, where, nullable=True),
                             speaker_text=_field(item, "speaker_text", str, where, nullable=True))


def second_pass_report(readings: Sequence[ItemReading], answers: dict[ItemKey, SecondAnswer]) -> dict:
    """Agreement of the first annotation (the set) with the second, and the system on the agreed items."""
    _refuse_strays(readings, answers, "answers to", "second pass")
    answered = [(r, answers[r.key]) for r in readings if r.key in answers]
    return {"answered": len(answered), "unanswered": len(readings) - len(answered),
            "refers_to": _refers_to([(r, a) for r, a in answered if r.question == "refers_to"]),
            "voice": _voice([(r, a) for r, a in answered if r.question == "voice"]),
            "speaker": _speaker([(r, a) for r, a in answered if r.question == "voice"])}


def adjudicated_report(readings: Sequence[ItemReading], decisions: dict[ItemKey, SecondAnswer]) -> dict:
    """The system against the set's labels with every adjudicated item's final label in their place, counted
    as score_resolution counts: resolution over every descriptor and pronoun line, voice over the framed
    mentions the system frames too, speaker over those of them in quoted or reported voice."""
    _refuse_strays(readings, decisions, "decisions on", "adjudication")
    changed = 0
    resolved: list[bool] = []
    voices: list[bool] = []
    speakers: list[bool] = []
    for r in readings:
        decision = decisions.get(r.key)
        if r.question == "refers_to":
            gold = decision.actor if decision is not None else r.gold
            changed += gold != r.gold
            resolved.append(r.system == gold)
            continue
        first = cast(Speech, r.gold)
        final = (decision.voice, decision.speaker, decision.speaker_text) if decision is not None else first
        changed += final != first
        if r.system is None:
            continue  # unframed by the system: outside voice and speaker accuracy, as in score_resolution
        system = cast(Speech, r.system)
        voices.append(system[0] == final[0])
        if final[0] in ("quoted", "reported"):
            speakers.append(same_speaker((final[1], final[2]), (system[1], system[2])))
    return {"decisions": len(decisions), "labels_changed": changed,
            "resolution_accuracy": _share(sum(resolved), len(resolved)),
            "voice_accuracy": _share(sum(voices), len(voices)),
            "speaker_accuracy": _share(sum(speakers), len(speakers))}


def _refuse_strays(readings: Sequence[ItemReading], answers: dict[ItemKey, SecondAnswer], what: str,
                   source: str) -> None:
    """An answer to an item the scored sets do not hold means the wrong files were given together."""
    known = {r.key for r in readings}
    stray = [k for k in answers if k not in known]
    if stray:
        doc_id, sentence, span, _, question = stray[0]
        raise SecondPassError(f"expected {what} items of the resolution sets given with --resolution, found "
                              f"{len(stray)} that they do not hold (first: {doc_id} sentence {sentence} {span!r}, "
                              f"{question}); give the resolution files this {source} was made for")


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _alpha(first: list, second: list) -> float | None:
    value = krippendorff_alpha([[x if x is not None else "none" for x in first],
                                [x if x is not None else "none" for x in second]])
    return round(value, 4) if value is not None else None


def _refers_to(pairs: list[tuple[ItemReading, SecondAnswer]]) -> dict:
    agreed = [r for r, a in pairs if a.actor == r.gold]
    groups: Counter = Counter(r.group for r, _ in pairs)
    agreed_groups: Counter = Counter(r.group for r in agreed)
    right_groups: Counter = Counter(r.group for r in agreed if r.right)
    return {
        "items": len(pairs),
        "agreement": _share(len(agreed), len(pairs)),
        "alpha": _alpha([r.gold for r, _ in pairs], [a.actor for _, a in pairs]),
        "agreed": len(agreed),
        "system_on_agreed": _share(sum(r.right for r in agreed), len(agreed)),
        "by_group": {g: {"items": n, "agreed": agreed_groups[g],
                         "system_on_agreed": _share(right_groups[g], agreed_groups[g])} for g, n in sorted(groups.items())},
        "disagreements": [{"doc_id": r.doc_id, "sentence": r.sentence, "span": r.span, "occurrence": r.occurrence,
                           "first": r.gold, "second": a.actor, "system": r.system} for r, a in pairs if a.actor != r.gold],
    }


def _speech(pairs: list[tuple[ItemReading, SecondAnswer]]) -> list[tuple[Speech, Speech | None, SecondAnswer]]:
    """Voice items as (first pass, system or None when unframed, second pass): a voice item's readings are
    always (voice, speaker, speaker_text) triples."""
    return [(cast(Speech, r.gold), cast("Speech | None", r.system), a) for r, a in pairs]


def _voice(pairs: list[tuple[ItemReading, SecondAnswer]]) -> dict:
    items = _speech(pairs)
    agreed = [(first, system) for first, system, a in items if a.voice == first[0]]
    framed = [(first, system) for first, system in agreed if system is not None]
    return {
        "items": len(items),
        "agreement": _share(len(agreed), len(items)),
        "alpha": _alpha([first[0] for first, _, _ in items], [a.voice for _, _, a in items]),
        "agreed": len(agreed),
        "agreed_framed_by_system": len(framed),
        "system_on_agreed": _share(sum(system[0] == first[0] for first, system in framed), len(framed)),
    }


def _speaker(pairs: list[tuple[ItemReading, SecondAnswer]]) -> dict:
    """Items both readers call quoted or reported: do they name the same speaker, and does the system?"""
    both = [(first, system, a) for first, system, a in _speech(pairs) if first[0] != "author" and a.voice != "author"]
    agreed = [(first, system) for first, system, a in both if same_speaker(first[1:], (a.speaker, a.speaker_text))]
    framed = [(first, system) for first, system in agreed if system is not None]
    right = sum(same_speaker(first[1:], system[1:]) for first, system in framed)
    return {"items": len(both), "agreement": _share(len(agreed), len(both)), "agreed": len(agreed),
            "agreed_framed_by_system": len(framed), "system_on_agreed": _share(right, len(framed))}
