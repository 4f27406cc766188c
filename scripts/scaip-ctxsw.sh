#!/bin/sh
# scaip-ctxsw.sh HUB_BIN [RATE] [OUT_PREFIX]: where the hub's context
# switches go while it receives SCAIP at RATE MESSAGEs/s (default 1000).
#
# Runs `vaka-load scaip` (open loop, 12 s, generator on CPU 1, hub on CPU
# 0), records the hub with `perf record -e context-switches,cpu-clock -g`
# for 5 s of the measured phase, and prints the switches by where the
# thread was (sysmon, an idle thread waking from epoll, preemption …).
# Needs perf and permission to trace the hub (root, or
# kernel.perf_event_paranoid <= 1). VAKA_LOAD names the vaka-load binary
# (default: built into a temporary directory).
set -eu
bin=${1:?usage: scaip-ctxsw.sh HUB_BIN [RATE] [OUT_PREFIX]}
rate=${2:-1000}
out=${3:-/tmp/scaip-ctxsw-$$}
if [ -z "${VAKA_LOAD:-}" ]; then
	VAKA_LOAD=$(mktemp -d)/vaka-load
	go build -o "$VAKA_LOAD" ./cmd/vaka-load
fi
"$VAKA_LOAD" scaip -hub-bin "$bin" -pin-gen 1 -pin-sut 0 -mode rate -rate "$rate" -duration 12s \
	-out "$out.json" >"$out.log" 2>&1 &
load=$!
hub=
i=0
while [ -z "$hub" ] && [ $i -lt 50 ]; do
	hub=$(pgrep -P $load | head -1 || true)
	i=$((i + 1))
	sleep 0.1
done
if [ -z "$hub" ]; then
	echo "scaip-ctxsw: the hub did not start; see $out.log" >&2
	wait $load || true
	exit 1
fi
sleep 4
perf record -q -e context-switches,cpu-clock -F 4000 -g -p "$hub" -o "$out.data" -- sleep 5 >/dev/null 2>&1
wait $load || true
tail -1 "$out.log"
perf script -i "$out.data" -F event,period,ip,sym 2>/dev/null | awk '
function flush() {
	if (ev != "cs") { st = ""; return }
	if (st ~ /entersyscallWakeSysmon/) c = "waking sysmon at a syscall"
	else if (st ~ /runtime\.sysmon/ && st ~ /usleep/) c = "sysmon polling (usleep)"
	else if (st ~ /runtime\.sysmon/) c = "sysmon sleep/wake (futex, yield, retake)"
	else if (st ~ /syncLoop/) c = "journal group commit (syncLoop)"
	else if (st ~ /runtime\.netpoll/ && st ~ /findRunnable/) c = "idle thread in epoll (netpoll)"
	else if (st ~ /stopm/) c = "idle thread parked (stopm)"
	else if (st ~ /apic_timer_interrupt|irqentry_exit/) c = "preempted (timer interrupt)"
	else if (st ~ /exit_to_user_mode_loop/) c = "preempted at syscall exit"
	else if (st ~ /gcBgMarkWorker|stopTheWorld/) c = "GC"
	else c = "other"
	n[c] += per; total += per; st = ""; ev = ""
}
/^[ \t]*[0-9]+ +[a-z-]+:/ { flush(); per = $1; ev = ($2 == "context-switches:") ? "cs" : "cpu"; next }
/^$/ { flush(); next }
{ st = st " " $2 }
END {
	flush()
	for (c in n) printf "%6.1f%%  %s\n", 100 * n[c] / total, c | "sort -rn"
	close("sort -rn")
	printf "%d context switches in 5 s of perf record\n", total
}'
