# The developer loop. `make test` and `make serve` work on a fresh clone: each creates
# .venv when missing and (re)installs the project when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
MODELS ?= models
PYTEST_ARGS ?=

.PHONY: test test-fast lint typecheck serve demo-model bench docker-test audit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Everything: serving, training, tracking, and the test tools.
$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[serve,dicom,train,ray,track,batch,dev]'
	touch $@

# Serving only: no torch, so `make serve` is quick on a fresh machine.
$(VENV)/.installed-serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[serve,dicom]'
	touch $@

lint: $(VENV)/.installed-all
	$(BIN)/ruff check model service training tests bench
	$(BIN)/ruff format --check model service training tests bench

typecheck: $(VENV)/.installed-all
	$(BIN)/mypy model service training

test: lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: no server subprocesses, clusters, browsers, training runs or big exports
# (the tiers by marker, see pyproject.toml); ruff only, no mypy. Under 2 minutes on 2 cores;
# it ends with "test-fast: ran N of M tests". `make test` runs all of these and the rest.
FAST_MARKERS := not docker and not slow and not heavy and not e2e and not ray and not tracking \
	and not browser and not distributed and not pacs
test-fast: $(VENV)/.installed-all
	$(BIN)/ruff check model service training tests bench
	$(BIN)/python -m pytest -q -m "$(FAST_MARKERS)" --tier test-fast $(PYTEST_ARGS)

serve: $(VENV)/.installed-serve
	$(BIN)/rectifier serve --models $(MODELS) --host $(HOST) --port $(PORT)

demo-model: $(VENV)/.installed-all
	$(BIN)/python -m training.demo --out $(MODELS)

# The serving comparison (in-process limit, HTTP floor, Rectifier, peers, int8); writes
# docs/BENCHMARKS.md and docs/benchmarks.png. About 40 minutes; BENCH_ARGS=--quick for ~6.
bench: $(VENV)/.installed-all
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The container test: builds the real images and runs the real compose file. Needs root on
# Debian: installs docker.io, docker-compose and debootstrap when missing, starts dockerd
# when none runs (and stops it after), builds debian:bookworm-slim when none can be pulled.
docker-test: $(VENV)/.installed-all
	RECTIFIER_DOCKER_TEST_REQUIRED=1 $(BIN)/python -m pytest -m docker tests/docker $(PYTEST_ARGS)

# Known vulnerabilities in the installed dependencies (pip-audit, PyPI then OSV data).
# Exit 1 on any finding; exit 2 when no vulnerability service could be reached (the
# report says "AUDIT NOT PERFORMED", never "no vulnerabilities"). See docs/reliability.md.
audit: $(VENV)/.installed-all
	$(BIN)/python -m tests.security.audit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
