# mtrec — the two commands are `make run` and `make test`; `make help` lists the rest.
# Any upper-case variable a notebook declares is a parameter override: `make run EPOCHS=1`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
DATASET ?= ml-100k
ARTIFACTS_DIR ?= data/artifacts/$(DATASET)
RUNS_DIR ?= runs/$(DATASET)
DEVICE ?= auto
# PRESET=class: every chapter at settings chosen to run the whole course in minutes (mtrec_helpers/course/presets.py)
PRESET ?= default
# `make run DEVICE=cuda` uses the larger GPU settings unless PARAMS is given (docs/running.md, "On a GPU").
# (04 keeps its defaults: its simulator and learners run on the CPU whatever DEVICE is; docs/running.md)
GPU_PARAMS ?= HIDDEN=128 LAYERS=3 HEADS=4 MAX_LEN=200 BATCH_SIZE=256 STUDENT_HIDDEN=[64,48,32,16] ABLATION_HIDDEN=48
ifeq ($(DEVICE),cuda)
  PARAMS ?= $(GPU_PARAMS)
endif
PARAMS ?=
# PARAMS unless they are the GPU_PARAMS that DEVICE=cuda implies (so a results file names only what was typed)
OWN_PARAMS := $(if $(and $(filter cuda,$(DEVICE)),$(if $(subst x$(GPU_PARAMS),,x$(PARAMS)),,same)),,$(PARAMS))
PYTEST_ARGS ?=
# TRAIN_WORKERS=N: trainings of a chapter that do not depend on each other, N at once (default: 2 on a CPU, 1 on a GPU;
# the same numbers as one after another; mtrec_helpers/core/workers.py)
TRAIN_WORKERS ?=
ifneq ($(strip $(TRAIN_WORKERS)),)
  export MTREC_TRAIN_WORKERS := $(TRAIN_WORKERS)
endif
TEST_WORKERS ?= 2  # pytest-xdist processes for `make test` (0: one process; auto: one per core)
BENCH_NAME ?= $(DATASET)$(if $(filter-out default,$(PRESET)),-$(PRESET))
BENCH_DIR ?= data/artifacts/bench/$(BENCH_NAME)
# `make bench-scale SIZES="ml-100k synthetic-1m" PROFILE=1`: some sizes only; each kernel under cProfile
SIZES ?=
PROFILE ?=
# The CPU build of torch on the course machines; on a GPU machine pass e.g.
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0

# Install into the active conda or virtual environment if there is one, else into .venv.
ifneq ($(strip $(VIRTUAL_ENV)),)
  ENV_DIR := $(VIRTUAL_ENV)
else ifneq ($(strip $(CONDA_PREFIX)),)
  ENV_DIR := $(CONDA_PREFIX)
else
  ENV_DIR := .venv
endif
PY := $(ENV_DIR)/bin/python
STAMP := $(ENV_DIR)/.mtrec-setup.stamp

.PHONY: help setup data run book test lint bench bench-scenarios bench-exercises bench-scale bench-heap bench-step

help: ## list the targets
	@echo "mtrec — multi-task, RL-ranked and distilled Transformer recommenders (notebook course)"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: DATASET=$(DATASET) ARTIFACTS_DIR=$(ARTIFACTS_DIR) RUNS_DIR=$(RUNS_DIR) DEVICE=$(DEVICE)"
	@echo "           PARAMS='KEY=VALUE ...' (notebook parameter overrides), environment: $(ENV_DIR)"

setup: $(STAMP) ## create the environment, install torch + this package, register the 'mtrec' kernel

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then echo "Creating $(ENV_DIR)"; $(PYTHON) -m venv $(ENV_DIR); fi
	$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name mtrec --display-name "Python (mtrec)"
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(PY) -m nbstripout --install && \
		echo "nbstripout: notebooks you commit are stripped of their outputs"; fi
	@touch $(STAMP)

data: setup ## find (or download and verify) DATASET and prepare it into ARTIFACTS_DIR/processed
	$(PY) -m mtrec_helpers.data --dataset $(DATASET) --artifacts-dir $(ARTIFACTS_DIR)

run: setup ## execute every numbered notebook in order with papermill into RUNS_DIR
	$(PY) -m mtrec_helpers.course.runner --dataset $(DATASET) --artifacts-dir $(ARTIFACTS_DIR) \
		--runs-dir $(RUNS_DIR) --device $(DEVICE) --preset $(PRESET) --make-variables $(PARAMS)

book: setup ## the executed notebooks of `make run` (same RUNS_DIR, ARTIFACTS_DIR) and their solutions as a static site → RUNS_DIR/book/index.html
	$(PY) -m mtrec_helpers.course.book --runs-dir $(RUNS_DIR) --artifacts-dir $(ARTIFACTS_DIR)

test: setup ## unit tests and papermill notebook tests (offline: nothing is fetched from the model hub)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: setup ## full run (PRESET) from an empty artifacts folder → benchmarks/<device>-<dataset>[-<preset>].json, RESULTS.md
	rm -rf $(BENCH_DIR)
	$(MAKE) run ARTIFACTS_DIR=$(BENCH_DIR) RUNS_DIR=runs/bench/$(BENCH_NAME)
	$(PY) -m mtrec_helpers.course.report --artifacts-dir $(BENCH_DIR)
	$(PY) -m mtrec_helpers.course.benchmark --artifacts-dir $(BENCH_DIR) --runs-dir runs/bench/$(BENCH_NAME) --preset $(PRESET) \
		--command "make bench$(if $(filter-out auto,$(DEVICE)), DEVICE=$(DEVICE)) DATASET=$(DATASET)$(if $(filter-out default,$(PRESET)), PRESET=$(PRESET))$(if $(OWN_PARAMS), PARAMS='$(PARAMS)')"
	$(PY) -m mtrec_helpers.course.results_page

lint: setup ## ruff over the package and tests
	$(PY) -m ruff check mtrec_helpers tests
	$(PY) -m ruff format --check mtrec_helpers tests

SCENARIO_BENCH ?= user_group
SCENARIO_MODELS ?= ["star", "experts"]
bench-scenarios: setup ## after `make bench`: 03b with SCENARIOS=$(SCENARIO_BENCH) on that run's 01–03 → benchmarks/<device>-<dataset>-$(SCENARIO_BENCH).json
	@test -f $(BENCH_DIR)/multitask/metrics.json || { echo "$(BENCH_DIR): run \`make bench\` first"; exit 1; }
	rm -rf $(BENCH_DIR)-$(SCENARIO_BENCH) && mkdir -p $(BENCH_DIR)-$(SCENARIO_BENCH)
	cp -r $(BENCH_DIR)/processed $(BENCH_DIR)/pretrained $(BENCH_DIR)/multitask $(BENCH_DIR)-$(SCENARIO_BENCH)/
	$(PY) -m mtrec_helpers.course.runner --dataset $(DATASET) --artifacts-dir $(BENCH_DIR)-$(SCENARIO_BENCH) \
		--runs-dir runs/bench/$(BENCH_NAME)-$(SCENARIO_BENCH) --device $(DEVICE) --preset $(PRESET) \
		SCENARIOS=$(SCENARIO_BENCH) 'MODELS=$(SCENARIO_MODELS)' SEPARATE=False 'WEIGHTINGS=[]' --only 03b
	$(PY) -m mtrec_helpers.course.benchmark --artifacts-dir $(BENCH_DIR)-$(SCENARIO_BENCH) \
		--runs-dir runs/bench/$(BENCH_NAME)-$(SCENARIO_BENCH) --preset $(PRESET) --stages multi_scenario \
		--suffix $(SCENARIO_BENCH) --command "make bench-scenarios DATASET=$(DATASET)$(if $(filter-out default,$(PRESET)), PRESET=$(PRESET))"
	$(PY) -m mtrec_helpers.course.results_page


bench-exercises: setup ## after `make bench PRESET=class`: every chapter's parameter exercises as recorded runs → benchmarks/<device>-<dataset>[-<preset>]-exercises.json
	@test -f $(BENCH_DIR)/ensemble/metrics.json || { echo "$(BENCH_DIR): run \`make bench PRESET=$(PRESET)\` first"; exit 1; }
	$(PY) -m mtrec_helpers.course.exercises --artifacts-dir $(BENCH_DIR) --dataset $(DATASET) --device $(DEVICE) \
		--preset $(PRESET) --command "make bench-exercises DATASET=$(DATASET)$(if $(filter-out default,$(PRESET)), PRESET=$(PRESET))"
bench-scale: setup ## every stage at ML-100k, synthetic-1m and synthetic-20m on a fixed step budget → benchmarks/scale-<device>.json (SIZES=…: those only, without the 25M-row read; PROFILE=1: per function; each to a file of its own)
	$(PY) -m mtrec_helpers.course.scale_benchmark --device $(DEVICE) $(if $(SIZES),--sizes $(SIZES) --skip-read) $(if $(PROFILE),--profile) \
		--command "make bench-scale$(if $(SIZES), SIZES='$(SIZES)')$(if $(PROFILE), PROFILE=1)"
	$(PY) -m mtrec_helpers.course.results_page

bench-step: setup ## one training step of 02's causal model on DATASET: its cost, where it goes, what the course's dropout and two training workers buy → benchmarks/step-cpu.json
	$(PY) -m mtrec_helpers.course.step_benchmark --dataset $(DATASET)

bench-heap: setup ## what reusing the heap buys on a 26,744-item catalogue: a training step and 06's fusion of a batch, each in a fresh process → benchmarks/heap-cpu.json
	$(PY) -m mtrec_helpers.course.heap_benchmark
