# Two entry points for a fresh machine: `make demo` runs the pipeline locally, `make test` runs every test.
# Both create the virtualenv and install the pinned requirements first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test lint format

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt layer/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: venv
	$(PY) -m devtools run samples/

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# One pytest worker per core (pytest-xdist); each module's tests stay in one worker, so module-scoped
# fixtures are set up once (tests/parallel.py). Bytecode is cached (__pycache__, git-ignored) even where
# the environment sets PYTHONDONTWRITEBYTECODE: otherwise every worker and every subprocess the tests
# start compiles our sources again, and pytest rewrites every test module's asserts again.
test: lint
	env -u PYTHONDONTWRITEBYTECODE scripts/with-throwaway-postgres $(PY) -m pytest -n auto --dist loadscope
