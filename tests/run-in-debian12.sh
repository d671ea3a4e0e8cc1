#!/bin/sh
# Run the kernel-dependent tests inside Debian 12's real kernel (6.1, with
# kTLS) via the workplace's debian-kernel-vm tool: the loop on io_uring,
# and the kTLS tests, which must engage kernel TLS there.
# usage: tests/run-in-debian12.sh BUILD_DIR
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
VM=${RINGMAIL_DKVM:-}
if [ -z "$VM" ]; then
	for cand in ../shared/tools/debian-kernel-vm/run-in-debian-kernel.sh \
		/work/shared/tools/debian-kernel-vm/run-in-debian-kernel.sh; do
		if [ -x "$cand" ]; then
			VM=$cand
			break
		fi
	done
fi
if [ -z "$VM" ]; then
	echo "run-in-debian12: debian-kernel-vm tool not found (set RINGMAIL_DKVM); FAIL" >&2
	exit 1
fi
ABS=$(cd "$BUILD" && pwd)
rc=0
# test_loop and test_conn on both backends; kTLS must engage (the
# tests assert transmit for TLS 1.3, transmit + receive for TLS 1.2).
for t in test_loop test_conn test_ktls; do
	[ -x "$ABS/tests/$t" ] || continue
	for b in uring epoll; do
		echo "--- $t backend=$b in Debian 12 kernel"
		if ! "$VM" --timeout 300 --mem 768M --env RINGMAIL_REQUIRE_KTLS=1 \
			--env RINGMAIL_IO_BACKEND=$b --env RINGMAIL_URING_PROFILE=debian12 \
			-- "$ABS/tests/$t"; then
			echo "--- $t backend=$b FAILED in the Debian 12 kernel" >&2
			rc=1
		fi
	done
done
exit $rc
