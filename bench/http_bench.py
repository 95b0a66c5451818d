"""HTTP benchmark of the real service against a bare-Flask ceiling, in one run (``make bench``).

Starts the service exactly as ``make run`` does (``python -m service.serve``: gunicorn with
``service/gunicorn_conf.py``, the embedded Redis unless ``REDIS_URL`` is set) on a free port
with a temporary ``DATA_DIR``, and next to it ``bench/ceiling_app.py`` (one ``jsonify`` route)
under the identical gunicorn configuration. It seeds data over HTTP, then drives both with
``wrk`` (keep-alive) and reports each scenario's req/s, p50, p99, errors and its ratio to the
ceiling's req/s. Ratios are what to compare; absolute numbers on a shared 2-core machine are
noise. Every measurement is the best of ``--runs`` runs: with keep-alive, wrk's connections
can all land on one gthread worker, which then serves them on its 4 threads while the other
workers idle; a new run redistributes them.

When ``submit`` or ``mixed`` is selected, each round also measures the **write floor** right
after the ceiling: the ceiling app's ``POST /write-floor`` (bare Flask storing each submission
body with one Redis ``SET`` in the Redis the service uses, so with the same persistence, e.g.
``appendfsync always``). It is a reference like the ceiling, with no target: no submission can
keep a higher ratio than the floor's on this machine. With ``mixed`` it also measures the
**mixed floor**: the same 90/10 mix on the bare app (ceiling GETs, write-floor POSTs), the most
a mixed load with durable writes can keep here.

    python bench/http_bench.py [--duration 5] [--connections 16] [--runs 3]
                               [--scenarios read,counts] [--workers 4] [--env KEY=VALUE]...
                               [--json bench/results/latest.json] [--strict]
    python bench/http_bench.py --worker-sweep      # ceiling and `read` for WORKERS 2, 4, 8
    python bench/http_bench.py --only-metrics-cost # only the metrics on/off comparison
    python bench/http_bench.py --only-campaign-cost [--campaign-warm 20000]

**The cost of campaign detection** (issue 16: at most 10% of a submission). The submit
scenario on one service, the default policy (detection on) against ``campaign_threshold`` 0,
alternated round by round, ``--runs`` rounds; the figure is best on over best off, printed with
the median of the rounds' own ratios. Before it, the store gets ``--campaign-warm`` ordinary
comments (default 20,000) made over the last 24 h (bench/campaign_warm.py: through the insert
script, with their sketches), so that detection reads and writes the current and the previous
time bucket at a busy site's size; on an empty store every band read is a miss in a missing
key, which flatters detection. ``--campaign-warm 0`` measures the empty store.

**The cost of metrics.** After the scenarios (when ``read`` or ``submit`` is among them), two
fresh services are started side by side, identical but for ``METRICS_ENABLED`` (true, with
its metrics port open, and false), seeded the same way, and ``read`` and ``submit`` are run
against both in alternating order (on, off, then off, on...), ``--runs`` times each; the
figure is each scenario's best req/s with metrics over its best without (targets: read 0.95,
submit 0.9), printed with every round's own ratio to show the spread. A scrape of the metrics
port afterwards checks that the "on" service did count the requests.

Exit status: 0 after a measurement, even one that misses its targets (unless ``--strict``:
then 3); 2 when wrk is missing or the options are wrong; 1 when something broke (a server did
not start, seeding failed, wrk failed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bounds import (  # noqa: E402
    mixed_from_parts,
    p99_spread,
    submit_cost_for_mixed,
)
from bench.campaign_warm import DEFAULT_COMMENTS as CAMPAIGN_WARM  # noqa: E402
from bench.campaign_warm import warm  # noqa: E402
from bench.redis_forks import ForkWatch  # noqa: E402
from bench.servers import CEILING_LAYOUTS, SERVICE_LAYOUTS, Layout  # noqa: E402
from devtools.machine import MachineCost, machine_cost, machine_sample  # noqa: E402
from devtools.processes import (  # noqa: E402
    ROOT,
    GroupProcess,
    ProcessError,
    children,
    cmdline,
    free_port,
)
from devtools.rediskeys import delete_prefix  # noqa: E402

LUA_SCRIPT = ROOT / "bench" / "http_scenarios.lua"
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
DEFAULT_SWEEP_JSON = ROOT / "bench" / "results" / "worker-sweep.json"
DEFAULT_METRICS_JSON = ROOT / "bench" / "results" / "metrics-cost.json"
WRK_INSTALL = "apt-get install -y wrk   (Debian/Ubuntu; run `apt-get update` first if needed)"

TOKEN = "bench-moderator-token-0123456789abcdef"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"
AUTH_HEADER = f"Authorization: Bearer {TOKEN}"
# Set by the harness for both servers; --env may not override them.
HARNESS_ENV = (
    "HOST",
    "PORT",
    "DATA_DIR",
    "WORKERS",
    "MODERATOR_TOKENS",
    "SECRET_KEY",
    "KEY_PREFIX",
)
SWEEP_WORKERS = (2, 4, 8)
# Defaults for both servers that --env may override. wrk sends everything from one client IP,
# so the per-IP rate limits (counted in Redis) are set far above what a run can reach: the
# checks still run wherever production runs them, but never answer 429.
BENCH_ENV = {
    "RATE_LIMIT_SUBMIT": "100000000/minute",
    "RATE_LIMIT_READ": "100000000/minute",
    # Not the default port: other services on the machine may hold it (the metrics-cost phase
    # opens one on a free port).
    "METRICS_PORT": "off",
}
# The metrics-cost phase: the scenarios it compares and each one's target (on / off).
METRICS_COST_TARGETS = {"read": 0.95, "submit": 0.9}

READ_ARTICLE = "bench-read"
COUNT_ARTICLES = tuple(f"bench-count-{i:02d}" for i in range(20))
QUEUE_ARTICLE = "bench-queue"
SUBMIT_ARTICLE = "bench-submit"
READ_COMMENTS = 50
PENDING_COMMENTS = 120
READ_PATH = f"/api/v1/articles/{READ_ARTICLE}/comments?limit=50"
COUNTS_PATH = "/api/v1/comment-counts?" + "&".join(f"article_id={a}" for a in COUNT_ARTICLES)
QUEUE_PATH = "/api/v1/moderation/queue?limit=50"
SUBMIT_PATH = f"/api/v1/articles/{SUBMIT_ARTICLE}/comments"
MIXED_POST_PATH = f"/api/v1/articles/{READ_ARTICLE}/comments"
CEILING_PATH = "/ceiling"
FLOOR_PATH = "/write-floor"
PAGE_PATH = "/page"
QUEUE_PAGE_PATH = "/queue-page"
# service.serve writes the embedded Redis's URL to this file in DATA_DIR before gunicorn starts
# (service/bootstrap.py REDIS_URL_FILE): the socket may be DATA_DIR/redis.sock or, when that
# path is too long for a unix socket, a temporary path only the service knows.
EMBEDDED_URL_FILE = "redis-url"

# The moderation policy stays on (profanity, links, honeypot, trust); only the limits that a
# single-IP load generator trips at once are off.
BENCH_POLICY: dict[str, Any] = {
    "auto_approve": "trusted",
    "flood_interval_seconds": 0,
    "flood_hourly_cap": 0,
    "duplicate_window_seconds": 0,
}
# Seeding publishes every comment: its generated texts are alike, and campaign detection
# (on in BENCH_POLICY, as by default) would hold them as one campaign.
PUBLISH_POLICY: dict[str, Any] = {**BENCH_POLICY, "auto_approve": "all", "campaign_threshold": 0}

WORDS = (
    "the council said that budget plans for the new library would be reviewed next week "
    "while residents asked whether parking and bus routes near the station could change "
    "soon given the long delays many of them reported after the meeting on tuesday"
).split()


class BenchError(RuntimeError):
    """Something broke: the measurement is not valid (exit status 1)."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP: unwind through every ``finally`` like Ctrl-C does."""


# --------------------------------------------------------------------------------------------
# Scenarios and results


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    target: float | None  # minimum ratio to the ceiling's req/s; None for the references
    path: str
    mode: str = "get"  # http_scenarios.lua mode: get, submit, mixed
    headers: tuple[str, ...] = ()
    post_path: str = ""
    server: str = "service"  # which server wrk drives: "service" or "ceiling" (the references)
    # What the target ratio is taken against: the (strongest) ceiling, or, for writes, the
    # write floor or the mixed floor measured under the same server.
    reference: str = "ceiling"


CEILING = Scenario(
    "ceiling",
    "bare Flask jsonify under the fastest server layout (bench/servers.py)",
    None,
    CEILING_PATH,
    server="ceiling",
)
# The write floor: the bare app storing each (distinct, ~400-byte) submission body with one
# Redis SET in the service's Redis. A reference like the ceiling, not a target.
FLOOR = Scenario(
    "floor",
    "bare Flask + one SET of the body in the service's Redis",
    None,
    FLOOR_PATH,
    mode="submit",
    post_path=FLOOR_PATH,
    server="ceiling",
)
# The mixed floor: the mixed load's shape on the bare app, 9 in 10 requests the ceiling's GET
# and 1 in 10 a write-floor POST. The most a 90/10 mix can keep here with durable writes.
MIXED_FLOOR = Scenario(
    "mixfloor",
    "90% ceiling GET + 10% write-floor POST",
    None,
    CEILING_PATH,
    mode="mixed",
    post_path=FLOOR_PATH,
    server="ceiling",
)
# The read's physical bound: the bare app answering a body of the read page's shape and size
# (bench/ceiling_app.py's /page, pre-rendered bytes). Informational, like the floors: what
# separates it from the ceiling is payload (bytes the kernel copies and wrk parses), what
# separates `read` from it is the service's code.
PAGE_FLOOR = Scenario(
    "page",
    "bare Flask answering the read's ~24 KB body (pre-rendered bytes)",
    None,
    PAGE_PATH,
    server="ceiling",
)
# The floor is measured whenever a scenario that writes is selected, the mixed floor with mixed,
# the same-body page with read.
FLOOR_WITH = ("submit", "mixed")
MIXED_FLOOR_WITH = ("mixed",)
PAGE_FLOOR_WITH = ("read",)
# The same for the moderator queue's page (~53 KB: the moderator view's reasons, history...).
QUEUE_PAGE_FLOOR = Scenario(
    "queue-page",
    "bare Flask answering the queue's ~53 KB body (pre-rendered bytes)",
    None,
    QUEUE_PAGE_PATH,
    server="ceiling",
)
QUEUE_PAGE_FLOOR_WITH = ("queue",)
SCENARIOS = (
    Scenario("read", "GET 50 approved comments of one article", 0.9, READ_PATH),
    Scenario(
        "submit",
        "POST a distinct comment (201/202)",
        0.8,
        SUBMIT_PATH,
        mode="submit",
        post_path=SUBMIT_PATH,
        reference="floor",
    ),
    Scenario("counts", "GET comment counts of 20 articles", 0.9, COUNTS_PATH),
    Scenario(
        "queue", "GET moderation queue page of 50 (Bearer)", 0.7, QUEUE_PATH, headers=(AUTH_HEADER,)
    ),
    Scenario(
        "mixed",
        "90% read + 10% submit",
        0.8,
        READ_PATH,
        mode="mixed",
        post_path=MIXED_POST_PATH,
        reference="mixfloor",
    ),
)
# Every scenario's p99 may be at most this many times the ceiling's p99 (same connections).
P99_FACTOR = 3.0
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


@dataclass(frozen=True)
class WrkRun:
    requests: int
    duration_s: float
    req_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bytes_per_response: int  # headers included: a sudden change means a different answer
    status_errors: int  # responses >= 400 (wrk's "Non-2xx or 3xx responses")
    socket_errors: int  # connect + read + write + timeout
    # What the whole machine spent per request during the run; None where /proc/stat is not
    # readable.
    machine: MachineCost | None = None
    # fsync/fdatasync calls of the Redis written to during the run (strace), when counted.
    fsyncs: int | None = None
    # Forks (AOF rewrites, RDB saves) of the service's Redis that began during the run
    # (bench/redis_forks.py); None where the server has no Redis the bench can reach.
    forks: int | None = None

    @property
    def fsyncs_per_request(self) -> float | None:
        return None if self.fsyncs is None or not self.requests else self.fsyncs / self.requests

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


@dataclass
class Measurement:
    scenario: Scenario
    runs: list[WrkRun] = field(default_factory=list)

    @property
    def best(self) -> WrkRun:
        return max(self.runs, key=lambda run: run.req_s)

    @property
    def errors(self) -> int:
        """Errors of every run, not only the best one: an error is never hidden by a rerun."""
        return sum(run.errors for run in self.runs)

    def ratio(self, ceiling: Measurement) -> float:
        return self.best.req_s / ceiling.best.req_s if ceiling.best.req_s else 0.0

    def target_ratio(self, references: dict[str, Measurement]) -> float | None:
        """The ratio the target is about: to the ceiling, or to the floor named as reference;
        None when that reference was not measured."""
        reference = references.get(self.scenario.reference)
        return None if reference is None else self.ratio(reference)

    def p99_ok(self, ceiling: Measurement) -> bool:
        return self.best.p99_ms <= P99_FACTOR * ceiling.best.p99_ms

    def misses(self, references: dict[str, Measurement]) -> list[str]:
        """What this measurement misses: "ratio", "p99", "errors" (empty: it passed)."""
        why = []
        target = self.scenario.target
        if target is not None:
            ratio = self.target_ratio(references)
            if ratio is None or ratio < target:
                why.append("ratio")
            if not self.p99_ok(references["ceiling"]):
                why.append("p99")
        if self.errors:
            why.append("errors")
        return why

    def passed(self, references: dict[str, Measurement]) -> bool:
        return not self.misses(references)


# --------------------------------------------------------------------------------------------
# Processes


class Server(GroupProcess):
    """A server in its own process group (devtools/processes.py), ready once ``ready_path``
    answers 200; ``stop`` never raises, so it can run in every ``finally``."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path, ready_path: str
    ) -> None:
        super().__init__(name, argv, env, log_path)
        self.ready_path = ready_path
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        super().start()
        self.wait_ready(self.port, self.ready_path, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        running = self.process is not None and self.process.poll() is None
        if self.terminate(timeout) is None and running:
            print(
                f"  {self.name} did not stop in {timeout:.0f}s: killed its process group",
                file=sys.stderr,
            )

    def log_text(self, lines: int = 40) -> str:
        return "\n".join(self.log_tail().splitlines()[-lines:])


def http_request(
    port: int,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One request on a fresh connection; returns the status and the decoded JSON (or None)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return _exchange(connection, method, path, body, headers)
    finally:
        connection.close()


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str] | None,
) -> tuple[int, Any]:
    all_headers = {"Accept": "application/json", **(headers or {})}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=all_headers)
    response = connection.getresponse()
    raw = response.read()
    try:
        decoded: Any = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace")
    return response.status, decoded


class Client:
    """Keep-alive JSON client for seeding (one connection, reopened if the server closed it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)

    def __call__(
        self, method: str, path: str, body: dict[str, Any] | None = None, auth: bool = False
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"} if auth else None
        try:
            return _exchange(self.connection, method, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10.0)
            return _exchange(self.connection, method, path, body, headers)

    def close(self) -> None:
        self.connection.close()


@dataclass(frozen=True)
class Setup:
    """Everything that decides what is measured; recorded in the JSON."""

    workers: int
    connections: int
    wrk_threads: int
    duration: int
    runs: int
    extra_env: dict[str, str]
    redis_url: str | None  # None: embedded Redis
    # The campaign-cost phase's store holds this many ordinary comments of the last window
    # first (bench/campaign_warm.py); 0: it starts empty, which flatters detection.
    campaign_warm: int = CAMPAIGN_WARM

    @property
    def redis_mode(self) -> str:
        return "embedded" if self.redis_url is None else "url"

    @property
    def bench_env(self) -> dict[str, str]:
        """The environment the harness adds for both servers (besides its own HARNESS_ENV)."""
        return {**BENCH_ENV, **self.extra_env}


class Stack:
    """The service under each of ``service_layouts`` (the first is the default, whose Redis the
    write floor uses) and the ceiling app under each of ``ceiling_layouts``, all running side by
    side; stopped by ``close`` in any case."""

    def __init__(
        self,
        setup: Setup,
        workdir: Path,
        ceiling_layouts: Sequence[Layout] = CEILING_LAYOUTS,
        service_layouts: Sequence[Layout] = SERVICE_LAYOUTS,
    ) -> None:
        self.setup = setup
        self.workdir = workdir
        self.key_prefix = "bench" + secrets.token_hex(4)
        self.floor_redis_url = ""  # known once the default service runs (start)
        base = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
        base.pop("REDIS_URL", None)
        base.update(BENCH_ENV)
        base.update(setup.extra_env)
        if setup.redis_url is not None:
            base["REDIS_URL"] = setup.redis_url
        base.update(
            {
                "HOST": "127.0.0.1",
                "WORKERS": str(setup.workers),
                "MODERATOR_TOKENS": f"bench:{TOKEN}",
                "SECRET_KEY": SECRET_KEY,
            }
        )
        self.base_env = base
        python = sys.executable
        self.service_layouts = list(service_layouts)
        self.services: dict[str, Server] = {}
        self.key_prefixes: list[str] = []
        for index, layout in enumerate(self.service_layouts):
            label = layout.label(setup.workers)
            env = {
                **base,
                **layout.service_env(setup.workers),
                "PORT": str(free_port()),
                "DATA_DIR": str(workdir / f"data-{index}"),
            }
            if setup.redis_url is not None:  # each service its own keys in a shared Redis
                env["KEY_PREFIX"] = f"{self.key_prefix}s{index}"
                self.key_prefixes.append(env["KEY_PREFIX"])
            self.services[label] = Server(
                f"service {label}",
                [python, "-m", "service.serve"],
                env,
                workdir / f"service-{index}.log",
                "/readyz",
            )
        self.ceiling_layouts = list(ceiling_layouts)
        self.ceilings: dict[str, Server] = {}
        for index, layout in enumerate(self.ceiling_layouts):
            port = free_port()
            env = {
                **base,
                **layout.service_env(setup.workers),
                "PORT": str(port),
                "DATA_DIR": str(workdir / f"ceiling-{index}"),
            }
            label = layout.label(setup.workers)
            self.ceilings[label] = Server(
                f"ceiling {label}",
                layout.ceiling_argv(port, setup.workers),
                env,
                workdir / f"ceiling-{index}.log",
                CEILING_PATH,
            )

    @property
    def service(self) -> Server:
        """The default service (the first layout): the one the scenarios measure."""
        return next(iter(self.services.values()))

    def start(self) -> None:
        # The services first: the ceilings' write floor needs the Redis the default service
        # uses, and the embedded one exists only once the service runs.
        for server in self.services.values():
            server.start()
        self.floor_redis_url = self.service_redis_url()
        for server in self.ceilings.values():
            server.env.update(
                {"FLOOR_REDIS_URL": self.floor_redis_url, "FLOOR_KEY_PREFIX": self.floor_key_prefix}
            )
            server.start()

    @property
    def floor_key_prefix(self) -> str:
        # A hash tag of its own, outside the service's key space: a floor write can never land
        # under a prefix the service's workers track (CLIENT TRACKING BCAST) and charge the
        # floor for their invalidations. close() removes its keys from a shared Redis too.
        return f"{self.key_prefix}-floor"

    def service_redis_url(self) -> str:
        """The Redis the default service uses: REDIS_URL, or its embedded server's socket."""
        return server_redis_url(self.service, self.setup)

    def floor_redis_info(self) -> dict[str, Any]:
        """The persistence settings the write floor runs against (they decide its figure)."""
        from redis import Redis
        from redis.exceptions import RedisError

        info: dict[str, Any] = {"url": redact_url(self.floor_redis_url)}
        client = Redis.from_url(self.floor_redis_url, socket_timeout=5.0, decode_responses=True)
        try:
            server = client.info("server")
            persistence = client.info("persistence")
            info["redis_version"] = server.get("redis_version")
            info["aof_enabled"] = bool(persistence.get("aof_enabled"))
            try:  # CONFIG may be disabled on a managed Redis
                info["appendfsync"] = client.config_get("appendfsync").get("appendfsync")
            except RedisError:
                info["appendfsync"] = None
        except RedisError as error:
            raise BenchError(f"the write floor's Redis does not answer: {error}") from error
        finally:
            client.close()
        return info

    def check_floor(self, ceiling: Server) -> None:
        status, answer = http_request(
            ceiling.port, "POST", FLOOR_PATH, body={"comment": "floor check"}
        )
        expect(status, (202,), "POST " + FLOOR_PATH + " on " + ceiling.name, answer)

    def close(self) -> None:
        try:
            for server in self.ceilings.values():
                server.stop()
        finally:
            for server in self.services.values():
                server.stop()
            if self.setup.redis_url is not None:
                drop_keys(self.setup.redis_url, (*self.key_prefixes, self.floor_key_prefix))

    def gunicorn_settings(self) -> dict[str, Any]:
        """What gunicorn reads from service/gunicorn_conf.py with this environment."""
        snippet = (
            "import json, service.gunicorn_conf as c; print(json.dumps({k: getattr(c, k, "
            "None) for k in ('workers', 'worker_class', 'threads', 'keepalive', "
            "'timeout', 'preload_app', 'worker_connections', 'backlog')}))"
        )
        env = {**self.base_env, "PORT": "0"}
        done = subprocess.run(
            [sys.executable, "-c", snippet],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"cannot read service.gunicorn_conf:\n{done.stderr}")
        settings: dict[str, Any] = json.loads(done.stdout)
        return settings


def server_redis_url(server: Server, setup: Setup) -> str:
    """The Redis a running service uses: REDIS_URL, or its embedded server's socket."""
    if setup.redis_url is not None:
        return setup.redis_url
    url_file = Path(server.env["DATA_DIR"]) / EMBEDDED_URL_FILE
    try:
        url = url_file.read_text().strip()
    except OSError as error:
        raise BenchError(
            f"cannot find the embedded Redis's URL ({error}):\n{server.log_text()}"
        ) from error
    if not url.startswith("unix://") or not Path(url[len("unix://") :]).exists():
        raise BenchError(f"the embedded Redis's URL {url!r} (from {url_file}) names no socket")
    return url


def drop_keys(redis_url: str, prefixes: Sequence[str]) -> None:
    """Remove this run's keys from a shared Redis (the embedded one is thrown away)."""
    try:
        from redis import Redis

        client = Redis.from_url(redis_url, socket_timeout=5.0)
        try:
            for prefix in prefixes:
                delete_prefix(client, prefix)
        finally:
            client.close()
    except Exception as error:  # cleanup must not hide the measurement
        print(
            f"warning: could not remove the keys of {list(prefixes)} from REDIS_URL: {error}",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------------------------
# Seeding


def comment_text(n: int, length: int = 300) -> str:
    """~``length`` characters of plain prose (no links, no profanity), distinct per ``n``."""
    words: list[str] = []
    step = 1 + n % 5
    i = (n * 7) % len(WORDS)
    tail = f" (seed {n})"
    while sum(len(w) + 1 for w in words) < length - len(tail):
        words.append(WORDS[i])
        i = (i + step) % len(WORDS)
    return " ".join(words) + tail


def expect(status: int, wanted: tuple[int, ...], what: str, body: Any) -> None:
    if status not in wanted:
        raise BenchError(f"{what}: expected {wanted}, got {status}: {str(body)[:500]}")


def post_comment(client: Client, article: str, n: int, tag: str, wanted: int) -> None:
    body = {
        "name": f"Seed reader {n}",
        "email": f"seed-{tag}-{n}@example.com",
        "comment": comment_text(n),
    }
    status, answer = client("POST", f"/api/v1/articles/{article}/comments", body)
    expect(status, (wanted,), f"seeding a comment on {article}", answer)


def seed(port: int, *, full: bool) -> dict[str, int]:
    """Seeds over HTTP, serially on one keep-alive connection (a couple of seconds)."""
    client = Client(port)
    started = time.monotonic()
    try:
        status, answer = client("PUT", "/api/v1/moderation/policy", PUBLISH_POLICY, auth=True)
        expect(status, (200,), "PUT policy (publish at once)", answer)
        n = 0
        for _ in range(READ_COMMENTS):
            n += 1
            post_comment(client, READ_ARTICLE, n, "read", 201)
        approved_counts: dict[str, int] = {}
        if full:
            for index, article in enumerate(COUNT_ARTICLES):
                approved_counts[article] = index % 5 + 1
                for _ in range(index % 5 + 1):
                    n += 1
                    post_comment(client, article, n, "count", 201)
            # Held: first-time commenters (fresh emails) under auto_approve "trusted".
            status, answer = client("PUT", "/api/v1/moderation/policy", BENCH_POLICY, auth=True)
            expect(status, (200,), "PUT policy (trusted)", answer)
            for _ in range(PENDING_COMMENTS):
                n += 1
                post_comment(client, QUEUE_ARTICLE, n, "pending", 202)
        status, answer = client("PUT", "/api/v1/moderation/policy", BENCH_POLICY, auth=True)
        expect(status, (200,), "PUT policy (bench)", answer)

        # Check that each scenario's URL answers what the scenario claims to measure.
        status, page = client("GET", READ_PATH)
        expect(status, (200,), "GET " + READ_PATH, page)
        if page["total"] != READ_COMMENTS or len(page["comments"]) != READ_COMMENTS:
            raise BenchError(f"the read article holds {page['total']} comments, not 50")
        if full:
            status, counts = client("GET", COUNTS_PATH)
            expect(status, (200,), "GET comment-counts", counts)
            if counts["counts"] != approved_counts:
                raise BenchError(f"unexpected counts: {counts}")
            status, queue = client("GET", QUEUE_PATH, auth=True)
            expect(status, (200,), "GET " + QUEUE_PATH, queue)
            if len(queue["comments"]) != 50 or queue["total"] < PENDING_COMMENTS:
                raise BenchError(f"the queue holds {queue['total']} comments")
        print(f"  seeded {n} comments over HTTP in {time.monotonic() - started:.1f}s", flush=True)
        return {
            "approved_read": READ_COMMENTS,
            "approved_counts": sum(approved_counts.values()),
            "pending": PENDING_COMMENTS if full else 0,
        }
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# wrk


RESULT_LINE = re.compile(r"^HTTP_BENCH_RESULT (\{.*\})$", re.MULTILINE)


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (
        (done.stdout + done.stderr).splitlines()[0].strip()
        if done.stdout + done.stderr
        else "unknown"
    )


class FsyncCounter:
    """Counts a process's fsync and fdatasync calls while it runs (``strace -c``); Redis
    with ``appendfsync always`` makes one per event-loop turn that wrote, so fsyncs per request
    says how many writes shared each one."""

    FSYNC_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync$", re.M)

    def __init__(self, pid: int, workdir: Path) -> None:
        self.out = workdir / f"strace-{pid}-{secrets.token_hex(3)}.txt"
        self.process = subprocess.Popen(
            ["strace", "-f", "-c", "-e", "trace=fdatasync,fsync", "-o", str(self.out)]
            + ["-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)  # attached

    def stop(self) -> int | None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
            text = self.out.read_text()
        except (subprocess.TimeoutExpired, OSError):
            self.process.kill()
            return None
        return sum(int(m.group(1)) for m in self.FSYNC_LINE.finditer(text))


def redis_pid_of(server: Server) -> int | None:
    """The embedded redis-server a running service started, if any."""
    if server.process is None:
        return None
    found = [p for p in children(server.process.pid) if "redis-server" in cmdline(p)]
    return found[0] if len(found) == 1 else None


# Per server (by id), the watch on its Redis's forks, or None: it has none the bench reaches.
_FORK_WATCHES: dict[int, ForkWatch | None] = {}


def fork_watch(server: Server, setup: Setup) -> ForkWatch | None:
    """The watch on the forks of the Redis ``server`` writes to: its embedded one (from the URL
    file its DATA_DIR holds once it runs) or REDIS_URL; None for a server without one (the
    ceilings)."""
    if id(server) not in _FORK_WATCHES:
        url = setup.redis_url
        if url is None:
            data_dir = server.env.get("DATA_DIR")
            url_file = Path(data_dir) / EMBEDDED_URL_FILE if data_dir else None
            if url_file is not None and url_file.exists():
                url = url_file.read_text().strip()
        _FORK_WATCHES[id(server)] = None if url is None else ForkWatch(url)
    return _FORK_WATCHES[id(server)]


def run_wrk(
    server: Server,
    scenario: Scenario,
    setup: Setup,
    nonce: str,
    duration: int | None = None,
    fsync_pid: int | None = None,
) -> WrkRun:
    seconds = duration if duration is not None else setup.duration
    argv = [
        "wrk",
        f"-t{setup.wrk_threads}",
        f"-c{setup.connections}",
        f"-d{seconds}s",
        "--timeout",
        "2s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
    ]
    for header in scenario.headers:
        argv += ["-H", header]
    argv.append(server.base + scenario.path)
    env = {
        **os.environ,
        "HTTP_BENCH_MODE": scenario.mode,
        "HTTP_BENCH_NONCE": nonce,
        "HTTP_BENCH_POST_PATH": scenario.post_path or scenario.path,
    }
    watch = fork_watch(server, setup)
    forks_before = None
    if watch is not None:
        # A rewrite left running by the run before would fall on this one.
        watch.settle()
        forks_before = watch.forks()
    counter = (
        FsyncCounter(fsync_pid, server.log_path.parent)
        if fsync_pid is not None and shutil.which("strace")
        else None
    )
    sample_before = machine_sample()
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    sample_after = machine_sample()
    fsyncs = None if counter is None else counter.stop()
    match = RESULT_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(
            f"wrk failed ({done.returncode}) on {scenario.name}:\n{done.stdout}\n{done.stderr}"
        )
    raw: dict[str, Any] = json.loads(match.group(1))
    duration_s = raw["duration_us"] / 1e6
    return WrkRun(
        requests=raw["requests"],
        duration_s=round(duration_s, 3),
        req_s=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        bytes_per_response=raw["bytes"] // raw["requests"] if raw["requests"] else 0,
        status_errors=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        machine=machine_cost(sample_before, sample_after, raw["requests"]),
        fsyncs=fsyncs,
        forks=None if watch is None or forks_before is None else watch.forks() - forks_before,
    )


Job = tuple[str, Server, Scenario]  # the key its results go under, who wrk drives, what


def measure_jobs(
    jobs: Sequence[Job],
    setup: Setup,
    label: str = "",
    fsync_pids: dict[str, int] | None = None,
) -> dict[str, Measurement]:
    """``setup.runs`` rounds, each running every job once in order, so slow phases of a noisy
    machine hit all of them alike (after a one-second warm-up of each). Best run per job.
    ``fsync_pids``: job key -> the Redis whose fsyncs that job's runs count."""
    pids = fsync_pids or {}
    nonce_base = secrets.token_hex(3)
    for _key, server, scenario in jobs:
        if scenario.mode == "get":  # warm-up: imports, first connections to Redis, caches
            run_wrk(server, scenario, setup, nonce_base + "w", duration=1)
    results = {key: Measurement(scenario) for key, _server, scenario in jobs}
    for round_no in range(1, setup.runs + 1):
        for key, server, scenario in jobs:
            run = run_wrk(
                server, scenario, setup, f"{nonce_base}r{round_no}", fsync_pid=pids.get(key)
            )
            results[key].runs.append(run)
            print(
                f"  {label}{key:<26} run {round_no}/{setup.runs}: "
                f"{run.req_s:>8.0f} req/s  p50 {run.p50_ms:6.1f} ms  "
                f"p99 {run.p99_ms:7.1f} ms  {run.bytes_per_response:>6} B/resp  "
                f"errors {run.errors}{_cpu_text(run)}"
                + (
                    ""
                    if run.fsyncs_per_request is None
                    else f"  {run.fsyncs_per_request:.2f} fsync/req"
                ),
                flush=True,
            )
    return results


def measure(
    stack: Stack,
    scenarios: Sequence[Scenario],
    setup: Setup,
    label: str = "",
    floors: Sequence[Scenario] = (),
    ceiling: Server | None = None,
) -> dict[str, Measurement]:
    """The ceiling (and the ``floors``) on ``ceiling`` (default: the first ceiling server),
    then every scenario on the default service, in rounds (:func:`measure_jobs`)."""
    bare = ceiling or next(iter(stack.ceilings.values()))
    jobs: list[Job] = [(s.name, bare, s) for s in (CEILING, *floors)]
    jobs += [(s.name, stack.service, s) for s in scenarios]
    return measure_jobs(jobs, setup, label)


# --------------------------------------------------------------------------------------------
# Reports


ACCESS_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


def _json_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def scan_log(path: Path) -> dict[str, Any]:
    """Error statuses, tracebacks and worker timeouts found in a server's log (JSON lines, as
    the service writes them by default, or LOG_FORMAT=text lines)."""
    statuses: Counter[str] = Counter()
    tracebacks = timeouts = error_lines = 0
    try:
        with path.open(errors="replace") as log:
            for line in log:
                record = _json_line(line)
                if record is not None:
                    if record.get("logger") == "gunicorn.access":
                        status = record.get("status")
                        if isinstance(status, int) and status >= 400:
                            statuses[f"{record.get('method')} {status}"] += 1
                        continue
                    message = str(record.get("message", ""))
                    tracebacks += "exc_info" in record or message.startswith("Traceback")
                    timeouts += "WORKER TIMEOUT" in message
                    error_lines += record.get("level") in ("ERROR", "CRITICAL")
                    continue
                match = ACCESS_LINE.search(line)
                if match is not None:
                    if int(match.group(3)) >= 400:
                        statuses[f"{match.group(1)} {match.group(3)}"] += 1
                    continue
                tracebacks += line.startswith("Traceback")
                timeouts += "WORKER TIMEOUT" in line
                error_lines += "[ERROR]" in line or "[CRITICAL]" in line
    except OSError:
        pass
    return {
        "error_statuses": dict(statuses),
        "tracebacks": tracebacks,
        "worker_timeouts": timeouts,
        "error_lines": error_lines,
    }


def _cpu_text(run: WrkRun) -> str:
    forked = f"  {run.forks} Redis fork(s) during the run" if run.forks else ""
    cost = run.machine
    if cost is None:
        return forked
    return (
        f"  cpu {cost.cpu_us_per_request:6.0f} us/req  {cost.switches_per_request:5.1f} "
        f"cs/req  idle {cost.idle_share:4.0%}"
    ) + forked


def cpu_cost_ratio(m: Measurement, ceiling: Measurement) -> float | None:
    """The best run's machine CPU per request over the ceiling's best run's."""
    mine, base = m.best.machine, ceiling.best.machine
    if mine is None or base is None or not base.cpu_us_per_request:
        return None
    return mine.cpu_us_per_request / base.cpu_us_per_request


def print_table(
    ceiling: Measurement,
    measured: Sequence[Measurement],
    floors: Sequence[Measurement] = (),
    references: dict[str, Measurement] | None = None,
) -> None:
    refs = references if references is not None else {"ceiling": ceiling}
    header = (
        f"{'scenario':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99 x':>6} {'errors':>7} "
        f"{'cpu us':>7} {'cost':>5} {'cs':>5} {'idle':>5} {'fsync':>5} {'ratio':>6} {'vs':>9} "
        f"{'target':>7}  result"
    )
    print(header)
    print("-" * len(header))
    for m in (ceiling, *floors, *measured):
        best = m.best
        target = "-" if m.scenario.target is None else f">={m.scenario.target:.1f}"
        misses = m.misses(refs)
        if m.scenario.target is None:
            verdict = "ok" if not misses else "FAIL (errors)"
        else:
            verdict = "PASS" if not misses else f"FAIL ({', '.join(misses)})"
        against = m.target_ratio(refs) if m.scenario.target is not None else None
        versus = "-" if against is None else f"{against:.2f} {m.scenario.reference[:5]}"
        cost, machine = cpu_cost_ratio(m, ceiling), best.machine
        cpu, switches, idle = (
            ("-", "-", "-")
            if machine is None
            else (
                f"{machine.cpu_us_per_request:.0f}",
                f"{machine.switches_per_request:.1f}",
                f"{machine.idle_share:.0%}",
            )
        )
        p99x = best.p99_ms / ceiling.best.p99_ms if ceiling.best.p99_ms else 0.0
        per = best.fsyncs_per_request
        fsync = "-" if per is None else f"{per:.2f}"
        print(
            f"{m.scenario.name:<9} {best.req_s:>8.0f} {best.p50_ms:>8.1f} {best.p99_ms:>8.1f} "
            f"{p99x:>6.1f} {m.errors:>7} {cpu:>7} {'-' if cost is None else f'{cost:.2f}':>5} "
            f"{switches:>5} {idle:>5} {fsync:>5} {m.ratio(ceiling):>6.2f} {versus:>9} "
            f"{target:>7}  {verdict}"
        )


def print_servers(
    ceilings: dict[str, Measurement], strongest: str, comparison: list[dict[str, Any]]
) -> None:
    """The ceiling under every layout, then the service under each server beside its own."""
    print("\nThe bare app (ceiling) under each server layout (best of the runs):\n")
    header = f"{'layout':<24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  note"
    print(header)
    print("-" * len(header))
    for label, m in ceilings.items():
        mark = "  <- the ceiling" if label == strongest else ""
        print(
            f"{label:<24} {m.best.req_s:>8.0f} {m.best.p50_ms:>7.1f} {m.best.p99_ms:>7.1f} "
            f"{m.errors:>6}  {m.scenario.title}{mark}"
        )
    print("\nThe service under each server (ratios to the strongest ceiling; p99 in brackets):\n")
    header = (
        f"{'server':<24} {'its ceiling':>18} {'read':>18} {'submit':>18} {'read/ceil':>9} "
        f"{'submit/floor':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in comparison:

        def cell(doc: dict[str, Any] | None) -> str:
            if doc is None:
                return "-"
            return f"{doc['req_s']:.0f} ({doc['p99_ms']:.0f} ms)"

        floor_ratio = row.get("submit_vs_floor")
        print(
            f"{row['server']:<24} {cell(row.get('ceiling')):>18} {cell(row.get('read')):>18} "
            f"{cell(row.get('submit')):>18} {row['read_ratio']:>9.2f} "
            f"{'-' if floor_ratio is None else f'{floor_ratio:.2f}':>12}"
        )


def print_bounds(results: dict[str, Measurement], ceiling: Measurement) -> dict[str, Any]:
    """The ceiling's own p99 spread over its runs (the A/A factor the p99 target must be read
    against), and what the read and submit rows' CPU per request predict and allow for mixed
    (bench/bounds.py). Returns them for the JSON."""
    out: dict[str, Any] = {}
    spread = p99_spread([run.p99_ms for run in ceiling.runs])
    if spread is not None and spread.runs > 1:
        out["ceiling_p99_spread"] = {
            "runs": spread.runs,
            "low_ms": spread.low_ms,
            "high_ms": spread.high_ms,
            "factor": round(spread.factor, 2),
        }
        print(
            f"the ceiling's own p99 over its {spread.runs} runs (same server, same code): "
            f"{spread.low_ms:.1f}-{spread.high_ms:.1f} ms, {spread.factor:.1f}x"
            + (
                f": above the p99 target's {P99_FACTOR:g}x, so a p99 verdict here compares "
                "moments of the machine's load, not code"
                if spread.factor > P99_FACTOR
                else ""
            )
        )
    parts = [results.get(name) for name in ("read", "submit", "floor", "mixed", MIXED_FLOOR.name)]
    read, submit, floor, mixed, mixfloor = parts
    if None in parts:
        return out
    assert read and submit and floor and mixed and mixfloor
    costs = [m.best.machine for m in (read, submit, ceiling, floor)]
    if any(cost is None for cost in costs):
        return out
    read_us, submit_us, ceiling_us, floor_us = (
        cost.cpu_us_per_request for cost in costs if cost is not None
    )
    predicted = mixed_from_parts(read_us, submit_us, ceiling_us, floor_us)
    target = next(s.target for s in SCENARIOS if s.name == "mixed") or 0.8
    allowed = submit_cost_for_mixed(target, read_us, ceiling_us, floor_us)
    measured = mixed.ratio(mixfloor)
    out["mixed"] = {
        "measured": round(measured, 3),
        "predicted_from_parts": round(predicted, 3),
        "submit_us": round(submit_us),
        "submit_us_allowed_for_target": round(allowed),
        "floor_over_allowed": round(floor_us / allowed, 3) if allowed else None,
    }
    print(
        f"mixed from its parts' CPU (0.9 x read {read_us:.0f} us + 0.1 x submit {submit_us:.0f}"
        f" us, against 0.9 x ceiling {ceiling_us:.0f} + 0.1 x floor {floor_us:.0f}): "
        f"{predicted:.2f} of mixfloor predicted, {measured:.2f} measured; mixed reaches "
        f"{target:g} only if a submission costs at most {allowed:.0f} us, i.e. submit keeps "
        + (f"{floor_us / allowed:.2f}" if allowed else "more than 1.00")
        + " of the floor's cost (bench/submission_cpu.py bounds what its required work allows)"
    )
    return out


# The busy mixed floor (issue 17's mixed target): mixfloor's load on the bare app, each write
# first burning the CPU a submission costs beyond the floor's write (measured in this run), in
# the server's Python thread. What separates mixfloor from it is the submission's cost; what
# separates mixed from it is the service's reads and whatever else the mix adds. Measured with
# mixfloor and mixed in rounds of its own. All of submit's extra CPU is burnt under the GIL,
# where part of a submission's is Redis's (another process): a slightly harsher mix than the
# service's, so mixed over it flatters mixed a little.
BUSY_MIXED_FLOOR = "mixbusy"


def measure_busy_mixed_floor(
    results: dict[str, Measurement],
    service: Server,
    strongest_server: Server,
    scenarios: Sequence[Scenario],
    setup: Setup,
) -> dict[str, Any] | None:
    submit, floor = results.get("submit"), results.get("floor")
    mixed = next((sc for sc in scenarios if sc.name == "mixed"), None)
    if submit is None or floor is None or mixed is None:
        return None
    submit_cost, floor_cost = submit.best.machine, floor.best.machine
    if submit_cost is None or floor_cost is None:
        return None
    busy_us = max(0, round(submit_cost.cpu_us_per_request - floor_cost.cpu_us_per_request))
    busy = Scenario(
        BUSY_MIXED_FLOOR,
        f"90% ceiling GET + 10% write-floor POST burning {busy_us} us of CPU first",
        None,
        CEILING_PATH,
        mode="mixed",
        post_path=f"{FLOOR_PATH}?busy_us={busy_us}",
        server="ceiling",
    )
    print(
        f"\nthe busy mixed floor (each write first burns {busy_us} us: submit's CPU per request "
        "over the floor's), beside mixfloor and mixed:",
        flush=True,
    )
    jobs: list[Job] = [
        (BUSY_MIXED_FLOOR, strongest_server, busy),
        (MIXED_FLOOR.name, strongest_server, MIXED_FLOOR),
        ("mixed", service, mixed),
    ]
    again = measure_jobs(jobs, setup)
    busy_rs, floor_rs, mixed_rs = (again[key].best.req_s for key, _, _ in jobs)
    if not busy_rs or not floor_rs:
        return None
    out = {
        "busy_us": busy_us,
        "mixbusy_req_s": round(busy_rs),
        "mixfloor_req_s": round(floor_rs),
        "mixed_req_s": round(mixed_rs),
        "mixbusy_over_mixfloor": round(busy_rs / floor_rs, 3),
        "mixed_over_mixbusy": round(mixed_rs / busy_rs, 3),
        "mixed_over_mixfloor": round(mixed_rs / floor_rs, 3),
    }
    print(
        f"mixbusy = the mixed floor with writes as costly as a submission: {busy_rs:.0f} req/s, "
        f"{out['mixbusy_over_mixfloor']:.2f} of mixfloor ({floor_rs:.0f}); mixed {mixed_rs:.0f} "
        f"keeps {out['mixed_over_mixbusy']:.2f} of it and {out['mixed_over_mixfloor']:.2f} of "
        "mixfloor in these rounds: mixed's target asks at least "
        f"{(0.8 / out['mixbusy_over_mixfloor']) if out['mixbusy_over_mixfloor'] else 0:.2f} of "
        "mixbusy while a submission costs what it costs now",
        flush=True,
    )
    return out


def print_variants(
    results: dict[str, Measurement],
    stack: Stack,
    scenarios: Sequence[Scenario],
    ceiling: Measurement,
) -> dict[str, dict[str, Any]]:
    """The default service beside each variant of it measured on more than read and submit
    (bench/servers.py, e.g. without replayed reads): the same scenarios, the same rounds."""
    found: dict[str, dict[str, Any]] = {}
    default = next(iter(stack.services))
    for label, layout in list(zip(stack.services, stack.service_layouts, strict=True))[1:]:
        rows = [
            (sc.name, results[sc.name], results[f"{sc.name}@{label}"])
            for sc in scenarios
            if sc.name in layout.scenarios and f"{sc.name}@{label}" in results
        ]
        if not rows or set(layout.scenarios) <= {"read", "submit"}:
            continue
        print(f"\n{default} against {label}, in the same rounds (ratios to the ceiling):\n")
        header = (
            f"{'scenario':<9} {'req/s':>8} {'p50':>6} {'p99':>7} {'ratio':>6}   "
            f"{'variant':>8} {'p50':>6} {'p99':>7} {'ratio':>6}  {'x':>5}"
        )
        print(header)
        print("-" * len(header))
        for name, mine, theirs in rows:
            a, b = mine.best, theirs.best
            print(
                f"{name:<9} {a.req_s:>8.0f} {a.p50_ms:>6.1f} {a.p99_ms:>7.1f} "
                f"{mine.ratio(ceiling):>6.2f}   {b.req_s:>8.0f} {b.p50_ms:>6.1f} "
                f"{b.p99_ms:>7.1f} {theirs.ratio(ceiling):>6.2f}  "
                f"{a.req_s / b.req_s if b.req_s else 0.0:>5.2f}"
            )
        found[label] = {name: measurement_json(theirs, ceiling) for name, _, theirs in rows}
    return found


def measurement_json(m: Measurement, ceiling: Measurement) -> dict[str, Any]:
    best = m.best
    return {
        "title": m.scenario.title,
        "path": m.scenario.path,
        "mode": m.scenario.mode,
        "req_s": best.req_s,
        "p50_ms": best.p50_ms,
        "p99_ms": best.p99_ms,
        "errors": m.errors,
        "ratio": round(m.ratio(ceiling), 4),
        "target": m.scenario.target,
        "reference": m.scenario.reference,
        "machine": None if best.machine is None else asdict(best.machine),
        "cpu_cost_vs_ceiling": None
        if (cost := cpu_cost_ratio(m, ceiling)) is None
        else round(cost, 3),
        "runs": [asdict(run) for run in m.runs],
    }


def compare_with_previous(path: Path, current: dict[str, Any]) -> None:
    try:
        previous: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    print(f"\nChange since the previous run ({previous.get('timestamp', '?')}, {path}):")
    for key in ("nproc", "workers", "redis_mode", "connections", "duration_s"):
        before, now = previous.get(key), current.get(key)
        if before != now:
            print(f"  note: {key} differs ({before} -> {now}); ratios may not be comparable")
    old_scenarios: dict[str, Any] = previous.get("scenarios", {})
    old_ceiling = previous.get("ceiling", {}).get("req_s")
    if old_ceiling:
        print(f"  {'ceiling':<8} req/s {old_ceiling:>8.0f} -> {current['ceiling']['req_s']:>8.0f}")
    for key, label in (
        ("floor", "floor"),
        ("mixed_floor", "mixfloor"),
        ("page_floor", "page"),
        ("queue_page_floor", "queuepg"),
    ):
        old_floor, now_floor = previous.get(key), current.get(key)
        if now_floor and old_floor and "ratio" in old_floor:
            print(
                f"  {label:<8} ratio {old_floor['ratio']:.2f} -> {now_floor['ratio']:.2f} "
                f"({now_floor['ratio'] - old_floor['ratio']:+.2f})   req/s "
                f"{old_floor['req_s']:.0f} -> {now_floor['req_s']:.0f}   errors "
                f"{old_floor.get('errors', '?')} -> {now_floor['errors']}"
            )
        elif now_floor:
            print(f"  {label:<8} (not in the previous run)")
    for name, now_doc in current["scenarios"].items():
        old = old_scenarios.get(name)
        if not old or "ratio" not in old:
            print(f"  {name:<8} (not in the previous run)")
            continue
        delta = now_doc["ratio"] - old["ratio"]
        print(
            f"  {name:<8} ratio {old['ratio']:.2f} -> {now_doc['ratio']:.2f} ({delta:+.2f})"
            f"   req/s {old['req_s']:.0f} -> {now_doc['req_s']:.0f}"
            f"   errors {old.get('errors', '?')} -> {now_doc['errors']}"
        )


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def machine_info() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "wrk": wrk_version(),
    }


# --------------------------------------------------------------------------------------------
# The cost of metrics


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants so far: the service's
    own work (launcher, gunicorn master and workers, its embedded Redis), whoever else runs."""
    total, pending, seen = 0, [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        pending += children(current)
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class MetricsCost:
    """One scenario against the service with metrics (``on``) and without (``off``); with each
    run's service CPU per request (µs), which contention on a shared machine moves less than
    req/s."""

    scenario: Scenario
    on: Measurement
    off: Measurement
    on_cpu_us: list[float] = field(default_factory=list)
    off_cpu_us: list[float] = field(default_factory=list)

    @property
    def cpu_ratio(self) -> float:
        """The service's median CPU per request without metrics over with: the share of its
        throughput a CPU-bound service keeps with metrics on."""
        on, off = _median(self.on_cpu_us), _median(self.off_cpu_us)
        return off / on if on else 0.0

    @property
    def round_cpu_ratios(self) -> list[float]:
        return [
            off / on if on else 0.0 for on, off in zip(self.on_cpu_us, self.off_cpu_us, strict=True)
        ]

    @property
    def target(self) -> float:
        return METRICS_COST_TARGETS[self.scenario.name]

    @property
    def ratio(self) -> float:
        return self.on.best.req_s / self.off.best.req_s if self.off.best.req_s else 0.0

    @property
    def round_ratios(self) -> list[float]:
        """Each round's own on/off ratio (the two runs of a round are back to back)."""
        return [
            on.req_s / off.req_s if off.req_s else 0.0
            for on, off in zip(self.on.runs, self.off.runs, strict=True)
        ]

    @property
    def passed(self) -> bool:
        return self.on.errors == 0 and self.off.errors == 0 and self.ratio >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "ratio": round(self.ratio, 4),
            "cpu_ratio": round(self.cpu_ratio, 4),
            "round_cpu_ratios": [round(r, 4) for r in self.round_cpu_ratios],
            "on_cpu_us_per_request": self.on_cpu_us,
            "off_cpu_us_per_request": self.off_cpu_us,
            "target": self.target,
            "round_ratios": [round(r, 4) for r in self.round_ratios],
            "passed": self.passed,
            "on": {
                "req_s": self.on.best.req_s,
                "errors": self.on.errors,
                "runs": [asdict(r) for r in self.on.runs],
            },
            "off": {
                "req_s": self.off.best.req_s,
                "errors": self.off.errors,
                "runs": [asdict(r) for r in self.off.runs],
            },
        }


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def metrics_servers(setup: Setup, workdir: Path) -> dict[str, Server]:
    """The service twice, with and without metrics; otherwise the bench's own settings."""
    base = Stack(setup, workdir).base_env  # the environment the scenarios' service has
    servers = {}
    for label, enabled in (("on", "true"), ("off", "false")):
        env = {
            **base,
            "PORT": str(free_port()),
            "DATA_DIR": str(workdir / f"metrics-{label}"),
            "METRICS_ENABLED": enabled,
            "METRICS_PORT": str(free_port()) if enabled == "true" else "off",
        }
        if setup.redis_url is not None:
            env["KEY_PREFIX"] = f"{base['KEY_PREFIX']}m{label}"
        servers[label] = Server(
            f"service (metrics {label})",
            [sys.executable, "-m", "service.serve"],
            env,
            workdir / f"metrics-{label}.log",
            "/readyz",
        )
    return servers


def counted_requests(metrics_port: int, route: str) -> float:
    """What the service's metrics port says it served on ``route`` (every status)."""
    connection = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=10.0)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("http_request_duration_seconds_count{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure_metrics_cost(setup: Setup) -> tuple[list[MetricsCost], dict[str, Any]]:
    scenarios = [s for s in SCENARIOS if s.name in METRICS_COST_TARGETS]
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-m-")))
        servers = metrics_servers(setup, workdir)
        print("starting the service with and without metrics ...", flush=True)
        for server in servers.values():
            cleanup.callback(server.stop)
            server.start()
            seed(server.port, full=False)
        if setup.redis_url is not None:
            prefixes = tuple(s.env["KEY_PREFIX"] for s in servers.values())
            cleanup.callback(drop_keys, setup.redis_url, prefixes)
        nonce = secrets.token_hex(3)
        for label, server in servers.items():
            for scenario in scenarios:
                run_wrk(server, scenario, setup, f"{nonce}w{label}", duration=1)
        results = {s.name: MetricsCost(s, Measurement(s), Measurement(s)) for s in scenarios}
        for round_no in range(1, setup.runs + 1):
            # Alternating order: a machine getting busier or quieter favours neither side.
            order = ("on", "off") if round_no % 2 else ("off", "on")
            for scenario in scenarios:
                for label in order:
                    server = servers[label]
                    cpu_before = tree_cpu_seconds(server.pid)
                    run = run_wrk(server, scenario, setup, f"{nonce}m{round_no}{label}")
                    spent = tree_cpu_seconds(server.pid) - cpu_before
                    cpu_us = round(spent / run.requests * 1e6, 1) if run.requests else 0.0
                    cost = results[scenario.name]
                    getattr(cost, label).runs.append(run)
                    getattr(cost, f"{label}_cpu_us").append(cpu_us)
                    print(
                        f"  metrics {label:<3} {scenario.name:<7} run {round_no}/{setup.runs}: "
                        f"{run.req_s:>8.0f} req/s  p99 {run.p99_ms:7.1f} ms  errors "
                        f"{run.errors}  service cpu {cpu_us:7.1f} us/req{_cpu_text(run)}",
                        flush=True,
                    )
        on_port = int(servers["on"].env["METRICS_PORT"])
        read_requests = sum(r.requests for r in results["read"].on.runs) if "read" in results else 0
        counted = counted_requests(on_port, "/api/v1/articles/<slug:article_id>/comments")
        if counted < read_requests:
            raise BenchError(
                f"the service with metrics counted {counted:.0f} article reads, "
                f"wrk sent at least {read_requests}"
            )
        logs = {label: scan_log(server.log_path) for label, server in servers.items()}
    costs = list(results.values())
    print(
        f"\nCost of metrics: best of {setup.runs} interleaved runs of {setup.duration}s each, "
        f"the service with METRICS_ENABLED=true over the same service with false"
    )
    header = (
        f"{'scenario':<9} {'on req/s':>9} {'off req/s':>9} {'ratio':>6} {'target':>7} "
        f"{'rounds (on/off)':<30} {'cpu us on':>9} {'off':>6} {'cpu ratio':>9} "
        f"{'rounds (off/on cpu)':<30} result"
    )
    print(header)
    print("-" * len(header))
    for cost in costs:
        rounds = " ".join(f"{r:.2f}" for r in cost.round_ratios)
        cpu_rounds = " ".join(f"{r:.2f}" for r in cost.round_cpu_ratios)
        verdict = "PASS" if cost.passed else "FAIL"
        print(
            f"{cost.scenario.name:<9} {cost.on.best.req_s:>9.0f} {cost.off.best.req_s:>9.0f} "
            f"{cost.ratio:>6.2f} {'>=' + format(cost.target, '.2f'):>7} {rounds:<30} "
            f"{_median(cost.on_cpu_us):>9.0f} {_median(cost.off_cpu_us):>6.0f} "
            f"{cost.cpu_ratio:>9.2f} {cpu_rounds:<30} {verdict}"
        )
    print(
        "ratio = best req/s with metrics over best without; cpu us = the service's own CPU "
        "(its whole process tree, Redis included) per request, median of the runs; cpu ratio "
        "= off/on, the throughput share a CPU-bound service keeps with metrics"
    )
    print(f"  the metrics port counted {counted:.0f} article reads (wrk: {read_requests})")
    return costs, {"logs": logs, "counted_reads": counted, "wrk_reads": read_requests}


# Campaign detection's cost (issue 16: at most 10% of a submission's time): the submit scenario
# on one service with the default policy (detection on) and with campaign_threshold 0 (off),
# alternated round by round; the policy is read per submission, so a PUT switches it.
CAMPAIGN_OFF_POLICY: dict[str, Any] = {**BENCH_POLICY, "campaign_threshold": 0}
CAMPAIGN_COST_TARGET = 0.9  # on / off req/s


def warm_campaigns(server: Server, setup: Setup) -> str:
    """Fill the service's store as a day of ordinary comments leaves it (the current and the
    previous time bucket of the default window), so that detection reads and writes sets of
    the size it meets in production; a description of what was done."""
    if setup.campaign_warm <= 0:
        return "on an empty store"
    from service.store.client import make_redis

    client = make_redis(server_redis_url(server, setup))
    try:
        prefix = server.env.get("KEY_PREFIX", "cm")
        seconds = warm(client, prefix, comments=setup.campaign_warm)
    finally:
        client.close()
    print(
        f"  stored {setup.campaign_warm} ordinary comments of the last 24 h first "
        f"(campaign warm-up, {seconds:.1f}s)",
        flush=True,
    )
    return f"after {setup.campaign_warm} ordinary comments of the last 24 h"


def measure_campaign_cost(server: Server, setup: Setup) -> dict[str, Any]:
    submit = next(s for s in SCENARIOS if s.name == "submit")
    client = Client(server.port)
    on, off = Measurement(submit), Measurement(submit)
    nonce = secrets.token_hex(3)
    store_state = warm_campaigns(server, setup)
    try:
        for round_no in range(1, setup.runs + 1):
            order = ("on", "off") if round_no % 2 else ("off", "on")
            for label in order:
                policy = BENCH_POLICY if label == "on" else CAMPAIGN_OFF_POLICY
                status, answer = client("PUT", "/api/v1/moderation/policy", policy, auth=True)
                expect(status, (200,), f"PUT policy (campaigns {label})", answer)
                run = run_wrk(server, submit, setup, f"{nonce}c{round_no}{label}")
                (on if label == "on" else off).runs.append(run)
                print(
                    f"  campaigns {label:<3} submit run {round_no}/{setup.runs}: "
                    f"{run.req_s:>8.0f} req/s  p50 {run.p50_ms:6.1f} ms  errors {run.errors}"
                    f"{_cpu_text(run)}",
                    flush=True,
                )
        status, answer = client("PUT", "/api/v1/moderation/policy", BENCH_POLICY, auth=True)
        expect(status, (200,), "PUT policy (bench)", answer)
    finally:
        client.close()
    pairs = list(zip(on.runs, off.runs, strict=True))
    rounds = [a.req_s / b.req_s if b.req_s else 0.0 for a, b in pairs]
    best = on.best.req_s / off.best.req_s if off.best.req_s else 0.0
    median = _median(rounds)
    # The rounds in which no Redis fork (an AOF rewrite: seconds of a core) fell on either run.
    clean = [r for r, (a, b) in zip(rounds, pairs, strict=True) if not (a.forks or b.forks)]
    forked = len(rounds) - len(clean)
    clean_text = (
        f"; {forked} round(s) had a Redis fork during a run, median of the other rounds "
        f"{_median(clean):.3f}"
        if forked and clean
        else ("; every round had a Redis fork during a run" if forked else "")
    )
    summary = (
        f"Cost of campaign detection (submit, default policy over campaign_threshold 0, "
        f"{setup.runs} alternated rounds, {store_state}): best {on.best.req_s:.0f} / "
        f"{off.best.req_s:.0f} req/s = {best:.3f}, median of the rounds' ratios {median:.3f} "
        "(rounds "
        + " ".join(f"{r:.3f}" for r in rounds)
        + f"){clean_text}; target >= {CAMPAIGN_COST_TARGET}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print("\n" + summary, flush=True)
    return {
        "summary": summary,
        "best_ratio": round(best, 4),
        "median_ratio": round(median, 4),
        "round_ratios": [round(r, 4) for r in rounds],
        "rounds_with_forks": forked,
        "clean_median_ratio": round(_median(clean), 4) if clean else None,
        "target": CAMPAIGN_COST_TARGET,
        "warm_comments": setup.campaign_warm,
        "errors": on.errors + off.errors,
        "on": [asdict(r) for r in on.runs],
        "off": [asdict(r) for r in off.runs],
    }


def run_campaign_cost(setup: Setup) -> int:
    """Only the campaign detection on/off comparison (``--only-campaign-cost``)."""
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-c-")))
        env = {**Stack(setup, workdir).base_env, "PORT": str(free_port())}
        env["DATA_DIR"] = str(workdir / "campaigns")
        if setup.redis_url is not None:
            env["KEY_PREFIX"] = f"{env['KEY_PREFIX']}c"
            cleanup.callback(drop_keys, setup.redis_url, (env["KEY_PREFIX"],))
        server = Server(
            "service (campaigns)",
            [sys.executable, "-m", "service.serve"],
            env,
            workdir / "campaigns.log",
            "/readyz",
        )
        cleanup.callback(server.stop)
        server.start()
        seed(server.port, full=False)
        measure_campaign_cost(server, setup)
    return 0


# --------------------------------------------------------------------------------------------
# Modes


@contextmanager
def running_stack(
    setup: Setup,
    ceiling_layouts: Sequence[Layout] = CEILING_LAYOUTS,
    service_layouts: Sequence[Layout] = SERVICE_LAYOUTS,
) -> Iterator[Stack]:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-")))
        stack = Stack(setup, workdir, ceiling_layouts, service_layouts)
        cleanup.callback(stack.close)
        print(
            f"starting the service under {len(stack.services)} and the ceiling under "
            f"{len(stack.ceilings)} server layouts (WORKERS={setup.workers}, Redis "
            f"{setup.redis_mode}) ...",
            flush=True,
        )
        stack.start()
        yield stack


# The key suffix of a floor measured under the service's own layout as well.
ALSO = "@service-layout"


def _ceiling_under(stack: Stack, layout: Layout) -> Server | None:
    """The bare app's server under ``layout``, when it is one of the ceiling layouts."""
    for server, candidate in zip(stack.ceilings.values(), stack.ceiling_layouts, strict=True):
        if candidate == layout:
            return server
    return None


def _ceiling_scenario(layout: Layout) -> Scenario:
    return replace(CEILING, name="ceiling", title=layout.note)


def run_benchmark(args: argparse.Namespace, setup: Setup) -> int:
    started = time.monotonic()
    names = args.scenarios
    scenarios = [s for s in SCENARIOS if s.name in names]
    with_floor = any(name in FLOOR_WITH for name in names)
    floor_scenarios = [FLOOR] if with_floor else []
    if any(name in MIXED_FLOOR_WITH for name in names):
        floor_scenarios.append(MIXED_FLOOR)
    if any(name in PAGE_FLOOR_WITH for name in names):
        floor_scenarios.append(PAGE_FLOOR)
    if any(name in QUEUE_PAGE_FLOOR_WITH for name in names):
        floor_scenarios.append(QUEUE_PAGE_FLOOR)
    info = machine_info()
    floor_redis: dict[str, Any] | None = None
    read, submit = SCENARIOS[0], SCENARIOS[1]
    with running_stack(setup) as stack:
        gunicorn = stack.gunicorn_settings()
        print(f"  gunicorn (SERVER=gunicorn): {gunicorn}", flush=True)
        print(f"  environment added: {setup.bench_env}", flush=True)
        seeded = seed(stack.service.port, full=True)
        layouts = list(zip(stack.services.values(), stack.service_layouts, strict=True))
        for server, layout in layouts[1:]:
            seed(server.port, full=bool({"counts", "queue"} & set(layout.scenarios)))

        # 1. The bare app under every layout, interleaved; the fastest is the ceiling.
        print("\nthe ceiling under every server layout:", flush=True)
        ceiling_jobs: list[Job] = [
            (label, server, _ceiling_scenario(layout))
            for (label, server), layout in zip(
                stack.ceilings.items(), stack.ceiling_layouts, strict=True
            )
        ]
        ceilings = measure_jobs(ceiling_jobs, setup)
        strongest = max(ceilings, key=lambda label: ceilings[label].best.req_s)
        strongest_server = stack.ceilings[strongest]
        print(f"  the ceiling: {strongest} ({ceilings[strongest].best.req_s:.0f} req/s)")
        if with_floor:
            floor_redis = stack.floor_redis_info()
            stack.check_floor(strongest_server)
            print(
                f"  write floor under {strongest}: one SET per request in {floor_redis['url']} "
                f"(Redis {floor_redis['redis_version']}, AOF {floor_redis['aof_enabled']}, "
                f"appendfsync {floor_redis['appendfsync']})",
                flush=True,
            )

        # 2. The ceiling again, the floors under the same server, every scenario on the default
        # service, read and submit on the service under every other server: interleaved.
        print("\nthe scenarios:", flush=True)
        jobs: list[Job] = [("ceiling", strongest_server, CEILING)]
        jobs += [(f.name, strongest_server, f) for f in floor_scenarios]
        # The floors under the service's own layout too, and the stronger of the two counts:
        # under a layout with few requests in flight (granian WSGI 2x1 may win the ceiling) the
        # fsync-bound write floor is low, which would flatter every write ratio.
        floor_elsewhere = _ceiling_under(stack, stack.service_layouts[0])
        if floor_elsewhere is not None and floor_elsewhere is not strongest_server:
            jobs += [(f"{f.name}{ALSO}", floor_elsewhere, f) for f in floor_scenarios]
        jobs += [(sc.name, stack.service, sc) for sc in scenarios]
        others = list(zip(stack.services.items(), stack.service_layouts, strict=True))[1:]
        for (label, server), layout in others:
            jobs += [
                (f"{sc.name}@{label}", server, sc)
                for sc in (read, submit, *scenarios)
                if sc.name in layout.scenarios
            ]
        # A scenario may be measured twice on one layout when listed twice: once is enough.
        jobs = list({key: (key, on, sc) for key, on, sc in jobs}.values())
        fsync_pids: dict[str, int] = {}
        for server in stack.services.values():
            pid = redis_pid_of(server)
            if pid is None:
                continue
            writing = [key for key, on, sc in jobs if sc.mode != "get" and on is server]
            if server is stack.service:  # the floors write to the default service's Redis
                writing += [f.name for f in floor_scenarios if f.mode != "get"]
                writing += [f"{f.name}{ALSO}" for f in floor_scenarios if f.mode != "get"]
            fsync_pids.update(dict.fromkeys(writing, pid))
        results = measure_jobs(jobs, setup, fsync_pids=fsync_pids)
        for f in floor_scenarios:
            also = results.pop(f"{f.name}{ALSO}", None)
            if also is not None and also.best.req_s > results[f.name].best.req_s:
                print(
                    f"  {f.name}: stronger under the service's layout "
                    f"({also.best.req_s:.0f} req/s against {results[f.name].best.req_s:.0f} "
                    f"under {strongest}): that is the floor",
                    flush=True,
                )
                results[f.name] = also
        busy_mixed_floor = (
            measure_busy_mixed_floor(results, stack.service, strongest_server, scenarios, setup)
            if "mixed" in names and "submit" in names
            else None
        )
        campaign_cost = measure_campaign_cost(stack.service, setup) if "submit" in names else None
        results["ceiling"].runs += ceilings[strongest].runs
        service_logs = {
            label: scan_log(server.log_path) for label, server in stack.services.items()
        }
        ceiling_log = scan_log(strongest_server.log_path)
    metrics_cost: list[MetricsCost] = []
    metrics_notes: dict[str, Any] = {}
    if args.metrics_cost and any(name in METRICS_COST_TARGETS for name in names):
        metrics_cost, metrics_notes = measure_metrics_cost(setup)
    elapsed = time.monotonic() - started

    ceiling = results["ceiling"]
    references = {"ceiling": ceiling, **{f.name: results[f.name] for f in floor_scenarios}}
    floor = results.get("floor")
    mixed_floor = results.get(MIXED_FLOOR.name)
    page_floor = results.get(PAGE_FLOOR.name)
    queue_page_floor = results.get(QUEUE_PAGE_FLOOR.name)
    floors = [results[s.name] for s in floor_scenarios]
    measured = [results[s.name] for s in scenarios]
    default_label = next(iter(stack.services))

    comparison: list[dict[str, Any]] = []
    for index, label in enumerate(stack.services):
        layout = stack.service_layouts[index]
        own_ceiling = ceilings.get(layout.label(setup.workers))
        service_read = results.get("read" if index == 0 else f"read@{label}")
        service_submit = results.get("submit" if index == 0 else f"submit@{label}")
        comparison.append(
            {
                "server": label,
                "ceiling": None if own_ceiling is None else measurement_json(own_ceiling, ceiling),
                "read": None if service_read is None else measurement_json(service_read, ceiling),
                "submit": None
                if service_submit is None
                else measurement_json(service_submit, ceiling),
                "read_ratio": 0.0 if service_read is None else service_read.ratio(ceiling),
                "submit_vs_floor": None
                if service_submit is None or floor is None
                else round(service_submit.ratio(floor), 4),
            }
        )

    print(
        f"\nHTTP benchmark: best of {setup.runs} runs of {setup.duration}s, wrk "
        f"-t{setup.wrk_threads} -c{setup.connections} (keep-alive); nproc {info['nproc']}, "
        f"service: {default_label}; the ceiling: {strongest}; Redis {setup.redis_mode}; load "
        f"average at start {info['load_avg_at_start'][0]}, at the end "
        f"{os.getloadavg()[0]:.2f}"
    )
    print_servers(ceilings, strongest, comparison)
    print(f"\nThe service ({default_label}) against the ceiling ({strongest}):\n")
    print_table(ceiling, measured, floors, references)
    print(
        "\nratio = req/s / the ceiling's req/s (best runs); vs = the ratio the target is about "
        "(to the ceiling, or for writes to the write floor or the mixed floor under the same "
        f"server); p99 x = p99 / the ceiling's p99 (at most {P99_FACTOR:g}); errors = "
        "non-2xx/3xx + socket errors over all runs"
    )
    print(
        "cpu us = machine CPU per request in the best run (wrk, servers, Redis, kernel); cost "
        "= that over the ceiling's; cs = context switches per request; idle = CPU left "
        "unused.\nWith idle near 0 a scenario keeps about 1/cost of the ceiling: a target "
        "ratio r needs cost <= 1/r."
    )
    if floor is not None and floor_redis is not None:
        fsync = (
            f"appendfsync {floor_redis.get('appendfsync')}"
            if floor_redis.get("aof_enabled")
            else "no AOF"
        )
        print(
            f"floor = bare Flask under {strongest} + one SET of the body in the service's Redis "
            f"({fsync})"
        )
        if "submit" in results and floor.best.req_s:
            print(
                f"submit keeps {results['submit'].best.req_s / floor.best.req_s:.2f} of the "
                "write floor's req/s"
            )
    if mixed_floor is not None and "mixed" in results and mixed_floor.best.req_s:
        print(
            "mixfloor = the mixed load on the bare app (9 ceiling GETs, 1 floor POST in 10); "
            f"mixed keeps {results['mixed'].best.req_s / mixed_floor.best.req_s:.2f} of its req/s"
        )
    if page_floor is not None and "read" in results and page_floor.best.req_s:
        print(
            f"page = bare Flask under {strongest} answering the read's body "
            f"({page_floor.best.bytes_per_response} B/resp against read's "
            f"{results['read'].best.bytes_per_response}): the payload's own bound, "
            f"{page_floor.ratio(ceiling):.2f} of the ceiling; read keeps "
            f"{results['read'].best.req_s / page_floor.best.req_s:.2f} of its req/s"
        )
    if queue_page_floor is not None and "queue" in results and queue_page_floor.best.req_s:
        print(
            f"queue-page = the same for the queue's body "
            f"({queue_page_floor.best.bytes_per_response} B/resp against queue's "
            f"{results['queue'].best.bytes_per_response}): "
            f"{queue_page_floor.ratio(ceiling):.2f} of the ceiling; queue keeps "
            f"{results['queue'].best.req_s / queue_page_floor.best.req_s:.2f} of its req/s"
        )
    bounds = print_bounds(results, ceiling)
    if busy_mixed_floor is not None:
        bounds["busy_mixed_floor"] = busy_mixed_floor
    variants = print_variants(results, stack, scenarios, ceiling)
    for label, log in service_logs.items():
        if any(log.values()):
            print(f"service log ({label}): {log}")
    if any(ceiling_log.values()):
        print(f"ceiling log: {ceiling_log}")
    if campaign_cost is not None:
        print(campaign_cost["summary"])

    all_passed = all(m.passed(references) for m in (ceiling, *floors, *measured))
    document: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "workers": setup.workers,
        "service_server": default_label,
        "ceiling_server": strongest,
        "gunicorn": gunicorn,
        "redis_mode": setup.redis_mode,
        "redis_url": redact_url(setup.redis_url) if setup.redis_url else None,
        "bench_env": setup.bench_env,
        "connections": setup.connections,
        "wrk_threads": setup.wrk_threads,
        "duration_s": setup.duration,
        "runs": setup.runs,
        "seeded": seeded,
        "ceiling": measurement_json(ceiling, ceiling),
        "ceilings": {label: measurement_json(m, ceiling) for label, m in ceilings.items()},
        "servers": comparison,
        # The default service's scenarios on its variants (e.g. REPLAY_READS=false).
        "variants": variants,
        # A reference (no target; only its errors count), None when not measured.
        "floor": None
        if floor is None
        else {**measurement_json(floor, ceiling), "redis": floor_redis},
        "mixed_floor": None if mixed_floor is None else measurement_json(mixed_floor, ceiling),
        # The read's payload bound (bench/ceiling_app.py /page); informational.
        "page_floor": None if page_floor is None else measurement_json(page_floor, ceiling),
        "queue_page_floor": None
        if queue_page_floor is None
        else measurement_json(queue_page_floor, ceiling),
        "scenarios": {
            m.scenario.name: {
                **measurement_json(m, ceiling),
                "target_ratio": m.target_ratio(references),
                "passed": m.passed(references),
            }
            for m in measured
        },
        "all_passed": all_passed and all(cost.passed for cost in metrics_cost),
        "metrics_cost": {cost.scenario.name: cost.as_json() for cost in metrics_cost} or None,
        "metrics_cost_notes": metrics_notes or None,
        "campaign_cost": campaign_cost,
        # What this run says by itself about the p99 and mixed targets (bench/bounds.py).
        "bounds": bounds,
        "service_logs": service_logs,
        "ceiling_log": ceiling_log,
        "elapsed_s": round(elapsed, 1),
    }
    out = Path(args.json) if args.json else DEFAULT_JSON
    compare_with_previous(out, document)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out} (run took {elapsed:.0f}s)")
    if args.strict and not all_passed:
        print("--strict: a target or the zero-error rule was missed", file=sys.stderr)
        return 3
    return 0


def run_metrics_cost(args: argparse.Namespace, setup: Setup) -> int:
    """Only the metrics on/off comparison (``--metrics-cost``)."""
    started = time.monotonic()
    info = machine_info()
    costs, notes = measure_metrics_cost(setup)
    document = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "workers": setup.workers,
        "redis_mode": setup.redis_mode,
        "bench_env": setup.bench_env,
        "connections": setup.connections,
        "duration_s": setup.duration,
        "runs": setup.runs,
        "metrics_cost": {cost.scenario.name: cost.as_json() for cost in costs},
        "metrics_cost_notes": notes,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out = Path(args.json) if args.json else DEFAULT_METRICS_JSON
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")
    if args.strict and not all(cost.passed for cost in costs):
        return 3
    return 0


def run_sweep(args: argparse.Namespace, setup: Setup) -> int:
    started = time.monotonic()
    read = SCENARIOS[0]
    info = machine_info()
    print(f"environment added: {setup.bench_env}", flush=True)
    rows: list[dict[str, Any]] = []
    for workers in SWEEP_WORKERS:
        config = replace(setup, workers=workers)
        with running_stack(config, SERVICE_LAYOUTS[:1], SERVICE_LAYOUTS[:1]) as stack:
            seed(stack.service.port, full=False)
            results = measure(stack, [read], config, label=f"W={workers} ")
            log = scan_log(stack.service.log_path)
        ceiling, measured = results["ceiling"], results["read"]
        rows.append(
            {
                "workers": workers,
                "threads": int(stack.service.env["THREADS"]),
                "worker_class": stack.service_layouts[0].name,
                "ceiling": measurement_json(ceiling, ceiling),
                "read": measurement_json(measured, ceiling),
                "service_log": log,
            }
        )
    elapsed = time.monotonic() - started

    print(
        f"\nWorker sweep: best of {setup.runs} runs of {setup.duration}s, wrk "
        f"-t{setup.wrk_threads} -c{setup.connections}; nproc {info['nproc']}, load average "
        f"at start {info['load_avg_at_start'][0]}; Redis {setup.redis_mode}\n"
    )
    header = (
        f"{'WORKERS':>7} {'threads':>7} {'ceiling req/s':>13} {'read req/s':>10} "
        f"{'read p99 ms':>11} {'read/ceiling':>12} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['workers']:>7} {row['threads']:>7} {row['ceiling']['req_s']:>13.0f} "
            f"{row['read']['req_s']:>10.0f} {row['read']['p99_ms']:>11.1f} "
            f"{row['read']['ratio']:>12.2f} "
            f"{row['ceiling']['errors'] + row['read']['errors']:>6}"
        )
    best = max(rows, key=lambda row: row["read"]["req_s"])
    close = [row["workers"] for row in rows if row["read"]["req_s"] >= 0.9 * best["read"]["req_s"]]
    print(
        f"\nhighest read req/s at WORKERS={best['workers']}; within 10% of it (this machine's "
        f"noise): WORKERS in {close}"
    )
    document = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "redis_mode": setup.redis_mode,
        "bench_env": setup.bench_env,
        "connections": setup.connections,
        "wrk_threads": setup.wrk_threads,
        "duration_s": setup.duration,
        "runs": setup.runs,
        "rows": rows,
        "elapsed_s": round(elapsed, 1),
    }
    out = Path(args.json) if args.json else DEFAULT_SWEEP_JSON
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out} (sweep took {elapsed:.0f}s)")
    return 0


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="wrk benchmark of the service against the fastest bare-Flask ceiling of "
        "several servers (bench/servers.py); reports each scenario's ratio to that ceiling."
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="wrk keep-alive connections (16 = 4 workers x 4 threads)",
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per scenario; the best is reported (3)"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIO_NAMES),
        help=f"comma-separated subset of {','.join(SCENARIO_NAMES)} (the "
        f"write floor is measured with {' or '.join(FLOOR_WITH)})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="WORKERS for the service and the ceilings (default: $WORKERS or 4)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for both servers (repeatable), e.g. rate limits",
    )
    parser.add_argument(
        "--json",
        default=None,
        help=f"results file (default {DEFAULT_JSON.relative_to(ROOT)}; "
        f"{DEFAULT_SWEEP_JSON.relative_to(ROOT)} with --worker-sweep)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when a target or the zero-error rule is missed",
    )
    parser.add_argument(
        "--worker-sweep",
        action="store_true",
        help=f"only the ceiling and `read`, for WORKERS in {SWEEP_WORKERS}",
    )
    parser.add_argument(
        "--metrics-cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the scenarios, read and submit with metrics on and off, interleaved "
        "(default on; --no-metrics-cost skips it)",
    )
    parser.add_argument(
        "--only-campaign-cost",
        action="store_true",
        help="only the submit scenario with campaign detection on and off, alternated",
    )
    parser.add_argument(
        "--campaign-warm",
        type=int,
        default=CAMPAIGN_WARM,
        metavar="N",
        help="the campaign-cost phase first stores N ordinary comments of the last 24 h "
        f"(default {CAMPAIGN_WARM}; 0: an empty store, which flatters detection)",
    )
    parser.add_argument(
        "--only-metrics-cost",
        action="store_true",
        help="only the metrics on/off comparison",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIO_NAMES))
    if unknown or not names:
        parser.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIO_NAMES)}")
    args.scenarios = names
    for name in ("duration", "connections", "wrk_threads", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.wrk_threads > args.connections:
        parser.error("--wrk-threads may not exceed --connections")
    extra: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env expects KEY=VALUE, got {item!r}")
        if key in HARNESS_ENV:
            parser.error(
                f"--env {key}: set by the harness"
                + (" (use --workers)" if key == "WORKERS" else "")
            )
        extra[key] = value
    args.extra_env = extra
    if args.workers is None:
        try:
            args.workers = int(os.environ.get("WORKERS") or 4)
        except ValueError:
            parser.error("$WORKERS must be an integer")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed; this benchmark needs it (no weaker fallback).\n"
            f"Install it with:\n    {WRK_INSTALL}",
            file=sys.stderr,
        )
        return 2
    redis_url = args.extra_env.pop("REDIS_URL", None) or os.environ.get("REDIS_URL") or None
    setup = Setup(
        workers=args.workers,
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        duration=args.duration,
        runs=args.runs,
        extra_env=args.extra_env,
        redis_url=redis_url,
        campaign_warm=args.campaign_warm,
    )
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    try:
        if args.only_metrics_cost:
            return run_metrics_cost(args, setup)
        if args.only_campaign_cost:
            return run_campaign_cost(setup)
        return run_sweep(args, setup) if args.worker_sweep else run_benchmark(args, setup)
    except (BenchError, ProcessError) as error:
        print(f"\nbenchmark broke: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted; the service and the ceiling were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
