# Samsyn: the two commands are `make run` and `make test`; everything they need is installed
# idempotently and cached (see README "What is downloaded, and where").
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PY := .venv/bin/python
STAMP := .venv/.installed
OPA = $$(deploy/local/install.sh opa-path)
REGAL = $$(deploy/local/install.sh regal-path)
PORT ?= 8000

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x .venv/bin/python || python3 -m venv .venv
	@.venv/bin/pip install -q --upgrade pip
	@.venv/bin/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create the virtual environment (.venv)

stack: $(STAMP) ## start Kafka, OPA and PostgreSQL on loopback (idempotent)
	@deploy/local/stack.sh up

run: stack ## run Samsyn on http://127.0.0.1:8000 with SQLite, the real stack and a seeded demo
	@deploy/local/run.sh $(PORT)

demo: stack ## play one child's year through the public API (starts what it needs)
	@deploy/local/demo.sh $(PORT)

lint: $(STAMP) ## ruff, mypy, and the policy checks (opa fmt, opa check --strict, regal lint, opa test)
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy broker consumers tests bench
	@deploy/local/install.sh opa >/dev/null
	@test -z "$$($(OPA) fmt --list policies/)" || { echo "opa fmt: run '$(OPA) fmt -w policies/'"; $(OPA) fmt --diff policies/; exit 1; }
	@$(OPA) check --strict policies/
	@deploy/local/install.sh regal >/dev/null
	@$(REGAL) lint policies/  # its exceptions, each explained: policies/.regal/config.yaml
	@mkdir -p var
	@$(OPA) test policies/ --coverage --threshold 95 --format json > var/opa-coverage.json || { $(OPA) test policies/ -v | tail -40; exit 1; }
	@$(OPA) test policies/ | tail -1

# The inner loop: no stack (the in-process tests start an OPA of their own), under a minute on
# the 2-core machine.
check: $(STAMP) ## ruff, mypy, the unit and in-process tests (not the slow ones): the fast loop; `make test` is the whole truth
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy broker consumers tests bench
	@deploy/local/install.sh opa >/dev/null
	@$(PY) -m pytest tests/unit tests/inprocess -q -n 2 -m "not slow" --timeout 60

TEST_WORKERS ?= 3
SIDE_BY_SIDE ?=
TIMED := faults or cluster
TIMED_OUT := not faults and not cluster
# The PostgreSQL leg runs what may behave differently on PostgreSQL: not stack_security (secured
# Kafka, signed bundles), faults (bench/faults/ brings its own three-broker Kafka and
# PostgreSQL), cluster (its own Kafka), restore (always on PostgreSQL) nor one_database
# (routing, Kafka, metrics); the browser tests run on SQLite.
PG_SELECTION := not stack_security and not restore and not one_database and $(TIMED_OUT)
SQLITE_LEG = SAMSYN_TEST_DB=sqlite $(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile -m "$(TIMED_OUT)"
TIMED_LEG = SAMSYN_TEST_DB=sqlite $(PY) -m pytest tests -q -n 3 -m "$(TIMED)"
PG_LEG = SAMSYN_TEST_DB=postgres $(PY) -m pytest tests/integration tests/inprocess -q -n 2 --dist loadfile -m "$(PG_SELECTION)"
test: $(STAMP) stack ## everything CI runs: lint, policy tests, unit, in-process, integration + browser (e2e) on SQLite, the timed fault tests, integration on PostgreSQL
	@deploy/local/browser.sh -q
	@# Each leg's test files run in parallel sessions (each its own Samsyn on the shared stack,
	@# isolated by topic prefix and database). The legs run one after another: side by side
	@# (SIDE_BY_SIDE=1) they took 20 min instead of 8 on the 2-core machine and Samsyn processes
	@# missed their start-up minute at load averages of 20-40 (README, Developer checks).
	@if [[ -n "$(SIDE_BY_SIDE)" ]]; then \
	  deploy/local/test-legs.sh lint 'make --no-print-directory lint' sqlite '$(SQLITE_LEG)' \
	    timed '$(TIMED_LEG)' postgres '$(PG_LEG)'; \
	else \
	  deploy/local/test-legs.sh lint 'make --no-print-directory lint' \
	    && deploy/local/test-legs.sh sqlite '$(SQLITE_LEG)' \
	    && deploy/local/test-legs.sh timed '$(TIMED_LEG)' \
	    && deploy/local/test-legs.sh postgres '$(PG_LEG)'; \
	fi

EVENTS ?= 3000
faults: stack ## the fault suite on three brokers: EVENTS (3000) events under SIGKILLs (API, routers, brokers), Kafka restarts, OPA and DB outages
	@$(PY) -m bench.faults --events $(EVENTS)

# make bench BENCH_SIZES=10000,100000 for a shorter run (and the other BENCH_* of bench/run.py's --help)
bench: stack ## throughput, overhead, latency, policy time, RSS at BENCH_SIZES (10k,100k,1M): ~30 min
	@$(PY) -m bench.run

# make bench-followup FOLLOWUP_RECORDS=1000000 for a shorter run
FOLLOWUP_RECORDS ?= 5000000
bench-followup: stack ## p95 of the console's log follow-up views over FOLLOWUP_RECORDS (5M) audit records on PostgreSQL
	@$(PY) -m bench.followup --records $(FOLLOWUP_RECORDS)

AUDIT_RECORDS ?= 10000000
bench-audit: stack ## verify and export AUDIT_RECORDS (10M) sealed records: records/s and peak RSS
	@$(PY) -m bench.audit_chain --records $(AUDIT_RECORDS)

stop: ## stop what `make run`/`make test` started
	@deploy/local/run.sh stop || true
	@deploy/local/stack.sh down

status: ## what runs where
	@deploy/local/stack.sh status

.PHONY: help venv stack run demo lint check test faults bench bench-followup bench-audit stop status
