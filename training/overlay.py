"""Codebook 1.1.0 overlays: new descriptor and pronoun mentions, three-valued voice and coreference pairs
laid over gold written under 1.0.0 (labels/gold/coreference/).

An overlay line names its document and lists (format in labels/gold/coreference/README.md):
- `mentions`: descriptors and pronouns located by sentence index, span text and occurrence, with
  actor and antecedent (an old mention id, or another new mention) — or `actor: null` and a reason
  when unresolvable (those are kept in the overlay as evidence and never become mentions);
- `voice`: the voice, speaker and speaker_text of every framed old mention;
- `pairs`: the ordered pairs that exist only through the new mentions (`via: "coreference"`).
`apply_overlay` builds the 1.1.0 gold from the 1.0.0 gold and the overlay; a test keeps the committed
file equal to that build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from stancelens.model.annotation import DocumentAnnotation, Framing, Mention, Pair, Span, pair_via


class OverlayError(ValueError):
    """An overlay line that does not fit its gold document: document, field and the fix."""


def read_overlay(path: str | Path) -> dict[str, dict]:
    lines = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if raw.strip():
            entry = json.loads(raw)
            if entry.get("doc_id") in lines:
                raise OverlayError(f"{path}, line {number}: expected one line per document, found {entry['doc_id']!r} "
                                   "twice; merge the lines")
            lines[entry["doc_id"]] = entry
    return lines


def apply_overlay(doc: DocumentAnnotation, overlay: dict, version: str = "1.1.0") -> DocumentAnnotation:
    """The document under codebook `version`: old mentions and pairs kept, voices replaced, resolved new
    mentions and their coreference pairs added."""
    sentences = {s.index: s for s in doc.sentences}
    old = {m.id: m for s in doc.sentences for m in s.mentions}
    new_ids: dict[tuple, str] = {}
    located = []
    counters = {s.index: len(s.mentions) for s in doc.sentences}
    for entry in overlay.get("mentions", []):
        if entry.get("actor") is None:
            continue  # unresolvable: evidence that a resolver must not guess, not a mention
        sentence = sentences[entry["sentence"]]
        start = sentence.start + _locate(sentence.text, entry["span"], int(entry.get("occurrence", 1)), doc.doc_id)
        mention_id = f"s{sentence.index}m{counters[sentence.index]}"
        counters[sentence.index] += 1
        new_ids[(entry["sentence"], entry["span"], int(entry.get("occurrence", 1)))] = mention_id
        located.append((entry, sentence, start, mention_id))
    added: dict[int, list[Mention]] = {}
    for entry, sentence, start, mention_id in located:
        antecedent = entry.get("antecedent")
        if antecedent is None:
            antecedent_id = None
        elif "mention" in antecedent:
            antecedent_id = antecedent["mention"]
            if antecedent_id not in old:
                raise OverlayError(f"{doc.doc_id}: antecedent {antecedent_id!r} is no mention of the gold; fix the id")
        else:
            antecedent_id = new_ids.get((antecedent["sentence"], antecedent["span"], int(antecedent.get("occurrence", 1))))
        term = None
        if entry.get("term"):
            at = sentence.text.find(entry["term"], max(0, start - sentence.start - len(entry["term"])))
            if at < 0:
                at = sentence.text.find(entry["term"])
            if at < 0:
                raise OverlayError(f"{doc.doc_id}: term {entry['term']!r} is not in sentence {sentence.index}")
            term = Span(start=sentence.start + at, end=sentence.start + at + len(entry["term"]), text=entry["term"])
        added.setdefault(sentence.index, []).append(Mention(
            id=mention_id, start=start, end=start + len(entry["span"]), text=entry["span"], actor=entry["actor"],
            kind=entry["kind"], via="coreference" if antecedent_id else None, antecedent=antecedent_id,
            framing=Framing(label=entry.get("framing") or "none", term=term, voice=entry.get("voice") or "author",
                            speaker=entry.get("speaker"), speaker_text=entry.get("speaker_text"),
                            negated=bool(entry.get("negated")))))
    voices = {v["mention"]: v for v in overlay.get("voice", [])}
    fixed = set(overlay.get("fixed_descriptors", []))  # old descriptor ids that name one actor by themselves
    missing = [m for m in voices if m not in old]
    if missing:
        raise OverlayError(f"{doc.doc_id}: voice entries name mentions the gold lacks: {missing}; fix the ids")
    out = []
    for s in doc.sentences:
        mentions = []
        for m in s.mentions:
            if m.kind == "descriptor" and m.via is None and m.antecedent is None and m.id not in fixed:
                m = m.model_copy(update={"via": "coreference"})  # 1.0.0's antecedent descriptors
            v = voices.get(m.id)
            if v is not None:
                m = m.model_copy(update={"framing": m.framing.model_copy(update={
                    "voice": v["voice"], "speaker": v.get("speaker"), "speaker_text": v.get("speaker_text")})})
            mentions.append(m)
        mentions.extend(added.get(s.index, []))
        pairs = [p.model_copy(update={"via": pair_via(mentions, p.source, p.target)}) for p in s.pairs] + [
            Pair(source=p["source"], target=p["target"], stance=p["stance"], via=pair_via(mentions, p["source"], p["target"]),
                 source_mentions=[m.id for m in mentions if m.actor == p["source"]],
                 target_mentions=[m.id for m in mentions if m.actor == p["target"]])
            for p in overlay.get("pairs", []) if p["sentence"] == s.index
        ]
        out.append(s.model_copy(update={"mentions": mentions, "pairs": pairs}))
    return DocumentAnnotation.model_validate(
        {**doc.model_dump(), "label_standard": version, "sentences": [s.model_dump() for s in out]})


def _locate(sentence: str, span: str, occurrence: int, doc_id: str) -> int:
    hits = [m.start() for m in re.finditer(r"(?<!\w)" + re.escape(span) + r"(?!\w)", sentence)]
    if len(hits) < occurrence:
        raise OverlayError(f"{doc_id}: expected occurrence {occurrence} of {span!r} in its sentence, found {len(hits)}; "
                           "fix span or occurrence")
    return hits[occurrence - 1]
