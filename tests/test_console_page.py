"""The moderator console's page and assets over the app (what the browser tests build on)."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from service.pages.console import asset

pytestmark = pytest.mark.usefixtures("redis_client")


class Inventory(HTMLParser):
    """What a page's markup holds that a strict CSP would block or a test looks for."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles = 0
        self.style_attributes: list[str] = []
        self.handler_attributes: list[str] = []
        self.labels: list[str] = []
        self.forms: list[dict[str, str | None]] = []
        self._label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "style":
            self.styles += 1
        if tag == "form":
            self.forms.append(attributes)
        if tag == "label":
            self._label = True
            self.labels.append("")
        for name, _ in attrs:
            if name == "style":
                self.style_attributes.append(tag)
            if name.startswith("on"):
                self.handler_attributes.append(f"{tag} {name}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = False

    def handle_data(self, data: str) -> None:
        if self._label:
            self.labels[-1] += data.strip()


def test_the_page_is_not_stored_and_has_a_strict_policy(client: FlaskClient) -> None:
    response = client.get("/moderate")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["connect-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["form-action"] == directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    # One policy only: the API's data-only headers are not added on top of the page's.
    assert len(response.headers.getlist("Content-Security-Policy")) == 1
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_markup_has_nothing_inline_and_the_labels_the_issue_names(
    client: FlaskClient,
) -> None:
    page = Inventory()
    page.feed(client.get("/moderate").get_data(as_text=True))
    assert page.scripts and all(s.get("src") for s in page.scripts)  # no inline script
    assert page.styles == 0 and page.style_attributes == [] and page.handler_attributes == []
    assert "Moderator token" in page.labels
    # No form can send the token anywhere: none has an action, and the policy forbids posts.
    assert page.forms and all("action" not in f for f in page.forms)
    html = client.get("/moderate").get_data(as_text=True)
    assert re.search(r'<input id="token" type="password"[^>]*>', html)
    assert 'name="' not in re.search(r'<input id="token"[^>]*>', html)[0]  # type: ignore[index]
    assert ">Sign in</button>" in html and ">Sign out</button>" in html


@pytest.mark.parametrize("kind", ["js", "css"])
def test_assets_are_hashed_minified_gzipped_and_cached_for_good(
    client: FlaskClient, kind: str
) -> None:
    found = asset(kind)
    html = client.get("/moderate").get_data(as_text=True)
    url = f"/moderate/{found.name}"
    assert url in html
    plain = client.get(url)
    assert plain.status_code == 200 and plain.data == found.body
    assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert "Content-Encoding" not in plain.headers
    packed = client.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == found.body
    assert len(packed.data) < len(found.body) / 2
    assert client.get(f"/moderate/console.0000000000000000.{kind}").status_code == 404


def test_the_script_never_writes_html() -> None:
    """Text goes in as text: no innerHTML, outerHTML, insertAdjacentHTML or document.write."""
    from service.pages.console import STATIC

    source = (STATIC / "console.js").read_text(encoding="utf-8")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code, sink
