"""Training data readers: the authored corpus, DSE and SEESAW, into one `datasets.Dataset` shape.

Every example is one sentence with marked spans:
- ``spans``: character spans of the mentions to mark (sorted);
- ``framing``: per span, a framing label id or -1 when the source has no framing (DSE, SEESAW);
- ``pair_src`` / ``pair_tgt``: per ordered pair, the span indices of the source's / target's mentions;
- ``pair_label``: per ordered pair, a stance label id;
- ``dse_label``: DSE's 5-class label (-1 elsewhere), so DSE's own metrics can be recovered;
- ``origin``: authored, dse or seesaw.
DSE and SEESAW map to our labels as GUIDELINES.md §7 says.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from datasets import Dataset, Features, Sequence, Value

from stancelens.model.annotation import read_annotations
from stancelens.model.labelset import LabelStandard

FEATURES = Features(
    {
        "text": Value("string"),
        "spans": Sequence(Sequence(Value("int32"))),
        "framing": Sequence(Value("int32")),
        "pair_src": Sequence(Sequence(Value("int32"))),
        "pair_tgt": Sequence(Sequence(Value("int32"))),
        "pair_label": Sequence(Value("int32")),
        "dse_label": Value("int32"),
        "origin": Value("string"),
        "key": Value("string"),
    }
)

# DSE class → (p→q stance, q→p stance)
DSE_TO_DIRECTED = {
    0: ("neutral", "neutral"),
    1: ("support", "neutral"),
    2: ("neutral", "support"),
    3: ("oppose", "neutral"),
    4: ("neutral", "oppose"),
}


def directed_to_dse(pq: str, qp: str, p_pq: dict[str, float] | None = None, p_qp: dict[str, float] | None = None) -> int:
    """Recover DSE's class from our two directed labels; when both directions are non-neutral
    (which DSE cannot express) keep the more confident one."""
    if pq == "neutral" and qp == "neutral":
        return 0
    if qp == "neutral":
        return 1 if pq == "support" else 3
    if pq == "neutral":
        return 2 if qp == "support" else 4
    conf_pq = (p_pq or {}).get(pq, 1.0)
    conf_qp = (p_qp or {}).get(qp, 0.0)
    if conf_pq >= conf_qp:
        return 1 if pq == "support" else 3
    return 2 if qp == "support" else 4


class DataError(ValueError):
    pass


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def in_validation(text: str, fraction: float) -> bool:
    """Deterministic split by content hash: the same sentence always lands on the same side."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                digest.update(str(p.relative_to(path)).encode())
                digest.update(p.read_bytes())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


# -- authored corpus (annotation format) -------------------------------------------------------
def authored_examples(path: Path, standard: LabelStandard) -> Iterator[dict]:
    return document_examples(read_annotations(path), str(path), standard)


def document_examples(docs: Iterable, path: str, standard: LabelStandard, origin: str = "authored") -> Iterator[dict]:
    """Training rows (one per sentence with mentions) from annotated documents in the annotation format."""
    stance_id = {label: i for i, label in enumerate(standard.stance)}
    framing_id = {label: i for i, label in enumerate(standard.framing)}
    for line, doc in enumerate(docs, start=1):
        for s in doc.sentences:
            spans = [(m.start - s.start, m.end - s.start) for m in s.mentions]
            order = sorted(range(len(spans)), key=lambda i: spans[i])
            mentions = [s.mentions[i] for i in order]
            spans = [spans[i] for i in order]
            framing = []
            for k, m in enumerate(mentions):
                if m.framing.label not in framing_id:
                    raise DataError(
                        f"{path}, line {line}, sentences[{s.index}].mentions[{k}].framing.label: expected one of "
                        f"{list(standard.framing)}, found {m.framing.label!r}; fix the label or the label standard"
                    )
                framing.append(framing_id[m.framing.label])
            src, tgt, labels = [], [], []
            for k, p in enumerate(s.pairs):
                if p.stance not in stance_id:
                    raise DataError(
                        f"{path}, line {line}, sentences[{s.index}].pairs[{k}].stance: expected one of "
                        f"{list(standard.stance)}, found {p.stance!r}; fix the label or the label standard"
                    )
                src.append([i for i, m in enumerate(mentions) if m.actor == p.source])
                tgt.append([i for i, m in enumerate(mentions) if m.actor == p.target])
                labels.append(stance_id[p.stance])
            if not spans:
                continue
            yield {
                "text": s.text, "spans": [list(x) for x in spans], "framing": framing,
                "pair_src": src, "pair_tgt": tgt, "pair_label": labels, "dse_label": -1,
                "origin": origin, "key": _key(s.text),
            }


# -- DSE -----------------------------------------------------------------------------------------
_BRACKET = re.compile(r"\[([^\[\]]+)\]")


def parse_dse_line(line: str) -> tuple[str, tuple[int, int], tuple[int, int], int] | None:
    """(clean sentence, p span, q span, label) from a DSE line; None when the marks cannot be read."""
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 4:
        return None
    marked, p, q, label = parts
    clean = []
    spans = []
    pos = 0
    out_len = 0
    for m in _BRACKET.finditer(marked):
        before = marked[pos : m.start()]
        clean.append(before)
        out_len += len(before)
        spans.append((out_len, out_len + len(m.group(1)), m.group(1)))
        clean.append(m.group(1))
        out_len += len(m.group(1))
        pos = m.end()
    clean.append(marked[pos:])
    text = "".join(clean)
    if len(spans) != 2:
        return None
    # p is the first bracketed span whose text is p (they can appear in either order).
    if spans[0][2] == p and spans[1][2] == q:
        sp, sq = spans[0], spans[1]
    elif spans[1][2] == p and spans[0][2] == q:
        sp, sq = spans[1], spans[0]
    else:
        sp, sq = spans[0], spans[1]
    try:
        y = int(label)
    except ValueError:
        return None
    if y not in DSE_TO_DIRECTED:
        return None
    return text, (sp[0], sp[1]), (sq[0], sq[1]), y


def pair_row(text: str, sp: tuple[int, int], sq: tuple[int, int], p_to_q: int, q_to_p: int, dse_label: int,
             origin: str, key: str) -> dict | None:
    """The row of a sentence with one marked pair (p, q) and its two directed labels; None when the two
    marks overlap."""
    if sp == sq or (sp[0] < sq[1] and sq[0] < sp[1]):
        return None
    spans = sorted([sp, sq])
    ip, iq = spans.index(sp), spans.index(sq)
    return {
        "text": text, "spans": [list(x) for x in spans], "framing": [-1, -1],
        "pair_src": [[ip], [iq]], "pair_tgt": [[iq], [ip]],
        "pair_label": [p_to_q, q_to_p], "dse_label": dse_label, "origin": origin, "key": key,
    }


def dse_examples(path: Path, standard: LabelStandard) -> Iterator[dict]:
    stance_id = {label: i for i, label in enumerate(standard.stance)}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parsed = parse_dse_line(line)
            if parsed is None:
                continue
            text, sp, sq, y = parsed
            pq, qp = DSE_TO_DIRECTED[y]
            row = pair_row(text, sp, sq, stance_id[pq], stance_id[qp], y, "dse", _key(text + f"|{sp}|{sq}"))
            if row is not None:
                yield row


# -- SEESAW --------------------------------------------------------------------------------------
def _locate(sentence: str, name: str) -> tuple[int, int] | None:
    """Find a canonical entity name in a sentence: whole name, then its last or first word."""
    candidates = [name]
    words = [w for w in re.split(r"\s+", name.strip()) if w]
    if len(words) > 1:
        candidates += [words[-1], words[0]]
    for cand in candidates:
        if len(cand) < 3 or cand.lower() in {"the", "party", "house", "state", "united"}:
            continue
        m = re.search(rf"(?<!\w){re.escape(cand)}(?:s)?(?!\w)", sentence, re.IGNORECASE)
        if m:
            end = m.end() - (1 if m.group().lower().endswith("s") and not cand.lower().endswith("s") else 0)
            return m.start(), end
    return None


def seesaw_examples(root: Path, split: str, standard: LabelStandard) -> Iterator[dict]:
    stance_id = {label: i for i, label in enumerate(standard.stance)}
    for meta_path in sorted((root / "meta").glob("TRIPLET_*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("Split") != split:
            continue
        story = meta_path.stem
        for article_path in sorted((root / "articles").glob(f"{story}_DOCUMENT_*.json")):
            ann_path = root / "annotations" / article_path.name
            if not ann_path.exists():
                continue
            article = json.loads(article_path.read_text(encoding="utf-8"))
            ann = json.loads(ann_path.read_text(encoding="utf-8"))
            sentences = {str(s["id"]): s["text"] for s in article.get("text", [])}
            for sid, triplets in ann.get("sentence-level stances", {}).items():
                text = sentences.get(str(sid))
                if not text:
                    continue
                spans: list[tuple[int, int]] = []
                labelled: dict[tuple[int, int], str] = {}
                for t in triplets:
                    a = _locate(text, t["subject"])
                    b = _locate(text, t["object"])
                    if a is None or b is None or a == b or (a[0] < b[1] and b[0] < a[1]):
                        continue
                    for sp in (a, b):
                        if sp not in spans and not any(sp[0] < x[1] and x[0] < sp[1] for x in spans):
                            spans.append(sp)
                    if a in spans and b in spans:
                        labelled[(spans.index(a), spans.index(b))] = (
                            "support" if t["sentiment"] == "POS" else "oppose"
                        )
                if not labelled:
                    continue
                order = sorted(range(len(spans)), key=lambda i: spans[i])
                remap = {old: new for new, old in enumerate(order)}
                spans_sorted = [spans[i] for i in order]
                src, tgt, labels = [], [], []
                for (i, j), stance in labelled.items():
                    src.append([remap[i]])
                    tgt.append([remap[j]])
                    labels.append(stance_id[stance])
                    # The reverse direction, when not labelled itself, is weak evidence of neutral.
                    if (j, i) not in labelled:
                        src.append([remap[j]])
                        tgt.append([remap[i]])
                        labels.append(stance_id["neutral"])
                yield {
                    "text": text, "spans": [list(x) for x in spans_sorted], "framing": [-1] * len(spans_sorted),
                    "pair_src": src, "pair_tgt": tgt, "pair_label": labels, "dse_label": -1,
                    "origin": "seesaw", "key": _key(text),
                }


def to_dataset(rows: list[dict]) -> Dataset:
    return Dataset.from_list(rows, features=FEATURES)
