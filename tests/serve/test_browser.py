"""The web page at `/` driven in real headless Chromium against a real uvicorn server.

The test installs Debian's `chromium` and `chromium-driver` with apt-get when they are missing, and fails
(never skips) when it cannot, so CI always exercises the page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT

SCREENSHOT = Path("/tmp/stancelens-page.png")


def _seed_paragraph() -> str:
    raw = (ROOT / "seeds" / "002_80063097150aad0c.txt").read_text(encoding="utf-8")
    start = raw.index("President Vladimir Putin")
    end = raw.index("personnel carriers.") + len("personnel carriers.")
    return raw[start:end]


def _ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages when they are missing."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    if shutil.which("apt-get") is None:
        pytest.fail("the browser test needs chromium and chromedriver, found neither apt-get nor the "
                    "binaries; install the Debian packages 'chromium' and 'chromium-driver' "
                    "(or put both on PATH)")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]
    for command in (["apt-get", "update", "-qq"], install):
        done = subprocess.run(prefix + command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"the browser test needs chromium and chromedriver; `{' '.join(prefix + command)}` "
                        f"failed with exit code {done.returncode}: {done.stderr.strip()[-800:]}; install the "
                        "Debian packages 'chromium' and 'chromium-driver' by hand and rerun")
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.fail(f"apt-get installed chromium and chromium-driver but found chromium={found[0]} "
                    f"chromedriver={found[1]} on PATH; check the packages' file lists "
                    "(dpkg -L chromium-driver)")
    return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = _ensure_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
def test_page_renders_mentions_framing_and_directed_stances(lexicon_server_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = _seed_paragraph()
    browser.get(lexicon_server_url + "/")
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    assert box.get_attribute("value") == text
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 30).until(lambda d: "ordered pairs" in d.find_element(By.ID, "status").text
                                     or "error" in d.find_element(By.ID, "status").text)
    status = browser.find_element(By.ID, "status").text
    assert "error" not in status, status

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(max(900, height + 200), 4000))  # + the window's own chrome
    browser.save_screenshot(str(SCREENSHOT))

    # What the API says for the same text: the page must show all of it, and nothing else.
    expected = httpx.post(f"{lexicon_server_url}/v1/analyze", json={"documents": [{"id": "page", "text": text}]},
                          timeout=30).json()["documents"][0]

    sentences = browser.find_elements(By.CSS_SELECTOR, "#sentences .sentence")
    assert len(sentences) == len(expected["sentences"]) == 2
    # Each rendered sentence reads as the original text once the actor tags are taken out.
    plain = browser.execute_script(
        "return [...document.querySelectorAll('#sentences .sentence')].map(el => {"
        " const c = el.cloneNode(true); c.querySelectorAll('.tag, .num').forEach(t => t.remove());"
        " return c.textContent; });")
    assert plain == [s["text"] for s in expected["sentences"]]
    first = sentences[0].find_elements(By.CSS_SELECTOR, "span.mention")
    assert [m.get_attribute("data-actor") for m in first] == [
        m["actor"] for m in expected["sentences"][0]["mentions"]]

    mentions = browser.find_elements(By.CSS_SELECTOR, "#sentences span.mention")
    actors = {m.get_attribute("data-actor") for m in mentions}
    assert {"russia", "palestinian_authority", "hamas"} <= actors
    assert len(mentions) == sum(len(s["mentions"]) for s in expected["sentences"])
    texts = {(m.get_attribute("data-actor"), m.get_attribute("data-text")) for m in mentions}
    assert ("russia", "Vladimir Putin") in texts and ("palestinian_authority", "Mahmoud Abbas") in texts

    # "the militant Hamas group": the Hamas mention carries the militant framing, its term is marked; the
    # sentence is the ministry official's report ("said Russia had downgraded …"): reported by russia (§8.4).
    militant = [m for m in mentions if m.get_attribute("data-framing") == "militant"]
    assert [m.get_attribute("data-actor") for m in militant] == ["hamas"]
    assert "militant · reported by russia" in militant[0].text
    terms = browser.find_elements(By.CSS_SELECTOR, "#sentences span.term")
    assert [(t.text, t.get_attribute("data-term-of"), t.get_attribute("data-framing")) for t in terms] == [
        ("militant", "hamas", "militant")]
    unframed = [m for m in mentions if m.get_attribute("data-actor") == "hamas" and m not in militant]
    assert unframed and all(m.get_attribute("data-framing") == "none" for m in unframed)

    rows = browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr")
    rendered = {(int(r.get_attribute("data-sentence")), r.get_attribute("data-source"),
                 r.get_attribute("data-target"), r.find_element(By.CSS_SELECTOR, "td.stance").text)
                for r in rows}
    api = {(s["index"], p["source"], p["target"], p["stance"])
           for s in expected["sentences"] for p in s["pairs"]}
    assert rendered == api and len(rows) == len(api)
    # Directed: Putin's support for Abbas is a row from russia to palestinian_authority, not the reverse.
    assert (0, "russia", "palestinian_authority", "support") in rendered
    assert (0, "palestinian_authority", "russia", "support") not in rendered
    confidence = next(r for r in rows if r.get_attribute("data-source") == "russia"
                      and r.get_attribute("data-target") == "palestinian_authority")
    assert confidence.find_element(By.CSS_SELECTOR, "td.confidence").text.endswith("%")
    assert "lexicon" in browser.find_element(By.ID, "model").text


@pytest.mark.slow
def test_page_shows_what_a_descriptor_refers_to_and_who_speaks(lexicon_server_url, browser):
    """Issue #14: a resolved descriptor shows its antecedent, a reported framing its speaker."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.helpers import PARAGRAPH

    browser.get(lexicon_server_url + "/")
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(PARAGRAPH)
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 30).until(lambda d: "ordered pairs" in d.find_element(By.ID, "status").text
                                     or "error" in d.find_element(By.ID, "status").text)
    resolved = {m.get_attribute("data-text"): m for m in
                browser.find_elements(By.CSS_SELECTOR, "#sentences span.mention[data-via='coreference']")}
    org = resolved["a terrorist organization"]
    assert org.get_attribute("data-actor") == "hamas"
    assert "“Hamas” (sentence 1)" in org.get_attribute("title")
    assert "reported by israel" in org.text
    assert "“Hamas” (sentence 3)" in resolved["the militant group"].get_attribute("title")
    rows = browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr[data-via='coreference']")
    assert any(r.get_attribute("data-source") == "israel" and r.get_attribute("data-target") == "hamas" for r in rows)
