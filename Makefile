# grpclab: everything starts from python3 (and Go for ghz). `make test` and `make bench`
# set up .venv on first use; afterwards the setup step is a no-op.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# build dependencies (setuptools) are pinned too
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup test test-fast bench lint protos lock clean

setup: $(VENV)/.installed ghz-if-go

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,uvloop]'
	touch $@

test: setup
	$(BIN)/python -m pytest

# The fast tier: pure logic and the committed result files, no process started (< 1 min; `make test` runs it too).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# The run directory is named here (as `grpclab run` names it) so the report is of exactly this run;
# `grpclab report` prints the path of the report's index.html.
bench: setup
	run=results/$$(date +%Y%m%d-%H%M%S)-quick && \
	$(BIN)/grpclab run bench/specs/quick.toml --out $$run && \
	$(BIN)/grpclab report $$run

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

# --- ghz: the Go gRPC load generator (loadgen = "ghz"), built from source into .venv/bin ---
# Optional: `setup` builds it when Go is installed and says so in one line when not.
# GOTOOLCHAIN=local: build with the installed Go, never download a toolchain (ghz v0.121.0 needs Go >= 1.23).
# -X main.version: what release builds do, so `ghz --version` names the version instead of "dev".
GHZ_VERSION ?= v0.121.0

.PHONY: ghz ghz-if-go

ghz: $(BIN)/ghz

$(BIN)/ghz:
	GOBIN=$(CURDIR)/$(BIN) GOTOOLCHAIN=local go install -ldflags="-X main.version=$(GHZ_VERSION)" \
		github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

ghz-if-go:
	@if ! command -v go >/dev/null 2>&1; then \
		echo "ghz: Go not found; install Go >= 1.23 to get ghz; the Python load generator works without it"; \
	elif [ ! -x $(BIN)/ghz ]; then $(MAKE) --no-print-directory ghz; fi

# --- the regression gate (bench/gate/regress.py) and the micro-benchmarks (bench/micro) ---
# `make regress BASE=origin/main`: this checkout's servers vs BASE's, interleaved; exit 1 on a regression.
BASE ?= origin/main

.PHONY: regress micro

regress: setup
	$(BIN)/grpclab regress --base $(BASE) --fail-on-regression

micro: setup
	$(BIN)/python -m pytest bench/micro -p no:cacheprovider --benchmark-json=results/micro-benchmarks.json

# --- studies of the lab itself (issue 19): bench/studies/ ---
# `make overhead`: the lab's servers against bare tutorial servers, every RPC kind, both models, TLS off/on
# (~30 min with the defaults; OVERHEAD_ARGS="--rounds 4 --rpc unary" for a quick look).
# `make soak`: every server model under ~1,000,000 RPCs of mixed load with deadline and cancel storms; exit 1 when
# RSS, threads or descriptors keep growing after the load settles, or health leaves SERVING (~10 min).
.PHONY: overhead soak

overhead: setup
	$(BIN)/python -m bench.studies.overhead $(OVERHEAD_ARGS)

soak: setup
	$(BIN)/python -m bench.studies.soak $(SOAK_ARGS)
