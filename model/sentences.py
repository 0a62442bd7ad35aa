"""Rule-based sentence splitting that keeps character offsets into the document.

News text breaks the usual splitters in predictable places: "U.S." and "Oct. 7" are not sentence
ends, a closing quote or a Wikipedia citation marker ("[17]", "[citation needed]") after the full
stop belongs to the sentence it closes, and a full stop inside a quotation that closes later in
the same paragraph does not end the reporting sentence. Line breaks always end a sentence because
headlines, date lines and captions carry no final punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    ["u.s", "u.n", "u.k", "u.s.s.r", "u.s.a", "e.u", "mr", "mrs", "ms", "dr", "gen", "col", "lt", "sgt", "capt", "gov", "sen", "rep", "st", "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "no", "nos", "vs", "e.g", "i.e", "a.m", "p.m", "inc", "ltd", "co", "corp", "jr", "sr", "prof", "rev", "est", "approx", "dept", "fig", "ca"]
)

_QUOTES_OPEN = "\"“«"
_QUOTES_CLOSE = "\"”»"
_CLOSERS = "\"'”’»)]"
# A citation marker glued to the end of a sentence: [17], [citation needed], [sic].
_CITATION = re.compile(r"\[(?:\d+|citation needed|sic|note \d+)\]")
_END = re.compile(r"[.!?]+")


@dataclass(frozen=True)
class SentenceSpan:
    """One sentence: document offsets (start inclusive, end exclusive) and its text."""

    start: int
    end: int
    text: str


def _word_before(text: str, pos: int) -> str:
    """The token that ends at `pos` (exclusive), without the trailing full stop."""
    i = pos
    while i > 0 and not text[i - 1].isspace() and text[i - 1] not in "(\"“[":
        i -= 1
    return text[i:pos]


def _is_abbreviation(token: str) -> bool:
    bare = token.rstrip(".").lower()
    if bare in ABBREVIATIONS:
        return True
    # Initials such as "W." in "George W. Bush" or "J." in "J. Smith".
    return len(bare) == 1 and bare.isalpha() and token[:1].isupper()


def _inside_open_quote(paragraph: str, offset: int) -> bool:
    """True when `offset` lies inside a quotation that is closed later in the same paragraph."""
    before = paragraph[:offset]
    after = paragraph[offset:]
    straight = before.count('"')
    curly_open = sum(before.count(q) for q in "“«")
    curly_close = sum(before.count(q) for q in "”»")
    if curly_open > curly_close and any(q in after for q in "”»"):
        return True
    return straight % 2 == 1 and '"' in after


def _split_paragraph(doc: str, start: int, end: int) -> list[tuple[int, int]]:
    para = doc[start:end]
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
        rest = para[stop:].lstrip()
        if not rest:
            continue
        first = rest[0]
        if not (first.isupper() or first.isdigit() or first in _QUOTES_OPEN or first in "[(‘'"):
            continue
        if _inside_open_quote(para, stop):
            continue
        cuts.append(stop)
    spans: list[tuple[int, int]] = []
    prev = 0
    for cut in [*cuts, len(para)]:
        piece = para[prev:cut]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece.rstrip())
        if trail > lead:
            spans.append((start + prev + lead, start + prev + trail))
        prev = cut
    return spans


def split_sentences(text: str) -> list[SentenceSpan]:
    """Split a document into sentences that tile it: in order, non-overlapping, whitespace between."""
    spans: list[SentenceSpan] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        line_end = offset + len(line.rstrip("\r\n"))
        for s, e in _split_paragraph(text, offset, line_end):
            spans.append(SentenceSpan(s, e, text[s:e]))
        offset += len(line)
    return spans
