"""Deciding 200 pending comments: one bulk request against 200 single decisions, in one run.

Drives the real app (in-process WSGI, as submission_bench.py) on a real Redis: the embedded
one, or REDIS_URL when set. Each round stores 200 pending comments twice and approves one set
with 200 ``POST .../comments/{id}/approve`` and the other with one
``POST /api/v1/moderation/decisions``. Reports the time per comment of each (best of several
rounds) and their ratio.

    python bench/bulk_decisions_bench.py [--n 200] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_for_bench import AUTH, bench_app  # noqa: E402

# Every comment held for a moderator; nothing refuses a benchmark's rapid fire.
POLICY = {
    "auto_approve": "none",
    "duplicate_window_seconds": 0,
    "flood_interval_seconds": 0,
    "flood_hourly_cap": 0,
}


def store_pending(client: Any, n: int, tag: str) -> list[str]:
    ids = []
    for i in range(n):
        response = client.post(
            f"/api/v1/articles/bench-{tag}/comments",
            json={"name": f"Reader {i}", "email": f"r{tag}-{i}@example.com", "comment": f"No {i}"},
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    return ids


def one_by_one(client: Any, ids: list[str]) -> float:
    started = time.perf_counter()
    for comment_id in ids:
        response = client.post(
            f"/api/v1/moderation/comments/{comment_id}/approve", json={}, headers=AUTH
        )
        assert response.status_code == 200
    return (time.perf_counter() - started) / len(ids)


def in_bulk(client: Any, ids: list[str]) -> float:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/moderation/decisions",
        json={"decisions": [{"comment_id": i, "action": "approve"} for i in ids]},
        headers=AUTH,
    )
    assert response.status_code == 200
    assert all(r["status"] == 200 for r in response.get_json()["results"])
    return (time.perf_counter() - started) / len(ids)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with bench_app("bulkbench") as app:
        client = app.test_client()
        assert client.put("/api/v1/moderation/policy", json=POLICY, headers=AUTH).status_code
        in_bulk(client, store_pending(client, 20, "warm"))  # imports, scripts, caches
        one_by_one(client, store_pending(client, 20, "warm2"))
        best = {"single": float("inf"), "bulk": float("inf")}
        for round_no in range(args.rounds):
            single_ids = store_pending(client, args.n, f"s{round_no}")
            bulk_ids = store_pending(client, args.n, f"b{round_no}")
            best["single"] = min(best["single"], one_by_one(client, single_ids))
            best["bulk"] = min(best["bulk"], in_bulk(client, bulk_ids))

    ratio = best["single"] / best["bulk"]
    print(f"{'decisions':<22}{'ms/comment':>12}")
    print(f"{'one request each':<22}{best['single'] * 1000:>12.3f}")
    print(f"{'one bulk request':<22}{best['bulk'] * 1000:>12.3f}")
    print(
        f"bulk is {ratio:.1f}x faster per comment ({args.n} comments, best of {args.rounds} rounds)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "ms_per_comment_single": best["single"] * 1000,
                    "ms_per_comment_bulk": best["bulk"] * 1000,
                    "ratio_single_over_bulk": ratio,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
