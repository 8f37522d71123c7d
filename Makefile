# Entry points for newcomers: `make demo` (set up + run the main job), `make test`, `make data`, `make results`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The data folder: $TFNETS_DATA_DIR if set, else a sibling ../shared/data if one exists (this project's shared
# datasets), else nothing, so the loaders use their own default (~/.cache/tfnets/data). Never created here.
DATA_DIR ?= $(or $(TFNETS_DATA_DIR),$(wildcard ../shared/data))
WITH_DATA := $(if $(DATA_DIR),TFNETS_DATA_DIR=$(DATA_DIR))

.PHONY: venv demo test test-fast fuzz lint data results clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(WITH_DATA) $(PY) -m apps.notmnist_cnn

# Two pytest workers where the machine has the cores (every test is independent; TensorFlow start-up and the
# subprocess tests leave a core idle otherwise). loadgroup: tests sharing a module-scoped fixture stay together
# (tests/conftest.py), so an app's quick run is made once. --max-worker-restart 0: a test that crashes its worker
# (an abort inside TensorFlow) ends the run with that test named; pytest-xdist 3.8 replaces a crashed loadgroup
# worker and then waits forever (pytest-xdist#1323, #1378).
XDIST := -n auto --maxprocesses 2 --dist loadgroup --max-worker-restart 0
test: venv
	$(WITH_DATA) $(PY) -m pytest -q $(XDIST)

# The edit-test loop: everything but the tests marked slow (multi-process, kill-and-resume, whole-app runs).
test-fast: venv
	$(WITH_DATA) $(PY) -m pytest -q $(XDIST) -m "not slow"

# Every file reader fuzzed at length (tests/fuzzing.py): 1,500 random cases per reader instead of the 40 fixed
# ones of `make test`; a failure prints the case and how to reproduce it.
fuzz: venv
	$(WITH_DATA) TFNETS_FUZZ=long $(PY) -m pytest -q $(XDIST) tests/test_fuzz_*.py

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

data: venv
	$(WITH_DATA) $(PY) -m tfnets.data

# docs/results.md and README's results table from the latest finished runs in runs/.
results: venv
	$(PY) -m apps.results

clean:
	rm -rf $(VENV) runs build *.egg-info
