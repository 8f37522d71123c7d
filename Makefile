# Two entry points for newcomers: `make demo` (set up + run the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(if $(TFNETS_DATA_DIR),$(TFNETS_DATA_DIR),../shared/data)

.PHONY: venv demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	TFNETS_DATA_DIR=$(DATA_DIR) $(PY) -m apps.notmnist_cnn

test: venv
	TFNETS_DATA_DIR=$(DATA_DIR) $(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs build *.egg-info
