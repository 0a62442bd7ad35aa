"""Style augmentation: authored sentences rewritten into the forms real news takes.

The authored corpus is written as clean prose, while news arrives as headlines ("Urgent | …", no final
stop, Title Case), social posts (hashtags, emoji) and wire copy (datelines, closing attributions). A
restyled copy changes only text outside the marked mentions, so spans shift by a known offset and every
label stays true. Choices are seeded by the sentence and the copy number, so a recipe restyles alike on
every machine.
"""

from __future__ import annotations

import hashlib
import random

HEADLINE_PREFIXES = ("Urgent | ", "BREAKING: ", "Breaking | ", "Live updates: ", "Watch: ", "Exclusive: ",
                     "Analysis: ", "Update: ", "Just in: ", "Latest: ")
HASHTAGS = ("#Gaza", "#breaking", "#news", "#MiddleEast", "#ceasefire", "#war", "#WorldNews", "#BreakingNews",
            "#Ukraine", "#diplomacy")
EMOJI = ("\U0001F534", "\u26A1", "\U0001F4CD", "\U0001F6A8", "\U0001F447", "\u203C\uFE0F")
DATELINES = ("GAZA CITY, Oct 14 (Reuters) - ", "JERUSALEM (AP) \u2014 ", "MOSCOW, Nov 2 (AFP) - ",
             "BEIRUT (Reuters) - ", "CAIRO \u2014 ", "WASHINGTON, Dec 3 (Reuters) - ", "TEHRAN (AFP) - ",
             "RAMALLAH, West Bank (AP) \u2014 ")
ATTRIBUTIONS = (", officials said.", ", local media reported.", ", according to a statement.",
                ", sources told the agency.", ", state media said.")
STYLES = ("headline", "social", "wire")


def restyle(row: dict, copy: int, seed: int) -> dict:
    """A copy of a training row (text + sorted spans) in one news style; labels are unchanged."""
    digest = hashlib.sha256(f"{seed}:{copy}:{row['text']}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    style = rng.choice(STYLES)
    text, spans = row["text"], [list(s) for s in row["spans"]]
    last = max(e for _, e in spans)
    if style == "headline":
        text = _drop_final_stop(text, last)
        if rng.random() < 0.5:
            text = _title_case(text)
        prefix, suffix = (rng.choice(HEADLINE_PREFIXES) if rng.random() < 0.7 else ""), ""
    elif style == "social":
        tags = " ".join(rng.sample(HASHTAGS, rng.randint(1, 3)))
        prefix = rng.choice(EMOJI) + " " if rng.random() < 0.5 else ""
        suffix = " " + tags + (" " + rng.choice(EMOJI) if rng.random() < 0.5 else "")
    else:
        prefix = rng.choice(DATELINES) if rng.random() < 0.6 else ""
        suffix = ""
        attributed = any(cue in text for cue in ('"', "\u201d", " said", " says", "according to", " told "))
        if text.endswith(".") and not attributed and len(text) - 1 >= last and (not prefix or rng.random() < 0.5):
            text, suffix = text[:-1], rng.choice(ATTRIBUTIONS)
    shift = len(prefix)
    return {**row, "text": prefix + text + suffix, "spans": [[s + shift, e + shift] for s, e in spans],
            "style": style}


def _drop_final_stop(text: str, last: int) -> str:
    """Headlines carry no final full stop (only when it lies after the last mention)."""
    if text.endswith(".") and len(text) - 1 >= last:
        return text[:-1]
    return text


def _title_case(text: str) -> str:
    """Headline Title Case that keeps every character offset (a word whose upper case changes length stays)."""
    out, start = [], True
    for ch in text:
        upper = ch.upper()
        out.append(upper if start and ch.isalpha() and len(upper) == 1 else ch)
        start = ch.isspace()
    return "".join(out)
