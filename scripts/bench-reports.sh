#!/usr/bin/env bash
# scripts/bench-reports.sh PART...: the side reports of `make bench`, each
# written from one measured run by cmd/vaka-benchdoc (never typed):
#   staff    docs/benchmarks-staff.md    staff stream with 1 and 200 sessions, Web Push cost (≈ 1 min)
#   pilot    docs/benchmarks-pilot.md    pilot export into a real InfluxDB 1.8.10 (≈ 3 min; make test-deps builds it)
#   gateway  docs/benchmarks-gateway.md  the gateway's footprint budget (RSS ≤ 25 MB, CPU ≤ 1 %), spool throughput (≈ 2 min)
#   tillsyn  docs/benchmarks-tillsyn.md  issue 16: alarm p99 with and without a region's look-ins, over 10 runs (≈ 2 min)
# Each report names its commands (pasteable from the repo root) and the
# machine, with the load average at the start. Exits 3 when the gateway's
# footprint budget is exceeded (or could not be measured), after writing
# the report, so `make bench` fails. Make targets: bench-staff,
# bench-pilot, bench-gateway, bench-tillsyn; scripts/bench.sh runs all four.
# Raw output stays in $BENCH_REPORTS_OUT/PART (default /tmp/vaka-bench-reports);
# BENCH_DRY_RUN=1 only writes each part's commands.txt there (for tests);
# BENCH_REPORT_ONLY=1 rewrites the reports from the output already there,
# without measuring again (after a change to a report itself).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
BASE=${BENCH_REPORTS_OUT:-${TMPDIR:-/tmp}/vaka-bench-reports}
DRY=${BENCH_DRY_RUN:-0}
ONLY=${BENCH_REPORT_ONLY:-0}
[ $# -gt 0 ] || set -- staff pilot gateway

# cmdline ARGS...: ARGS as one line that a shell runs as written from the
# repo root (quoted where needed).
cmdline() {
	local a s=()
	for a in "$@"; do
		case $a in
		*[!A-Za-z0-9_./:=@%+,-]* | '') s+=("'${a//\'/\'\\\'\'}'") ;;
		*) s+=("$a") ;;
		esac
	done
	echo "${s[*]}"
}

# gotest FILE [ENV=VALUE...] -- ARGS...: record `[ENV...] go ARGS` and run it
# (output appended to FILE); a failed benchmark is a warning here: its FAIL
# lines go into the report, which then says what is missing.
gotest() {
	local f=$1 env=()
	shift
	while [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	echo "$(cmdline "${env[@]}" go "$@")" >>"$OUT/commands.txt"
	[ "$DRY" = 1 ] && return 0
	echo "== $(cmdline "${env[@]}" go "$@")"
	env "${env[@]}" "$GO" "$@" >>"$OUT/$f" 2>&1 || echo "warning: failed: go $* (see $OUT/$f)" >&2
	grep -E '^(Benchmark|--- FAIL|FAIL)' "$OUT/$f" | tail -n 3 || true
}

# render PART: $OUT's output → $DOC; status 3 when over budget.
render() {
	local rc=0
	local end=()
	[ -f "$OUT/machine-end.json" ] && end=(-machine-end "$OUT/machine-end.json")
	"$OUT/vaka-benchdoc" "$1" -machine "$OUT/machine.json" "${end[@]}" -commands "$OUT/commands.txt" "$OUT/bench.txt" >"$DOC.tmp" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		rm -f "$DOC.tmp"
		echo "bench-reports: $1: the report could not be written (status $rc)" >&2
		exit "$rc"
	fi
	mv "$DOC.tmp" "$DOC"
	echo "== wrote $DOC (raw output in $OUT)"
	if [ "$rc" -eq 3 ]; then
		echo "bench-reports: $1: over budget (see $DOC)" >&2
		status=3
	fi
}

status=0
for part in "$@"; do
	case $part in staff | pilot | gateway | tillsyn) ;; *)
		echo "bench-reports: unknown part $part (staff, pilot, gateway, tillsyn)" >&2
		exit 1
		;;
	esac
	OUT=$BASE/$part
	DOC=${BENCH_REPORTS_DOCDIR:-docs}/benchmarks-$part.md
	if [ "$ONLY" = 1 ]; then
		"$GO" build -o "$OUT/vaka-benchdoc" ./cmd/vaka-benchdoc
		render "$part"
		continue
	fi
	rm -rf "$OUT"
	mkdir -p "$OUT"
	: >"$OUT/commands.txt"
	if [ "$DRY" != 1 ]; then
		"$GO" build -o "$OUT/vaka-benchdoc" ./cmd/vaka-benchdoc
		"$OUT/vaka-benchdoc" machine >"$OUT/machine.json" # before the benchmarks: the load they meet
	fi
	case $part in
	staff)
		# One session: the MQTT → hub → stream path alone; 200: with the fan-out.
		gotest bench.txt VAKA_BENCH_SESSIONS=1 -- test -run '^$' -bench 'StaffStream200$' -benchtime 1000x -count 3 ./service/
		gotest bench.txt VAKA_BENCH_SESSIONS=200 -- test -run '^$' -bench 'StaffStream200$' -benchtime 1000x -count 3 ./service/
		gotest bench.txt -- test -run '^$' -bench 'Encrypt|VAPID' -benchmem -count 3 ./webpush/
		;;
	pilot)
		gotest bench.txt -- test -run '^$' -bench 'ObserveEvent' -benchmem -count 3 ./pilot/influx/
		gotest bench.txt -- test -run '^$' -bench 'InfluxPointsPerSecond' -benchtime 500000x -count 3 ./pilot/influx/
		gotest bench.txt -- test -run '^$' -bench 'AlarmPathInfluxUpVsDown' -benchtime 20000x -count 3 ./pilot/influx/
		;;
	gateway)
		gotest bench.txt VAKA_BENCH_GATEWAY=${VAKA_BENCH_GATEWAY:-60s} -- test -run '^$' -bench 'IntegrationGatewayFootprint' -benchtime 1x ./cmd/vaka/
		gotest bench.txt -- test -run '^$' -bench 'SpoolPushPop|GatewayForward' -benchtime 5000x -benchmem -count 3 ./gateway/
		;;
	tillsyn)
		# One night per run, each run its own process: the verdict is over
		# the runs (internal/benchdoc/tillsyn.go says how).
		gotest bench.txt -- test -run '^$' -bench 'TillsynRegionNight$' -benchtime 1x -count "${BENCH_TILLSYN_RUNS:-10}" ./hub/
		;;
	esac
	[ "$DRY" = 1 ] && continue
	"$OUT/vaka-benchdoc" machine >"$OUT/machine-end.json" # the load they met by the end
	render "$part"
done
exit "$status"
