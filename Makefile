# lbpanel: `make run` brings the whole system up with embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export REDIS_URL ?= redis://127.0.0.1:6379/0
APT_STAMP := var/.apt-updated

.PHONY: run test test-fast lint venv deps test-deps services-test migrate clean help fuzz

help:
	@echo "make run   - the whole system in the foreground (panel http://127.0.0.1:8000/, SIP udp+tcp 127.0.0.1:5060)"
	@echo "make test  - install what the tests need, start PostgreSQL and Redis if needed, lint, run the suite"
	@echo "make test-fast - the same without SIPp, Chromium and the whole-system tests (a minute or two)"
	@echo "make lint  - ruff check and ruff format --check (pyproject.toml)"
	@echo "make fuzz  - coverage-guided fuzzing of the SIP edge with atheris, FUZZ_SECONDS per harness (fuzz/README.md)"

$(BIN)/python:
	@mkdir -p var
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

var/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

var/.test-deps: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-test.txt
	@touch $@

deps: var/.deps

run: var/.deps
	@scripts/ensure-redis "$(REDIS_URL)"
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py publish_table
	$(BIN)/honcho -f Procfile start

# System packages the suite drives: SIPp (sip-tester), headless Chromium, Redis (server and Sentinel), PostgreSQL
# and keepalived (the floating address test in network namespaces, tests/netns); promtool (Debian's prometheus) checks
# deploy/prometheus/alerts.yml (nothing uses a Prometheus server: where the package starts one (systemd), stop it);
# sngrep receives the HEP copies; dnsmasq is a DNS server on loopback; openssl makes the TLS tests' certificates.
test-deps: var/.test-deps
	@scripts/apt-ensure sipp:sip-tester openssl:openssl chromium:chromium redis-server:redis-server redis-sentinel:redis-sentinel psql:postgresql-client keepalived:keepalived promtool:prometheus sngrep:sngrep dnsmasq:dnsmasq

lint: var/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: test-deps lint
	@scripts/ensure-redis "$${LBPANEL_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
	@scripts/ensure-postgres
	REDIS_URL=$${LBPANEL_TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	DATABASE_URL=$${LBPANEL_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lbpanel} \
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The fast subset: no SIPp, no Chromium, nothing marked slow.
test-fast:
	@$(MAKE) --no-print-directory test PYTEST_ARGS='-m "not browser and not sipp and not slow" $(PYTEST_ARGS)'

# Not part of make test: fuzzing finds new inputs, make test replays what it found (fuzz/README.md).
fuzz: var/.test-deps
	$(BIN)/pip install -q atheris==3.0.0
	@for h in parser proxy framing; do \
		mkdir -p var/fuzz-$$h && $(BIN)/python fuzz/fuzz_$$h.py -max_total_time=$${FUZZ_SECONDS:-600} var/fuzz-$$h || exit 1; \
	done

clean:
	rm -rf $(VENV) var/.deps var/.test-deps var/staticfiles
