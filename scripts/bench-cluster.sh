#!/usr/bin/env bash
# make bench-cluster: issue 19's benchmarks alone, without the rest of make
# bench: alarms at 1,000/s and 10,000 events/s (1 in 100 an alarm) with the
# hub's journal local and on a 3-node NATS JetStream cluster, side by side
# in BENCH_ROUNDS rounds (default 2), a ramp of all-alarm steps on 3
# replicas to the knee (ramp_cluster_steps), then a redundant group's
# failover over BENCH_FAILOVER_KILLS SIGKILLs of the active hub (default
# 10). About 6 minutes. Writes docs/benchmarks-cluster.md from the JSON results; raw
# results stay in $BENCH_OUT (default /tmp/vaka-bench-cluster); nothing
# leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_OUT:-${TMPDIR:-/tmp}/vaka-bench-cluster}
DOC=${BENCH_CLUSTER_DOC:-docs/benchmarks-cluster.md}
. ./scripts/benchlib.sh
side_bench_init
run() {
	local name=$1
	shift
	x "$OUT/vaka-load" "${COMMON[@]}" "$@" -out "$OUT/$name.json" || echo "== $name ended with status $?" >&2
}

for r in $(seq 1 "${BENCH_ROUNDS:-2}"); do
	echo "== round $r"
	cluster_pair "$r"
done
echo "== ramp to the knee, journal on 3 replicas"
ramp_cluster_steps
echo "== failover"
x "$OUT/vaka-load" failover "${COMMON[@]}" -kills "${BENCH_FAILOVER_KILLS:-10}" -out "$OUT/failover-1.json" 2>"$OUT/failover-1.log" || true

[ "$DRY" = 1 ] && exit 0
shopt -s nullglob # no ramp results when its first step failed
{
	# vaka-load -report writes make bench's head: named here for this run.
	"$OUT/vaka-load" -report -commands "$CMDS" "$OUT"/r[0-9]*.json "$OUT"/ramp-cluster-*.json |
		sed -e '1s/.*/# Benchmarks: a redundant group (issue 19)/' \
			-e '3s/`make bench` (`scripts\/bench.sh`)/`make bench-cluster` (`scripts\/bench-cluster.sh`; `make bench` runs the same runs in [benchmarks.md](benchmarks.md))/'
	if [ -f "$OUT/failover-1.json" ]; then
		"$OUT/vaka-load" failover -report "$OUT/failover-1.json"
	else
		printf '\n## Redundant group: failover\n\nThe run did not finish: see %s/failover-1.log.\n' "$OUT"
	fi
} >"$DOC.tmp"
mv "$DOC.tmp" "$DOC"
echo "== wrote $DOC (raw results in $OUT)"
