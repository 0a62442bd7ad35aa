# Fresh-machine entry points. `make serve` runs the service on the default model (training it
# first if models/default is missing); `make test` runs the whole test suite. Both build the
# virtual environment themselves: torch==2.13.0 first (the CPU build), then the project.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

.PHONY: install serve test test-fast lint
install: $(STAMP)

serve: $(STAMP)
	$(BIN)/stancelens serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy stancelens model training serve batch bench
