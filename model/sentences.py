"""Rule-based sentence splitting that keeps character offsets into the document.

News text breaks the usual splitters in predictable places: "U.S." and "Oct. 7" are not sentence
ends, a closing quote or a Wikipedia citation marker ("[17]", "[citation needed]") after the full
stop belongs to the sentence it closes, and a full stop inside a quotation that closes later in
the same paragraph does not end the reporting sentence. Line breaks always end a sentence because
headlines, date lines and captions carry no final punctuation.

The cost is linear in the text, and no sentence is longer than MAX_SENTENCE_CHARS: a longer run of text
without a sentence end (a crafted input, a table flattened into one line) is cut at the last whitespace
before the limit, or at the limit where there is none, so that every later step (mentions, framing rules,
the encoder) works on bounded pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

ABBREVIATIONS = frozenset(
    ["u.s", "u.n", "u.k", "u.s.s.r", "u.s.a", "e.u", "mr", "mrs", "ms", "dr", "gen", "col", "lt", "sgt", "capt", "gov", "sen", "rep", "st", "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "no", "nos", "vs", "e.g", "i.e", "a.m", "p.m", "inc", "ltd", "co", "corp", "jr", "sr", "prof", "rev", "est", "approx", "dept", "fig", "ca"]
)

_QUOTES_OPEN = "\"“«"
_QUOTES_CLOSE = "\"”»"
_CLOSERS = "\"'”’»)]"
# A citation marker glued to the end of a sentence: [17], [citation needed], [sic].
_CITATION = re.compile(r"\[(?:\d+|citation needed|sic|note \d+)\]")
_END = re.compile(r"[.!?]+")
_NONSPACE = re.compile(r"\S")
# Far above any real sentence (the seed gold, the authored corpus and DSE peak at 466 characters).
MAX_SENTENCE_CHARS = 1000
# No abbreviation or initial is longer than this; a longer token before a full stop is a word.
_MAX_TOKEN = 24


@dataclass(frozen=True)
class SentenceSpan:
    """One sentence: document offsets (start inclusive, end exclusive) and its text."""

    start: int
    end: int
    text: str


def _word_before(text: str, pos: int) -> str:
    """The token that ends at `pos` (exclusive), without the trailing full stop."""
    i = pos
    floor = max(0, pos - _MAX_TOKEN)
    while i > floor and not text[i - 1].isspace() and text[i - 1] not in "(\"“[":
        i -= 1
    return text[i:pos]


def _is_abbreviation(token: str) -> bool:
    bare = token.rstrip(".").lower()
    if bare in ABBREVIATIONS:
        return True
    # Initials such as "W." in "George W. Bush" or "J." in "J. Smith".
    return len(bare) == 1 and bare.isalpha() and token[:1].isupper()


class _Quotes:
    """Quotation state of a paragraph, counted once, so that each candidate cut is answered in O(1)."""

    def __init__(self, paragraph: str):
        n = len(paragraph)
        self.straight = [0] * (n + 1)  # straight quotes before offset i
        self.balance = [0] * (n + 1)  # curly opening minus closing quotes before offset i
        for i, ch in enumerate(paragraph):
            self.straight[i + 1] = self.straight[i] + (ch == '"')
            self.balance[i + 1] = self.balance[i] + (ch in "“«") - (ch in "”»")
        self.last_straight = paragraph.rfind('"')
        self.last_curly_close = max(paragraph.rfind("”"), paragraph.rfind("»"))

    def inside_open_quote(self, offset: int) -> bool:
        """True when `offset` lies inside a quotation that is closed later in the same paragraph."""
        if self.balance[offset] > 0 and self.last_curly_close >= offset:
            return True
        return self.straight[offset] % 2 == 1 and self.last_straight >= offset


def _split_paragraph(doc: str, start: int, end: int) -> list[tuple[int, int]]:
    para = doc[start:end]
    quotes = _Quotes(para)
    cuts: list[int] = []
    for match in _END.finditer(para):
        stop = match.end()
        if match.group().startswith(".") and len(match.group()) == 1:
            token = _word_before(para, match.end())
            if _is_abbreviation(token):
                continue
        # Absorb closing quotes, brackets and citation markers into the ending sentence.
        while True:
            if stop < len(para) and para[stop] in _CLOSERS:
                stop += 1
                continue
            citation = _CITATION.match(para, stop)
            if citation:
                stop = citation.end()
                continue
            break
        if stop >= len(para) or not para[stop].isspace():
            continue
        following = _NONSPACE.search(para, stop)
        if following is None:
            continue
        first = following.group()
        if not (first.isupper() or first.isdigit() or first in _QUOTES_OPEN or first in "[(‘'"):
            continue
        if quotes.inside_open_quote(stop):
            continue
        cuts.append(stop)
    spans: list[tuple[int, int]] = []
    prev = 0
    for cut in [*cuts, len(para)]:
        piece = para[prev:cut]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece.rstrip())
        if trail > lead:
            spans.extend(_bounded(doc, start + prev + lead, start + prev + trail))
        prev = cut
    return spans


def _bounded(doc: str, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut into pieces of at most MAX_SENTENCE_CHARS, at the last whitespace where there is one."""
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        limit = start + MAX_SENTENCE_CHARS
        cut = limit
        for i in range(limit, start, -1):
            if doc[i - 1].isspace():
                cut = i - 1
                break
        piece_end = cut
        while piece_end > start and doc[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end <= start:  # only whitespace before the cut: cut at the limit
            piece_end = cut = limit
        pieces.append((start, piece_end))
        start = cut
        while start < end and doc[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def split_sentences(text: str) -> list[SentenceSpan]:
    """Split a document into sentences that tile it: in order, non-overlapping, whitespace between.
    The last documents' splits are kept: the service counts a request's sentences before the predictor
    splits the same texts again."""
    return list(_split_cached(text))


@lru_cache(maxsize=128)
def _split_cached(text: str) -> tuple[SentenceSpan, ...]:
    spans: list[SentenceSpan] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        line_end = offset + len(line.rstrip("\r\n"))
        for s, e in _split_paragraph(text, offset, line_end):
            spans.append(SentenceSpan(s, e, text[s:e]))
        offset += len(line)
    return tuple(spans)
