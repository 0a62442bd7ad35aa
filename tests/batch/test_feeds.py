"""Input readers for `stancelens score`: feeds, article tables, folders, stdin, URLs, de-duplication."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from stancelens.batch.feeds import (
    Article,
    Deduplicator,
    FieldMap,
    InputError,
    InputReader,
    fragment_text,
    normalize_date,
    sniff,
)
from tests.helpers import FEEDS


def read(*specs: str, **kwargs) -> tuple[list[Article], list[InputError]]:
    found = list(InputReader(**kwargs).read([str(s) for s in specs]))
    return [f for f in found if isinstance(f, Article)], [f for f in found if isinstance(f, InputError)]


def test_rss_feed_entries_have_text_outlet_url_and_utc_dates():
    articles, errors = read(FEEDS / "moscow_wire.rss")
    assert errors == []
    assert [a.url for a in articles] == [
        "https://moscow-wire.example/2007/02/hamas-moscow",
        "https://moscow-wire.example/2007/06/putin-abbas",
        "https://moscow-wire.example/2023/10/bogdanov-qatar",
    ]
    first = articles[0]
    assert first.outlet == "Moscow Wire" and first.title == "Hamas delegation in Moscow"
    assert first.published == "2007-02-27T06:30:00+00:00"  # +0300 in the feed
    assert "<p>" not in first.text and "&quot;" not in first.text
    assert first.text.startswith("The organization is visiting Moscow")
    assert len(first.text.splitlines()) > 3  # one paragraph per line survives the HTML


def test_atom_feed_content_is_reduced_to_text():
    articles, errors = read(FEEDS / "tlv_daily.atom")
    assert errors == []
    assert [a.outlet for a in articles] == ["Tel Aviv Daily"] * 2
    assert articles[1].published == "2023-11-02T08:00:00+00:00"
    assert all("<" not in a.text for a in articles)
    assert "Hamas" in articles[0].text


def test_malformed_feed_is_reported_and_its_parsed_entries_kept():
    articles, errors = read(FEEDS / "broken_herald.xml")
    assert [a.url for a in articles] == ["https://herald.example/1", "https://herald.example/2"]
    assert errors[0].item == "(feed)"
    assert errors[0].reason.startswith("malformed feed: expected well-formed RSS or Atom XML")
    assert "still scored" in errors[0].reason


def test_jsonl_articles_with_default_fields_and_bad_lines():
    articles, errors = read(FEEDS / "articles.jsonl")
    assert [a.doc_id for a in articles] == ["jl-1", "jl-2", "jl-dup-content", "jl-dup-url"]
    a = articles[0]
    assert (a.title, a.url, a.outlet, a.published) == (
        "Russia downgrades ties",
        "https://gazeta.example/a/1",
        "Gazeta Test",
        "2007-06-19T00:00:00+00:00",
    )
    assert [(e.item, e.reason.split(" (")[0]) for e in errors] == [
        ("line 3", "expected one JSON object per line, found invalid JSON"),
        ("line 6", "expected a text field"),
    ]
    assert "--text-field" in errors[1].reason


def test_csv_articles_found_by_default_column_names():
    articles, errors = read(FEEDS / "articles.csv")
    assert [(a.doc_id, a.title, a.outlet) for a in articles] == [
        ("csv-1", "Bogdanov and the Hamas delegation", "Levant Post"),
        ("csv-2", "Putin calls Netanyahu", "Levant Post"),
    ]
    assert articles[1].published == "2023-10-27T09:15:00+00:00"
    assert "\n" in articles[0].text  # quoted multi-line fields stay whole
    assert [(e.item, e.reason) for e in errors] == [("row 3", "expected text in field 'body', found \"\"")]


def test_field_options_name_the_columns(tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("key,story,when,paper\nk1,Russia condemned Hamas.,2024-01-05,Daily X\n", encoding="utf-8")
    articles, errors = read(path, fields=FieldMap(id="key", text="story", date="when", source="paper"))
    assert errors == []
    assert (articles[0].doc_id, articles[0].outlet, articles[0].published) == (
        "k1",
        "Daily X",
        "2024-01-05T00:00:00+00:00",
    )
    _, errors = read(path, fields=FieldMap(text="body"))
    assert errors[0].item == "(header)"
    assert "expected a text column (body), found columns ['key', 'story', 'when', 'paper']" in errors[0].reason


def test_folder_of_txt_and_html(tmp_path):
    articles, errors = read(FEEDS / "docs")
    by_id = {a.doc_id: a for a in articles}
    assert set(by_id) == {"putin_abbas", "russia_hosts_hamas"}
    page = by_id["russia_hosts_hamas"]
    assert page.outlet == "Levant Post" and page.title == "Russia hosts Hamas"
    assert page.published == "2023-10-26T00:00:00+00:00"
    assert "Subscribe" not in page.text and "recipes" not in page.text and "All rights" not in page.text
    assert "Hamas" in page.text
    reasons = {Path(e.item).name: e.reason for e in errors}
    assert reasons["empty.txt"] == "expected a document with text, found an empty file"
    assert reasons["latin1.txt"].startswith("expected UTF-8 text, found an undecodable byte 0xe9")
    assert "latin1.txt to UTF-8" in reasons["latin1.txt"]


def test_stdin_is_sniffed_by_content():
    data = (FEEDS / "moscow_wire.rss").read_bytes()
    articles, errors = read("-", stdin=lambda: data)
    assert len(articles) == 3 and errors == []
    articles, _ = read("-", stdin=lambda: b"Russia welcomed the Hamas delegation.\n")
    assert articles[0].doc_id == "stdin"


def test_missing_file_and_failed_download_are_errors_not_crashes():
    def refuse(url: str) -> bytes:
        raise ConnectionError("connection refused")

    articles, errors = read("no/such/file.rss", "https://feeds.invalid/rss", fetcher=refuse)
    assert articles == []
    assert errors[0].reason.startswith("no such file; give a feed")
    assert errors[1].reason == "expected to download it, found ConnectionError: connection refused"


def test_http_feed_is_downloaded(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # a proxy from the environment would not reach 127.0.0.1
    body = (FEEDS / "tlv_daily.atom").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        articles, errors = read(f"http://127.0.0.1:{server.server_port}/feed")
    finally:
        server.shutdown()
    assert errors == [] and [a.outlet for a in articles] == ["Tel Aviv Daily"] * 2


def test_deduplication_by_url_and_by_content():
    articles, _ = read(FEEDS / "moscow_wire.rss", FEEDS / "articles.jsonl")
    dedup = Deduplicator()
    kept = [a.doc_id for a in articles if dedup.keep(a)]
    # jl-dup-content repeats the first wire story (re-wrapped); jl-dup-url is jl-1's page with a fragment
    assert "jl-dup-content" not in kept and "jl-dup-url" not in kept
    assert "jl-1" in kept and dedup.dropped == 2


def test_sniff_and_helpers():
    assert sniff(b"<?xml version='1.0'?><rss version='2.0'>", "feed") == "feed"
    assert sniff(b'<feed xmlns="http://www.w3.org/2005/Atom">', "") == "feed"
    assert sniff(b"<!DOCTYPE html><html>", "page") == "html"
    assert sniff(b'{"text": "x"}', "") == "jsonl"
    assert sniff(b"a,b\n", "x.csv") == "csv"
    assert fragment_text("<p>Russia &amp; Hamas</p><p>met <b>again</b></p>") == "Russia & Hamas\nmet again"
    assert normalize_date("Tue, 27 Feb 2007 09:30:00 +0300") == "2007-02-27T06:30:00+00:00"
    assert normalize_date("not a date") is None


@pytest.mark.parametrize("text", ["Russia  condemned\nHamas.", "Russia condemned Hamas."])
def test_content_hash_ignores_wrapping(text):
    a = Article("a", text, "in", "1")
    assert a.content_hash == Article("b", "Russia condemned Hamas.", "in", "2").content_hash


def test_a_page_declaring_a_codec_that_is_not_text_falls_back_to_utf8():
    from stancelens.batch.feeds import decode_html

    page = '<html><head><meta charset="base64"></head><body>Moscow received Hamas — “talks”.</body></html>'
    text, codec = decode_html(page.encode("utf-8"), "p.html")
    assert codec == "utf-8" and "“talks”" in text
