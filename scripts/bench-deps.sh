#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make test-deps`: Node-RED
# 4.1.15 (the last line that runs on Node 20) into .cache/node-red, for the
# peer C comparison in cmd/vaka-load. Idempotent; `make test` never runs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/node-red"
want=4.1.15
if [ -f "$dir/node_modules/node-red/package.json" ] &&
   grep -q "\"version\": \"$want\"" "$dir/node_modules/node-red/package.json"; then
  echo "bench-deps: node-red $want ok"
  exit 0
fi
command -v node >/dev/null 2>&1 || { echo "bench-deps: node (Node.js ≥ 18) is required for the Node-RED peer" >&2; exit 1; }
mkdir -p "$dir"
echo "bench-deps: installing node-red@$want into $dir"
(cd "$dir" && npm install --no-audit --no-fund --omit=dev --loglevel=error "node-red@$want" >/dev/null)
echo "bench-deps: node-red $want ok"
