"""Reading annotations in any supported format into `DocumentAnnotation`s, validated.

Formats, chosen by file name (and, for other names, by the first character):

- ``.jsonl``: the annotation format (labels/schema/annotation.schema.json);
- ``.json``: a Label Studio JSON export made with labels/label-studio/config.xml (see
  training/labelstudio.py); one annotator's annotations per set, predictions when no task has any;
- ``.csv``: one row per stance pair and/or one row per mention (columns below).

CSV columns (header required, any order, extra columns ignored):

- every row: ``doc_id``; the document text comes from a ``text`` column (the whole document, the same
  on every row of that document) or from ``--documents DIR`` holding ``<doc_id>.txt``;
- a mention row (``actor`` filled): ``start``, ``end``, ``actor``, and optionally ``framing`` (default
  none), ``voice`` (author), ``speaker``, ``negated`` (true/false/1/0/yes/no), ``kind`` (the registry's
  alias kind), ``term_start``/``term_end`` (the framing term), ``sentence_start``/``sentence_end``;
- a pair row (``stance`` filled): ``sentence_start``, ``sentence_end``, ``source``, ``target``,
  ``stance``. When a file has pair rows but no mention rows for a sentence, the mentions of the two
  actors are found with the registry's mention finder (labels/actors.yaml) and get framing none: such a
  file annotates stance only, and its framing rows in a report mean nothing.

Sentences are the document's sentence split (model/sentences.py) unless rows give
``sentence_start``/``sentence_end``, which then replace the split sentences they overlap. Errors name the
file, the row (line number) and the column.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from stancelens.model.annotation import (
    AnnotationFileError,
    DocumentAnnotation,
    Framing,
    Mention,
    Pair,
    Sentence,
    Span,
)
from stancelens.model.files import read_text_document
from stancelens.model.labelset import default_label_standard
from stancelens.model.registry import Registry, default_registry
from stancelens.model.sentences import split_sentences
from stancelens.model.validation import check_labels


class AnnotationSet(list):
    """Documents of one annotator (or model) from one file, with what could not be used."""

    def __init__(self, docs=(), name: str = "", skipped: list[str] | None = None):
        super().__init__(docs)
        self.name = name
        self.skipped = list(skipped or [])


def read_documents(directory: Path | None) -> dict[str, str] | None:
    """doc_id (file stem) → text for every .txt file of a folder."""
    if directory is None:
        return None

    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"{folder}: expected a folder of <doc_id>.txt documents, found no such folder")
    return {p.stem: read_text_document(p) for p in sorted(folder.glob("*.txt"))}


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".csv", ".json"):
        return suffix[1:]
    try:
        head = path.read_text(encoding="utf-8", errors="replace").lstrip()[:1]
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: file not found; check the path") from exc
    return "json" if head == "[" else "jsonl" if head == "{" else "csv"


def load_sets(path: Path, documents: Path | dict[str, str] | None = None,
              registry: Registry | None = None) -> list[AnnotationSet]:
    """One AnnotationSet per annotator in the file (a Label Studio export may hold several). Actor ids are
    checked against `registry` (default: labels/actors.yaml; an actor set's registry for its domain)."""
    path = Path(path)
    texts = documents if isinstance(documents, dict) or documents is None else read_documents(documents)
    kind = _kind(path)
    try:
        if kind == "json":
            from stancelens.training.labelstudio import from_tasks, read_tasks

            tasks = read_tasks(path)
            by_who, skipped = from_tasks(tasks, str(path), "annotations", texts, registry)
            if not by_who:
                by_who, _ = from_tasks(tasks, str(path), "predictions", texts, registry)
                skipped = [s for s in skipped if "no annotations" not in s]
            sets = [AnnotationSet(docs, f"{path.stem}:{who}" if len(by_who) > 1 else path.stem, skipped)
                    for who, docs in by_who.items()]
        elif kind == "csv":
            sets = [AnnotationSet(read_csv(path, texts, registry), path.stem)]
        else:
            from stancelens.model.annotation import read_annotations

            sets = [AnnotationSet(read_annotations(path), path.stem)]
        for s in sets:
            check_labels(s, str(path), registry=registry)
    except AnnotationFileError as exc:
        raise ValueError(str(exc)) from exc
    if not sets or not any(sets):
        raise ValueError(f"{path}: expected at least one annotated document, found none")
    return sets


def load_any(path: Path, documents: Path | dict[str, str] | None = None,
             registry: Registry | None = None) -> AnnotationSet:
    """The annotations of one file; a Label Studio export with several annotators is refused here
    (use `load_sets`, as `stancelens evaluate` does, to compare them)."""
    sets = load_sets(path, documents, registry)
    if len(sets) > 1:
        raise ValueError(f"{path}: expected the annotations of one annotator, found {len(sets)} "
                         f"({', '.join(s.name for s in sets)}); compare them with agreement, or export one")
    return sets[0]


# -- CSV -------------------------------------------------------------------------------------------
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n", ""}


def read_csv(path: Path, documents: dict[str, str] | None = None,
             registry: Registry | None = None) -> list[DocumentAnnotation]:
    """Annotations from a CSV of mention rows and/or pair rows (format: the module docstring)."""
    return _CsvAnnotations(Path(path), documents, registry).read()


@dataclass
class _CsvDocument:
    """One document's rows while it is assembled: sentence bounds, mentions and pair rows by sentence."""

    doc_id: str
    text: str
    items: list[tuple[int, dict]]
    bounds: list[tuple[int, int]] = field(default_factory=list)
    mentions: dict[int, list[tuple[int, Mention]]] = field(default_factory=lambda: defaultdict(list))
    pair_rows: dict[int, list[tuple[int, dict]]] = field(default_factory=lambda: defaultdict(list))


class _CsvAnnotations:
    """Reads an annotation CSV in named steps; every error names the file, the row and the column."""

    def __init__(self, path: Path, documents: dict[str, str] | None, registry: Registry | None = None):
        self.path, self.documents = path, documents
        self.registry = registry or default_registry()
        self.standard = self.registry.standard if registry is not None else default_label_standard()

    # -- cells ---------------------------------------------------------------------------------
    def fail(self, line: int, field: str, message: str) -> NoReturn:
        raise AnnotationFileError(str(self.path), line, field, message)

    def get(self, line: int, row: dict, field: str, required: bool = True) -> str | None:
        value = (row.get(field) or "").strip()
        if not value:
            if required:
                self.fail(line, field, "expected a value, found an empty cell; fill it in")
            return None
        return value

    def integer(self, line: int, row: dict, field: str, required: bool = True) -> int | None:
        value = self.get(line, row, field, required)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(line, field, f"expected a character offset (an integer), found {value!r}")
        if number < 0:
            self.fail(line, field, f"expected an offset >= 0, found {number}")
        return number

    def need(self, line: int, row: dict, field: str) -> int:
        number = self.integer(line, row, field)
        assert number is not None  # integer() fails on an empty required cell
        return number

    # -- steps ---------------------------------------------------------------------------------
    def read(self) -> list[DocumentAnnotation]:
        rows = self.rows()
        return [self.document(doc) for doc in self.documents_of(rows)]

    def rows(self) -> list[tuple[int, dict]]:
        try:
            handle = self.path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError as exc:
            raise AnnotationFileError(str(self.path), 0, "(file)", "file not found; check the path") from exc
        # A document's text may fill a cell (the annotation CSV's text column): no field cap of csv's own,
        # the same process-wide setting batch scoring's CSV reader uses, so the outcome never depends on
        # which reader ran first.
        csv.field_size_limit(sys.maxsize)
        with handle:
            reader = csv.DictReader(handle)
            try:
                header = set(reader.fieldnames or [])
                rows = [(reader.line_num, row) for row in reader]
            except (csv.Error, UnicodeDecodeError) as exc:
                raise AnnotationFileError(str(self.path), reader.line_num, "(file)", "expected a CSV file in UTF-8, "
                                          f"found: {exc}; "
                                          "fix the file (a document's text belongs in --documents DIR)") from exc
        has_mentions = {"start", "end", "actor"} <= header
        has_pairs = {"sentence_start", "sentence_end", "source", "target", "stance"} <= header
        if "doc_id" not in header or not (has_mentions or has_pairs):
            self.fail(1, "(header)", f"expected the columns doc_id plus start,end,actor (mention rows) and/or "
                      "sentence_start,sentence_end,source,target,stance (pair rows), found "
                      f"{sorted(header)}; see training/annotation_io.py for the format")
        return rows

    def documents_of(self, rows: list[tuple[int, dict]]) -> list[_CsvDocument]:
        """Rows grouped by document, each with its text (a text column, or --documents DIR)."""
        by_doc: dict[str, list[tuple[int, dict]]] = defaultdict(list)
        texts: dict[str, str] = {}
        for line, row in rows:
            doc_id = str(self.get(line, row, "doc_id"))
            by_doc[doc_id].append((line, row))
            text = row.get("text")
            if text:
                if doc_id in texts and texts[doc_id] != text:
                    self.fail(line, "text", f"expected the same document text on every row of {doc_id!r}, found a "
                              "different one; the text column holds the whole document")
                texts[doc_id] = text
            elif doc_id not in texts:
                if self.documents is None or doc_id not in self.documents:
                    self.fail(line, "text", f"expected the text of document {doc_id!r}: a text column, or "
                              f"--documents DIR with {doc_id}.txt, found neither")
                texts[doc_id] = self.documents[doc_id]
        return [_CsvDocument(doc_id, texts[doc_id], items) for doc_id, items in by_doc.items()]

    def document(self, doc: _CsvDocument) -> DocumentAnnotation:
        doc.bounds = self.sentence_bounds(doc)
        for line, row in doc.items:
            if (row.get("actor") or "").strip():
                k, mention = self.mention_row(doc, line, row)
                doc.mentions[k].append((line, mention))
            elif (row.get("stance") or "").strip():
                k = self.pair_row(doc, line, row)
                doc.pair_rows[k].append((line, row))
            else:
                self.fail(line, "actor", "expected a mention row (actor filled) or a pair row (stance filled), found "
                          "neither")
        sentences = [self.sentence(doc, k) for k in range(len(doc.bounds))]
        try:
            return DocumentAnnotation(doc_id=doc.doc_id, text=doc.text, annotator=self.path.stem,
                                      label_standard=self.standard.version, sentences=sentences)
        except ValueError as exc:
            self.fail(doc.items[0][0], "(document)", f"{doc.doc_id}: {str(exc).splitlines()[-1]}")

    def sentence_bounds(self, doc: _CsvDocument) -> list[tuple[int, int]]:
        """Sentences given by rows (sentence_start/sentence_end), the splitter's elsewhere."""

        text = doc.text
        explicit: dict[tuple[int, int], int] = {}
        for line, row in doc.items:
            a, b = self.integer(line, row, "sentence_start", False), self.integer(line, row, "sentence_end", False)
            if (a is None) != (b is None):
                self.fail(line, "sentence_end" if b is None else "sentence_start", "expected both sentence_start "
                          "and sentence_end or neither, found one")
            if a is not None:
                if b is None or not (a < b <= len(text)) or not text[a:b].strip():
                    self.fail(line, "sentence_start", f"expected 0 <= sentence_start < sentence_end <= {len(text)} "
                              f"around text, found [{a}, {b})")
                explicit.setdefault((a, b), line)
        spans = sorted(explicit)
        for (a1, b1), (a2, b2) in zip(spans, spans[1:], strict=False):
            if a2 < b1:
                self.fail(explicit[(a2, b2)], "sentence_start", f"sentence [{a2}, {b2}) overlaps sentence [{a1}, {b1}) "
                          f"of row {explicit[(a1, b1)]}; sentences must not overlap")
        split = [(s.start, s.end) for s in split_sentences(text)
                 if not any(s.start < b and a < s.end for a, b in spans)]
        return sorted(spans + split)

    def home(self, doc: _CsvDocument, line: int, a: int, b: int, field: str) -> int:
        for k, (s, e) in enumerate(doc.bounds):
            if s <= a and b <= e:
                return k
        self.fail(line, field, f"span [{a}, {b}) of {doc.doc_id!r} lies in no sentence (it crosses a sentence "
                  "boundary); give sentence_start/sentence_end or fix the offsets")

    def mention_row(self, doc: _CsvDocument, line: int, row: dict) -> tuple[int, Mention]:
        text, registry, standard = doc.text, self.registry, self.standard
        a, b = self.need(line, row, "start"), self.need(line, row, "end")
        if not a < b <= len(text):
            self.fail(line, "end", f"expected start < end <= {len(text)} (document length), found [{a}, {b})")
        actor = self.get(line, row, "actor")
        if actor not in registry.actors:
            self.fail(line, "actor", f"expected an actor id from labels/actors.yaml, found {actor!r}")
        label = self.get(line, row, "framing", False) or "none"
        if label not in standard.framing:
            self.fail(line, "framing", f"expected one of {list(standard.framing)}, found {label!r}")
        voice = self.get(line, row, "voice", False) or "author"
        if voice not in standard.voice:
            self.fail(line, "voice", f"expected one of {list(standard.voice)}, found {voice!r}")
        speaker = self.get(line, row, "speaker", False)
        if speaker is not None and speaker not in registry.actors:
            self.fail(line, "speaker", f"expected an actor id from labels/actors.yaml or empty, found {speaker!r}")
        negated = (row.get("negated") or "").strip().lower()
        if negated not in _TRUE | _FALSE:
            self.fail(line, "negated", f"expected true/false (or 1/0, yes/no), found {row.get('negated')!r}")
        ts, te = self.integer(line, row, "term_start", False), self.integer(line, row, "term_end", False)
        if (ts is None) != (te is None) or (ts is not None and te is not None and not ts < te <= len(text)):
            self.fail(line, "term_start", f"expected both term_start < term_end <= {len(text)} or neither, found "
                      f"[{ts}, {te})")
        sa, sb = self.integer(line, row, "sentence_start", False), self.integer(line, row, "sentence_end", False)
        k = self.home(doc, line, a, b, "start") if sa is None or sb is None else doc.bounds.index((sa, sb))
        if sa is not None and sb is not None and not (sa <= a and b <= sb):
            self.fail(line, "start", f"mention [{a}, {b}) lies outside its sentence [{sa}, {sb})")
        mention = Mention(
            id="", start=a, end=b, text=text[a:b], actor=str(actor),
            kind=self.get(line, row, "kind", False) or registry.alias_kind(text[a:b], str(actor)),
            framing=Framing(label=label, voice=voice, speaker=speaker, negated=negated in _TRUE,
                            term=Span(start=ts, end=te, text=text[ts:te])
                            if ts is not None and te is not None else None),
        )
        return k, mention

    def pair_row(self, doc: _CsvDocument, line: int, row: dict) -> int:
        a, b = self.need(line, row, "sentence_start"), self.need(line, row, "sentence_end")
        stance = self.get(line, row, "stance")
        if stance not in self.standard.stance:
            self.fail(line, "stance", f"expected one of {list(self.standard.stance)}, found {stance!r}")
        for field_name in ("source", "target"):
            if self.get(line, row, field_name) not in self.registry.actors:
                self.fail(line, field_name, f"expected an actor id from labels/actors.yaml, found {row[field_name]!r}")
        if row["source"].strip() == row["target"].strip():
            self.fail(line, "target", f"expected two distinct actors, found {row['source']!r} twice")
        return doc.bounds.index((a, b))

    def sentence(self, doc: _CsvDocument, k: int) -> Sentence:
        s, e = doc.bounds[k]
        text = doc.text
        ms = sorted(doc.mentions[k], key=lambda x: x[1].start)
        for (l1, m1), (l2, m2) in zip(ms, ms[1:], strict=False):
            if m2.start < m1.end:
                self.fail(l2, "start", f"mention [{m2.start}, {m2.end}) overlaps the mention of row {l1} "
                          f"[{m1.start}, {m1.end}); mention spans must not overlap")
        found = [m for _, m in ms]
        if doc.pair_rows[k] and not found:
            # Stance-only rows: the registry's mention finder supplies the mention spans.
            raw = self.registry.find_mentions(text, [(s, e)])[0]
            found = [Mention(id="", start=r.start, end=r.end, text=r.text, actor=r.actor, kind=r.kind,
                             framing=Framing(label="none")) for r in raw if r.actor in self.registry.actors]
        found = [m.model_copy(update={"id": f"s{k}m{i}"}) for i, m in enumerate(found)]
        pairs: dict[tuple[str, str], Pair] = {}
        for line, row in doc.pair_rows[k]:
            src, tgt = row["source"].strip(), row["target"].strip()
            for field_name, actor in (("source", src), ("target", tgt)):
                if not any(m.actor == actor for m in found):
                    self.fail(line, field_name, f"expected a mention of {actor!r} in sentence [{s}, {e}), found "
                              "none; add a mention row for it")
            if (src, tgt) in pairs and pairs[(src, tgt)].stance != row["stance"].strip():
                self.fail(line, "stance", f"the pair {src}->{tgt} has two different stances in sentence [{s}, {e})")
            pairs[(src, tgt)] = Pair(source=src, target=tgt, stance=row["stance"].strip(),
                                     source_mentions=[m.id for m in found if m.actor == src],
                                     target_mentions=[m.id for m in found if m.actor == tgt])
        return Sentence(index=k, start=s, end=e, text=text[s:e], mentions=found, pairs=list(pairs.values()))
