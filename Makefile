# vwe-pool: `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit bench lint provision images venv clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test,lint,bench,fast]'
	touch $@

## provision: a Docker engine (reused when `docker info` works), the base and worker images, and
## the viewer's map library (Debian's libjs-leaflet)
provision: venv
	scripts/ensure-leaflet.sh
	scripts/ensure-docker.sh
	scripts/base-image.sh
	scripts/worker-image.sh

## run: provision what is missing, then the daemon + API in the foreground (Ctrl-C drains)
run: provision
	scripts/run.sh

## test: provision, start a private Redis, run the whole suite, stop Redis
test: provision
	scripts/ensure-test-tools.sh
	scripts/test.sh $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest -m unit -q

## bench: benchmarks; results to bench/RESULTS.md
bench: provision
	scripts/bench.sh $(BENCH)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf .run data .pytest_cache .mypy_cache .ruff_cache
