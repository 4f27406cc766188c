# Shared by scripts/bench.sh and scripts/bench-storm.sh (sourced, not run):
# how a benchmark script records a command so that its report's Commands
# section can be pasted into bash from the repo root as written.
# shellcheck shell=bash

# cmdline ARGS...: ARGS as one line a shell runs as written from the repo
# root: a path under $OUT as "$OUT"/…, anything else quoted where needed.
cmdline() {
	local a s=()
	for a in "$@"; do
		case $a in
		"$OUT"/*) s+=("\"\$OUT\"/${a#"$OUT"/}") ;;
		*[!A-Za-z0-9_./:=@%+,-]* | '') s+=("'${a//\'/\'\\\'\'}'") ;;
		*) s+=("$a") ;;
		esac
	done
	echo "${s[*]}"
}

# record FILE ARGS...: append ARGS to FILE as cmdline writes them.
record() {
	local f=$1
	shift
	cmdline "$@" >>"$f"
}

# settle [MAXSEC]: before a step whose latency is judged, let the previous
# run's aftermath pass: its journal's dirty pages written back (`sync`) and
# the machine idle (under 10 % of its CPUs busy with anything but steal,
# read from /proc/stat over 1 s), waiting at most MAXSEC (default 30) s. The
# make bench-storm ramp measured a 250,000-button storm's exit, writeback and
# memory release instead of itself ("other work" 34 % → 0 % over its first
# steps). It records what it waited for as a comment in $CMDS when set, so the
# report's Commands section says so; it measures nothing and changes nothing.
settle() {
	local max=${1:-30} start=$SECONDS a b busy total
	[ "${DRY:-0}" = 1 ] && return 0
	timeout "$max" sync || true # bounded too: others' writeback on a shared machine
	while [ $((SECONDS - start)) -lt "$max" ]; do
		[ -r /proc/stat ] || break
		read -r -a a < <(grep '^cpu ' /proc/stat)
		sleep 1
		read -r -a b < <(grep '^cpu ' /proc/stat)
		# fields: user nice system idle iowait irq softirq steal
		total=$(((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8]) - (a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7] + a[8])))
		busy=$(((b[1] + b[2] + b[3] + b[6] + b[7]) - (a[1] + a[2] + a[3] + a[6] + a[7])))
		if [ "$total" -le 0 ] || [ $((busy * 100)) -lt $((total * 10)) ]; then
			break
		fi
	done
	local msg="# settle: sync and ≤ ${max}s for an idle machine took $((SECONDS - start))s"
	echo "$msg" >&2
	[ -n "${CMDS:-}" ] && echo "$msg" >>"$CMDS"
	return 0
}
