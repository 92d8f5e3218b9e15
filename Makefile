# Two commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is pinned here (not in pyproject) so pip takes the local CPU wheel instead of a CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test test-slow lint format docs bench install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[test,all]"
	touch $(STAMP)

install: $(STAMP)

# One process: on an idle 2-core box two data-parallel processes (torchrun, DDP) were only 1.14x faster and
# put the ETA 33-41 % off (benchmarks/results/bench_demo_full_ddp2.json); docs/demo.md says how to run them.
demo: $(STAMP)
	$(BIN)/archkit demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --timeout=600

# Lint (ruff), format check and types (mypy); CI runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# The API reference and docs/ as a site (strict: a broken link, anchor or docstring reference fails the build).
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

# The benchmark pictures (long sequences, function, low-rank) are drawn from the committed results JSON first, so the docs show what was measured.
docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(BIN)/python benchmarks/plot_sequences.py
	MPLBACKEND=Agg $(BIN)/python benchmarks/plot_docs.py
	$(BIN)/mkdocs build --strict --site-dir site

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --timeout=3600

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache
