#!/usr/bin/env bash
# The edge packages as 32-bit (GOARCH=386) under qemu-i386: periph's CI does
# the same, and it catches unaligned 64-bit atomics that would crash a
# 32-bit ARM gateway. qemu's user-mode emulation itself sometimes crashes the
# Go runtime (seen here: "fatal error: morestack on g0" in sysmon), so a
# package whose run dies with one of those emulator signatures is run again,
# at most twice; an ordinary test failure fails at once.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export GOARCH=386 CGO_ENABLED=0 GODEBUG=asyncpreemptoff=1
status=0
for pkg in $("$GO" list ./event/... ./gateway/... ./devices/...); do
	for try in 1 2 3; do
		out=$("$GO" test -count=1 -exec qemu-i386 "$pkg" 2>&1)
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "$out" | tail -1
			break
		fi
		if echo "$out" | grep -qE 'morestack on g0|panic during panic|stopm holding locks|qemu: uncaught target signal|SIGSEGV: segmentation violation PC=0x0'; then
			echo "test-386: $pkg: qemu crashed the runtime (try $try of 3)" >&2
			[ $try -lt 3 ] && continue
		fi
		echo "$out"
		status=1
		break
	done
done
exit $status
