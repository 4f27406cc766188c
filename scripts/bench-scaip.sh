#!/usr/bin/env bash
# make bench-scaip: issue 14's benchmark alone, without the rest of make
# bench: SIP MESSAGE (UDP, Digest on) → alarm on the staff stream, the hub
# as its own `vaka hub` process and the generator (vaka-load scaip) in its
# own, pinned to separate cores as in make bench: one at a time, 1, 100
# and 1,000 alarms/s, 100/s beside 1,000 malformed/s and 1,000/s with
# store.sync_each_write, in
# BENCH_SCAIP_ROUNDS rounds (default 2). About 3.5 minutes. Writes
# docs/benchmarks-scaip.md from the JSON results; raw results stay in
# $BENCH_OUT (default /tmp/vaka-bench-scaip); nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_OUT:-${TMPDIR:-/tmp}/vaka-bench-scaip}
DOC=${BENCH_SCAIP_DOC:-docs/benchmarks-scaip.md}
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
. ./scripts/benchlib.sh
side_bench_init

# The same runs, in the same order, as make bench's SCAIP section.
scaip_rounds

[ "$DRY" = 1 ] && exit 0
{
	machine_header "Benchmarks: the SCAIP receiver (issue 14)" bench-scaip scripts/bench-scaip.sh "$LOAD"
	printf '## Commands\n\n```sh\n'
	cat "$CMDS"
	printf '```\n'
	shopt -s nullglob
	"$OUT/vaka-load" scaip -report "$OUT"/scaip-*.json
} >"$DOC.tmp"
mv "$DOC.tmp" "$DOC"
echo "== wrote $DOC (raw results in $OUT)"
