"""How many acknowledged submissions a Sentinel failover loses, WAIT off and WAIT 1.

The scenario of tests/test_durability.py: 1 master + 1 replica + 3 sentinels (the machine's
redis-server, devtools/topologies.py), submissions streaming from a thread, ``SENTINEL
FAILOVER`` with the old master alive, the stream kept on until the old master is demoted and
50 more were acknowledged; then every acknowledged id is looked for on the new master.

    python bench/failover_loss.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.processes import wait_until  # noqa: E402
from devtools.topologies import LocalSentinel  # noqa: E402
from service.api.context import EXTENSION_KEY  # noqa: E402
from service.app import create_app  # noqa: E402
from service.config import Config  # noqa: E402
from service.crypto import KeyRing  # noqa: E402
from service.store import Keys  # noqa: E402

TOKEN = "bench-moderator-token-0123456789abcdef"
POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}


def run(wait_replicas: int) -> dict[str, int]:
    with LocalSentinel(Path(tempfile.mkdtemp()), "cm") as setup:
        app = create_app(
            Config(
                redis_url=setup.url,
                moderator_tokens={"bench": TOKEN},
                secret_key=b"bench-secret-key-0123456789abcdef",
                encryption_keys=KeyRing.parse(KeyRing.generate_entry("b1")),
                rate_limits_enabled=False,
                redis_timeout=1.0,
                redis_wait_replicas=wait_replicas,
                redis_wait_timeout_ms=200,
            )
        )
        client = app.test_client()
        client.put(
            "/api/v1/moderation/policy", json=POLICY, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        acknowledged: list[tuple[float, str]] = []
        refused = [0]
        stop = threading.Event()

        def stream() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                response = client.post(
                    f"/api/v1/articles/a{n % 7}/comments",
                    json={"name": "Ann", "email": "ann@example.com", "comment": f"Remark {n}."},
                )
                if response.status_code in (201, 202):
                    acknowledged.append((time.monotonic(), response.get_json()["id"]))
                else:
                    refused[0] += 1
                    time.sleep(0.02)

        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        old = setup.master
        wait_until(lambda: len(acknowledged) >= 50, 30)
        setup.failover()
        failed_over = time.monotonic()
        wait_until(
            lambda: old.client().info("replication").get("master_link_status") == "up", 40, 0.2
        )
        wait_until(lambda: sum(1 for at, _ in acknowledged if at > failed_over) >= 50, 30)
        stop.set()
        thread.join(30)
        new = next(s for s in setup.data_servers if s.port == setup.master_port()).client()
        pipe = new.pipeline(transaction=False)
        for _, comment_id in acknowledged:
            pipe.exists(Keys().comment(comment_id))
        lost = sum(1 for found in pipe.execute() if not found)
        store = app.extensions[EXTENSION_KEY].store
        store.cache.close()
        store.moderation_cache.close()
        return {"acknowledged": len(acknowledged), "refused": refused[0], "lost": lost}


def main() -> None:
    logging.disable(logging.WARNING)  # every refused write logs a line
    for wait_replicas in (0, 1):
        result = run(wait_replicas)
        print(
            f"WAIT {wait_replicas}: {result['acknowledged']} acknowledged, "
            f"{result['refused']} refused (503), {result['lost']} acknowledged lost"
        )


if __name__ == "__main__":
    main()
