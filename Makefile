# Two commands: `make repro` runs the default pipeline, `make test` runs the test suite.
# Both create .venv and install everything on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch is pinned; which build pip installs depends on the index: plain PyPI serves the CUDA build for Linux
# (with its multi-GB nvidia-* wheels). TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the CPU build
# (2.13.0+cpu, ~200 MB) where that index is reachable.
TORCH  := torch==2.13.0
TORCH_INDEX ?=

.PHONY: install repro test lint bench transfer-bench clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml requirements-data.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH)" -e ".[dev]"
	$(PY) -m pip install -q --no-deps -r requirements-data.txt
	touch $@

repro: $(STAMP)
	test -d .dvc || $(VENV)/bin/dvc init -q
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro
	$(PY) -m stages.report

# One pytest worker per core (pytest-xdist), each with its share of the cores, handed one test at a time,
# the DAG tests first (tests/conftest.py): the many short tests fill the gaps at the end.
test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -n auto --maxschedchunk 1

lint: $(STAMP)
	$(VENV)/bin/ruff check stages transfer tests bench

# Throughput against HF-example-style baselines (bench/results.json); needs `make repro` first. Not in CI.
bench: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/run.py

# The transfer suite: 5 real domain pairs, 100 target labels each, the default recipe, its levers and SetFit
# against the target-only baseline, both tuned as the pipeline tunes them (bench/transfer_tuned.json and .md;
# docs/transfer-bench.md). By default target_only, source_only, sequential and the SetFit peer, one seed;
# METHODS= (empty) the first three only; METHODS=all every lever (hours a seed); SEEDS="42 43 44" several seeds;
# OUT=bench/other.json writes elsewhere. The wall time of a run is at the end of its .md. Not in CI.
SEEDS ?= 42
METHODS ?= setfit
PAIRS ?=
OUT ?= bench/transfer_tuned.json
transfer-bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/transfer.py --seeds $(SEEDS) $(if $(filter all,$(METHODS)),,--methods $(METHODS)) \
		$(if $(PAIRS),--pairs $(PAIRS)) --out $(OUT)

clean-venv:
	rm -rf $(VENV)
