# Entry points for a fresh Debian 12 machine. Each target installs what it
# needs first (scripts/install-deps is quick when everything is there).
JOBS ?= $(shell nproc)
RELEASE_DIR ?= build/release
TEST_DIR ?= build/test
TSAN_DIR ?= build/tsan
FUZZ_DIR ?= build/fuzz
DEB_DIR ?= build/deb
FUZZ_SECONDS ?= 300
# How long `make test` runs each fuzz target (CI's budget: `make fuzz` is the long run).
TEST_FUZZ_SECONDS ?= 20

.PHONY: all deps build demo deb test test-asan test-build test-tsan tsan-build fuzz fuzz-build test-fuzz clean

all: build

deps:
	./scripts/install-deps

build: deps
	cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF
	cmake --build $(RELEASE_DIR) -j$(JOBS)

# Starts the relay on the embedded demo configuration (no cloud account):
# messages are written to demo/outbox instead of going upstream.
demo: build
	./scripts/demo $(RELEASE_DIR)/relay/subrelay

# The Debian package (cmake/package.cmake): a release build with Debian's
# hardening flags in $(DEB_DIR), packaged by CPack; `lintian` checks it.
deb: deps
	./scripts/build-deb $(DEB_DIR) $(JOBS)

# Every test: unit tests per folder and the integration tests with the real
# binary, built once with AddressSanitizer and UndefinedBehaviorSanitizer and
# once with ThreadSanitizer, then every fuzz target for TEST_FUZZ_SECONDS (20 s). `ctest -L LABEL`
# in either build directory runs one group (integration, or a slow suite's
# own label; fuzz in the fuzz build).
test: test-asan test-tsan test-fuzz

test-build: deps
	cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug -DSUBRELAY_SANITIZERS=ON -DSUBRELAY_WARNINGS_AS_ERRORS=ON
	cmake --build $(TEST_DIR) -j$(JOBS)

test-asan: test-build
	cd $(TEST_DIR) && ctest -j$(JOBS) --output-on-failure --timeout 900

# The same tests built with ThreadSanitizer: a data race stops the process
# that has it (a unit test binary, or the relay, whose log the integration
# tests check). The package test (label package) runs in the first build
# only: it builds and installs its own release binary.
tsan-build: deps
	cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DSUBRELAY_TSAN=ON -DSUBRELAY_WARNINGS_AS_ERRORS=ON
	cmake --build $(TSAN_DIR) -j$(JOBS)

test-tsan: tsan-build
	cd $(TSAN_DIR) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest -j$(JOBS) -LE package --output-on-failure --timeout 900

# libFuzzer targets (tests/fuzz), built with clang, ASan and UBSan. The
# libraries are compiled with coverage instrumentation (SUBRELAY_FUZZ); the
# rest of the project is not built here.
fuzz-build: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1 -DSUBRELAY_FUZZ=ON \
		-DSUBRELAY_FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target fuzzers

# Each target for TEST_FUZZ_SECONDS on a fresh copy of its seed corpus; any crash fails.
test-fuzz: fuzz-build
	cd $(FUZZ_DIR) && ctest -L fuzz -j$(JOBS) --output-on-failure --timeout 600

# Each target for FUZZ_SECONDS (default 300), keeping the corpus it grows in
# $(FUZZ_DIR)/tests/fuzz/runs/TARGET/corpus; crashes land in .../crashes/.
fuzz: fuzz-build
	cd $(FUZZ_DIR) && FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_KEEP_CORPUS=1 ctest -L fuzz -j$(JOBS) --output-on-failure --timeout $$(( $(FUZZ_SECONDS) + 600 ))

clean:
	rm -rf build
