# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# `make check` is the quick loop while working: the same lint steps, the tests not marked slow.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HOST ?= 127.0.0.1
export PORT ?= 8000
export DATA_DIR ?= data

.PHONY: run test check lint browser-deps screenshots bench bench-scale clean redis-server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/python -m service.serve

# Everything: lint, then the whole suite (slow tests too, the browser tests among them). The
# cluster and sentinel tests run the machine's Redis 7 (devtools/topologies.py): installed here
# when absent.
test: lint browser-deps redis-server
	$(BIN)/python -m pytest

redis-server:
	@if ! test -x /usr/bin/redis-server; then \
		if command -v apt-get >/dev/null; then apt-get install -y redis-server >/dev/null; \
		else echo "make test needs redis-server (Redis 7): install it" >&2; exit 1; fi; \
	fi

# Lint, then the tests not marked slow (no real processes, no fuzzing): a minute or two.
check: lint
	$(BIN)/python -m pytest -m "not slow"

# Lint steps shared by test and check (paths and settings in pyproject.toml).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check service tests bench devtools
	$(BIN)/ruff format --check service tests bench devtools
	$(BIN)/codespell
	$(BIN)/mypy

# Debian's Chromium and the pinned axe-core for tests/browser (installed when missing, or a
# message saying how).
browser-deps:
	devtools/browser-deps

# Refresh docs/screenshots/ (the widget light and dark, the thread page, the console) from a
# real browser.
screenshots: $(VENV)/.installed-test browser-deps
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser/test_pages.py \
		tests/browser/test_console.py tests/browser/test_console_review.py -k screenshots -q

# embed.js's size (raw, gzipped) against its 12 KB budget; HTTP scenarios against the fastest
# of several servers serving a bare Flask app, measured in the same run (needs wrk: apt-get
# install -y wrk; strace for fsync counts), the service under granian and gunicorn; the
# policy's costs; a 100,000-comment WXR import against the live insert path (and peak memory);
# what waiting for a replica (WAIT 1) costs a submission, next to a single node; a submission
# and a page read on a 3-primary cluster next to a single node, and one primary's capacity.
# Ratios are the figures; see
# bench/README-bench.md.
bench: $(VENV)/.installed-test
	$(BIN)/python bench/embed_size.py
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/profanity_bench.py
	$(BIN)/python bench/submission_bench.py
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/delivery_bench.py
	$(BIN)/python bench/campaign_bench.py
	$(BIN)/python bench/bulk_decisions_bench.py
	$(BIN)/python bench/wait_bench.py
	$(BIN)/python bench/cluster_bench.py

# Cost as data grows: 50,000 vs 50 approved, 100,000 vs 100 pending, memory per comment.
bench-scale: $(VENV)/.installed-test
	$(BIN)/python bench/scale_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache node_modules
