# grpclab: everything starts from python3 (and Go for ghz and the Go reference server). `make test` and `make bench`
# set up .venv on first use; afterwards the setup step is a no-op.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# build dependencies (setuptools) are pinned too
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup test test-fast bench lint protos lock clean

setup: $(VENV)/.installed go-tools-if-go

# Go builds two optional tools: ghz (loadgen = "ghz") and the grpc-go reference server (impl = "go"). Without Go,
# setup says so in one line for both and succeeds; each tool's own target below says why when called alone.
.PHONY: go-tools-if-go
go-tools-if-go:
	@if ! command -v go >/dev/null 2>&1; then \
		echo "Go not found: ghz, grpclab-go-server and grpc-go-benchmark-worker not built (install Go >= $(GO_MIN_VERSION) for loadgen ghz, impl go and the interop worker); the Python servers, generator and worker work without them"; \
	else $(MAKE) --no-print-directory ghz-if-go go-server-if-go; fi

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

# --- the grpc-go reference server (impl = "go"), built from servers/go into .venv/bin ---
# Optional like ghz: `setup` builds it when Go >= 1.26 is installed (grpc-go v1.85.0 needs it) and says so
# in one line when not; `grpclab serve --impl go` then names what is missing. It is rebuilt when its sources
# change. setup also installs the pinned protoc plugins that `make go-protos` and the stub freshness test use.
GO_SERVER_SOURCES := $(shell find servers/go -name '*.go' 2>/dev/null) servers/go/go.mod servers/go/go.sum
GO_MIN_VERSION := 1.26
PROTOC_GEN_GO_VERSION ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2

.PHONY: go-server go-server-if-go go-protos go-plugins

go-server: $(BIN)/grpclab-go-server go-plugins

$(BIN)/grpclab-go-server: $(GO_SERVER_SOURCES)
	cd servers/go && GOTOOLCHAIN=local go build -trimpath -o $(CURDIR)/$@ .

go-plugins: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BIN)/protoc-gen-go:
	GOBIN=$(CURDIR)/$(BIN) GOTOOLCHAIN=local go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(BIN) GOTOOLCHAIN=local go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

go-server-if-go:
	@if ! command -v go >/dev/null 2>&1; then \
		echo "grpclab-go-server, $(GO_WORKER_NAME): Go not found; install Go >= $(GO_MIN_VERSION) for impl go and grpc-go's worker; the Python servers work without them"; \
	elif [ "$$(printf '%s\n' "go$(GO_MIN_VERSION)" "$$(go env GOVERSION)" | sort -V | head -1)" != "go$(GO_MIN_VERSION)" ]; then \
		echo "grpclab-go-server, $(GO_WORKER_NAME): $$(go env GOVERSION) is older than Go $(GO_MIN_VERSION) (grpc-go v1.85.0 needs it); impl go and grpc-go's worker are not built"; \
	else $(MAKE) --no-print-directory go-server go-worker; fi

# Regenerate servers/go/gen from protos/*.proto (protoc from grpcio-tools, the pinned plugins above).
go-protos: setup go-plugins
	$(BIN)/python -m protos.generate --go

# --- grpc-go's benchmark worker (issue 17: interop), at the grpc-go version servers/go/go.mod pins ---
# Built with the grpc-go server (same Go requirement) by `setup`; bench/remote/go_worker.py knows its name. It listens
# on every address, so the lab only ever starts it inside a network namespace of its own (bench/remote/fleet.py).
# `go install` names the binary after the package (worker): it is built into a scratch GOBIN and renamed.
GO_WORKER_NAME := grpc-go-benchmark-worker
GRPC_GO_VERSION := $(shell awk '$$1 == "google.golang.org/grpc" {print $$2}' servers/go/go.mod)

.PHONY: go-worker

go-worker: $(BIN)/$(GO_WORKER_NAME)

$(BIN)/$(GO_WORKER_NAME): servers/go/go.mod
	rm -rf $(BIN)/.go-worker-build
	GOBIN=$(CURDIR)/$(BIN)/.go-worker-build GOTOOLCHAIN=local go install google.golang.org/grpc/benchmark/worker@$(GRPC_GO_VERSION)
	mv $(BIN)/.go-worker-build/worker $@ && rmdir $(BIN)/.go-worker-build
