"""Inter-annotator agreement: Cohen's κ, Fleiss' κ and Krippendorff's α (nominal, missing allowed).

Annotations are compared unit by unit. A *unit* is what one decision is about:
- mentions: a character span of a document (value: the actor id, or "∅" when an annotator did not
  mark that span as a mention);
- stance: an ordered actor pair in a sentence (value: the stance; missing when an annotator's
  mentions did not produce that pair);
- framing / voice: a mention span (value: category / voice; missing when the annotator has no
  mention there).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from itertools import combinations

from stancelens.model.annotation import DocumentAnnotation
from stancelens.training.metrics import span_prf

NOT_A_MENTION = "∅"
Reliability = list[list[Hashable | None]]  # rows = annotators, columns = units; None = missing


def krippendorff_alpha(data: Reliability) -> float | None:
    """Nominal α. None when undefined (fewer than two pairable values)."""
    n_units = len(data[0]) if data else 0
    coincidence: dict[tuple, float] = defaultdict(float)
    for u in range(n_units):
        values = [row[u] for row in data if row[u] is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nk - (1 if c == k else 0))
                if pairs:
                    coincidence[(c, k)] += pairs / (m - 1)
    n = sum(coincidence.values())
    if n <= 1:
        return None
    marginals: dict[Hashable, float] = defaultdict(float)
    for (c, _), v in coincidence.items():
        marginals[c] += v
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k) / (n - 1)
    if expected == 0:
        return 1.0 if observed == 0 else None
    return 1.0 - observed / expected


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return None
    n = len(pairs)
    po = sum(x == y for x, y in pairs) / n
    ca = Counter(x for x, _ in pairs)
    cb = Counter(y for _, y in pairs)
    pe = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if pe == 1.0:
        return 1.0 if po == 1.0 else None
    return (po - pe) / (1 - pe)


def fleiss_kappa(data: Reliability) -> float | None:
    """Fleiss' κ over units that every annotator rated."""
    units = [[row[u] for row in data] for u in range(len(data[0]) if data else 0)]
    units = [u for u in units if all(v is not None for v in u)]
    if not units or len(data) < 2:
        return None
    raters = len(data)
    categories = sorted({v for u in units for v in u}, key=str)
    totals: Counter = Counter()
    p_units = []
    for u in units:
        counts = Counter(u)
        totals.update(counts)
        p_units.append((sum(c * c for c in counts.values()) - raters) / (raters * (raters - 1)))
    p_bar = sum(p_units) / len(units)
    n_total = len(units) * raters
    p_e = sum((totals[c] / n_total) ** 2 for c in categories)
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else None
    return (p_bar - p_e) / (1 - p_e)


def _index(docs: Sequence[DocumentAnnotation]) -> dict[str, DocumentAnnotation]:
    return {d.doc_id: d for d in docs}


def reliability_tables(annotators: Sequence[Sequence[DocumentAnnotation]]) -> dict[str, tuple[list, Reliability]]:
    """Per task: (unit keys, reliability data) over the union of units of all annotators."""
    indexed = [_index(a) for a in annotators]
    doc_ids = sorted(set().union(*[set(i) for i in indexed]))
    mention_units: dict = {}
    stance_units: dict = {}
    for k, idx in enumerate(indexed):
        for doc_id in doc_ids:
            doc = idx.get(doc_id)
            if doc is None:
                continue
            for s in doc.sentences:
                for m in s.mentions:
                    mention_units.setdefault((doc_id, m.start, m.end), {})[k] = m
                for p in s.pairs:
                    stance_units.setdefault((doc_id, s.start, p.source, p.target), {})[k] = p.stance
    n = len(annotators)
    tables: dict[str, tuple[list, Reliability]] = {}
    keys = sorted(mention_units, key=str)
    # An annotator who has the sentence around a span but no mention there said "not a mention"; one who
    # lacks the sentence (or the document) gave no answer.
    covered = [{(d, s.start, s.end) for d, doc in idx.items() for s in doc.sentences} for idx in indexed]

    def covers(k: int, u: tuple) -> bool:
        return any(d == u[0] and a <= u[1] and u[2] <= b for d, a, b in covered[k])

    tables["mentions"] = (keys, [
        [(mention_units[u][k].actor if k in mention_units[u] else (NOT_A_MENTION if covers(k, u) else None))
         for u in keys] for k in range(n)
    ])
    tables["framing"] = (keys, [
        [(mention_units[u][k].framing.label if k in mention_units[u] else None) for u in keys] for k in range(n)
    ])
    framed = [u for u in keys if any(m.framing.label != "none" for m in mention_units[u].values())]
    tables["voice"] = (framed, [
        [(mention_units[u][k].framing.voice if k in mention_units[u] else None) for u in framed] for k in range(n)
    ])
    tables["negation"] = (framed, [
        [(mention_units[u][k].framing.negated if k in mention_units[u] else None) for u in framed] for k in range(n)
    ])
    skeys = sorted(stance_units, key=str)
    tables["stance"] = (skeys, [[stance_units[u].get(k) for u in skeys] for k in range(n)])
    return tables


def agreement_report(annotators: Sequence[Sequence[DocumentAnnotation]], names: Sequence[str]) -> dict:
    """Agreement per task: α, Fleiss' κ, Cohen's κ per pair, per-label α, per-document α, span F1."""

    tables = reliability_tables(annotators)
    report: dict = {"annotators": list(names), "tasks": {}}
    for task, (keys, data) in tables.items():
        values = sorted({v for row in data for v in row if v is not None}, key=str)
        per_label = {}
        for label in values:
            binary: Reliability = [[None if v is None else (v == label) for v in row] for row in data]
            per_label[str(label)] = krippendorff_alpha(binary)
        per_doc: dict[str, float | None] = {}
        by_doc = defaultdict(list)
        for i, key in enumerate(keys):
            by_doc[key[0]].append(i)
        for doc_id, cols in sorted(by_doc.items()):
            per_doc[doc_id] = krippendorff_alpha([[row[c] for c in cols] for row in data])
        pairwise = {
            f"{names[a]}|{names[b]}": cohen_kappa(data[a], data[b]) for a, b in combinations(range(len(data)), 2)
        }
        report["tasks"][task] = {
            "units": len(keys),
            "krippendorff_alpha": krippendorff_alpha(data),
            "fleiss_kappa": fleiss_kappa(data),
            "cohen_kappa": pairwise,
            "per_label_alpha": per_label,
            "per_document_alpha": per_doc,
            "raw_agreement": _raw_agreement(data),
        }
    spans = []
    for a, b in combinations(range(len(annotators)), 2):
        sa = {(d.doc_id, m.start, m.end, m.actor) for d in annotators[a] for s in d.sentences for m in s.mentions}
        sb = {(d.doc_id, m.start, m.end, m.actor) for d in annotators[b] for s in d.sentences for m in s.mentions}
        spans.append({"annotators": f"{names[a]}|{names[b]}", **span_prf(sa, sb)})
    report["mention_span_f1"] = spans
    report["unmatched"] = unmatched(annotators, names)
    return report


def unmatched(annotators: Sequence[Sequence[DocumentAnnotation]], names: Sequence[str]) -> dict:
    """Documents and sentences (by document id and offsets) that not every annotator has."""
    docs = [{d.doc_id for d in a} for a in annotators]
    sents = [{f"{d.doc_id}:{s.start}-{s.end}" for d in a for s in d.sentences} for a in annotators]
    all_docs, all_sents = set().union(*docs), set().union(*sents)
    return {
        "documents": {d: [names[k] for k in range(len(docs)) if d in docs[k]] for d in sorted(all_docs)
                      if not all(d in x for x in docs)},
        "sentences": {s: [names[k] for k in range(len(sents)) if s in sents[k]] for s in sorted(all_sents)
                      if not all(s in x for x in sents) and s.rsplit(":", 1)[0] in set.intersection(*docs)},
    }


def _raw_agreement(data: Reliability) -> float | None:
    agree = total = 0
    for u in range(len(data[0]) if data else 0):
        values = [row[u] for row in data if row[u] is not None]
        if len(values) >= 2:
            total += 1
            agree += len(set(values)) == 1
    return agree / total if total else None
