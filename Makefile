# The two commands of the README: `make run` (the whole platform on embedded defaults) and
# `make test` (the whole test suite). Both create the virtual environment first if needed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
UV_VERSION := 0.13.9
# reinstall whenever the pins or the package metadata change
STAMP  := $(VENV)/.installed-$(shell cat requirements.in constraints.txt pyproject.toml | sha1sum | cut -c1-12)

# the dbt manifest Cosmos renders the build DAG from; `dbt parse` needs no database
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print)

.PHONY: help install manifest run test stop psql status lint constraints bench clean browser-deps system-deps

help:
	@echo "make run    – start the embedded warehouse and simulators, run every DAG once through Airflow"
	@echo "make test   – run the whole test suite"
	@echo "make stop   – stop the embedded PostgreSQL"
	@echo "make psql   – psql on the warehouse (ROLE=analyst to act as an analyst)"
	@echo "make status – sync state of every resource"
	@echo "make bench  – ingest benchmark (N=1000000 by default; by hand, not in CI)"
	@echo "make browser-deps – headless chromium + CJK fonts for the mail layout test (apt, as root)"

install: $(STAMP)

$(STAMP):
	@echo "▶ setting up $(VENV) with $(PYTHON) (pinned by constraints.txt) …"
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check -q "uv==$(UV_VERSION)"
	@echo "  installing Airflow, dbt, Great Expectations, Cosmos and friends (a minute or two the first time) …"
	@$(VENV)/bin/uv pip install --python $(PY) -r requirements.in -c constraints.txt
	@$(VENV)/bin/uv pip install --python $(PY) --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $(STAMP)
	@echo "✓ environment ready"

manifest: $(MANIFEST)

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	@echo "▶ dbt parse (manifest for the warehouse build DAG) …"
	@cd dbt_project && DBT_HOST=unused DBT_USER=unused DBT_DBNAME=unused DBT_PROFILES_DIR=. \
		../$(VENV)/bin/dbt parse --quiet --no-partial-parse
	@touch $(MANIFEST)

run: $(STAMP) $(MANIFEST)
	@$(PY) -m market_access run

# Two test files at a time (pytest-xdist, one file per worker so its module fixtures are built
# once): most tests are one busy process (dbt, `airflow dags test`), and the machine has 2 cores.
# Files go out in collection order, the longest first (tests/conftest.py), not xdist's by count.
PYTEST_WORKERS ?= 2
test: $(STAMP) $(MANIFEST) system-deps browser-deps
	@$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The warehouse tests run on PostgreSQL 15 (Debian's server) as well as the embedded 18. As root
# (CI) a missing postgresql-15 is installed with apt-get, without creating or starting Debian's
# default cluster (the tests initdb their own); otherwise the PG15 tests are skipped with a hint.
PG15_BIN := /usr/lib/postgresql/15/bin
system-deps:
	@if [ ! -x $(PG15_BIN)/postgres ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "▶ installing PostgreSQL 15 (apt-get install postgresql-15) for the warehouse tests …"; \
			mkdir -p /etc/postgresql-common; \
			test -e /etc/postgresql-common/createcluster.conf || \
				echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; \
			apt-get update -q >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >/dev/null \
				|| { echo "✗ apt-get install postgresql-15 failed"; exit 1; }; \
		else \
			echo "! PostgreSQL 15 is not installed ($(PG15_BIN)/postgres missing): the PostgreSQL 15 warehouse"; \
			echo "  tests will be skipped. Install it with: sudo apt-get install postgresql-15"; \
		fi; \
	fi

# tests/browser opens the alert mails in headless Debian chromium; Chinese needs a CJK font
BROWSER_PKGS := chromium fonts-noto-cjk
browser-deps:
	@command -v chromium >/dev/null && fc-list :lang=zh family | grep -q . || { \
		echo "▶ installing $(BROWSER_PKGS) (apt) for the mail layout test …"; \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); $$SUDO apt-get update -q >/dev/null; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(BROWSER_PKGS) >/dev/null \
			|| { echo "✗ apt-get install $(BROWSER_PKGS) failed"; exit 1; }; }

stop: $(STAMP)
	@$(PY) -m market_access stop

psql: $(STAMP)
	@$(PY) -m market_access psql $(if $(ROLE),--role $(ROLE))

status: $(STAMP)
	@$(PY) -m market_access status

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	@$(PY) bench/ingest.py --rows $(or $(N),1000000)

constraints:
	uv pip compile requirements.in --python-version 3.11 -o constraints.txt

clean:
	rm -rf .local
