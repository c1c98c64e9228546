# Relais developer entry points. Every target is also a plain command shown in README.md.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install gen check-gen lint test run bench baseline

$(BIN)/relais: pyproject.toml package.json package-lock.json clients/ts/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# `npm ci` installs exactly what the locks say and never rewrites them: `git status` stays clean.
	npm ci --no-audit --no-fund --loglevel=error
	cd clients/ts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## install: create .venv/ with `relais` in it, node_modules/ with buf, protoc-gen-es and openapi-typescript, and clients/ts/node_modules/
install: $(BIN)/relais

## gen: regenerate gen/ from proto/
gen: install
	$(BIN)/python tools/generate.py

## check-gen: fail when gen/ is stale
check-gen: install
	$(BIN)/python tools/generate.py --check

## lint: buf lint, buf breaking against the released baseline, ruff, mypy
lint: install
	node_modules/.bin/buf lint
	node_modules/.bin/buf breaking --against proto/baseline.binpb
	$(BIN)/ruff check server bridge cli clients tests bench tools
	$(BIN)/ruff format --check server bridge cli clients tests bench tools
	$(BIN)/mypy

## test: the whole suite (SQLite and the local PostgreSQL); the browser tests need Debian's Chromium,
## the scale-out tests Debian's HAProxy
test: install
	@test -x /usr/bin/chromium -a -x /usr/sbin/haproxy || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium haproxy)
	$(BIN)/pytest

## run: serve gRPC on :50051 and HTTP on :8000 with the embedded defaults
run: install
	$(BIN)/relais serve

## bench: run the benchmarks and print their tables
bench: install
	$(BIN)/python -m bench

## baseline: record the current contract as the one `buf breaking` protects (after a release)
baseline: install
	node_modules/.bin/buf build -o proto/baseline.binpb
