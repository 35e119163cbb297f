# Two commands for a new machine: `make setup` then `make test`. CI (.ci/run) runs exactly these.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup test lint format docs bake lock clean

setup:  ## create .venv with every pinned dependency (torch CPU build included)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3  # the installer is pinned too
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt

test:  ## lint, docs build, hooks, and bake + test every generated project in the option matrix
	$(BIN)/ruff check hooks tests scripts
	$(BIN)/python -m pytest tests -n 2 --durations=15

lint:
	$(BIN)/ruff check hooks tests scripts
	$(BIN)/ruff format --check hooks tests

format:
	$(BIN)/ruff format hooks tests
	$(BIN)/ruff check --fix hooks tests

docs:  ## build the documentation site (fails on any warning)
	$(BIN)/mkdocs build --strict --site-dir /tmp/site

bake:  ## bake the default project into /tmp/baked
	rm -rf /tmp/baked && $(BIN)/cookiecutter . --no-input -o /tmp/baked

lock:  ## re-resolve and pin the dev environment
	rm -rf /tmp/lockenv && $(PYTHON) -m venv /tmp/lockenv
	/tmp/lockenv/bin/pip install --quiet -r requirements-dev.txt
	/tmp/lockenv/bin/pip freeze --all --exclude pip | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt

clean:
	rm -rf $(VENV) site .pytest_cache
