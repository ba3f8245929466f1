# Developer entry points. Everything runs inside a virtualenv in $(VENV),
# created by the first target that needs it and reused afterwards.
#
#   make test                     run the test suite
#   make test PYTEST_ARGS='-x -k embedded'
#   make demo | serve | torture | bench
#   make PYTHON=python3.13 venv   choose the interpreter explicitly

# First interpreter that actually runs and is >= 3.11 (a pyenv shim may exist
# for a version that is not active, so each candidate is executed, not just
# looked up).
PYTHON ?= $(shell for c in python3.12 python3.11 python3; do \
	if $$c -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then \
		echo $$c; break; \
	fi; \
done)

VENV ?= .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.install.stamp
EXTRAS ?= test,hiredis,embedded

PYTEST_ARGS ?=
TORTURE_ARGS ?=

.PHONY: venv test demo serve torture bench clean

venv: $(STAMP)

# Reinstalls only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: no Python >= 3.11 found (tried python3.12, python3.11, python3); run 'make PYTHON=/path/to/python3.11 ...'" >&2; \
		exit 1; \
	fi
	@if [ ! -x "$(VENV_PY)" ]; then \
		echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version 2>&1))"; \
		$(PYTHON) -m venv "$(VENV)"; \
	fi
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch "$(STAMP)"

test: venv
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(VENV_PY) example_project/demo.py

serve: venv
	$(VENV_PY) example_project/serve.py

torture: venv
	$(VENV_PY) -m tests.torture.run $(TORTURE_ARGS)

bench: venv
	@$(VENV_PY) -c 'import matplotlib' 2>/dev/null || $(VENV_PY) -m pip install --quiet -e '.[$(EXTRAS),bench]'
	$(VENV_PY) bench/run.py

clean:
	rm -rf "$(VENV)" build dist .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
