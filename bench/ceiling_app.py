"""The ceiling for ``bench/http_bench.py``: the least a Flask app can do per request.

One route returning a small JSON document through ``jsonify``. The harness runs it under the
service's own gunicorn configuration (``-c python:service.gunicorn_conf``, same ``WORKERS``),
so the ratio of a scenario's req/s to this app's req/s is the share of the ceiling that the
service keeps; the ceiling itself is what Flask + gunicorn + wrk reach on this machine.

    python -m gunicorn -c python:service.gunicorn_conf bench.ceiling_app:app
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/")
@app.get("/ceiling")
def ceiling() -> Response:
    return jsonify({"status": "ok", "comments": []})
