"""What waiting for a replica (WAIT 1 after each acknowledging write) costs a submission.

Three set-ups in one run, each the machine's redis-server on loopback (devtools/topologies.py):
a single node; a master with one replica, WAIT off; the same master, WAIT 1. The app runs in
this process (no HTTP server: the difference is not hidden behind network noise), each
submission distinct; after a warm-up, rounds alternate between the set-ups (each round
starting with another one) and the best round of each counts.

    python bench/wait_bench.py [--n 300] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_for_bench import AUTH, bench_config  # noqa: E402
from devtools.processes import wait_until  # noqa: E402
from devtools.topologies import RedisServer  # noqa: E402
from service.api.context import EXTENSION_KEY  # noqa: E402
from service.app import create_app  # noqa: E402

POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}


def app_for(url: str, wait_replicas: int) -> Any:
    app = create_app(
        bench_config(url, redis_wait_replicas=wait_replicas, redis_wait_timeout_ms=1000)
    )
    assert app.test_client().put("/api/v1/moderation/policy", json=POLICY, headers=AUTH).status_code
    return app


def submissions(app: Any, n: int, tag: str, articles: int = 50) -> float:
    """Seconds per submission over n submissions spread over ``articles`` articles, each one
    distinct (every one must be acknowledged)."""
    client = app.test_client()
    started = time.perf_counter()
    for i in range(n):
        response = client.post(
            f"/api/v1/articles/bench-{i % articles}/comments",
            json={
                "name": f"Reader {i}",
                "email": f"reader-{tag}-{i}@example.com",
                "comment": f"Comment {tag} {i}: the council said the library plans are next.",
            },
            environ_base={"REMOTE_ADDR": f"10.{i % 250}.{i // 250 % 250}.1"},
        )
        assert response.status_code in (201, 202), response.get_data(as_text=True)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        single = RedisServer(root / "single").start()
        master = RedisServer(root / "master").start()
        replica = RedisServer(root / "replica", f"replicaof 127.0.0.1 {master.port}").start()
        try:
            assert wait_until(
                lambda: replica.client().info("replication").get("master_link_status") == "up", 20
            )
            setups: dict[str, Callable[[], Any]] = {
                "single node": lambda: app_for(f"redis://127.0.0.1:{single.port}/0", 0),
                "master+replica, WAIT off": lambda: app_for(
                    f"redis://127.0.0.1:{master.port}/0", 0
                ),
                "master+replica, WAIT 1": lambda: app_for(f"redis://127.0.0.1:{master.port}/0", 1),
            }
            apps = {name: make() for name, make in setups.items()}
            for name, app in apps.items():  # warm-up, not counted
                submissions(app, options.n // 3 + 1, f"warm{name[:6]}".replace(" ", ""))
            best = {name: float("inf") for name in apps}
            names = list(apps)
            for round_ in range(options.rounds):
                # Each round starts with another set-up: none always runs first.
                for name in names[round_ % 3 :] + names[: round_ % 3]:
                    app = apps[name]
                    tag = f"{name[:6]}{round_}".replace(" ", "")
                    best[name] = min(best[name], submissions(app, options.n, tag))
            for app in apps.values():
                app.extensions[EXTENSION_KEY].store.cache.close()
                app.extensions[EXTENSION_KEY].store.moderation_cache.close()
        finally:
            for server in (replica, master, single):
                server.stop()
    base = best["single node"]
    result = {
        "load_1min": os.getloadavg()[0],
        "n": options.n,
        "rounds": options.rounds,
        "ms_per_submission": {name: round(t * 1000, 3) for name, t in best.items()},
        "ratio_to_single_node": {name: round(t / base, 3) for name, t in best.items()},
    }
    for name, t in best.items():
        print(f"{name:28} {t * 1000:7.3f} ms/submission  x{t / base:.2f}")
    print(f"load average (1 min): {result['load_1min']:.2f}")
    if options.json:
        options.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
