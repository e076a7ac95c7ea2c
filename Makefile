# The two commands a newcomer needs: `make run` and `make test`.
# Each sets up its own virtualenv (.venv) with a Python 3.12 interpreter first.

PYTHON312 := $(shell scripts/find-python)
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed-stamp

.PHONY: run test fuzz lint format bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is required (see README)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/python -m repohost.local

test: $(STAMP)
	$(BIN)/ruff check shared functions tests benchmarks
	$(BIN)/ruff format --check shared functions tests benchmarks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The deep fuzz run: 1,900 generated calls for each of the 53 methods (100,700), plus
# 38,000 generated envelopes; about 25 minutes. `make test` runs 15 per method.
fuzz: $(STAMP)
	REPOHOST_FUZZ_EXAMPLES=$${REPOHOST_FUZZ_EXAMPLES:-1900} $(BIN)/python -m pytest \
		tests/test_bad_input.py -k fuzzed -p no:cacheprovider -q

lint: $(STAMP)
	$(BIN)/ruff check --fix shared functions tests benchmarks
	$(BIN)/ruff format shared functions tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/warm_latency.py

clean:
	rm -rf $(VENV) .aws-sam data .pytest_cache
