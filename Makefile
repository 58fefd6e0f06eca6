# The two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types unit component e2e docs-screenshots bench bench-full bench-verify bench-reminders bench-mail bench-calls bench-retention bench-replicas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/keyledger up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# unit and component need no nats-server and no PostgreSQL: seconds, on any machine
unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

component: $(STAMP)
	$(BIN)/pytest -q tests/component

# the console in a real browser against `keyledger up --dev`: needs /usr/bin/chromium (Debian's
# chromium package; .ci/run installs it), skipped without it unless KEYLEDGER_REQUIRE_BROWSER=1
e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

# refresh the README's console pictures in docs/ (then commit them)
docs-screenshots: $(STAMP)
	KEYLEDGER_DOCS_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e/test_console_walkthrough.py

# everything: unit, component, integration and e2e (tests/ is pytest's testpaths)
test: lint types
	$(BIN)/pytest -q $(PYTEST_ARGS)

# the quick form of every benchmark (a few minutes); bench-full: the documented full forms
bench: $(STAMP)
	$(BIN)/python bench/quick.py

bench-full: $(STAMP)
	$(BIN)/python bench/quick.py --full

bench-verify: $(STAMP)
	$(BIN)/python bench/verify.py

bench-reminders: $(STAMP)
	$(BIN)/python bench/reminders.py

bench-mail: $(STAMP)
	$(BIN)/python bench/reminders_mail.py

bench-calls: $(STAMP)
	$(BIN)/python bench/calls.py

bench-replicas: $(STAMP)
	$(BIN)/python bench/replicas.py

bench-retention: $(STAMP)
	$(BIN)/python bench/calls_retention.py

clean:
	rm -rf $(VENV) .keyledger .pytest_cache .mypy_cache .ruff_cache
