# The commands a newcomer types. `make demo` and `make test` work on a fresh Debian 12 machine as root.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
# Debian packages in two sets. BUILD_PACKAGES: what configuring and building the default tree needs (the compiler,
# CMake, gRPC, protobuf, Abseil, spdlog, SQLite, libpq for the PostgreSQL store, cpp-httplib for the HTTP front end,
# Highway and SLEEF for the vector core, prometheus-cpp; GoogleTest because the default configure looks for it). The
# demo and the Docker builder need only these. TEST_PACKAGES: the rest of what `make test` runs (PyTorch and grpcio for
# the golden and end-to-end tests, PyYAML for the deploy checks, python3-h2 for the HTTP/2 flood test, openssl for the
# TLS tests, clang for the fuzzers, PostgreSQL 15 for the throwaway clusters of the store and replica tests, h2load for
# the RPC benchmark, Chromium, its driver and Selenium for the dashboard test, Google Benchmark for bench/; Node.js and
# npm for buf and uPlot, handled below).
BUILD_PACKAGES := build-essential cmake pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev \
  protobuf-compiler grpc-proto libabsl-dev libspdlog-dev prometheus-cpp-dev libsqlite3-dev libgtest-dev libgmock-dev \
  libssl-dev libcivetweb-dev libpq-dev libcpp-httplib-dev \
  libhwy-dev libsleef-dev
TEST_PACKAGES := libbenchmark-dev python3-grpcio python3-protobuf python3-torch python3-yaml python3-h2 openssl clang-14 \
  libclang-rt-14-dev postgresql-15 nghttp2-client chromium chromium-driver python3-selenium
# The binaries `make demo` runs (tools/demo.sh: the server and the toy trainer) and the CLI the README uses next;
# the image's two binaries (deploy/Dockerfile).
DEMO_TARGETS := hpsched-server toy-trainer hpsched
SERVER_TARGETS := hpsched-server hpsched
PORT ?= 50051

.PHONY: all deps deps-build deps-test build build-demo build-server demo test test-asan test-tsan fuzz fuzz-long soak bench bench-smoke format \
  clean

all: build

# Each deps target installs what is missing from its set, and only that: a no-op (no apt-get, no network) when
# everything is present. Node.js and npm (for buf and uPlot) count as present when `npm` is on PATH, however they
# were installed.
# apt_install PACKAGES...: apt-get install of those not installed.
define apt_install
@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
  grep -q 'install ok installed' || echo $$p; done); \
$(if $(2),command -v npm >/dev/null || missing="$$missing nodejs npm";) \
if [ -n "$$missing" ]; then \
  echo "installing:" $$missing; \
  export DEBIAN_FRONTEND=noninteractive; \
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
fi
endef

# What building needs: enough for `make demo` and the Docker builder.
deps-build:
	$(call apt_install,$(BUILD_PACKAGES))

# Everything `make test` needs: the build set, the test set, Node.js and npm, and buf and uPlot from
# tools/package-lock.json.
deps-test:
	$(call apt_install,$(BUILD_PACKAGES) $(TEST_PACKAGES),npm)
	@if [ ! -x tools/node_modules/.bin/buf ] || [ ! -f tools/node_modules/uplot/package.json ]; then npm ci --prefix tools --no-audit --no-fund; fi

# Both sets (the name earlier versions had).
deps: deps-test

# configure: the default tree in $(BUILD_DIR), tests included, so `make demo` and `make test` share one build tree.
configure = cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps-test
	$(configure)
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only the demo's binaries, in the same tree: a later `make build` or `make test` reuses them.
build-demo: deps-build
	$(configure)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(DEMO_TARGETS)

# The server and the CLI only, from the build set: what deploy/Dockerfile's builder runs.
build-server: deps-build
	$(configure)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(SERVER_TARGETS)

# Starts the server with its embedded defaults on $(PORT), runs the toy trainer against it, stops the server.
demo: build-demo
	@bash tools/demo.sh $(BUILD_DIR) $(PORT)

# Every test, then each fuzzer for a bounded time (FUZZ_SECONDS each).
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory fuzz

FUZZ_SECONDS ?= 20
# A valid spec that gives inf or NaN at some step fails the run, like crashes, sanitizer reports and batched !=
# one-at-a-time (every valid spec gives finite values on [0, 2^53)). FUZZ_NONFINITE=report lists such findings and
# goes on, to look past one while fixing it.
FUZZ_NONFINITE ?= abort
FUZZ_BUILD_DIR ?= build-fuzz
# The libFuzzer targets (clang-14, ASan + UBSan), each run over its seed corpus for FUZZ_SECONDS.
fuzz: deps-test
	cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DHPSCHED_FUZZ=ON -DHPSCHED_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target hpsched_fuzzers
	HPSCHED_FUZZ_NONFINITE=$(FUZZ_NONFINITE) bash tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

# The same fuzzers for 10 minutes each.
fuzz-long:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=600

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer.
test-asan: deps-test
	bash tools/sanitize.sh asan

test-tsan: deps-test
	bash tools/sanitize.sh tsan

# Many more kill -9 cycles than make test runs, with each sync setting (about 10 minutes).
soak: build
	/usr/bin/python3 tests/e2e/crash_test.py $(BUILD_DIR) 60 --sync full
	/usr/bin/python3 tests/e2e/crash_test.py $(BUILD_DIR) 30 --sync normal
	/usr/bin/python3 tests/e2e/crash_test.py $(BUILD_DIR) 30 --sync off
	/usr/bin/python3 tests/e2e/flood_test.py $(BUILD_DIR) 200000

# Every section of bench/run_bench.py (SECTIONS), each within its budget, in under 15 minutes on 2 cores; writes
# bench/results/<date>-<short commit>.md. bench-smoke: the same in smoke mode (seconds), into the build tree.
bench: build
	/usr/bin/python3 bench/run_bench.py --build=$(BUILD_DIR)

bench-smoke: build
	/usr/bin/python3 bench/run_bench.py --quick --build=$(BUILD_DIR) --out-dir=$(BUILD_DIR)/bench-smoke

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)
