# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint format bench browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@# The CPU build first, from local disk: an unpinned torch would pull gigabytes of CUDA.
	@$(PY) -m pip install --quiet torch==2.13.0
	@$(PY) -m pip install --quiet -e '.[test]' 2>&1 | grep -v -e 'is ignored' -e '^ *$$' || true
	@$(PY) -c 'import backend, fastapi, asyncpg, playwright'
	@touch $(STAMP)

run: setup
	$(PY) -m backend serve

# Debian's chromium for the end-to-end tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the end-to-end tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(VENV)/bin/ruff check backend tests scripts
	$(VENV)/bin/ruff format --check backend tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r backend -c pyproject.toml

format: setup
	$(VENV)/bin/ruff format backend tests scripts
	$(VENV)/bin/ruff check --fix backend tests scripts

test: setup browser lint
	$(PY) -m pytest --cov=backend --cov-report=term --cov-fail-under=85 -p no:cacheprovider; \
		rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: setup
	$(PY) scripts/bench.py --write docs/performance.md
	$(PY) scripts/bench_archive.py --write docs/performance.md
	$(PY) scripts/bench_knowledge.py --write docs/performance.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
