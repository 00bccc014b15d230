"""The documentation site reads offline: nothing it needs comes from a CDN.

The site is built once (`mkdocs build --strict`, as .ci/run does) into a temporary folder. Its HTML
must name no external script, stylesheet or font (Material's Google Fonts are off, `theme.font:
false`), and docs/architecture.md's ```mermaid diagrams must be drawn by the bundled
docs/assets/javascripts/mermaid.min.js: the page is opened from a local http.server in headless
Chromium whose host resolver fails every name, and every request it makes is read from its
performance log: all of it is local but the repository facts that decorate the header's
repository link (GitHub's API), which the page does without. Without chromium and chromedriver the
browser test skips, except under CI=true, where it fails (.ci/run installs them).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser import headless_chromium, require_chromium
from conftest import need

ROOT = Path(__file__).resolve().parent.parent
# What a page may not load from elsewhere: any http(s) script or stylesheet, and the CDNs by name anywhere
# in a tag (Material's defaults: Google Fonts, and mermaid from unpkg or jsdelivr).
EXTERNAL_TAG = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//[^>]*>"""
    r"""|<link\b[^>]*\brel\s*=\s*["']?[^"'>]*(?:stylesheet|preload|preconnect|modulepreload)[^>]*>""",
    re.IGNORECASE,
)
CDN = re.compile(r"fonts\.googleapis|fonts\.gstatic|unpkg\.com|jsdelivr", re.IGNORECASE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("mkdocs", "the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    return out


def test_no_page_loads_from_a_cdn(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    found = []
    for page in pages:
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", page.read_text(encoding="utf-8"), re.IGNORECASE):
            external = re.search(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", tag, re.IGNORECASE)
            if CDN.search(tag) or (external and (tag.lower().startswith("<script")
                                                 or EXTERNAL_TAG.match(tag))):
                found.append(f"{page.relative_to(site)}: {tag}")
    assert not found, "external scripts, stylesheets or fonts:\n" + "\n".join(found)
    css = [p for p in site.rglob("*.css") if CDN.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert not css, f"stylesheets naming a CDN: {css}"
    # The bundled mermaid is in the site, and the architecture page loads it.
    assert (site / "assets/javascripts/mermaid.min.js").stat().st_size > 1_000_000
    assert "assets/javascripts/mermaid.min.js" in (site / "architecture/index.html").read_text(encoding="utf-8")


def test_every_page_links_the_repository_and_its_source(site: Path) -> None:
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    repo, edit = config["repo_url"].rstrip("/"), config["edit_uri"].strip("/")
    for source in sorted((ROOT / "docs").rglob("*.md")):
        name = source.relative_to(ROOT / "docs").as_posix()
        built = site / ("index.html" if name == "index.md" else name.removesuffix(".md") + "/index.html")
        if not built.is_file():  # a page outside the site (not in nav and not built)
            continue
        html = built.read_text(encoding="utf-8")
        assert f'href="{repo}"' in html, name
        assert f'href="{repo}/{edit}/{name}"' in html, name


@pytest.fixture(scope="module")
def server(site: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def offline_browser():
    require_chromium()
    # Offline: every host name fails to resolve; only the local server's address is reachable.
    # --no-proxy-server: a proxy named in the machine's environment would resolve names itself (and answer with
    # its own error page), so the rule would not hold there.
    with headless_chromium("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-proxy-server",
                           capabilities={"goog:loggingPrefs": {"performance": "ALL"}}) as driver:
        yield driver


def unreachable(browser, url: str) -> str:
    """Why `url` could not be loaded, or "" where it loaded. Chromedriver either raises the network error or
    (depending on its version) lands on Chrome's error page without raising: both count as unreachable."""
    from selenium.common.exceptions import WebDriverException

    try:
        browser.get(url)
    except WebDriverException as error:
        return error.msg or str(error)
    if browser.current_url.startswith("chrome-error://"):
        return browser.execute_script("return document.body ? document.body.innerText : ''") or "chrome-error"
    # A script fetch from the page is the request Material itself would make.
    return browser.execute_async_script("""const done = arguments[arguments.length - 1];
        fetch(arguments[0], {mode: 'no-cors'}).then(() => done(''), e => done(String(e)));""", url)


def requested(browser) -> list[str]:
    """Every URL the browser asked for since the last call (Chrome's performance log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def drawn_diagrams(browser) -> list[dict]:
    """The SVGs inside the page's .mermaid blocks. Material draws each into a closed shadow root, which
    the page's scripts cannot see: the DevTools protocol's DOM, with shadow roots pierced, can."""
    root = browser.execute_cdp_cmd("DOM.getDocument", {"depth": -1, "pierce": True})["root"]

    def walk(node, inside_mermaid=False):
        attributes = dict(zip(node.get("attributes", [])[::2], node.get("attributes", [])[1::2]))
        inside_mermaid = inside_mermaid or "mermaid" in attributes.get("class", "").split()
        if inside_mermaid and node.get("localName") == "svg":
            yield node
            return
        for child in node.get("children", []) + node.get("shadowRoots", []):
            yield from walk(child, inside_mermaid)

    def count(node, stats):
        attributes = dict(zip(node.get("attributes", [])[::2], node.get("attributes", [])[1::2]))
        if node.get("localName") == "g" and "node" in attributes.get("class", "").split():
            stats["nodes"] += 1
        if node.get("nodeType") == 3 and node.get("nodeValue", "").strip():
            stats["labels"].append(node["nodeValue"].strip())
        for child in node.get("children", []):
            count(child, stats)
        return stats

    return [count(svg, {"nodes": 0, "labels": []}) for svg in walk(root)]


def test_the_architecture_diagram_draws_offline(site: Path, server: str, offline_browser) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser = offline_browser
    # The network really is blocked: the CDN Material would fetch mermaid from does not resolve.
    assert unreachable(browser, "https://unpkg.com/mermaid@11/dist/mermaid.min.js")
    assert not unreachable(browser, f"{server}/architecture/"), "the local server should answer"
    requested(browser)

    browser.get(f"{server}/architecture/")
    expected = (site / "architecture/index.html").read_text(encoding="utf-8").count('class="mermaid"')
    assert expected > 0
    try:
        WebDriverWait(browser, 20, poll_frequency=0.2).until(lambda b: len(drawn_diagrams(b)) == expected)
    except TimeoutException:
        shown = browser.execute_script("""return [...document.querySelectorAll('article pre')]
            .map(p => p.textContent.trim()).filter(t => t.startsWith('flowchart')).map(t => t.slice(0, 60))""")
        pytest.fail(f"{len(drawn_diagrams(browser))} of {expected} diagrams drawn offline; shown as text: {shown}")
    for svg in drawn_diagrams(browser):
        # A drawn flowchart: boxes with their labels, not the ```mermaid source as text.
        assert svg["nodes"] > 3 and svg["labels"], svg
    assert "flowchart TD" not in browser.execute_script("return document.querySelector('article').innerText")
    # The one request allowed out: Material's header asks GitHub's API for the repository's facts (version,
    # stars, forks; mkdocs.yml repo_url), which only decorate the repository link and are left out offline.
    local = (server, "data:", "blob:", "https://api.github.com/repos/")
    outside = [url for url in requested(browser) if not url.startswith(local)]
    assert not outside, f"the page asked the network for: {outside}"
