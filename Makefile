# Podium — every target installs what it needs into .venv itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.podium-installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv demo shell test test-fast lint crds e2e bench clean system-deps constraints

help:
	@echo "make demo   - start a local cluster, run the demo, shut it down"
	@echo "make shell  - a shell with .venv active: podium, python and pytest on PATH"
	@echo "make test   - lint (ruff, mypy, import-linter), then the whole test suite (no cluster, Docker or network)"
	@echo "make test-fast - the fast inner loop: pytest -m 'not slow' (no lint, no real-operator flows)"
	@echo "make lint   - ruff, mypy and import-linter contracts"
	@echo "make crds   - regenerate crds/ and the chart's copy from the API models"
	@echo "make e2e    - tests against the cluster of the current kubeconfig (skipped when none)"
	@echo "make bench  - run the benchmarks in benchmarks/"

# The venv is rebuilt when pyproject.toml or constraints.txt changes. torch is installed first,
# pinned, because an unpinned torch (pulled in by another package) would be a multi-GB CUDA build.
# constraints.txt pins the tested versions: without it pip's resolver backtracks for many minutes
# (boto3/botocore) on a fresh machine. Refresh it with `make constraints` after changing deps.
# PYTHONWARNINGS=ignore: setuptools' build warnings (e.g. about editable installs) are for the maintainers, not
# for someone running the demo; pip's own warnings and errors still show.
$(STAMP): pyproject.toml constraints.txt
	@echo "==> Installing Podium and its dependencies (torch, TensorFlow, scikit-learn, ONNX, kopf, moto) into $(VENV):"
	@echo "    about 3 minutes and 3.5 GB the first time, seconds afterwards (until pyproject.toml or constraints.txt change)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -c constraints.txt "torch==2.13.0"
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^podium' > constraints.txt

venv: $(STAMP) system-deps

# kubectl drives the demo and some tests; Debian ships it as kubernetes-client. Prometheus scrapes local
# mode's predictors (without it the operator scrapes them directly and the Prometheus tests are skipped).
system-deps:
	@command -v kubectl >/dev/null || { apt-get update -qq && apt-get install -y -qq kubernetes-client; } \
	  || echo "warning: kubectl not found and could not be installed; kubectl tests will be skipped"
	@test -x /usr/bin/prometheus || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; } \
	  || echo "warning: prometheus not found and could not be installed; local mode runs without it"

demo: venv
	@$(BIN)/python examples/demo.py

# Your own shell ($$SHELL), with .venv's bin first on PATH, as `source .venv/bin/activate` would; exit to leave.
shell: venv
	@echo "==> .venv is active in this shell (podium, python, pytest); 'exit' to leave"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/bash} -i

# Lint first: CI runs only `make test`, so a broken type or a broken import contract fails CI too.
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

lint: venv
	$(BIN)/ruff check sdk operator tests benchmarks examples e2e
	$(BIN)/mypy sdk/podium operator/podium_operator
	$(BIN)/lint-imports --no-cache

crds: $(STAMP)
	$(BIN)/python -m podium.api.crdgen crds charts/podium/crds

e2e: venv
	@if ! kubectl cluster-info --request-timeout=5s >/dev/null 2>&1; then \
	  echo "no cluster reachable, skipped (set KUBECONFIG to a kind cluster with KServe and MinIO to run e2e/)"; \
	else $(BIN)/python -m pytest -q -p no:cacheprovider e2e -m e2e; fi

bench: venv
	for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
