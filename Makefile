# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else is reached from them; see README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit venv clean bench reliability

$(STAMP): requirements.lock pyproject.toml sandbox/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	@$(BIN)/uv pip install -q -p $(BIN)/python --require-hashes -r requirements.lock
	@$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e . -e ./sandbox
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/paydesk demo

lint: $(STAMP)
	$(BIN)/ruff check src sandbox/src tests $(wildcard bench)
	$(BIN)/ruff format --check src sandbox/src tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy src sandbox/src

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

# The reliability suite at full scale (figures for docs/RELIABILITY.md); `make test`
# runs its short version. RELIABILITY_ARGS passes extra pytest options.
reliability: $(STAMP)
	PAYDESK_RELIABILITY=full $(BIN)/pytest tests/reliability -p no:cacheprovider $(RELIABILITY_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
