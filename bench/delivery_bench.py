"""Webhook delivery throughput: N events to 3 endpoints by one delivery worker, against a
baseline measured in the same run: the same receivers taking the same number of POSTs from
one plain urllib3 client per endpoint (no Redis, no signing). The ratio is the figure; the
absolute rates depend on the machine.

    .venv/bin/python bench/delivery_bench.py [events]    (default 10,000)
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.processes import wait_until  # noqa: E402
from service.config import Config  # noqa: E402
from service.crypto import Cipher, KeyRing  # noqa: E402
from service.delivery.worker import DeliveryWorker  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from service.store import CommentStore, Keys, make_redis  # noqa: E402
from tests.test_delivery_faults import add_endpoint, make_events  # noqa: E402
from tests.webhook_receiver import Receiver, running  # noqa: E402

ENDPOINTS = 3


def baseline(receivers: list[Receiver], count: int) -> float:
    """POSTs per second the receivers take from one keep-alive client thread each."""
    body = b'{"type":"article.closed","timestamp":"2026-01-01T00:00:00.000Z","data":{}}'

    def post_all(receiver: Receiver) -> None:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", receiver.port, maxsize=1)
        for i in range(count):
            pool.urlopen("POST", "/hook", body=body, headers={"webhook-id": f"base_{i}"})
        pool.close()

    threads = [threading.Thread(target=post_all, args=(r,)) for r in receivers]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ENDPOINTS * count / (time.monotonic() - started)


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedRedis(Path(tmp))
        url = embedded.start()
        try:
            redis = make_redis(url)
            ring = KeyRing.parse(KeyRing.generate_entry("bench"))
            config = Config(
                redis_url=url,
                secret_key=b"bench-secret-key-0123456789abcdef",
                encryption_keys=ring,
                webhook_allow_private=True,
                events_max_length=max(2 * count, 1000),
            )
            store = CommentStore(redis, Keys(), Cipher(ring))
            receivers = [Receiver() for _ in range(ENDPOINTS)]
            with running(receivers[0]), running(receivers[1]), running(receivers[2]):
                base = baseline(receivers, count)
                for r in receivers:
                    r.delivered.clear()
                    r.requests.clear()
                    add_endpoint(store, r)
                expected = make_events(store, count)
                worker = DeliveryWorker(store, config)
                started = time.monotonic()
                threading.Thread(target=worker.run, daemon=True).start()
                done = wait_until(
                    lambda: all(len(r.unique_delivered()) >= len(expected) for r in receivers),
                    1800,
                    0.1,
                )
                seconds = time.monotonic() - started
                worker.stop.set()
                time.sleep(1.5)
            assert done, "not every event was delivered"
            lost = sum(len(set(expected) - set(r.unique_delivered())) for r in receivers)
            total = sum(len(r.delivered) for r in receivers)
            rate = total / seconds
            print(
                f"delivery: {count:,} events x {ENDPOINTS} endpoints, one worker: "
                f"{rate:,.0f} deliveries/s ({seconds:.1f} s; {lost} lost, "
                f"{total - ENDPOINTS * count} duplicates); baseline, plain POSTs to the same "
                f"receivers: {base:,.0f}/s; ratio {rate / base:.2f}"
            )
            redis.close()
        finally:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
