"""Browser tests: Debian's Chromium driven by the pinned Playwright, against the real service.

- ``live``: the service as ``make run`` starts it (``python -m service.serve``, the embedded
  Redis, or on the REDIS_URL pass a redis-server of its own), once per session, through the
  devtools process harness (tests/servicehelpers.py), with the host pages' origin in
  ALLOWED_ORIGINS.
- ``host``: a second origin (a plain HTTP server in a thread) serving the embedding sites'
  pages a test writes, each with the headers it chooses (a strict CSP, hostile CSS...). Its
  ``other_origin`` is the same server under ``localhost``: an origin the service does not list.
- ``browser``: one Chromium per session; ``open_context`` makes isolated contexts (cookies,
  storage, JavaScript on or off), each with a collector of CSP violations installed before any
  page script runs; ``page`` is a page of a fresh context, its console and errors recorded.
- :func:`axe_violations` runs the pinned axe-core inside a page (open shadow roots included)
  for the WCAG 2.1 AA tags and returns what it found.

Every test here is marked ``browser`` and ``slow``: ``make test`` runs them (it installs the
browser first, see devtools/browser-deps), ``make check`` does not. A missing browser is an
error, never a skip.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from devtools.processes import ROOT, free_port
from tests.servicehelpers import MODERATOR_TOKEN, RedisServer, Service

CHROMIUM = "/usr/bin/chromium"
# A second moderator of the live service (claims and versions are about two at once).
OTHER_MODERATOR = "bea"
OTHER_MODERATOR_TOKEN = "browser-test-second-moderator-0123456789"
AXE_SOURCE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


# -- the embedding sites' origin --------------------------------------------------------------


@dataclass
class HostPage:
    body: bytes
    headers: dict[str, str]


@dataclass
class Host:
    """Pages of an embedding site, served from an origin of their own."""

    port: int
    pages: dict[str, HostPage] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_origin(self) -> str:
        """The same server under a name the service's ALLOWED_ORIGINS does not list."""
        return f"http://localhost:{self.port}"

    def page(self, path: str, html: str, headers: dict[str, str] | None = None) -> str:
        """Serve ``html`` at ``path`` (with ``headers``); its URL on :attr:`origin`."""
        self.pages[path] = HostPage(html.encode(), headers or {})
        return self.origin + path


def _handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            page = host.pages.get(self.path.split("?", 1)[0])
            if page is None:
                self.send_error(404)
                return
            self.send_response(200)
            headers = {"Content-Type": "text/html; charset=utf-8", **page.headers}
            headers["Content-Length"] = str(len(page.body))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(page.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: the test output is for the tests

    return Handler


@pytest.fixture(scope="session")
def host() -> Iterator[Host]:
    host = Host(free_port())
    server = ThreadingHTTPServer(("127.0.0.1", host.port), _handler(host))
    thread = threading.Thread(target=server.serve_forever, name="host-pages", daemon=True)
    thread.start()
    yield host
    server.shutdown()
    server.server_close()


# -- the service ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, host: Host) -> Iterator[Service]:
    """The real service (gunicorn, two workers) for the whole session, read cache on.

    On the REDIS_URL pass it gets a redis-server of its own (the machine's, as REDIS_URL's):
    a service running all session on the shared server would put its background commands
    (the delivery worker's poll every second) into other tests' INFO commandstats counts."""
    own_redis: RedisServer | None = None
    if os.environ.get("REDIS_URL"):
        own_redis = RedisServer(tmp_path_factory.mktemp("browser-redis"))
        own_redis.start()
    service = Service(
        tmp_path_factory.mktemp("browser-service"),
        workers=2,
        redis_url=own_redis.url if own_redis else "env",
        env={
            "ALLOWED_ORIGINS": host.origin,
            "MODERATOR_TOKENS": f"faults:{MODERATOR_TOKEN},"
            f"{OTHER_MODERATOR}:{OTHER_MODERATOR_TOKEN}",
        },
    )
    service.start()
    try:
        service.put_policy()
        yield service
    finally:
        service.stop()
        if own_redis is not None:
            own_redis.stop()


# -- the browser ------------------------------------------------------------------------------

# Installed in every context before any page script: CSP violations anywhere in the page
# (shadow roots included; the event is composed) land in window.__cspViolations.
CSP_COLLECTOR = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push({
    directive: event.violatedDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample,
  });
}, true);
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs it (devtools/browser-deps), or "
            "apt-get install -y chromium",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        # Debian's build, never Playwright's own download; /dev/shm is not always large.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


OpenContext = Callable[..., BrowserContext]


@pytest.fixture
def open_context(browser: Browser) -> Iterator[OpenContext]:
    """``open_context(**options)``: a fresh context (Playwright's new_context options), with
    the CSP collector installed; all closed after the test."""
    contexts: list[BrowserContext] = []

    def open_one(**options: Any) -> BrowserContext:
        options.setdefault("locale", "en-GB")
        options.setdefault("timezone_id", "UTC")
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        context.add_init_script(CSP_COLLECTOR)
        contexts.append(context)
        return context

    yield open_one
    for context in contexts:
        context.close()


@dataclass
class PageLog:
    """What a page said on its console and which errors it threw."""

    console: list[ConsoleMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def texts(self, kind: str | None = None) -> list[str]:
        return [m.text for m in self.console if kind is None or m.type == kind]


def watch(page: Page) -> PageLog:
    log = PageLog()
    page.on("console", lambda message: log.console.append(message))
    page.on("pageerror", lambda error: log.errors.append(str(error)))
    return log


@pytest.fixture
def page(open_context: OpenContext) -> Page:
    return open_context().new_page()


@pytest.fixture
def page_log(page: Page) -> PageLog:
    return watch(page)


def csp_violations(page: Page) -> list[dict[str, Any]]:
    """The CSP violations the page has reported so far (see CSP_COLLECTOR)."""
    found: list[dict[str, Any]] = page.evaluate("window.__cspViolations")
    return found


def axe_violations(page: Page, include: str | None = None) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 AA violations in the page, or in the element ``include`` selects
    (its open shadow root included). Each violation keeps its id, impact, help and the
    targets of the nodes it found."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE.read_text())
    result: list[dict[str, Any]] = page.evaluate(
        """async ([selector, tags]) => {
            const context = selector ? document.querySelector(selector) : document;
            if (!context) throw new Error('axe: nothing matches ' + selector);
            const result = await axe.run(context, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
            }));
        }""",
        [include, WCAG_21_AA],
    )
    return result
