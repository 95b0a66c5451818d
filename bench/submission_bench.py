"""Cost of a whole submission with the moderation policy on versus off, in one run.

Drives the real app (in-process WSGI, no HTTP server, so the policy's share is not hidden
behind network noise) on a real Redis: the embedded one, or REDIS_URL when set. Each
submission is distinct (text, email, client IP) so no duplicate or flood rule refuses it.
Reports per-submission time for each mode (best of several rounds) and their ratio.

    python bench/submission_bench.py [--n 400] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_for_bench import AUTH, bench_app  # noqa: E402

WORDS = (
    "the council said that budget plans for the new library would be reviewed next week "
    "while residents asked whether parking and bus routes near the station could change "
    "soon given the long delays many of them reported"
).split()
POLICY_ON = {"flood_interval_seconds": 0, "flood_hourly_cap": 0}  # defaults, minus the limits
# that would refuse a benchmark's rapid fire from one process
POLICY_OFF = {
    "profanity_action": "off",
    "link_action": "off",
    "honeypot": False,
    "auto_approve": "all",
    "duplicate_window_seconds": 0,
    "flood_interval_seconds": 0,
    "flood_hourly_cap": 0,
}


def comment_text(rng: random.Random, length: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(WORDS))
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), "shit")
    return " ".join(words)[:length]


def run_mode(client: Any, policy: dict[str, Any], n: int, seed: int) -> float:
    assert client.put("/api/v1/moderation/policy", json=policy, headers=AUTH).status_code == 200
    rng = random.Random(seed)
    bodies = [
        {
            "name": f"Reader {i}",
            "email": f"reader{seed}-{i}@example.com",
            "comment": comment_text(rng, 450),
        }
        for i in range(n)
    ]
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        address = f"10.{seed % 250}.{i // 250}.{i % 250}"
        response = client.post(
            "/api/v1/articles/bench/comments", json=body, environ_base={"REMOTE_ADDR": address}
        )
        assert response.status_code in (201, 202), response.get_data(as_text=True)
    return (time.perf_counter() - started) / n


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with bench_app("subbench") as app:
        client = app.test_client()
        run_mode(client, POLICY_ON, 50, 999)  # warm-up: imports, matcher, scripts
        best = {"on": float("inf"), "off": float("inf")}
        for round_no in range(args.rounds):
            for mode, policy in (("on", POLICY_ON), ("off", POLICY_OFF)):
                seconds = run_mode(client, policy, args.n, round_no * 2 + (mode == "on"))
                best[mode] = min(best[mode], seconds)

    ratio = best["on"] / best["off"]
    print(f"{'mode':<12}{'ms/submission':>16}")
    print(f"{'policy off':<12}{best['off'] * 1000:>16.3f}")
    print(f"{'policy on':<12}{best['on'] * 1000:>16.3f}")
    print(
        f"policy on / off: {ratio:.2f}x the time of a submission (best of {args.rounds} "
        f"rounds of {args.n})"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "ms_policy_off": best["off"] * 1000,
                    "ms_policy_on": best["on"] * 1000,
                    "ratio_on_over_off": ratio,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
