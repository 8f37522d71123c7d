# Entry points for newcomers: `make demo` (set up + run the main job), `make test`, `make data`, `make results`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The data folder: $TFNETS_DATA_DIR if set, else a sibling ../shared/data if one exists (this project's shared
# datasets), else nothing, so the loaders use their own default (~/.cache/tfnets/data). Never created here.
DATA_DIR ?= $(or $(TFNETS_DATA_DIR),$(wildcard ../shared/data))
WITH_DATA := $(if $(DATA_DIR),TFNETS_DATA_DIR=$(DATA_DIR))

.PHONY: venv demo test test-fast test-cluster test-notebooks fuzz lint data results notebooks clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test]"
	touch $@

venv: $(VENV)/.installed

# The optional notebooks extra (jupytext, nbclient, ipykernel, nbformat) on top of the test install.
$(VENV)/.notebooks: $(VENV)/.installed
	$(PY) -m pip install -e ".[test,notebooks]"
	touch $@

demo: venv
	$(WITH_DATA) $(PY) -m apps.notmnist_cnn

# Two pytest workers where the machine has the cores (every test is independent; TensorFlow start-up and the
# subprocess tests leave a core idle otherwise). loadgroup: tests sharing a module-scoped fixture stay together
# (tests/conftest.py), so an app's quick run is made once. --max-worker-restart 0: a test that crashes its worker
# (an abort inside TensorFlow) ends the run with that test named; pytest-xdist 3.8 replaces a crashed loadgroup
# worker and then waits forever (pytest-xdist#1323, #1378).
XDIST := -n auto --maxprocesses 2 --dist loadgroup --max-worker-restart 0
test: venv
	$(WITH_DATA) $(PY) -m pytest -q $(XDIST) -m "not notebooks and not cluster"

# The edit-test loop: everything but the tests marked slow (multi-process, kill-and-resume, whole-app runs).
test-fast: venv
	$(WITH_DATA) $(PY) -m pytest -q $(XDIST) -m "not slow and not notebooks and not cluster"

# Every training app's command launched over a cluster (tfnets-launch --workers 2) against one plain process, with
# kills and relaunches (minutes; `make test` runs one such launch). CI runs both.
test-cluster: venv
	$(WITH_DATA) $(PY) -m pytest -q $(XDIST) -m cluster

# Every file reader fuzzed at length (tests/fuzzing.py): 1,500 random cases per reader instead of the 40 fixed
# ones of `make test`; a failure prints the case and how to reproduce it.
fuzz: venv
	$(WITH_DATA) TFNETS_FUZZ=long $(PY) -m pytest -q $(XDIST) tests/test_fuzz_*.py

# Every notebook in notebooks/ executed in a Jupyter kernel at the quick scale (tests/test_notebooks.py; minutes,
# so not part of `make test`; CI runs both). Installs the notebooks extra first.
test-notebooks: $(VENV)/.notebooks
	$(WITH_DATA) $(PY) -m pytest -q $(XDIST) -m notebooks tests/test_notebooks.py

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

data: venv
	$(WITH_DATA) $(PY) -m tfnets.data

# docs/results.md and README's results table from the latest finished runs in runs/.
results: venv
	$(PY) -m apps.results

# notebooks/*.py (reviewable text, no outputs in git) -> build/notebooks/*.ipynb (git-ignored). Each notebook moves
# to the repository root itself, so it reads and writes the command line's runs/; TFNETS_QUICK=1: the quick scale.
NOTEBOOK_DIR := build/notebooks
notebooks: $(VENV)/.notebooks
	mkdir -p $(NOTEBOOK_DIR)
	for f in notebooks/*.py; do case $$(basename $$f) in nbsupport.py) continue;; esac; \
		$(PY) -m jupytext --quiet --to notebook --output $(NOTEBOOK_DIR)/$$(basename $$f .py).ipynb $$f || exit 1; done
	@open="$(strip $(WITH_DATA) $(VENV)/bin/jupyter lab $(NOTEBOOK_DIR))"; \
	if [ -x $(VENV)/bin/jupyter-lab ]; then echo "built $(NOTEBOOK_DIR)/*.ipynb; open them: $$open"; \
	else echo "built $(NOTEBOOK_DIR)/*.ipynb; to open them: $(VENV)/bin/pip install jupyterlab, then $$open"; fi

clean:
	rm -rf $(VENV) runs build *.egg-info
