"""Cost as the data grows (`make bench-scale`), measured in one run on a real Redis.

1. First page of an article with 50,000 approved comments vs one with 50 (req/s ratio).
2. Moderator queue page with 100,000 pending vs 100 (req/s ratio).
3. Redis memory per stored comment of ~300 characters, indexes included.

Requests go through the real app in-process (WSGI, no HTTP server), so what is compared is the
app and Redis work itself, not socket noise. Each comparison is run with the workers' read cache
off (every request reaches Redis: the cost that must stay flat) and on (production); the small
and large cases alternate over several rounds and the best of each is kept. Data is seeded
with the store's own insert script, so it is exactly what submissions create.

    python bench/scale_bench.py [--large-article 50000] [--large-queue 100000] [--json out]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask.testing import FlaskClient  # noqa: E402

from bench.redis_for_bench import bench_redis  # noqa: E402
from devtools.comments import insert_as_is  # noqa: E402
from service.api.context import EXTENSION_KEY  # noqa: E402
from service.app import create_app  # noqa: E402
from service.clock import iso_from_ms, now_ms  # noqa: E402
from service.config import Config  # noqa: E402
from service.crypto import KeyRing  # noqa: E402
from service.hashing import Hasher  # noqa: E402
from service.ids import new_id  # noqa: E402
from service.models import StoredComment  # noqa: E402
from service.store import CommentStore, make_redis  # noqa: E402

TOKEN = "scale-moderator-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = b"scale-secret-key-0123456789abcdef0123"
TEXT = (
    "The council said the budget for the new library would be reviewed next week, while "
    "residents asked whether parking near the station could change soon given the long "
    "delays many of them reported on the morning buses into town, and whether anyone had "
    "asked the people who actually ride them every day what they need."
)[:300]


def seed(store: CommentStore, hasher: Hasher, article: str, n: int, status: str) -> None:
    for i in range(n):
        moment = now_ms()
        at = iso_from_ms(moment)
        email = f"reader{i}@example.com"
        comment = StoredComment(
            id=new_id(moment),
            article_id=article,
            name=f"Reader {i}",
            email=email,
            comment=TEXT,
            status=status,
            created_at=at,
            updated_at=at,
            email_hash=hasher.email(email),
            reasons=()
            if status == "approved"
            else ({"code": "first_comment", "detail": "no approved comment", "action": "hold"},),
        )
        insert_as_is(store, comment, at_ms=moment)


def rate(client: FlaskClient, path: str, headers: dict[str, str], seconds: float) -> float:
    assert client.get(path, headers=headers).status_code == 200
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(20):
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code}")
        done += 20
    return done / (time.perf_counter() - started)


def compare(
    clients: dict[str, FlaskClient],
    small: str,
    large: str,
    headers: dict[str, str],
    rounds: int,
    seconds: float,
) -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = {}
    for mode, client in clients.items():
        best = {"small": 0.0, "large": 0.0}
        for _ in range(rounds):
            best["small"] = max(best["small"], rate(client, small, headers, seconds))
            best["large"] = max(best["large"], rate(client, large, headers, seconds))
        result[mode] = {**best, "ratio": best["large"] / best["small"]}
    return result


def memory_per_comment(store: CommentStore, hasher: Hasher, n: int) -> dict[str, float]:
    redis = store.redis
    before = int(redis.info("memory")["used_memory"])
    seed(store, hasher, "memory-approved", n, "approved")
    after = int(redis.info("memory")["used_memory"])
    one = store.list_by_status("approved", 1, None, article_id="memory-approved").comments[0]
    keys = store.keys
    usage = {
        "comment record": float(redis.memory_usage(keys.comment(one.id)) or 0),
        "its public document": float(
            len(str(redis.hget(keys.article_public("memory-approved"), one.id) or "").encode())
        ),
    }
    return {
        "bytes_per_comment_used_memory": (after - before) / n,
        **usage,
        "comments_measured": float(n),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large-article", type=int, default=50_000)
    parser.add_argument("--large-queue", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--memory-sample", type=int, default=10_000)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "scale.json"
    )
    args = parser.parse_args()

    with bench_redis() as (url, embedded):
        prefix = f"scale{os.getpid()}"
        try:
            base = Config(
                redis_url=url,
                moderator_tokens={"bench": TOKEN},
                secret_key=SECRET,
                encryption_keys=KeyRing.parse(KeyRing.generate_entry("s1")),
                rate_limits_enabled=False,
                key_prefix=prefix,
            )
            apps = {
                mode: create_app(Config(**{**base.__dict__, "read_cache": mode == "cache"}))
                for mode in ("no-cache", "cache")
            }
            clients = {mode: app.test_client() for mode, app in apps.items()}
            store: CommentStore = apps["no-cache"].extensions[EXTENSION_KEY].store
            hasher = Hasher(SECRET)

            print(
                f"seeding {args.large_article + 50} approved and "
                f"{args.large_queue + 100} pending comments ...",
                flush=True,
            )
            started = time.perf_counter()
            seed(store, hasher, "small-article", 50, "approved")
            seed(store, hasher, "large-article", args.large_article, "approved")
            seed(store, hasher, "small-queue", 100, "pending")
            seed(store, hasher, "large-queue", args.large_queue, "pending")
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)

            results: dict[str, Any] = {}
            results["article_page"] = compare(
                clients,
                "/api/v1/articles/small-article/comments?limit=50",
                "/api/v1/articles/large-article/comments?limit=50",
                {},
                args.rounds,
                args.seconds,
            )
            # The queue filtered by article: one index of 100 pending vs one of 100,000.
            results["queue_page"] = compare(
                clients,
                "/api/v1/moderation/queue?limit=50&article_id=small-queue",
                "/api/v1/moderation/queue?limit=50&article_id=large-queue",
                AUTH,
                args.rounds,
                args.seconds,
            )
            results["memory"] = memory_per_comment(store, hasher, args.memory_sample)
        finally:
            for app in locals().get("apps", {}).values():
                app.extensions[EXTENSION_KEY].store.cache.close()
            if not embedded:
                redis = make_redis(url)
                for key in redis.scan_iter(f"{{{prefix}}}*", count=10_000):
                    redis.delete(key)

    print(
        f"\n{'comparison':<42}{'cache':<10}{'small req/s':>12}{'large req/s':>12}"
        f"{'ratio':>8}{'target':>8}"
    )
    for name, label in (
        ("article_page", f"first page, {args.large_article} vs 50 approved"),
        ("queue_page", f"queue page, {args.large_queue} vs 100 pending"),
    ):
        for mode, figures in results[name].items():
            passed = figures["ratio"] >= 0.9
            print(
                f"{label:<42}{mode:<10}{figures['small']:>12.0f}{figures['large']:>12.0f}"
                f"{figures['ratio']:>8.2f}{'>=0.9':>8} {'ok' if passed else 'MISS'}"
            )
    memory = results["memory"]
    per = memory["bytes_per_comment_used_memory"]
    print(
        f"\nRedis memory per approved comment of {len(TEXT)} characters, indexes included: "
        f"{per:.0f} bytes (used_memory over {memory['comments_measured']:.0f} comments; "
        f"target < 1536) {'ok' if per < 1536 else 'MISS'}"
    )
    print(
        "  of which MEMORY USAGE: "
        + ", ".join(
            f"{k} {v:.0f} B"
            for k, v in memory.items()
            if k not in ("bytes_per_comment_used_memory", "comments_measured")
        )
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
