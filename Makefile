# The two set-up commands: `make install` then `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install kube peers test lint bench bench-peers clean

install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	bash scripts/install-tools.sh

# The real control plane for tests/realkube, built from source (needs Go; see docs/kube-tests.md).
kube:
	bash scripts/install-kube.sh

# The exporters bench/peers compares with, from their Go modules (needs Go; not part of install).
peers:
	bash scripts/install-peers.sh

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

lint:
	$(BIN)/ruff check eventpipe tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench:
	$(BIN)/python -m bench.run

# eventpipe beside the peers on the real control plane (needs `make kube` and `make peers`).
bench-peers:
	$(BIN)/python -m bench.peers

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache build *.egg-info
