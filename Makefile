# Vaka – see README.md. Every target works on a fresh Debian machine with Go:
# `make test` installs what the tests need (Mosquitto clients via apt-get).

GO       ?= go
BIN      ?= bin
PKGS     := ./...
FUZZTIME ?= 10s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: help build demo test test-deps test-386 bench bench-ab bench-staff bench-pilot fuzz lint build-pi clean package

help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

build: ## Build bin/vaka for this machine
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vaka ./cmd/vaka

demo: ## Run hub + simulated unit and homes on embedded defaults (http://127.0.0.1:8080)
	$(GO) run ./cmd/vaka demo

test-deps: ## Install what the tests need (Debian packages)
	./scripts/test-deps.sh

# -p 1: one package at a time. The integration tests start brokers, InfluxDB
# and Chromium and assert sub-second latencies; on 2 cores, packages running
# side by side make those timings flaky, and the whole run still takes ~3 min.
test: test-deps ## Lint, run every test (race detector), then the 32-bit edge tests
	$(MAKE) lint
	$(GO) test -race -count=1 -p 1 -timeout 30m $(PKGS)
	$(MAKE) test-386

.PHONY: test-short
test-short: ## Fast loop: every unit test, no integration test (no broker, browser, InfluxDB or binary), about a minute
	$(GO) test -short -count=1 $(PKGS)

test-386: ## Edge packages as 32-bit under qemu-i386 (periph's CI does the same; catches unaligned atomics)
	./scripts/test-386.sh

bench: test-deps ## Run benchmarks and write docs/benchmarks.md and the side reports (staff, pilot, gateway; fails over the gateway budget)
	./scripts/bench.sh

.PHONY: bench-storm
bench-storm: test-deps ## Issue 20 alone: the alarm storm and the all-alarm ramp (docs/benchmarks-storm.md; STORM_ARGS scales the storm)
	./scripts/bench-storm.sh

.PHONY: bench-scaip
bench-scaip: test-deps ## Issue 14 alone: SIP MESSAGE to the staff stream, one at a time to 1,000/s, Digest on (docs/benchmarks-scaip.md)
	./scripts/bench-scaip.sh

.PHONY: bench-cluster
bench-cluster: test-deps ## Issue 19 alone: alarms with the journal local and on 3 NATS replicas, and failover over 10 kills (docs/benchmarks-cluster.md)
	./scripts/bench-cluster.sh

bench-ab: ## The hub at BASE=<rev> against this tree, interleaved (docs/benchmarks-before-after.md)
	./scripts/bench-ab.sh

bench-staff: ## Staff stream with 1 and 200 sessions, Web Push cost: writes docs/benchmarks-staff.md
	./scripts/bench-reports.sh staff

bench-pilot: test-deps ## Pilot export into a real InfluxDB 1.8.10: points/s, enqueue cost, alarm path up vs down (docs/benchmarks-pilot.md)
	./scripts/bench-reports.sh pilot

.PHONY: bench-tillsyn
bench-tillsyn: ## Issue 16: alarm p99 with and without a region's look-ins, over 10 runs (docs/benchmarks-tillsyn.md)
	./scripts/bench-reports.sh tillsyn

.PHONY: bench-gateway
bench-gateway: test-deps ## The gateway's footprint budget (RSS ≤ 25 MB, CPU ≤ 1 %; fails when over) and spool throughput (docs/benchmarks-gateway.md)
	./scripts/bench-reports.sh gateway

fuzz: ## Run every fuzz target for FUZZTIME each (default 10s)
	./scripts/fuzz.sh $(FUZZTIME)

lint: ## gofmt, go vet, staticcheck (pinned) and node --check + eslint on the staff app's JavaScript
	./scripts/lint.sh

build-pi: ## Cross-build for Raspberry Pi: linux/arm64 and linux/arm (GOARMv7)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags nocluster -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vaka-linux-arm64 ./cmd/vaka
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build -tags nocluster -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vaka-linux-armv7 ./cmd/vaka

clean: ## Remove build output
	rm -rf $(BIN) dist

package: ## Debian packages vaka, vaka-hub, vaka-gateway for amd64, arm64, armhf into dist/ (docs/operations.md)
	./scripts/package.sh
