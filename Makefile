# The commands a newcomer types. `make demo` and `make test` work on a fresh Debian 12 machine as root.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
APT_PACKAGES := build-essential cmake pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev \
  protobuf-compiler grpc-proto libabsl-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev libsqlite3-dev \
  python3-grpcio python3-protobuf python3-torch python3-yaml openssl clang-14 libclang-rt-14-dev
PORT ?= 50051

.PHONY: all deps build demo test test-asan test-tsan fuzz fuzz-long soak bench format clean

all: build

# Installs what is missing, and only that: a no-op (no apt-get, no network) when everything is present.
# Node.js and npm (for buf) count as present when `npm` is on PATH, however they were installed.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q 'install ok installed' || echo $$p; done); \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@if [ ! -x tools/node_modules/.bin/buf ]; then npm ci --prefix tools --no-audit --no-fund; fi

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Starts the server with its embedded defaults on $(PORT), runs the toy trainer against it, stops the server.
demo: build
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
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DHPSCHED_FUZZ=ON -DHPSCHED_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target hpsched_fuzzers
	HPSCHED_FUZZ_NONFINITE=$(FUZZ_NONFINITE) bash tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

# The same fuzzers for 10 minutes each.
fuzz-long:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=600

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer.
test-asan: deps
	bash tools/sanitize.sh asan

test-tsan: deps
	bash tools/sanitize.sh tsan

# Many more kill -9 cycles than make test runs, with each sync setting (about 10 minutes).
soak: build
	/usr/bin/python3 tests/e2e/crash_test.py $(BUILD_DIR) 60 --sync full
	/usr/bin/python3 tests/e2e/crash_test.py $(BUILD_DIR) 30 --sync normal
	/usr/bin/python3 tests/e2e/crash_test.py $(BUILD_DIR) 30 --sync off

bench: build
	@echo "benchmarks: see bench/README.md"

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)
