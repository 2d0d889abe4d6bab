# redis-enc — see README.md.
#   make run    install what is missing, build (release), start Redis with the module on :6399
#   make test   install what is missing, build, run every unit and integration test
#   make bench  the benchmark suite against plain Redis; writes bench/RESULTS.md
#   make example  the RAG example: encrypted patient notes searched with RediSearch (examples/)
#   make lint   rustfmt and clippy, as CI would want them
#   make deb    the Debian package, in target/debian/

CARGO ?= cargo

.PHONY: all deps build release run test bench example lint deb clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --workspace --release

run: release
	@bash scripts/run-dev.sh

# The integration tests load target/debug/libredis_enc.so into real redis-server processes;
# scripts/test.sh builds it first and ends with a "N passed, M failed" line.
test: deps
	@bash scripts/test.sh

# Side by side with plain Redis in one run; writes bench/RESULTS.md (several minutes).
bench: release
	@bash scripts/bench.sh

# examples/rag_patients.py against a throwaway Redis 8.2 with RediSearch and the module.
example: build
	@bash scripts/example.sh

# The Debian package: the module, the tool, the example config and the docs; no key.
deb: deps
	@bash scripts/deb.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
