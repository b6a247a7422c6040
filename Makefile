# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Shared evaluation data and reference weights (read-only); tests skip where absent.
export BGREMOVER_SHARED ?= $(abspath ../shared)
# A development checkout uses the shared reference weights unless told otherwise.
export BGREMOVER_MODEL_DIR ?= $(if $(wildcard $(BGREMOVER_SHARED)/models/*.pth),$(BGREMOVER_SHARED)/models,)

.PHONY: install run test lint bench stress loadtest browser-deps services-deps

$(PY):
	python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --disable-pip-version-check -q -e ".[dev]"
	$(PIP) install --disable-pip-version-check -q --no-deps pysodmetrics==1.6.2
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium drives the browser tests (Playwright's own download cannot work here);
# curl runs the README's API examples as written.
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	@command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }

# Debian's PostgreSQL and Redis, for the scale-out tests (tests/services.py starts throwaway
# servers on free loopback ports; the system services the packages set up are never used).
services-deps:
	@{ command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server; }

# DEBUG defaults to 1 for every step: without it settings refuse the development secret key.
run: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py collectstatic --noinput -v 0
	DEBUG=$${DEBUG:-1} $(VENV)/bin/daphne --websocket_connect_timeout 30 -b $(HOST) -p $(PORT) bgremover.asgi:application

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The benchmark's own venvs keep rembg's pins away from the product: .venv-bench holds the
# product plus rembg[cpu] (no conflict); rembg's CLI extra downgrades Pillow, so `rembg i`
# gets .venv-rembg of its own. BENCH_ARGS is passed to bench.run (e.g. --quick).
BENCH_VENV := .venv-bench
REMBG_VENV := .venv-rembg

$(BENCH_VENV)/.installed: pyproject.toml
	python3.11 -m venv $(BENCH_VENV) 2>/dev/null || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --disable-pip-version-check -q -e ".[bench]"
	$(BENCH_VENV)/bin/pip install --disable-pip-version-check -q --no-deps pysodmetrics==1.6.2
	touch $@

$(REMBG_VENV)/.installed:
	python3.11 -m venv $(REMBG_VENV) 2>/dev/null || python3 -m venv $(REMBG_VENV)
	$(REMBG_VENV)/bin/pip install --disable-pip-version-check -q "rembg[cpu,cli]==2.0.86"
	touch $@

bench: $(BENCH_VENV)/.installed $(REMBG_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench.run --rembg-cli $(abspath $(REMBG_VENV))/bin/rembg $(BENCH_ARGS)

# Hostile load against a real Daphne server on loopback (bench/README.md, "make stress").
# STRESS_ARGS is passed to bench.stress (e.g. --only burst,tiff, --repo ../other-checkout).
stress: install
	$(VENV)/bin/python -m bench.stress $(STRESS_ARGS)

# Many users, real photos and a websocket per job against the embedded server and the
# scale-out one (PostgreSQL, Redis, two web processes, two db_workers): bench/README.md,
# "make loadtest". LOADTEST_ARGS is passed to bench.loadtest (e.g. --topology embedded
# --users 3 --photos 10, or --topology scaleout --kill-worker).
loadtest: install services-deps
	$(VENV)/bin/python -m bench.loadtest $(LOADTEST_ARGS)

# Every test on SQLite (the scale-out tests start their own PostgreSQL and Redis), then the
# web and jobs suite and the API's database tests once more on a throwaway PostgreSQL.
test: install browser-deps services-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest
	$(PY) tools/with_services.py postgres -- $(VENV)/bin/pytest tests/web
	$(PY) tools/with_services.py postgres -- $(VENV)/bin/pytest tests/api -m "not browser"
