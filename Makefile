# grpclab: everything starts from python3 (and Go for ghz). `make test` and `make bench`
# set up .venv on first use; afterwards the setup step is a no-op.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# build dependencies (setuptools) are pinned too
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup test bench lint protos lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,uvloop]'
	touch $@

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/grpclab run bench/specs/quick.toml

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check servers bench tests

protos: setup
	$(BIN)/python -m protos.generate

# Re-pin every package after changing pyproject.toml's pins.
lock:
	rm -rf /tmp/grpclab-lock && $(PYTHON) -m venv /tmp/grpclab-lock
	PIP_CONSTRAINT= /tmp/grpclab-lock/bin/pip install --quiet -e '.[dev,uvloop]' setuptools
	/tmp/grpclab-lock/bin/pip freeze --all --exclude-editable | grep -v '^grpclab' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .tox
