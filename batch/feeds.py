"""Input readers for batch scoring: feeds, article tables and folders of documents become `Article`s.

Every reader yields `Article`s and `InputError`s in a fixed order, so that reading the same inputs
twice gives the same stream — resuming a killed run depends on it. A bad item never stops the
stream: it becomes an `InputError` (input, item, reason) and the next item is read.
"""

from __future__ import annotations

import calendar
import codecs
import csv
import datetime as dt
import email.utils
import hashlib
import io
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

FEED_EXTENSIONS = {".rss", ".atom", ".xml", ".rdf"}
JSONL_EXTENSIONS = {".jsonl", ".ndjson"}
CSV_EXTENSIONS = {".csv", ".tsv"}
HTML_EXTENSIONS = {".html", ".htm"}
TEXT_EXTENSIONS = {".txt"}


@dataclass(frozen=True)
class Article:
    """One document to score with its provenance. `content_hash` identifies it across runs."""

    doc_id: str
    text: str
    input: str
    item: str
    title: str | None = None
    url: str | None = None
    outlet: str | None = None
    published: str | None = None  # ISO 8601, UTC when the source gave a zone

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class InputError:
    input: str
    item: str
    reason: str

    def as_dict(self) -> dict:
        return {"input": self.input, "item": self.item, "reason": self.reason}


@dataclass(frozen=True)
class FieldMap:
    """Column names of article tables (JSONL, CSV). None means: the first default name present."""

    id: str | None = None
    text: str | None = None
    title: str | None = None
    url: str | None = None
    source: str | None = None
    date: str | None = None

    DEFAULTS = {
        "id": ("id", "doc_id", "guid", "article_id"),
        "text": ("text", "content", "body", "article", "summary"),
        "title": ("title", "headline"),
        "url": ("url", "link"),
        "source": ("source", "outlet", "publisher", "site", "sitename"),
        "date": ("date", "published", "published_at", "pubdate", "datetime", "timestamp"),
    }

    def column(self, name: str, columns: Iterable[str]) -> str | None:
        chosen = getattr(self, name)
        if chosen is not None:
            return chosen
        lowered = {c.lower(): c for c in columns}
        return next((lowered[c] for c in self.DEFAULTS[name] if c in lowered), None)


def content_hash(text: str) -> str:
    """sha256 of the text with whitespace collapsed: the same article re-wrapped is the same document."""
    normal = " ".join(text.split())
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def normalize_url(url: str) -> str:
    """The URL without its fragment, with a lower-case scheme/host and no trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def normalize_date(value) -> str | None:
    """An ISO 8601 string for a date given as ISO text, RFC 822 text, a time.struct_time or epoch
    seconds; None when it cannot be read (an unreadable date is no reason to drop an article)."""
    if value is None or value == "":
        return None
    when: dt.datetime | None = None
    if isinstance(value, (int, float)):
        when = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    elif hasattr(value, "tm_year"):
        when = dt.datetime.fromtimestamp(calendar.timegm(value), tz=dt.UTC)  # feedparser's *_parsed are UTC
    else:
        text = str(value).strip()
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
    # A date without a zone is taken as UTC, so that every row compares on one clock.
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return when.isoformat()


class _TextExtractor(HTMLParser):
    """HTML fragment → text, a line break at each block element (feed summaries are short fragments
    where article extraction would throw the text away)."""

    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "section"}
    SKIP = {"script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def fragment_text(html: str) -> str:
    """Text of an HTML fragment: tags dropped, entities decoded, one paragraph per line."""
    if "<" not in html and "&" not in html:
        return html.strip()
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"expected UTF-8 text, found an undecodable byte 0x{data[exc.start]:02x} at byte {exc.start}; "
            f"convert {name} to UTF-8"
        ) from exc
    return text[1:] if text.startswith("\ufeff") else text


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
# WHATWG: a page labelled latin-1 is decoded as windows-1252 (its superset), as browsers do.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252",
                    "ascii": "cp1252", "iso8859-1": "cp1252"}


def decode_html(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding) of an HTML page: a byte-order mark, else the charset its <meta> declares, else UTF-8,
    else the encoding charset-normalizer detects; undecodable bytes of a declared or detected encoding
    become U+FFFD instead of refusing the page."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace"), codec
    declared = _META_CHARSET.search(data[:8192])
    if declared:
        label = declared.group(1).decode("ascii", "replace").strip().lower()
        label = _CHARSET_ALIASES.get(label, label)
        try:
            info = codecs.lookup(label)
            # Only text encodings: "hex", "base64", "rot13", "idna", "undefined" are codecs too.
            text_codec = getattr(info, "_is_text_encoding", True) and info.name not in (
                "idna", "punycode", "undefined", "raw-unicode-escape", "unicode-escape")
            declared_codec: str | None = info.name if text_codec else None
        except LookupError:
            declared_codec = None
        if declared_codec is not None and declared_codec not in ("utf-16-le", "utf-16-be", "utf-16"):
            return data.decode(declared_codec, errors="replace"), declared_codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1_000_000]).best()
    codec = best.encoding if best is not None else "cp1252"
    # Detectors cannot tell the Latin single-byte code pages apart on a few accented letters (é à ç read
    # as cp1250 or latin-2); the web's legacy default for them is windows-1252 (WHATWG), so that wins.
    if codec.replace("_", "-").startswith(("cp125", "iso8859", "iso-8859", "latin", "mac")) and codec not in (
            "cp1251", "cp1253", "cp1255", "cp1256", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8"):
        codec = "cp1252"
    return data.decode(codec, errors="replace"), codec


def sniff(data: bytes, name: str = "") -> str:
    """The kind of an input: 'feed', 'html', 'jsonl', 'csv' or 'text', by extension, then by content."""
    suffix = Path(urlsplit(name).path if "://" in name else name).suffix.lower()
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if suffix in JSONL_EXTENSIONS:
        return "jsonl"
    if suffix in CSV_EXTENSIONS:
        return "csv"
    if suffix in HTML_EXTENSIONS:
        return "html"
    if suffix in TEXT_EXTENSIONS:
        return "text"
    if suffix in FEED_EXTENSIONS or re.search(rb"<(rss|feed|rdf:rdf)[\s>]", head):
        return "feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "html"
    if head.startswith(b"{"):
        return "jsonl"
    return "text"


# -- readers ------------------------------------------------------------------------------------


def read_feed(data: bytes, name: str) -> Iterator[Article | InputError]:
    """RSS or Atom entries. A malformed feed (feedparser's `bozo`) is reported and its parsed entries kept."""
    import feedparser

    parsed = feedparser.parse(data)
    if parsed.get("bozo"):
        found = parsed.get("bozo_exception")
        yield InputError(
            name,
            "(feed)",
            f"malformed feed: expected well-formed RSS or Atom XML, found {type(found).__name__}: {found}; "
            f"the {len(parsed.entries)} entries that parsed are still scored",
        )
    outlet = parsed.feed.get("title") or None
    if not parsed.entries and not parsed.get("bozo"):
        yield InputError(name, "(feed)", "expected RSS items or Atom entries, found none")
    for number, entry in enumerate(parsed.entries, start=1):
        item = entry.get("id") or entry.get("link") or f"entry {number}"
        raw = ""
        for content in entry.get("content") or []:
            if content.get("value"):
                raw = content["value"]
                break
        raw = raw or entry.get("summary") or ""
        text = fragment_text(raw)
        if not text.strip():
            yield InputError(name, item, "expected an entry with a summary or content, found no text")
            continue
        published = entry.get("published_parsed") or entry.get("updated_parsed")
        yield Article(
            doc_id=str(item),
            text=text,
            input=name,
            item=str(item),
            title=entry.get("title") or None,
            url=entry.get("link") or None,
            outlet=outlet,
            published=normalize_date(published) if published else normalize_date(entry.get("published")),
        )


def _record_article(record: dict, fields: FieldMap, name: str, item: str, number: int) -> Article | InputError:
    columns = list(record)
    text_col = fields.column("text", columns)
    if text_col is None or text_col not in record:
        wanted = fields.text or "/".join(FieldMap.DEFAULTS["text"])
        return InputError(
            name,
            item,
            f"expected a text field ({wanted}), found fields {columns}; name the text column with --text-field",
        )
    text = record.get(text_col)
    if not isinstance(text, str) or not text.strip():
        return InputError(name, item, f"expected text in field {text_col!r}, found {json.dumps(text)[:60]}")

    def get(key: str) -> str | None:
        col = fields.column(key, columns)
        value = record.get(col) if col else None
        return None if value is None or value == "" else str(value)

    doc_id = get("id") or f"{Path(name).stem}:{number}"
    return Article(
        doc_id=doc_id,
        text=text,
        input=name,
        item=item,
        title=get("title"),
        url=get("url"),
        outlet=get("source"),
        published=normalize_date(get("date")),
    )


def read_jsonl(data: bytes | BinaryIO, name: str, fields: FieldMap) -> Iterator[Article | InputError]:
    """Articles of a JSONL file, read line by line from bytes or a binary stream (memory stays flat however
    long the file); a line that is not UTF-8 is reported and the others are kept."""
    handle = io.BytesIO(data) if isinstance(data, bytes) else data
    for number, line in enumerate(handle, start=1):
        item = f"line {number}"
        try:
            raw = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield InputError(name, item, f"expected UTF-8 text, found an undecodable byte 0x{line[exc.start]:02x}; "
                             f"convert {name} to UTF-8")
            continue
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield InputError(name, item, f"expected one JSON object per line, found invalid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield InputError(name, item, f"expected a JSON object, found {type(record).__name__}")
            continue
        yield _record_article(record, fields, name, item, number)


def read_csv(data: bytes | BinaryIO, name: str, fields: FieldMap) -> Iterator[Article | InputError]:
    """Articles of a CSV/TSV file, read row by row from bytes or a binary stream."""
    handle = io.BytesIO(data) if isinstance(data, bytes) else data
    csv.field_size_limit(sys.maxsize)  # article bodies are longer than csv's 128 KiB default
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text, delimiter=delimiter)
    columns = reader.fieldnames or []
    text_col = fields.column("text", columns)
    if text_col is None or text_col not in columns:
        wanted = fields.text or "/".join(FieldMap.DEFAULTS["text"])
        yield InputError(
            name,
            "(header)",
            f"expected a text column ({wanted}), found columns {columns}; name it with --text-field",
        )
        return
    try:
        for number, row in enumerate(reader, start=1):
            if None in row:
                yield InputError(name, f"row {number}", f"expected {len(columns)} columns, found more")
                continue
            yield _record_article(row, fields, name, f"row {number}", number)
    except csv.Error as exc:
        yield InputError(name, f"row {reader.line_num}", f"expected CSV, found a malformed row ({exc})")
    except UnicodeDecodeError as exc:
        yield InputError(name, f"row {reader.line_num + 1}", f"expected UTF-8 text, found an undecodable byte "
                         f"0x{exc.object[exc.start]:02x}; convert {name} to UTF-8 (rows before it were read)")
    finally:
        text.detach()


def read_html(data: bytes, name: str, item: str | None = None) -> Iterator[Article | InputError]:
    """One HTML page reduced to its article text with trafilatura."""
    import trafilatura

    item = item or name
    try:
        html, _ = decode_html(data, item)
    except (ValueError, LookupError) as exc:
        yield InputError(name, item, str(exc))
        return
    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    text = getattr(doc, "text", None) if doc is not None else None
    if not text or not text.strip():
        yield InputError(name, item, "expected an HTML page with article text, found none trafilatura could extract")
        return
    url = getattr(doc, "url", None) or (name if "://" in name else None)
    yield Article(
        doc_id=Path(urlsplit(item).path).stem or item,
        text=text,
        input=name,
        item=item,
        title=getattr(doc, "title", None),
        url=url,
        outlet=getattr(doc, "sitename", None),
        published=normalize_date(getattr(doc, "date", None)),
    )


def read_text(data: bytes, name: str, item: str | None = None) -> Iterator[Article | InputError]:
    item = item or name
    try:
        text = _decode(data, item)
    except ValueError as exc:
        yield InputError(name, item, str(exc))
        return
    if not text.strip():
        yield InputError(name, item, "expected a document with text, found an empty file")
        return
    yield Article(doc_id=Path(item).stem if item != "-" else "stdin", text=text, input=name, item=item)


STREAMED_KINDS = ("jsonl", "csv")


def read_stream(handle: BinaryIO, name: str, fields: FieldMap) -> Iterator[Article | InputError]:
    """An input read from a binary stream: JSONL and CSV row by row (bounded memory), other kinds (a feed,
    a page, a text) whole, as they are one document or one XML tree."""
    head = handle.peek(2048)[:2048] if hasattr(handle, "peek") else b""
    kind = sniff(head, name)
    if kind == "jsonl":
        yield from read_jsonl(handle, name, fields)
    elif kind == "csv":
        yield from read_csv(handle, name, fields)
    else:
        yield from read_bytes(handle.read(), name, fields)


def read_bytes(data: bytes, name: str, fields: FieldMap) -> Iterator[Article | InputError]:
    kind = sniff(data, name)
    if kind == "feed":
        yield from read_feed(data, name)
    elif kind == "jsonl":
        yield from read_jsonl(data, name, fields)
    elif kind == "csv":
        yield from read_csv(data, name, fields)
    elif kind == "html":
        yield from read_html(data, name)
    else:
        yield from read_text(data, name)


def fetch(url: str, timeout: float = 30.0) -> bytes:
    import httpx

    response = httpx.get(
        url, timeout=timeout, follow_redirects=True, headers={"User-Agent": "stancelens (batch scoring)"}
    )
    response.raise_for_status()
    return response.content


@dataclass
class InputReader:
    """Reads the inputs a user named ('-' for stdin, files, folders, http(s) URLs) in order."""

    fields: FieldMap = field(default_factory=FieldMap)
    stdin: Callable[[], bytes | BinaryIO] = lambda: sys.stdin.buffer
    fetcher: Callable[[str], bytes] = fetch

    def read(self, specs: Iterable[str]) -> Iterator[Article | InputError]:
        for spec in specs:
            yield from self._read_one(spec)

    def _read_one(self, spec: str) -> Iterator[Article | InputError]:
        if spec == "-":
            source = self.stdin()
            stream = io.BufferedReader(io.BytesIO(source)) if isinstance(source, bytes) else source
            if not hasattr(stream, "peek"):
                stream = io.BufferedReader(stream)  # type: ignore[arg-type,type-var]
            yield from read_stream(stream, "-", self.fields)
            return
        if spec.startswith(("http://", "https://")):
            try:
                data = self.fetcher(spec)
            except Exception as exc:  # network errors of every kind become an error row, not a crash
                yield InputError(spec, spec, f"expected to download it, found {type(exc).__name__}: {exc}")
                return
            yield from read_bytes(data, spec, self.fields)
            return
        path = Path(spec)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_EXTENSIONS | HTML_EXTENSIONS
            )
            if not files:
                yield InputError(spec, "(folder)", "expected .txt or .html files in the folder, found none")
            for p in files:
                try:
                    data = p.read_bytes()
                except OSError as exc:
                    yield InputError(spec, str(p), f"expected a readable file, found {exc.strerror}")
                    continue
                reader = read_html if p.suffix.lower() in HTML_EXTENSIONS else read_text
                yield from reader(data, spec, str(p))
            return
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            yield InputError(
                spec,
                spec,
                "no such file; give a feed, a JSONL/CSV of articles, a folder, an http(s) URL or - for stdin",
            )
            return
        except OSError as exc:
            yield InputError(spec, spec, f"expected a readable file, found {exc.strerror}")
            return
        with handle:
            yield from read_stream(handle, spec, self.fields)


@dataclass
class Deduplicator:
    """Drops an article whose URL or content hash was seen before; the first one seen is kept. The keys live
    in a SQLite file (`path`, e.g. in the run's parts folder) so that memory stays flat for any number of
    articles; without a path, in memory."""

    path: Path | None = None
    dropped: int = 0
    _db: sqlite3.Connection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)  # rebuilt from the inputs on every run: they are read again
        self._db = sqlite3.connect(str(self.path) if self.path is not None else ":memory:", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")

    def keep(self, article: Article) -> bool:
        assert self._db is not None
        url = normalize_url(article.url) if article.url else None
        keys = [("h:" + article.content_hash,)] + ([("u:" + url,)] if url is not None else [])
        found = self._db.execute(f"SELECT 1 FROM seen WHERE key IN ({','.join('?' * len(keys))}) LIMIT 1",
                                 [k for (k,) in keys]).fetchone()
        if found:
            self.dropped += 1
            return False
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", keys)
        return True

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
