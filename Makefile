# samepath: see README.md. Every target works on a fresh Debian box as root.
GO      ?= go
BIN     := bin
GOFLAGS ?=
export GOFLAGS

# Debian packages the tests, the demo and the benchmarks use (prometheus:
# promtool checks the metrics and alert rules; the server scrapes the
# testbed in an e2e test; haproxy: the TCP proxy baseline of perf tcp-split).
APT_PKGS := iproute2 iputils-ping procps util-linux ethtool iperf3 freeradius-utils nftables tcpdump curl prometheus haproxy
# Commands that prove those packages are present.
APT_CMDS := ip ping pgrep taskset ethtool iperf3 radclient nft tcpdump curl promtool prometheus haproxy

CMDS := $(notdir $(wildcard cmd/*))

# VERSION is what every binary's --version and samepath_build_info say.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X samepath/internal/version.Version=$(VERSION)

.PHONY: all build deps test vet unit fuzz fuzz-pipelines perf perf-quick demo clean generate

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# deps installs what is missing: apt packages (only when a command is
# absent, so a warm box does not touch the network) and Go modules.
deps:
	@missing=""; for c in $(APT_CMDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "deps: missing$$missing: installing $(APT_PKGS)"; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: need root for apt-get" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi
	$(GO) mod download

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# test runs unit tests, the fuzz targets' seed corpora and, as root, the
# privileged namespace tests (under CI a missing privilege fails them).
test: deps vet build
	$(GO) test -count=1 -timeout 25m ./...
	@$(GO) test -count=1 -run '^TestJool' -v ./dp/xlat | grep 'jool conformance'
	$(MAKE) fuzz-pipelines FUZZTIME=20s

# fuzz runs every fuzz target for FUZZTIME (default 30 s) each; crashers
# land in the package's testdata/fuzz and become seeds of `make test`.
# .ci/fuzz runs one target (it reruns once a bare deadline failure of Go's
# fuzzing coordinator, which writes no input).
FUZZTIME ?= 30s
FUZZ_TARGETS = $(shell grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -H '^func Fuzz' | sed -E 's|^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort -u)
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=./$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		.ci/fuzz $$pkg $$name $(FUZZTIME) $(GO); \
	done

# fuzz-pipelines fuzzes the whole LB and gateway pipelines (CI runs it
# briefly on every submission, after the seed corpora).
fuzz-pipelines:
	.ci/fuzz ./dp FuzzGW $(FUZZTIME) $(GO)
	.ci/fuzz ./dp FuzzLB $(FUZZTIME) $(GO)

# perf: every scenario; tcp-split (about 10 minutes of it, most in the lossy
# NAT downloads) runs alone with `bin/perfrun -scenario tcp-split`.
perf: deps build
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/radload ./perf/radload
	$(BIN)/perfrun -scenario all -samepathd $(BIN)/samepathd -radload $(BIN)/radload -go $(GO) -md BENCHMARKS.md

# perf-quick: every perf scenario once with short windows (development;
# still rewrites BENCHMARKS.md).
perf-quick: deps build
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/radload ./perf/radload
	$(BIN)/perfrun -scenario all -quick -samepathd $(BIN)/samepathd -radload $(BIN)/radload -go $(GO) -md BENCHMARKS.md

# demo: the FIG. 2 system in namespaces with samepathd LBs, a download to a
# mobile that moves across the three ingress points, and a summary; then the
# same file over an emulated wireless link through NAT and through the TCP
# terminator (about 20 s).
demo: deps build
	$(BIN)/samepath-demo -samepathd $(BIN)/samepathd

# generate rebuilds the committed eBPF objects (needs clang and llvm).
generate:
	$(GO) generate ./...

clean:
	rm -rf $(BIN)
