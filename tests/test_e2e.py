"""End to end: the service started as `make run` starts it, driven over real HTTP.

It walks all three users' paths (embedding site, moderator, article page), then stops the
service, starts it again on the same DATA_DIR and finds every acknowledged comment.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.processes import ROOT, GroupProcess, free_port
from tests.conftest import EMAIL_PATTERN
from tests.servicehelpers import log_records

pytestmark = pytest.mark.slow  # the service as `make run` starts it, twice


class Service:
    """``python -m service.serve`` with only the environment the test gives it."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATA_DIR": str(data_dir),
            "WORKERS": "2",
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"service-{self.port}.log"
        self.group = GroupProcess(
            "service", [sys.executable, "-m", "service.serve"], self.env, self.log
        )

    def start(self) -> None:
        self.group.start()
        self.group.wait_ready(self.port, "/readyz", timeout=30)

    def stop(self) -> int | None:
        """SIGTERM and the exit status; None (after killing it all) when it did not stop."""
        return self.group.terminate(timeout=30)


@pytest.fixture
def service_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in {"MODERATOR_TOKENS", "PORT"}}
    env["ALLOWED_ORIGINS"] = "https://news.example.org"
    env["KEY_PREFIX"] = "e2e" + secrets.token_hex(4)  # isolates runs on a shared REDIS_URL
    yield env


def test_three_users_paths_over_http_and_restart(
    tmp_path: Path, service_env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    service = Service(data_dir, service_env)
    service.start()
    public_texts: list[str] = []
    try:
        base = service.base
        startup = service.log.read_text()
        token_file = data_dir / "moderator-token"
        # A newcomer is told where the moderator token is and how to use it.
        assert str(token_file) in startup and "Authorization: Bearer" in startup
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        # ...and where the demo article and the console are, with the token to sign in with.
        said = [r["message"] for r in log_records(startup) if r["logger"] == "service.serve"]
        assert f"demo article with the comment widget: {base}/" in said
        assert f"moderator console: {base}/moderate" in said
        assert f"sign in to the console with the moderator token: {token}" in said

        # The embedding site: JSON from a widget, and a plain HTML form with a redirect.
        sent = requests.post(
            f"{base}/api/v1/articles/story-1/comments",
            json={"name": "Ann", "email": "ann.reader@example.com", "comment": "Great story."},
        )
        assert sent.status_code == 202
        public_texts.append(sent.text)
        first_id = sent.json()["id"]
        # The flood rule: a second comment from this address within 15 s must wait.
        flood = requests.post(
            f"{base}/api/v1/articles/story-1/comments",
            json={"name": "Cy", "email": "cy@example.org", "comment": "Me too."},
        )
        assert flood.status_code == 429 and int(flood.headers["Retry-After"]) >= 1
        public_texts.append(flood.text)
        relaxed = requests.put(
            f"{base}/api/v1/moderation/policy", headers=auth, json={"flood_interval_seconds": 0}
        )
        assert relaxed.status_code == 200
        form = requests.post(
            f"{base}/api/v1/articles/story-1/comments",
            data={
                "name": "Bo",
                "email": "bo@example.net",
                "comment": "Agreed!",
                "website": "https://bo.example.net",
                "redirect": "https://news.example.org/story-1",
            },
            allow_redirects=False,
        )
        assert form.status_code == 303
        assert form.headers["Location"] == "https://news.example.org/story-1"
        oversized = requests.post(
            f"{base}/api/v1/articles/story-1/comments",
            data=b"x" * 300_000,
            headers={"Content-Type": "application/json"},
        )
        assert oversized.status_code == 413  # a response, not a connection reset
        public_texts.append(oversized.text)

        # The moderator: the queue with emails, approve one, reject the other.
        assert requests.get(f"{base}/api/v1/moderation/queue").status_code == 401
        queue = requests.get(f"{base}/api/v1/moderation/queue", headers=auth).json()
        assert queue["total"] == 2
        assert {c["email"] for c in queue["comments"]} == {
            "ann.reader@example.com",
            "bo@example.net",
        }
        second_id = next(c["id"] for c in queue["comments"] if c["id"] != first_id)
        approved = requests.post(
            f"{base}/api/v1/moderation/comments/{first_id}/approve",
            json={"note": "welcome"},
            headers=auth,
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        rejected = requests.post(
            f"{base}/api/v1/moderation/comments/{second_id}/reject", headers=auth
        )
        assert rejected.json()["status"] == "rejected"

        # The article page: approved comments, counts, conditional GET.
        page = requests.get(f"{base}/api/v1/articles/story-1/comments")
        public_texts.append(page.text)
        assert [c["id"] for c in page.json()["comments"]] == [first_id]
        again = requests.get(
            f"{base}/api/v1/articles/story-1/comments",
            headers={"If-None-Match": page.headers["ETag"]},
        )
        assert again.status_code == 304
        counts = requests.get(
            f"{base}/api/v1/comment-counts",
            params=[("article_id", "story-1"), ("article_id", "story-2")],
        )
        public_texts.append(counts.text)
        assert counts.json() == {"counts": {"story-1": 1, "story-2": 0}}
        spec = requests.get(f"{base}/openapi.yaml")
        assert spec.status_code == 200 and spec.text == (ROOT / "openapi.yaml").read_text()
    finally:
        assert service.stop() == 0

    assert not [t for t in public_texts if EMAIL_PATTERN.search(t)]
    log = service.log.read_text()
    assert not EMAIL_PATTERN.search(log), "an email reached the service's log"
    if "REDIS_URL" not in service_env:
        # The embedded Redis stopped with the service (its socket is removed on shutdown).
        assert not (data_dir / "redis.sock").exists()
        assert (data_dir / "appendonly.aof").stat().st_size > 0

    # Everything acknowledged is there after a restart.
    restarted = Service(data_dir, service_env)
    restarted.start()
    try:
        auth = {"Authorization": f"Bearer {(data_dir / 'moderator-token').read_text().strip()}"}
        stored = requests.get(
            f"{restarted.base}/api/v1/moderation/comments/{second_id}", headers=auth
        ).json()
        assert stored["status"] == "rejected" and stored["email"] == "bo@example.net"
        page = requests.get(f"{restarted.base}/api/v1/articles/story-1/comments").json()
        assert [c["id"] for c in page["comments"]] == [first_id]
    finally:
        assert restarted.stop() == 0
