# Carbide — see README.md. Every target works from a clean clone.
SHELL := /bin/bash
GO ?= go
# mariadbd lives in /usr/sbin, which non-login shells may not have on PATH.
export PATH := $(PATH):/usr/sbin:/sbin
SANDBOX_DIR ?= $(CURDIR)/sandbox
FUZZTIME ?= 15s

.PHONY: all build deps test demo bench chaos proto fuzz clean vet

all: build

## build: compile every program into ./bin
build:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

## deps: install what tests, the sandbox and benchmarks need (MariaDB, sysbench, HAProxy)
deps:
	@scripts/install-deps.sh

## vet: go vet and staticcheck (a pinned version, fetched by go run like the modules)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## test: install dependencies, vet, and run every test with the race detector against real MariaDB
test: deps vet
	CARBIDE_REQUIRE_DB=1 $(GO) test -race -timeout 24m ./...

## demo: bring up the guide's sample topology (east and west, three hosts each) and open cctrl on east1
demo: deps build
	bin/sandbox up --dir $(SANDBOX_DIR)
	@scripts/demo-shell.sh $(SANDBOX_DIR) east1

## bench: run the benchmarks beside their baselines and write docs/benchmarks.md
bench: deps build
	@scripts/bench.sh docs/benchmarks.md

## chaos: long soak and fault runs (a short version of each runs in make test), then the
## guide's scenarios, the cross-site and the partition tests again on the WAN bed (root)
WAN_TESTS ?= TestScenario|TestActiveActive|TestCrossSite|TestCausal|TestConflictsConverge|TestPartition|TestOneWayCut|TestWitnessVotes|TestFailoverWhenPrimaryHostDies
chaos: deps build
	CARBIDE_REQUIRE_DB=1 CARBIDE_CHAOS=1 $(GO) test -race -count=1 -timeout 120m -v ./internal/e2e/
	@if [ "$$(id -u)" = 0 ]; then \
	  CARBIDE_REQUIRE_DB=1 CARBIDE_E2E_WAN='40ms/5ms/0.1%' $(GO) test -race -count=1 -timeout 90m -v -run '$(WAN_TESTS)' ./internal/e2e/; \
	else echo "chaos: not root, so no runs on the WAN bed (it is made of network namespaces)"; fi

## proto: regenerate the protobuf code from rpc/proto with Debian's protoc
proto:
	@scripts/genproto.sh

## fuzz: run every fuzz target for $(FUZZTIME)
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

## clean: stop the demo sandbox and remove build output
clean:
	@if [ -x bin/sandbox ] && [ -d $(SANDBOX_DIR) ]; then bin/sandbox down --dir $(SANDBOX_DIR); fi
	rm -rf bin
