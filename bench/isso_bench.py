"""Isso 0.14 beside the service, in one run: read 50 approved comments and submit, req/s and p99.

Isso is not a dependency: install it into a venv of its own and pass that venv's ``bin``::

    python3 -m venv /tmp/isso && /tmp/isso/bin/pip install "isso==0.14.*" gunicorn
    .venv/bin/python bench/isso_bench.py --isso-bin /tmp/isso/bin [--runs 3]

Isso runs as its documentation says, under gunicorn, with 2 sync workers (its documented
``-w 4 --preload`` answered 500 while being seeded here), moderation and its guard off, and a
static page server for the title lookup it makes on a thread's first comment. The service runs
as ``make run`` does (the default server). Rounds interleave the four measurements; wrk as in
``bench/http_bench.py`` (-t2 -c16, 5 s, 2 s timeout). A hand comparison, not a target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_bench import (  # noqa: E402
    BENCH_ENV,
    SCENARIOS,
    SECRET_KEY,
    TOKEN,
    Scenario,
    Server,
    Setup,
    WrkRun,
    comment_text,
    run_wrk,
    seed,
)
from bench.servers import GRANIAN_SERVICE  # noqa: E402
from devtools.processes import GroupProcess, free_port  # noqa: E402

ISSO_READ = Scenario("isso-read", "Isso: GET a thread of 50", None, "/?uri=%2Fread%2F")
ISSO_SUBMIT = Scenario(
    "isso-submit",
    "Isso: POST a distinct comment",
    None,
    "/new?uri=%2Fsubmit%2F",
    mode="isso",
    post_path="/new?uri=%2Fsubmit%2F",
)


def isso_post(port: int, uri: str, n: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = {"text": comment_text(n), "author": f"Seed {n}", "email": f"seed{n}@example.com"}
    try:
        connection.request(
            "POST", f"/new?uri={uri}", json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isso-bin", required=True, help="bin directory of a venv with isso")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    isso_bin = Path(args.isso_bin)
    setup = Setup(4, 16, 2, 5, args.runs, {}, None)
    with tempfile.TemporaryDirectory(prefix="isso-bench-") as tmp:
        work = Path(tmp)
        for page in ("read", "submit"):
            (work / "www" / page).mkdir(parents=True)
            (work / "www" / page / "index.html").write_text(f"<h1>{page}</h1>\n")
        page_port, isso_port = free_port(), free_port()
        (work / "isso.cfg").write_text(
            f"[general]\ndbpath = {work / 'comments.db'}\nhost = http://127.0.0.1:{page_port}/\n"
            "[moderation]\nenabled = false\n[guard]\nenabled = false\n"
            f"[server]\nlisten = http://127.0.0.1:{isso_port}/\n"
        )
        env = {**os.environ, "ISSO_SETTINGS": str(work / "isso.cfg")}
        pages = GroupProcess(
            "pages",
            [sys.executable, "-m", "http.server", str(page_port), "--bind", "127.0.0.1"],
            env,
            work / "pages.log",
            cwd=work / "www",
        )
        isso = Server(
            "isso",
            [str(isso_bin / "gunicorn"), "-b", f"127.0.0.1:{isso_port}", "-w", "2", "isso.run"],
            {**env, "PORT": str(isso_port)},
            work / "isso.log",
            "/?uri=%2Fnone%2F",
        )
        isso.ready_path = "/info"
        service_env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        service_env.update(BENCH_ENV)
        service_env.update(GRANIAN_SERVICE.service_env(4))
        service_env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(free_port()),
                "DATA_DIR": str(work / "service"),
                "MODERATOR_TOKENS": f"bench:{TOKEN}",
                "SECRET_KEY": SECRET_KEY,
            }
        )
        service = Server(
            "service",
            [sys.executable, "-m", "service.serve"],
            service_env,
            work / "service.log",
            "/readyz",
        )
        try:
            pages.start()
            isso.start()
            service.start()
            statuses = [isso_post(isso_port, "%2Fread%2F", n) for n in range(1, 51)]
            if set(statuses) != {201}:
                raise SystemExit(f"seeding Isso failed: {statuses}")
            seed(service.port, full=False)
            results: dict[str, list[WrkRun]] = {}
            jobs = [
                ("service read", service, SCENARIOS[0]),
                ("service submit", service, SCENARIOS[1]),
                ("isso read", isso, ISSO_READ),
                ("isso submit", isso, ISSO_SUBMIT),
            ]
            for round_no in range(args.runs):
                for name, server, scenario in jobs:
                    run = run_wrk(server, scenario, setup, f"i{round_no}{os.getpid()}")
                    results.setdefault(name, []).append(run)
                    print(
                        f"  {name:<15} run {round_no + 1}/{args.runs}: {run.req_s:7.0f} req/s  "
                        f"p99 {run.p99_ms:7.1f} ms  errors {run.errors}",
                        flush=True,
                    )
        finally:
            service.stop()
            isso.stop()
            pages.terminate(10)
    print(f"\nIsso 0.14 beside the service; load average now {os.getloadavg()[0]:.1f}\n")
    for name, runs in results.items():
        best = max(runs, key=lambda r: r.req_s)
        print(
            f"{name:<15} best {best.req_s:7.0f} req/s  p99 {best.p99_ms:7.1f} ms  errors over "
            f"all runs {sum(r.errors for r in runs)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
