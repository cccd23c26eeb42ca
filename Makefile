# market-voices-etl: every target installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# What a target installs, as a stamp per pyproject.toml: the runtime (the job and its readers), the runtime and
# the DuckDB shell, or everything with the dev tools (the tests, lint and bench).
INSTALLED = $(VENV)/.installed-$(1)-$(shell cksum < pyproject.toml | cut -d' ' -f1)
RUNTIME := $(call INSTALLED,runtime)
WITH_SHELL := $(call INSTALLED,shell)
DEV := $(call INSTALLED,dev)
EXTRAS_runtime :=
EXTRAS_shell := [shell]
EXTRAS_dev := [dev]
# The dev venv is compiled at install: where PYTHONDONTWRITEBYTECODE is set (these machines, many CI images),
# each of the hundreds of processes the tests start would compile pandas, pyarrow and the rest from source
# again (import etl.pipeline: 2.7 s, not 0.6 s). The whole venv, since the dev extra may go on top of a
# runtime install (uv's --compile-bytecode compiles only what it installs). The runtime's stays lean (the
# .pyc files are 100 MB).
COMPILE_dev := $(PY) -m compileall -q -j 0 $(VENV)/lib
LAKE ?= data/lake
# The market brief `make collect` writes: beside a local lake, as the report; for a bucket, in this folder.
BRIEF ?= $(if $(findstring ://,$(LAKE)),$(notdir $(LAKE)),$(LAKE))-brief.md
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo collect summary query test lint bench bench-quick bench-ray clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ needed; run make PYTHON=python3.11 ..."; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv rather than pip installs the wheels: seconds where pip's resolver takes two minutes on 2 cores. It
	@# reads PyPI, or the index UV_DEFAULT_INDEX names (pip's own settings are pip's).
	$(PY) -m pip install --quiet uv
	@# From here on the venv's installer is uv: pip and setuptools go (27 MB the job never imports).
	$(UV) pip uninstall --quiet --python $(PY) pip setuptools

$(VENV)/.installed-%: pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(PY) -e '.$(EXTRAS_$(firstword $(subst -, ,$*)))'
	$(COMPILE_$(firstword $(subst -, ,$*)))
	rm -f $(VENV)/.installed-$(firstword $(subst -, ,$*))-* && touch $@

install: $(DEV) ## Create .venv and install the package with its dev tools

demo: $(RUNTIME) ## Run the job offline against the Yahoo emulator into data/demo, print the summary, write the report and the market brief
	$(PY) -m etl demo $(ARGS)
	$(PY) -m etl report --lake data/demo
	$(PY) -m etl brief --lake data/demo --format markdown --out data/demo-brief.md

collect: $(RUNTIME) ## Collect the default universe from Yahoo Finance into data/lake, print the summary, write the report and the market brief
	@# The summary, the report and the brief run in their own processes, as any reader of the lake would; exit 2 means nothing was run.
	$(PY) -m etl collect --lake $(LAKE) $(ARGS); status=$$?; [ $$status -eq 2 ] || { $(PY) -m etl summary --lake $(LAKE) && $(PY) -m etl report --lake $(LAKE) && $(PY) -m etl brief --lake $(LAKE) --format markdown --out $(BRIEF); }; exit $$status

summary: $(RUNTIME) ## Print the summary of the latest run in LAKE (ARGS="--compare A B" for two runs)
	$(PY) -m etl summary --lake $(LAKE) $(ARGS)

query: $(WITH_SHELL) ## Open the DuckDB shell on LAKE's views and macros; SQL="from runs" runs one statement instead
	$(if $(SQL),$(PY) -m etl query --lake $(LAKE) "$(SQL)",$(PY) -m etl shell --lake $(LAKE))

test: $(DEV) ## Run the test suite (offline, against the emulator)
	@# loadfile: a module's tests run on one worker, so its module fixtures (a collect, a Ray cluster) run once;
	@# modules in collection order, the longest first (tests/conftest.py), not xdist's most-tests-first.
	$(PY) -m pytest -q -n auto --dist loadfile --no-loadscope-reorder $(ARGS)

lint: $(DEV) ## ruff (lint and format check) and mypy on etl/ and bench/
	$(PY) -m ruff check etl tests bench
	$(PY) -m ruff format --check etl tests bench
	$(PY) -m mypy

bench: $(DEV) ## Every contender side by side at 100 ms latency: 30, 257, 5,000 and 10,000 symbols, and the S3 rows (~25 min)
	$(PY) -m bench $(ARGS)

bench-quick: $(DEV) ## The same at 30 and 257 symbols, and the S3 rows (~4 min)
	$(PY) -m bench --quick $(ARGS)

bench-ray: $(DEV) ## collect --ray on a local 2-CPU Ray cluster: 10,000 symbols at 100 ms against one process, 100,000 at 0 ms
	$(PY) -m bench.cluster $(ARGS)

clean: ## Remove the demo lake and caches (keeps data/lake)
	rm -rf data/demo data/.demo.staging .pytest_cache
