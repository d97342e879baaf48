# The two front-door commands (see README.md):
#   make quickstart   build sglr-pipe and run examples/quickstart.yaml
#   make test         gofmt check, vet, unit and integration tests (also -tags purego and openblas), then every fuzz target briefly
GO ?= go
FUZZTIME ?= 10000x

.PHONY: build quickstart test fuzz bench

build:
	$(GO) build -o bin/sglr-pipe ./cmd/sglr-pipe

quickstart: build
	./bin/sglr-pipe run examples/quickstart.yaml

# After the default build, test runs the kernels' portable Go fallbacks (-tags purego) and the
# numeric core on OpenBLAS (-tags openblas, which checks it against the default BLAS; skipped with a
# message where libopenblas is not installed, never in CI, where .ci/run installs it).
test:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -tags purego ./nn/gemm ./nn/winograd ./nn/elementwise
	@if [ -n "$$CI" ] || [ -n "$$(ls /usr/lib/*/libopenblas.so /usr/lib/libopenblas.so 2>/dev/null)" ]; then \
		echo "$(GO) test -count=1 -tags openblas ./nn/..."; $(GO) test -count=1 -tags openblas ./nn/...; \
	else echo "skipped: go test -tags openblas ./nn/... (install libopenblas-dev and gcc to run it)"; fi
	$(MAKE) fuzz

# Runs each Fuzz target for FUZZTIME executions on top of its seed corpus (which `go test` already
# runs). The budget is a count, not a duration: a duration races the fuzz engine's wall-clock deadline
# and fails spuriously with "context deadline exceeded" on a loaded machine (golang/go#51484).
# A failing run's own output is printed; a real finding names its input under testdata/fuzz/.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg >$$log 2>&1 || { cat $$log; exit 1; }; \
		done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchtime=3x ./artifacts/ ./pipeline/
