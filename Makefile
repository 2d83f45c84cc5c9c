# orcheo — the two commands a fresh clone needs are `make dev` and `make test`.
GO ?= go
BIN := bin/orcheo

.PHONY: build dev test test-short bench bench-go bench-e2e bench-smoke fuzz vet deps clean

build:
	$(GO) build -o $(BIN) ./cmd/orcheo

# Run API + worker in one process on embedded defaults (SQLite + in-process Redis).
dev: build
	./$(BIN) dev

# The whole test suite: every package under the race detector, then the
# end-to-end tests in test/ (real processes, built without -race). Real-service
# tests use the local PostgreSQL and Redis when they answer
# (scripts/test-env.sh); CI sets CI=true so none may skip.
test: deps
	eval "$$(scripts/test-env.sh)" && \
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v '/test$$') && \
	$(GO) test -count=1 -timeout 12m ./test/

# Unit tests only, no real services.
test-short:
	env -u ORCHEO_TEST_DATABASE_URL -u ORCHEO_TEST_REDIS_URL $(GO) test -short ./...

# The Go micro-benchmarks, then the end-to-end bench (docs/performance.md).
bench: bench-go bench-e2e

bench-go: deps
	eval "$$(scripts/test-env.sh)" && $(GO) test -run '^$$' -bench . -benchmem ./...

# api + worker on the local PostgreSQL and Redis: N=5000 webhooks from 32
# senders; table on stdout, JSON in bin/bench-results.json. BENCH_FLAGS adds
# flags, e.g. BENCH_FLAGS='--profile prof --result-backend redis,none'.
bench-e2e: build
	eval "$$(scripts/test-env.sh)" && $(GO) run ./cmd/orcheo-bench --orcheo $(BIN) $(BENCH_FLAGS)

# The bench's smoke test: a few seconds, checks the output's shape only.
bench-smoke: deps
	eval "$$(scripts/test-env.sh)" && $(GO) test -count=1 -run '^TestSmoke$$' ./cmd/orcheo-bench/

# Every fuzz target for FUZZTIME (default 20s) each; CI runs it after make test.
fuzz:
	scripts/fuzz.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

deps:
	@scripts/install-deps.sh

clean:
	rm -rf bin
