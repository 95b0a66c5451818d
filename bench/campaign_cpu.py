"""Campaign detection's CPU per submission: a paired A/B that a busy machine does not blur much.

Two apps in this process, each on its own embedded Redis (``appendfsync always``) warmed with
``--warm`` ordinary comments of the last 24 h (bench/campaign_warm.py), one with the default
campaign threshold (3) and one with detection off (0), rate limits off, BENCH_POLICY's flood
and duplicate guards off. The same ``--n`` ordinary texts (made like the wrk script's) are
submitted to both, one by one, in alternating order, so that the machine's load falls on both
alike. Per submission: this thread's CPU (the whole request through Flask's test client), each
redis-server's CPU (from /proc) and the insert script's own time (INFO commandstats).

``off / on`` is the total (thread and Redis) CPU per submission without detection over the one
with it: issue 16 asks that detection cost at most 10% of a submission, i.e. >= 0.90. The test
client's own work is in both totals (it stands in for the HTTP server's), so the ratio is a
little kinder than a bare service's would be; the deltas are detection's own.

    python bench/campaign_cpu.py [--n 1500] [--warm 20000] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.campaign_warm import DEFAULT_COMMENTS, ordinary_text, warm  # noqa: E402
from bench.redis_for_bench import AUTH, bench_config  # noqa: E402
from service.api.context import EXTENSION_KEY  # noqa: E402
from service.app import create_app  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from service.store import make_redis  # noqa: E402

POLICY = {
    "auto_approve": "trusted",
    "flood_interval_seconds": 0,
    "flood_hourly_cap": 0,
    "duplicate_window_seconds": 0,
}


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user and system) the process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def script_usec(redis: Any) -> tuple[int, int]:
    stats = redis.info("commandstats").get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(stats["calls"]), int(stats["usec"])


def run(n: int, warm_comments: int, seed: int) -> dict[str, dict[str, float]]:
    with (
        tempfile.TemporaryDirectory() as on_dir,
        tempfile.TemporaryDirectory() as off_dir,
        EmbeddedRedis(Path(on_dir)) as on_server,
        EmbeddedRedis(Path(off_dir)) as off_server,
    ):
        sides: list[dict[str, Any]] = []
        for name, server, threshold in (("on", on_server, 3), ("off", off_server, 0)):
            app = create_app(bench_config(server.url, key_prefix="cpuab"))
            warm(make_redis(server.url), "cpuab", comments=warm_comments)
            client = app.test_client()
            policy = {**POLICY, "campaign_threshold": threshold}
            answer = client.put("/api/v1/moderation/policy", json=policy, headers=AUTH)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            redis = app.extensions[EXTENSION_KEY].store.redis
            sides.append(
                {"name": name, "server": server, "app": app, "client": client, "redis": redis}
            )
        rng = random.Random(seed)
        texts = [ordinary_text(rng, f"cpu-{seed}-{i}") for i in range(n)]
        for side in sides:
            side["thread"] = 0.0
            side["redis_cpu"] = process_cpu(side["server"].process.pid)
            side["script"] = script_usec(side["redis"])
        for i, text in enumerate(texts):
            for side in sides if i % 2 == 0 else sides[::-1]:
                body = {"name": f"R {i}", "email": f"r{i}-{side['name']}@example.com"}
                body["comment"] = text
                started = time.thread_time()
                answer = side["client"].post(
                    "/api/v1/articles/cpu-ab/comments",
                    json=body,
                    environ_base={"REMOTE_ADDR": f"10.1.{i // 250}.{i % 250}"},
                )
                side["thread"] += time.thread_time() - started
                assert answer.status_code in (201, 202), answer.get_data(as_text=True)
        out: dict[str, dict[str, float]] = {}
        for side in sides:
            calls, usec = script_usec(side["redis"])
            calls0, usec0 = side["script"]
            out[side["name"]] = {
                "thread_us": side["thread"] / n * 1e6,
                "redis_us": (process_cpu(side["server"].process.pid) - side["redis_cpu"]) / n * 1e6,
                "script_us": (usec - usec0) / max(calls - calls0, 1),
            }
            side["app"].extensions[EXTENSION_KEY].store.cache.close()
        return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--warm", type=int, default=DEFAULT_COMMENTS)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for r in range(args.runs):
        load = os.getloadavg()[0]
        out = run(args.n, args.warm, seed=r + 1)
        on, off = out["on"], out["off"]
        total_on = on["thread_us"] + on["redis_us"]
        total_off = off["thread_us"] + off["redis_us"]
        ratio = total_off / total_on
        results.append({"load": load, "ratio": ratio, **out})
        print(
            f"run {r + 1} (load {load:.1f}): per submission, on / off: "
            f"thread {on['thread_us']:.0f} / {off['thread_us']:.0f} us, "
            f"redis {on['redis_us']:.0f} / {off['redis_us']:.0f} us, "
            f"script {on['script_us']:.0f} / {off['script_us']:.0f} us; "
            f"detection +{on['thread_us'] - off['thread_us']:.0f} us thread, "
            f"+{on['redis_us'] - off['redis_us']:.0f} us Redis; off / on {ratio:.3f} "
            f"(target >= 0.90)",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
