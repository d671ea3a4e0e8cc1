#!/bin/sh
# The whole test suite, as CI runs it (README.md "Run all tests"):
# dependencies, format check, release and sanitizer builds, every test on
# both I/O backends, the fuzz smoke runs, and the kernel-TLS tests inside
# Debian 12's real kernel. Exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
T0=$(date +%s)

step() { printf '\n=== %s (%ss)\n' "$1" "$(($(date +%s) - T0))"; }

step "dependencies"
./deploy/install-deps.sh

step "format"
tests/check-format.sh
step "layers (ARCHITECTURE.md dependency rules)"
/usr/bin/python3 tests/check-layers.py

build() { # dir, cmake args...
	dir=$1
	shift
	cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
	cmake --build "$dir" -j"$JOBS"
}

step "build: release"
build build/release -DCMAKE_BUILD_TYPE=Release
step "build: sanitizers (ASan + UBSan)"
build build/sanitize -DCMAKE_BUILD_TYPE=Sanitize -DRINGMAIL_BENCH=OFF

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for b in uring epoll; do
	step "tests: release, backend=$b"
	RINGMAIL_IO_BACKEND=$b ctest --test-dir build/release \
		--output-on-failure -j"$JOBS"
	step "tests: sanitizers, backend=$b"
	RINGMAIL_IO_BACKEND=$b ctest --test-dir build/sanitize \
		--output-on-failure -j"$JOBS"
done
step "tests: release, backend=uring uring_profile=debian12"
RINGMAIL_IO_BACKEND=uring RINGMAIL_URING_PROFILE=debian12 \
	ctest --test-dir build/release --output-on-failure -j"$JOBS" -R 'test_loop|test_conn|integration_'

if ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
	step "fuzz: smoke runs (clang, libFuzzer)"
	CC=clang-14 CXX=clang++-14 build build/fuzz -DCMAKE_BUILD_TYPE=Release \
		-DRINGMAIL_FUZZ=ON -DRINGMAIL_UNIT_TESTS=OFF -DRINGMAIL_BENCH=OFF
	ctest --test-dir build/fuzz --output-on-failure -j"$JOBS"
fi

step "kernel TLS and io_uring under Debian 12's kernel (VM)"
tests/run-in-debian12.sh build/release

step "done: all tests passed in $(($(date +%s) - T0))s"
