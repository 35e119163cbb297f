# Two commands for a new machine: `make setup` then `make test`. CI (.ci/run) runs exactly these.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup test lint typecheck format docs bake lock clean

setup:  ## create .venv with every pinned dependency (torch CPU build included)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3  # the installer is pinned too
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt

# The kit: plain Python inside the template folder, copied as it is by every bake.
KIT    := {{cookiecutter.project_slug}}/src/runkit
PLUGIN := {{cookiecutter.project_slug}}/src/hydra_plugins
LINTED := local_extensions.py hooks tests scripts benchmarks kit-tests "$(KIT)" "$(PLUGIN)"

test: lint typecheck  ## lint, types, the kit's tests (once), then bake + test every option combination
	$(BIN)/python -m pytest kit-tests -n 2 --durations=10
	$(BIN)/python -m pytest tests -n 2 --durations=10

lint:
	$(BIN)/ruff check --config ruff.toml $(LINTED)
	$(BIN)/ruff format --check --config ruff.toml $(LINTED)

typecheck:  ## mypy, strict on the kit
	$(BIN)/mypy

format:
	$(BIN)/ruff format --config ruff.toml $(LINTED)
	$(BIN)/ruff check --config ruff.toml --fix $(LINTED)

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
