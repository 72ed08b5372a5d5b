# The two set-up commands: `make install` then `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install kube test lint bench clean

install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	bash scripts/install-tools.sh

# The real control plane for tests/realkube, built from source (needs Go; see docs/kube-tests.md).
kube:
	bash scripts/install-kube.sh

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

lint:
	$(BIN)/ruff check eventpipe tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench:
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache build *.egg-info
