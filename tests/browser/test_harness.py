"""The browser harness checks what it claims to: each collector finds a planted fault.

Without these, a zero from axe or from the CSP collector could mean "nothing looked".
"""

from __future__ import annotations

import requests
from playwright.sync_api import Page

from tests.browser.conftest import Host, axe_violations, csp_violations
from tests.servicehelpers import Service

STRICT = "default-src 'none'; script-src 'self'; style-src 'self'"

SHADOW_FORM = """<!doctype html><html lang="en"><head><title>planted</title></head>
<body><main><div id="host"></div></main><script src="/planted.js"></script></body></html>"""
# An input with no label, inside an open shadow root.
PLANTED_JS = """
const root = document.getElementById('host').attachShadow({mode: 'open'});
const input = document.createElement('input');
input.type = 'text';
root.append(input);
"""


def test_axe_finds_an_unlabelled_input_inside_a_shadow_root(page: Page, host: Host) -> None:
    host.page("/planted.js", PLANTED_JS, {"Content-Type": "text/javascript"})
    page.goto(host.page("/planted-axe", SHADOW_FORM))
    page.wait_for_function("document.getElementById('host').shadowRoot !== null")
    assert "label" in {v["id"] for v in axe_violations(page, "#host")}
    assert "label" in {v["id"] for v in axe_violations(page)}


def test_the_csp_collector_sees_a_blocked_inline_style(page: Page, host: Host) -> None:
    html = """<!doctype html><html lang="en"><head><title>planted</title></head>
    <body><p style="color: red">inline style, blocked</p></body></html>"""
    page.goto(host.page("/planted-csp", html, {"Content-Security-Policy": STRICT}))
    page.wait_for_function("window.__cspViolations.length > 0")
    assert csp_violations(page)[0]["directive"].startswith("style-src")


def test_the_live_service_answers(live: Service) -> None:
    assert requests.get(live.url("/readyz"), timeout=5).status_code == 200
