"""A 3-primary Redis Cluster next to a single node: what a submission and a page read cost on
each, whether that grows with the number of articles, and what one primary can hold.

Both set-ups are the machine's redis-server on loopback (devtools/topologies.py), persistence
as the servers' defaults (no fsync per write: this measures the cluster's own cost, not the
disk's). The app runs in this process (no HTTP server, so the difference is not hidden behind
network noise), read cache off so that every read goes to Redis. For each set-up and for 10
and for 1,000 articles, rounds alternate between the set-ups (each round starting with another
one) and the best round counts. Besides the client's time per request it reads, from the
servers themselves (INFO), the commands and the Redis CPU per request, summed over the
primaries, and how the writes spread over the primaries.

The capacity note follows from the Redis CPU per submission: one primary, busy only with
this, takes 1 / (CPU per submission) submissions a second. Today every key carries one hash tag,
so one primary takes all the data's writes whatever the cluster's size.

    python bench/cluster_bench.py [--n 300] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_for_bench import AUTH, bench_config  # noqa: E402
from bench.wait_bench import submissions as timed_submissions  # noqa: E402
from devtools.topologies import LocalCluster, RedisServer  # noqa: E402
from service.api.context import EXTENSION_KEY  # noqa: E402
from service.app import create_app  # noqa: E402

POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}
ARTICLE_COUNTS = (10, 1000)


class Servers:
    """The data servers of one set-up (one, or the cluster's primaries), read through INFO."""

    def __init__(self, servers: list[RedisServer]) -> None:
        self.clients = [s.client() for s in servers]

    def reading(self) -> list[tuple[float, int]]:
        """Each server's (CPU seconds, commands processed) so far."""
        out = []
        for client in self.clients:
            cpu = client.info("cpu")
            stats = client.info("stats")
            out.append(
                (
                    float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
                    int(stats["total_commands_processed"]),
                )
            )
        return out


def app_for(url: str) -> Any:
    app = create_app(bench_config(url, read_cache=False))
    response = app.test_client().put("/api/v1/moderation/policy", json=POLICY, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return app


def submissions(app: Any, n: int, articles: int, tag: str) -> None:
    timed_submissions(app, n, tag, articles)


def reads(app: Any, n: int, articles: int) -> None:
    client = app.test_client()
    for i in range(n):
        response = client.get(f"/api/v1/articles/bench-{i % articles}/comments")
        assert response.status_code == 200, response.get_data(as_text=True)


def measured(servers: Servers, run: Any, n: int) -> dict[str, Any]:
    before = servers.reading()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    after = servers.reading()
    cpu = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    # Commands run inside a script count too. INFO is counted: two per reading, taken off.
    commands = [a[1] - b[1] - 2 for a, b in zip(after, before, strict=True)]
    return {
        "ms_per_request": seconds / n * 1000,
        "redis_cpu_us_per_request": sum(cpu) / n * 1e6,
        "commands_per_request": sum(commands) / n,
        "commands_by_server": commands,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    n = options.n
    best: dict[tuple[str, str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        single = RedisServer(root / "single").start()
        cluster = LocalCluster(root / "cluster", primaries=3).start()
        try:
            setups = {
                "single node": (app_for(f"redis://127.0.0.1:{single.port}/0"), Servers([single])),
                "3-primary cluster": (app_for(cluster.url), Servers(cluster.primary_servers())),
            }
            for name, (app, _) in setups.items():  # warm-up, not counted
                submissions(app, n // 3 + 1, 10, f"warm{len(name)}")
            names = list(setups)
            for round_ in range(options.rounds):
                for name in names[round_ % 2 :] + names[: round_ % 2]:
                    app, servers = setups[name]
                    for articles in ARTICLE_COUNTS:
                        tag = f"r{round_}a{articles}{len(name)}"
                        for what, run in (
                            ("submit", lambda a=app, k=articles, t=tag: submissions(a, n, k, t)),
                            ("read", lambda a=app, k=articles: reads(a, n, k)),
                        ):
                            got = measured(servers, run, n)
                            key = (name, what, articles)
                            if (
                                key not in best
                                or got["ms_per_request"] < best[key]["ms_per_request"]
                            ):
                                best[key] = got
            for app, _ in setups.values():
                store = app.extensions[EXTENSION_KEY].store
                for cache in (store.cache, store.moderation_cache):
                    if cache is not None:
                        cache.close()
        finally:
            cluster.stop()
            single.stop()
    report(best, n, options)


def report(best: dict[tuple[str, str, int], dict[str, Any]], n: int, options: Any) -> None:
    print(
        f"{'set-up':18} {'what':6} {'articles':>8} {'ms/req':>8} {'x single':>8} "
        f"{'Redis µs':>9} {'cmds':>5}  commands by primary"
    )
    rows = []
    for (name, what, articles), got in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        base = best[("single node", what, articles)]
        ratio = got["ms_per_request"] / base["ms_per_request"]
        rows.append(
            {
                "setup": name,
                "what": what,
                "articles": articles,
                **got,
                "ratio_to_single_node": round(ratio, 3),
            }
        )
        print(
            f"{name:18} {what:6} {articles:8} {got['ms_per_request']:8.3f} {ratio:8.2f} "
            f"{got['redis_cpu_us_per_request']:9.1f} {got['commands_per_request']:5.1f}  "
            f"{got['commands_by_server']}"
        )
    submit = best[("3-primary cluster", "submit", ARTICLE_COUNTS[-1])]
    read = best[("3-primary cluster", "read", ARTICLE_COUNTS[-1])]
    per_primary_submits = 1e6 / max(submit["redis_cpu_us_per_request"], 1e-9)
    per_primary_reads = 1e6 / max(read["redis_cpu_us_per_request"], 1e-9)
    print(
        f"capacity: one primary's CPU takes about {per_primary_submits:,.0f} submissions/s or "
        f"{per_primary_reads:,.0f} uncached page reads/s (Redis CPU per request here); with "
        "every key under one hash tag a 10-primary cluster holds the same (one primary "
        "takes all writes)"
    )
    load = os.getloadavg()[0]
    print(f"n={n} per run, best of {options.rounds} rounds; load average (1 min): {load:.2f}")
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "load_1min": load,
                    "n": n,
                    "rounds": options.rounds,
                    "rows": rows,
                    "per_primary_submissions_per_s": round(per_primary_submits),
                    "per_primary_reads_per_s": round(per_primary_reads),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
