# make train: set up a local virtual environment (first time only) and train MNIST.
# make test:  set up the same environment with the test tools and run the tests.
# make bench: CPU-vs-GPU benchmarks (pytest-benchmark).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ARGS ?=

# Use the bundled MNIST copy beside the project when there is one; otherwise the
# loader downloads and verifies the files into ~/.cache/xpcnn/mnist.
ifneq ($(wildcard ../shared/data/mnist),)
export XPCNN_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: train test bench lint clean

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@ $(VENV)/.installed-run

train: $(VENV)/.installed-run
	$(PY) examples/mnist_train.py $(ARGS)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q $(ARGS)

bench: $(VENV)/.installed-test
	$(PY) -m pytest benchmarks/ $(ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks *.egg-info
