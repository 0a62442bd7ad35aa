# Fresh-machine entry points. `make serve` runs the service on the default model (the lexicon rules at
# once while models/default trains beside it, if missing); `make test` runs the whole test suite. Both build
# the virtual environment themselves: torch==2.13.0 first (the CPU build on the machine's disk), then the
# locked dependencies with hashes (requirements/*.lock, made by requirements/lock.sh), then the project.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HASH = $(shell cat pyproject.toml requirements/$(1).lock | sha1sum | cut -c1-12)
RUNTIME := $(VENV)/.installed-runtime-$(call HASH,runtime)
DEV := $(VENV)/.installed-dev-$(call HASH,dev)

define install
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet --require-hashes -r requirements/$(1).lock
	$(BIN)/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-$(1)-*
	touch $@
endef

$(RUNTIME): pyproject.toml requirements/runtime.lock
	$(call install,runtime)

$(DEV): pyproject.toml requirements/dev.lock
	$(call install,dev)

.PHONY: install serve test test-fast lint lock
install: $(DEV)

serve: $(RUNTIME)
	$(BIN)/stancelens serve

test: $(DEV)
	$(BIN)/python -m pytest -q

test-fast: $(DEV)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/mypy stancelens model training serve batch bench

lock:
	bash requirements/lock.sh
