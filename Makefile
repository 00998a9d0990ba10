# gwstated — build, test and lab targets. `make help` lists them.
GO        ?= go
BIN       := bin
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
PKGS      := ./...

.PHONY: all help build test bench figures cross lint clean demo demo-traffic lab-bench lab-deps chaos

all: build

help:
	@echo "make build      bin/gwstated and bin/gwctl"
	@echo "make test       every test, with -race (lab tests need root: they skip otherwise)"
	@echo "make bench      Decide, Render, probe and apply benchmarks; the probing cost curve (root)"
	@echo "make figures    cluster and probe measurements as benchmarks (etcd, netns lab: root)"
	@echo "make demo       the two-firewall namespace lab demo (root)"
	@echo "make demo-traffic  real traffic through the Linux pair (nft, keepalived) while isp1 is cut (root)"
	@echo "make lab-bench  failover and real-traffic benchmark against the ifstated baseline (root)"
	@echo "make chaos      seeded random faults against the Linux traffic lab, invariants checked (root; CHAOS_SEED, CHAOS_DURATION, CHAOS_LAB=dir)"
	@echo "make cross      openbsd/amd64, openbsd/arm64, linux/amd64 into dist/"
	@echo "make lint       gofmt -l and go vet"
	@echo "make man        lint the man pages with mandoc and render them into dist/man"
	@echo "make dist       reproducible release binaries with man pages, rc.d script and SHA256SUMS"
	@echo "make deb        Debian packages for linux/amd64 and linux/arm64 into dist/"
	@echo "make clean      remove bin/ and dist/"

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gwstated ./cmd/agent
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gwctl ./cmd/ctl

test:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./linkstate/ ./pfapply/ ./agent/
	$(GO) test -run '^$$' -bench TargetObserve -benchmem ./probe/
	# the probing cost curve (1-64 links x 4 targets, 200 ms and 20 ms; netns lab, root; skips otherwise) and its floor (a minimal sender)
	$(GO) test -run '^$$' -bench '^BenchmarkScale(Floor)?$$' -benchtime 1x ./probe/

# The measurements for the report: verdict propagation and leader failover
# on a three-member etcd, detection latency and 64-link load in the netns lab.
figures: lab-deps
	$(GO) test -run '^$$' -bench VerdictToAllNodes -benchtime 200x ./cluster/
	$(GO) test -run '^$$' -bench LeaderFailover -benchtime 3x ./cluster/
	$(GO) test -run '^$$' -bench 'Detection|Scale64Links' -benchtime 20x ./probe/

cross:
	@for t in openbsd/amd64 openbsd/arm64 linux/amd64; do \
		os=$${t%/*}; arch=$${t#*/}; \
		echo "build $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/$$os-$$arch/gwstated ./cmd/agent || exit 1; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/$$os-$$arch/gwctl ./cmd/ctl || exit 1; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	GOOS=openbsd GOARCH=amd64 $(GO) vet $(PKGS)

# The lab needs root, ip and nft; both build what they run themselves.
demo: lab-deps
	$(GO) run ./lab/demo

# the Linux lab with real traffic: gwstated dataplane: nft, keepalived, a client
demo-traffic: lab-deps
	$(GO) run ./lab/demotraffic

# LAB_BENCH_FLAGS, e.g. "-cuts 5 -soak 30s" for a quick run; see go run ./lab/bench -h
lab-bench: lab-deps
	$(GO) run ./lab/bench $(LAB_BENCH_FLAGS)

# issue 15: seeded random faults against the real-traffic Linux lab
# (CHAOS_LAB=dir: the dir-backend lab), invariants checked all the time.
# CHAOS_SEED replays a schedule, CHAOS_DURATION (default 10m), CHAOS_OUT
# writes the summary table. `make test` (CI) runs 2 minutes of it with a
# random, logged seed: TestChaos in lab/chaos.
chaos: lab-deps
	$(GO) run ./lab/chaos

# the lab's system tools (ip, nft, ping, mandoc, python3), installed with apt
# when missing
lab-deps:
	@lab/install-deps.sh

clean:
	rm -rf $(BIN) dist

include deploy/Makefile.inc
