# Two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
SEED ?= 7
SCALE ?= 1

.PHONY: demo test setup system-deps lint clean bench

$(BIN)/cibwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

setup: $(BIN)/cibwatch

system-deps:
	bash scripts/system-deps.sh

demo: setup system-deps
	rm -rf $(DEMO)
	$(BIN)/cibwatch synth --scale $(SCALE) --seed $(SEED) --out $(DEMO)/world
	$(BIN)/cibwatch detect $(DEMO)/world --workspace $(DEMO)/cibwatch.duckdb --out $(DEMO)/results
	$(BIN)/cibwatch evaluate $(DEMO)/results --labels $(DEMO)/world/labels.csv --truth $(DEMO)/world/truth.json
	$(BIN)/cibwatch report --workspace $(DEMO)/cibwatch.duckdb --out $(DEMO)/report
	@echo
	@echo "Results: $(DEMO)/results/accounts.csv and $(DEMO)/results/operations.json"
	@echo "Report:  $(DEMO)/report/report.html"

lint: setup
	$(BIN)/ruff check cibwatch tests benchmarks

test: setup system-deps lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
