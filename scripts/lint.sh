#!/usr/bin/env bash
# make lint: gofmt, go vet, staticcheck and the staff app's JavaScript.
# The pinned tools (staticcheck v0.8.2, eslint 9.39.5) live in .cache and are
# installed by scripts/test-deps.sh; this script installs them if missing so
# `make lint` also works alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sc="$root/.cache/bin/staticcheck"
eslint="$root/.cache/npm-eslint/node_modules/.bin/eslint"
if [ ! -x "$sc" ] || [ ! -x "$eslint" ]; then ./scripts/test-deps.sh; fi

out=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$out" ]; then echo "gofmt needed:"; echo "$out"; exit 1; fi
echo "lint: go mod tidy -diff"
if ! go mod tidy -diff; then echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi
echo "lint: go vet"
go vet ./...
go vet -tags nocluster ./cmd/vaka # the gateway build without hub redundancy (make build-pi)
echo "lint: staticcheck"
"$sc" ./...
js=$(git ls-files 'httpapi/ui/static/*.js' 'devhealth/static/*.js' 'pilot/web/static/*.js' 'scaipsip/testdata/*.js')
echo "lint: node --check and eslint ($(echo $js | wc -w) files)"
for f in $js; do node --check "$f"; done
"$eslint" --no-warn-ignored -c scripts/eslint.config.mjs $js
echo "lint: ok"
