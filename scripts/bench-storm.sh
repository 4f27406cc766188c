#!/usr/bin/env bash
# make bench-storm: issue 20's benchmarks alone, without the rest of
# make bench: the alarm storm (vaka-load storm: 250,000 supervised buttons,
# 50,000 fall silent within 60 s, then all of them, while residents press
# 5 times a second) and the all-alarm ramp (every event a call-button press
# on its own button: 1k, 2k, 5k, 10k, 20k alarms/s). Writes
# docs/benchmarks-storm.md from the JSON results; `make bench` runs the same
# and puts them in docs/benchmarks.md.
#
# Scale: STORM_ARGS is passed to vaka-load storm (default: full scale,
# about 5 minutes); a trial on a busy machine, e.g.
#   STORM_ARGS="-devices 5000 -gateways 20 -silent 1000 -beat 5s -grace 5s -stop-at 2s -spread 3s -all-at 6s" \
#   RAMP_ALL_STEPS="1000 2000" BENCH_STORM_DOC=/tmp/storm.md make bench-storm
# Raw results stay in $BENCH_OUT (default /tmp/vaka-bench-storm); nothing
# leaves loopback.
#
# The storm's report says, per run, the generator's own send lag beside the
# press figures: above 5 ms (p99) the presses measured the generator (or a
# machine that kept it waiting), and the figure is marked not valid instead
# of judged as the hub's. -press-dump FILE in STORM_ARGS writes each
# press's scheduled, written, raised and on-screen times.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_OUT:-${TMPDIR:-/tmp}/vaka-bench-storm}
DOC=${BENCH_STORM_DOC:-docs/benchmarks-storm.md}
read -r -a STORM <<<"${STORM_ARGS:-}"
. ./scripts/benchlib.sh
side_bench_init

# The ramp runs first, each step after `settle` (scripts/benchlib.sh: sync,
# then a bounded wait for an idle machine): run after the storm, its steps
# measured the storm hub's aftermath (its exit, the writeback of its
# journal, its memory given back), not the ramp.
echo "== all-alarm ramp"
ramp_all_steps

echo "== alarm storm"
settle 30
x "$OUT/vaka-load" storm "${COMMON[@]}" "${STORM[@]}" -out "$OUT/storm-1.json" 2>"$OUT/storm-1.log" || true

[ "$DRY" = 1 ] && exit 0
files=("$OUT"/ramp-all-*.json)
[ -f "$OUT/storm-1.json" ] && files=("$OUT/storm-1.json" "${files[@]}")
"$OUT/vaka-load" storm -report-doc -commands "$CMDS" "${files[@]}" >"$DOC.tmp"
mv "$DOC.tmp" "$DOC"
echo "== wrote $DOC (raw results in $OUT)"
