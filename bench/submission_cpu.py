"""Where a submission's CPU goes, and the most a 2-core machine lets submit keep of the floor.

Drives the service as granian serves it (the access log and the RSGI bridge's ``_run`` around
the Flask app, an environ built as the bridge builds it; no HTTP, so no server or network
noise), rate limits and metrics on as in bench/http_bench.py, on the embedded Redis
(``appendfsync always``) or REDIS_URL. Each submission is distinct: ~300 characters of prose
made like bench/http_scenarios.lua's, its own email and client IP, BENCH_POLICY (the policy on,
campaign detection included). Per round it reports:

- the process CPU per submission (``time.process_time``: this thread and the background ones,
  the access log's writer and the read cache's listener) and the Redis server's CPU per
  submission (``INFO cpu``; ``INFO commandstats`` for the insert script's own time);
- each part's *exclusive* CPU (``time.thread_time`` around it, its parts subtracted), for the
  parts the service must do (validation, policy, profanity, the campaign sketch, the keyed
  hashes, the email's encryption, the insert's client side) and the rest;
- the floor request's CPU: bench/ceiling_app.py's ``rsgi_app`` (the same bridge, no access
  log, as http_bench.py serves it) answering ``POST /write-floor`` (one SET of the body, same
  Redis), and Redis's CPU per SET.

The bound: on a machine with ``C`` cores that only serves, throughput is at most C ÷ (CPU per
request, everything counted: server process and Redis). So the highest submit/floor ratio is
(floor CPU) ÷ (submit CPU), where for submit only the required work is counted on top of what
the floor request itself costs (its HTTP and Flask share, its Redis call). HTTP parsing by
granian and wrk's own CPU are not in either figure; they add the same to both, so the true
bound is closer to 1 than this one, never further.

    python bench/submission_cpu.py [--n 300] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import inspect
import io
import itertools
import json
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.campaign_warm import ordinary_text  # noqa: E402
from bench.http_bench import BENCH_POLICY  # noqa: E402
from bench.redis_for_bench import AUTH, TOKEN, bench_redis  # noqa: E402

# The parts of a submission, each timed exclusively (what is inside another part counts for
# it alone). ``required`` marks the work the service must do whatever its code looks like.
PARTS: dict[str, bool] = {
    "marshmallow load": True,
    "email-validator": True,
    "text policy (characters)": True,
    "policy verdicts": True,
    "profanity matching": True,
    "campaign sketch": True,
    "HMACs": True,
    "email encryption": True,
    "rendering (JSON documents)": False,
    "insert arguments (records)": False,
    "Redis call (client side)": True,
    "metrics hooks": False,
    "access log": False,
    "Flask dispatch": False,
    "the rest (view, domain glue)": False,
}

# --idempotency-key: every submission sends a key never sent before.
IDEMPOTENCY_KEYS = False
_KEY_NUMBERS = itertools.count()

WORDS = (
    "the council said that budget plans for the new library would be reviewed next week "
    "while residents asked whether parking and bus routes near the station could change"
).split()


def comment_text(rng: random.Random, reference: str) -> str:
    """As bench/http_scenarios.lua makes them (campaign_warm.ordinary_text), from this bench's
    shorter list of common words: no link or profanity, ending with a unique reference."""
    return ordinary_text(rng, reference, WORDS)


class Meter:
    """Exclusive thread CPU per named part: a stack of open parts, each charged its own time
    minus its children's."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []  # [started, children's time]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        totals, stack, clock = self.totals, self._stack, time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [clock(), 0.0]
            stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.pop()
                elapsed = clock() - frame[0]
                totals[name] += elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def reset(self) -> None:
        self.totals.clear()


@contextmanager
def patched(meter: Meter, targets: list[tuple[Any, str, str]]) -> Iterator[None]:
    """Each (class, module or object; attribute; part) timed as that part while inside."""
    saved = []
    for owner, attr, part in targets:
        own = vars(owner) if hasattr(owner, "__dict__") else {}
        saved.append((owner, attr, own.get(attr)))  # None: inherited, or the class's method
        static = inspect.getattr_static(owner, attr)
        if isinstance(static, staticmethod):
            setattr(owner, attr, staticmethod(meter.wrap(part, static.__func__)))
        elif isinstance(owner, type) or inspect.ismodule(owner):
            setattr(owner, attr, meter.wrap(part, static))
        else:
            setattr(owner, attr, meter.wrap(part, getattr(owner, attr)))  # bound
    try:
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is None:
                delattr(owner, attr)  # what was found before is found again
            else:
                setattr(owner, attr, original)


@contextmanager
def patched_items(meter: Meter, items: list[tuple[Any, Any, str]]) -> Iterator[None]:
    """As :func:`patched`, for functions held in a list or dict (Flask's hooks and views)."""
    saved = [(holder, key, holder[key]) for holder, key, _ in items]
    for holder, key, part in items:
        holder[key] = meter.wrap(part, holder[key])
    try:
        yield
    finally:
        for holder, key, original in reversed(saved):
            holder[key] = original


def environ_for(path: str, body: bytes, client_ip: str) -> dict[str, Any]:
    """The environ the RSGI bridge builds for a JSON POST (service/rsgi_bridge.py _environ)."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": client_ip,
        "REMOTE_PORT": "40000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "wrk",
    }


def redis_cpu(redis: Any) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def command_usec(redis: Any, command: str) -> tuple[int, int]:
    stats = redis.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def bodies(seed: int, n: int) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ref = f"{seed}-{i}"
        body = {
            "name": f"Bench reader {ref}",
            "email": f"reader-{ref}@example.com",
            "comment": comment_text(rng, ref),
        }
        out.append((json.dumps(body).encode(), f"10.{seed % 250}.{i // 250}.{i % 250}"))
    return out


def run(
    run_request: Callable[[dict[str, Any]], Any],
    path: str,
    work: list[tuple[bytes, str]],
    redis: Any,
    command: str,
) -> dict[str, float]:
    """CPU per request of one batch: process, this thread, Redis server, the command's own."""
    calls0, usec0 = command_usec(redis, command)
    server0 = redis_cpu(redis)
    process0, thread0 = time.process_time(), time.thread_time()
    for body, ip in work:
        environ = environ_for(path, body, ip)
        if IDEMPOTENCY_KEYS and path != "/write-floor":
            environ["HTTP_IDEMPOTENCY_KEY"] = f"bench-{next(_KEY_NUMBERS)}"  # as the widget
        status = run_request(environ)[0]
        assert status in (201, 202), status
    process1, thread1 = time.process_time(), time.thread_time()
    server1 = redis_cpu(redis)
    calls1, usec1 = command_usec(redis, command)
    n = len(work)
    return {
        "process_us": (process1 - process0) / n * 1e6,
        "thread_us": (thread1 - thread0) / n * 1e6,
        "redis_us": (server1 - server0) / n * 1e6,
        "command_us": (usec1 - usec0) / max(1, calls1 - calls0),
        "commands_per_request": (calls1 - calls0) / n,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--http-us",
        type=float,
        default=0.0,
        help="CPU per request of the HTTP path outside the app (granian, kernel, wrk), as "
        "bench/http_bench.py's floor row shows it less this bench's floor: added to both sides",
    )
    parser.add_argument(
        "--idempotency-key",
        action="store_true",
        help="each submission with an Idempotency-Key of its own, as the widget sends them",
    )
    parser.add_argument(
        "--no-fast-submissions",
        action="store_true",
        help="FAST_SUBMISSIONS=false: every submission through Flask (to measure the fast path)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with bench_redis() as (url, _embedded):
        os.environ["FLOOR_REDIS_URL"] = url
        os.environ.setdefault("LOG_FORMAT", "json")
        global IDEMPOTENCY_KEYS
        IDEMPOTENCY_KEYS = args.idempotency_key
        result = measure(url, args.n, args.rounds, fast=not args.no_fast_submissions)

    submit, floor, parts = result["submit"], result["floor"], result["parts"]
    print(f"CPU per request, best of {args.rounds} rounds of {args.n} (us)")
    print(f"{'':<30}{'submit':>10}{'floor':>10}")
    for key, label in (
        ("process_us", "server process"),
        ("thread_us", "  of it the request's thread"),
        ("redis_us", "Redis server (INFO cpu)"),
        ("command_us", "  of it the command (stats)"),
    ):
        print(f"{label:<30}{submit[key]:>10.0f}{floor[key]:>10.0f}")
    label = "  the floor's SET (client side)"
    print(f"{label:<30}{'':>10}{floor['redis_call_us']:>10.0f}")
    print("\nsubmit's thread CPU by part (us, exclusive; * = required work)")
    for name, us in parts.items():
        print(f"  {'*' if PARTS.get(name) else ' '} {name:<34}{us:>8.0f}")
    bound = result["bound"]
    print(
        f"\nrequired per submission: {bound['required_us']:.0f} us of the service's own CPU on "
        f"top of the floor request's {bound['floor_total_us']:.0f} us (process + Redis); "
        f"all in {bound['submit_required_total_us']:.0f} us against {bound['submit_total_us']:.0f} "
        f"us measured"
    )
    print(
        f"highest submit/floor ratio on {args.cores} cores: {bound['max_ratio']:.2f} "
        f"(measured CPU now allows {bound['ratio_now']:.2f})"
    )
    if args.http_us:
        with_http = (bound["floor_total_us"] + args.http_us) / (
            bound["submit_required_total_us"] + args.http_us
        )
        bound["max_ratio_with_http"] = with_http
        print(f"with {args.http_us:.0f} us of HTTP per request on both sides: {with_http:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def measure(url: str, n: int, rounds: int, *, fast: bool = True) -> dict[str, Any]:
    import email_validator
    import marshmallow
    from flask import Flask

    import bench.ceiling_app as ceiling
    from service import schemas, submissions
    from service.access_log import AccessLog, install_access_log
    from service.api import fast_submissions, public
    from service.api.context import EXTENSION_KEY
    from service.api.fast_submissions import FastSubmissions
    from service.app import create_app
    from service.config import Config
    from service.crypto import Cipher, KeyRing
    from service.hashing import Hasher
    from service.logs import install_redaction
    from service.moderation import campaigns, profanity
    from service.rsgi_bridge import RSGIBridge
    from service.store import make_redis
    from service.submissions import Submissions

    prefix = f"subcpu{os.getpid()}"
    config = Config(
        redis_url=url,
        moderator_tokens={"bench": TOKEN},
        secret_key=b"bench-secret-key-0123456789abcdef",
        encryption_keys=KeyRing.parse(KeyRing.generate_entry("b1")),
        rate_limit_submit="100000000/minute",
        rate_limit_read="100000000/minute",
        metrics_port=None,
        key_prefix=prefix,
        log_format="json",
        fast_submissions=fast,
    )
    app: Flask = create_app(config)
    install_redaction(config.log_level, config.log_format)
    install_access_log(config.log_format)
    real_stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # access lines: to nowhere
    ext = app.extensions[EXTENSION_KEY]
    service_app = RSGIBridge(
        AccessLog(app, ext.hasher, config.log_format),
        threads=1,
        max_body_bytes=config.max_body_bytes,
        read_timeout=10.0,
    )
    floor_app = ceiling.rsgi_app  # as bench/http_bench.py serves the floor under granian
    client = app.test_client()
    assert (
        client.put("/api/v1/moderation/policy", json=BENCH_POLICY, headers=AUTH).status_code == 200
    )
    redis = make_redis(url)
    path = "/api/v1/articles/bench-submit/comments"
    store = ext.store
    meter = Meter()
    items: list[tuple[Any, Any, str]] = []
    targets: list[tuple[Any, str, str]] = [
        (marshmallow.Schema, "load", "marshmallow load"),
        (schemas, "validate_email", "email-validator"),
        (schemas, "name_problem", "text policy (characters)"),
        (schemas, "comment_problem", "text policy (characters)"),
        (schemas, "unify_line_separators", "text policy (characters)"),
        (submissions, "evaluate_standings", "policy verdicts"),
        (profanity.ProfanityMatcher, "matched_terms", "profanity matching"),
        (Submissions, "_campaign_probe", "campaign sketch"),
        (Hasher, "_digest", "HMACs"),
        (Cipher, "encrypt", "email encryption"),
        (type(store), "insert_submission", "insert arguments (records)"),
        (store, "_insert", "Redis call (client side)"),
        (Flask, "wsgi_app", "Flask dispatch"),
        (AccessLog, "__call__", "access log"),
        (public, "_submit", "the rest (view, domain glue)"),
    ]
    targets.append((submissions, "render_public", "rendering (JSON documents)"))
    targets.append((public, "render_accepted", "rendering (JSON documents)"))
    targets.append((public, "json_response", "rendering (JSON documents)"))
    # The fast path (service/api/fast_submissions.py), where it answers instead of Flask: its
    # own dispatch counts as Flask's, its submission's glue as the view's, its metrics as the
    # hooks'.
    targets += [
        (FastSubmissions, "__call__", "Flask dispatch"),
        (FastSubmissions, "_submit", "the rest (view, domain glue)"),
        (fast_submissions, "record_answer", "metrics hooks"),
        (public, "accepted_answer", "rendering (JSON documents)"),
        (fast_submissions, "accepted_answer", "rendering (JSON documents)"),
    ]
    # The metrics' hooks (service/observability.py) and the view, where Flask holds them.
    for hook_list in (app.before_request_funcs[None], app.after_request_funcs[None]):
        for index, fn in enumerate(hook_list):
            if fn.__name__ in ("begin_request", "end_request"):
                items.append((hook_list, index, "metrics hooks"))
    items.append((app.view_functions, "public.submit_comment", "the rest (view, domain glue)"))
    del email_validator, campaigns
    if os.environ.get("SUBMISSION_CPU_PROFILE"):  # cProfile of plain submissions, to a file
        import cProfile

        run(service_app._run, path, bodies(7777, 50), redis, "evalsha")
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        run(service_app._run, path, bodies(7778, n), redis, "evalsha")
        profiler.disable()
        profiler.dump_stats(os.environ["SUBMISSION_CPU_PROFILE"])

    run(service_app._run, path, bodies(9999, 50), redis, "evalsha")  # warm-up
    run(floor_app._run, "/write-floor", bodies(9998, 50), redis, "set")
    best_submit: dict[str, float] = {}
    best_floor: dict[str, float] = {}
    best_parts: dict[str, float] = {}
    try:
        for round_no in range(rounds):
            floor = run(floor_app._run, "/write-floor", bodies(round_no * 3, n), redis, "set")
            submit = run(service_app._run, path, bodies(round_no * 3 + 1, n), redis, "evalsha")
            meter.reset()
            with patched(meter, targets), patched_items(meter, items):
                metered = run(service_app._run, path, bodies(round_no * 3 + 2, n), redis, "evalsha")
            # Each part's share of the metered run's thread time, applied to the unmetered
            # run's (the meter's own clock reads are spread over the parts); the rest is what
            # no wrapper caught (the view's own code, the bridge's _run).
            scale = submit["thread_us"] / metered["thread_us"]
            parts = {name: meter.totals.get(name, 0.0) / n * 1e6 * scale for name in PARTS}
            accounted = sum(v for k, v in parts.items() if k != "the rest (view, domain glue)")
            parts["the rest (view, domain glue)"] = submit["thread_us"] - accounted
            parts["(metered run's thread time)"] = metered["thread_us"]
            meter.reset()
            with patched(meter, [(ceiling._client, "set", "floor's Redis call")]):
                run(floor_app._run, "/write-floor", bodies(round_no * 3 + 3000, n), redis, "set")
            floor["redis_call_us"] = meter.totals["floor's Redis call"] / n * 1e6
            if not best_submit or submit["process_us"] < best_submit["process_us"]:
                best_submit = submit
                best_parts = parts
            if not best_floor or floor["process_us"] < best_floor["process_us"]:
                best_floor = floor
    finally:
        for key in redis.scan_iter(f"{{{prefix}}}*", count=10_000):
            redis.delete(key)
        store.cache.close()
        sys.stdout = real_stdout
    # The floor's own Redis call is in its total already: only what the insert's client side
    # costs beyond a SET's is added.
    required_own = (
        sum(us for name, us in best_parts.items() if PARTS.get(name)) - best_floor["redis_call_us"]
    )
    floor_total = best_floor["process_us"] + best_floor["redis_us"]
    submit_total = best_submit["process_us"] + best_submit["redis_us"]
    # The required submission: the floor request (HTTP, Flask, one Redis call, its fsync
    # share) plus the required parts, with the insert script's server time in place of a SET's.
    required_total = (
        floor_total + required_own + max(0.0, best_submit["redis_us"] - best_floor["redis_us"])
    )
    return {
        "submit": best_submit,
        "floor": best_floor,
        "parts": best_parts,
        "bound": {
            "required_us": required_own,
            "floor_total_us": floor_total,
            "submit_total_us": submit_total,
            "submit_required_total_us": required_total,
            "max_ratio": floor_total / required_total,
            "ratio_now": floor_total / submit_total,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
