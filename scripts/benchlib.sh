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
