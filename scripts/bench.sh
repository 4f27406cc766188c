#!/usr/bin/env bash
# make bench: Go micro-benchmarks, then the end-to-end alarm latency harness
# (cmd/vaka-load) against three peers started here on loopback, interleaved
# within every scenario (A, B, C, A, B, C):
#   A vaka           the hub with its embedded broker (rules inline)
#   B mosquitto-ext  Mosquitto + the hub as an external client (mqtt.broker: external)
#   C nodered        Mosquitto + a Node-RED flow posting alarms to an HTTP sink
# Scenarios: one at a time; a realistic night (500 sensors, rare alarms); a
# stalled alarm consumer; a stepped ramp 1k → 50k events/s that stops each
# peer at its knee (p99 > 10 ms or any loss, twice in a row). Writes docs/benchmarks.md and
# docs/benchmarks-ramp.svg from the JSON results. About 6–9 minutes. Raw
# results stay in $BENCH_OUT (default /tmp/vaka-bench); nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_OUT:-${TMPDIR:-/tmp}/vaka-bench}
ROUNDS=${BENCH_ROUNDS:-2}
PEERS=${BENCH_PEERS:-"vaka mosquitto-ext nodered"}
STEPS=${BENCH_STEPS:-"1000 2000 5000 10000 20000 30000 40000 50000"}
rm -rf "$OUT"
mkdir -p "$OUT"
CMDS="$OUT/commands.txt"
: >"$CMDS"

./scripts/bench-deps.sh

echo "== go test benchmarks"
echo "go test -run '^\$' -bench . -benchmem -count 1 ./..." >>"$CMDS"
if ! "$GO" test -run '^$' -bench . -benchmem -count 1 ./... >"$OUT/gobench.txt" 2>&1; then
	echo "warning: go test -bench failed (its FAIL lines go into the report)" >&2
fi
grep -E '^(Benchmark|FAIL|ok|pkg:)' "$OUT/gobench.txt" || true

echo "== harness"
"$GO" build -o "$OUT/vaka-load" ./cmd/vaka-load
echo "go build -o vaka-load ./cmd/vaka-load" >>"$CMDS"

# run NAME ARGS...: one harness run, its command line recorded; returns
# the harness's status (3: over the knee).
run() {
	local name=$1
	shift
	echo "vaka-load $* -out $name.json" >>"$CMDS"
	"$OUT/vaka-load" -buffered-reads "$@" -out "$OUT/$name.json"
}

for r in $(seq 1 "$ROUNDS"); do
	for p in $PEERS; do run "r$r-1-oneatatime-$p" -peer "$p" -mode oneatatime -n 500 -label "round $r"; done
	# A realistic night: 500 sensors (125 per gateway) reporting 500 events/s in all, 1 in 25 a call-button press.
	for p in $PEERS; do run "r$r-2-night-$p" -peer "$p" -mode rate -rate 500 -duration 20s -alarm-every 25 -label "round $r"; done
	# A stalled alarm consumer beside the measured one.
	for p in $PEERS; do run "r$r-3-stall-$p" -peer "$p" -mode rate -rate 500 -duration 10s -stall -label "round $r"; done
	# Issue 2's and 3's targets for Vaka: alarms at 1,000/s, and alarms under 10,000 events/s of background traffic.
	run "r$r-4-alarms1000-vaka" -peer vaka -mode rate -rate 1000 -duration 10s -label "round $r"
	run "r$r-5-background10k-vaka" -peer vaka -mode rate -rate 10000 -duration 10s -alarm-every 100 -label "round $r"
done

# The stepped ramp: 5 s per step, 1 event in 20 an alarm; a peer stops at its knee.
active=" $PEERS "
for s in $STEPS; do
	for p in $PEERS; do
		case "$active" in *" $p "*) ;; *) continue ;; esac
		rc=0
		run "ramp-$(printf %06d "$s")-$p" -peer "$p" -mode rate -rate "$s" -duration 5s -alarm-every 20 -knee 10ms -label ramp || rc=$?
		if [ "$rc" -eq 3 ]; then
			# A shared machine has bursts of other work: a step is the knee
			# only if it fails twice in a row (both runs are reported).
			rc=0
			run "ramp-$(printf %06d "$s")-$p-retry" -peer "$p" -mode rate -rate "$s" -duration 5s -alarm-every 20 -knee 10ms -label ramp || rc=$?
		fi
		if [ "$rc" -eq 3 ]; then
			echo "== $p: knee at $s events/s"
			active=${active/ $p / }
		elif [ "$rc" -ne 0 ]; then
			echo "== $p: failed at $s events/s (status $rc); its ramp stops" >&2
			active=${active/ $p / }
		fi
	done
done

"$OUT/vaka-load" -report -gobench "$OUT/gobench.txt" -commands "$CMDS" -svg docs/benchmarks-ramp.svg -svg-link benchmarks-ramp.svg \
	"$OUT"/r[0-9]*.json "$OUT"/ramp-*.json >docs/benchmarks.md.tmp
cat >>docs/benchmarks.md.tmp <<'MD'

## Other reports

- [Staff stream with 200 sessions, push cost](benchmarks-staff.md)
- [Gateway memory, CPU and spool throughput](benchmarks-gateway.md)
- [Pilot data into InfluxDB](benchmarks-pilot.md)
- [Scaling out: an external broker, a cluster, partitioning by site](scale-out.md)
- The rules engine's micro-benchmarks (`BenchmarkEval*`, `BenchmarkSupervision250k` in `rules/`) are in
  the go test table above: events/s on one core, allocations, and for 250,000 supervised call buttons the
  worst detection delay after a missed beat, the engine's heap and the CPU per supervision tick.
MD
mv docs/benchmarks.md.tmp docs/benchmarks.md
echo "== wrote docs/benchmarks.md and docs/benchmarks-ramp.svg (raw results in $OUT)"
