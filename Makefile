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

# On 2+ usable CPUs (archkit.threads.usable_cpus: the affinity mask capped by a container quota; read by path, so
# torch does not load for it) the demo's three training stages run data parallel (DDP) on two torchrun processes
# of one thread each; on one CPU it is one process, as `archkit demo` is. Why: docs/demo.md.
USABLE_CPUS = $(BIN)/python -c "import importlib.util as u; s = u.spec_from_file_location('threads', \
	'src/archkit/threads.py'); m = u.module_from_spec(s); s.loader.exec_module(m); print(m.usable_cpus())"

demo: $(STAMP)
	@if [ "$$($(USABLE_CPUS))" -ge 2 ]; then \
		set -x; OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/torchrun --standalone --nproc-per-node 2 \
			-m archkit demo --out runs/demo; \
	else \
		set -x; $(BIN)/archkit demo --out runs/demo; \
	fi

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
