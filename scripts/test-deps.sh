#!/usr/bin/env bash
# Installs what Vaka's tests need on a fresh Debian machine. Idempotent:
# it installs only what is missing.
set -euo pipefail

need=()
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
# Headless Chromium for the staff app's browser tests (chromedp drives it).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# 32-bit test run of the edge packages (make test-386); not every kernel runs i386 binaries natively.
command -v qemu-i386 >/dev/null 2>&1 || need+=(qemu-user)
# Node and npm run the third-party SIP peer of the SCAIP tests (npm "sip", below).
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# promtool checks and unit-tests deploy/prometheus/ (Debian's prometheus package brings it).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# ip (netns, veth, bridge) for the redundant group's partition test (cmd/vaka, as root).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "test-deps: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package may start the system broker on 1883; tests use their own
  # ports, but stop it so nothing answers where a test expects silence.
  if command -v systemctl >/dev/null 2>&1; then $sudo systemctl stop mosquitto >/dev/null 2>&1 || true; fi
  $sudo pkill -x -f '/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf' >/dev/null 2>&1 || true
  # Likewise the system Prometheus the prometheus package may start (only promtool is needed).
  if command -v systemctl >/dev/null 2>&1; then $sudo systemctl stop prometheus >/dev/null 2>&1 || true; fi
fi
# InfluxDB 1.8.10 for the pilot exporter's tests (Debian's 1.6.7 has no
# /api/v2/write). Built once into .cache/bin (gitignored), about 90 s.
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.cache/bin/influxd" ]; then
  echo "test-deps: building influxd v1.8.10 into .cache/bin"
  (cd "$root" && GOBIN="$root/.cache/bin" go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10)
fi
# Headless Chromium for the pilot dashboard's browser test.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
fi
# A third-party SIP stack (npm "sip") plays a SCAIP alarm unit against the
# hub in service/scaip_test.go; installed into .cache (gitignored).
if [ ! -f "$root/.cache/npm-sip/node_modules/sip/sip.js" ]; then
  echo "test-deps: installing npm sip@0.0.6 into .cache/npm-sip"
  mkdir -p "$root/.cache/npm-sip"
  npm install --silent --no-audit --no-fund --prefix "$root/.cache/npm-sip" sip@0.0.6 >/dev/null
fi
# make lint: staticcheck (pinned) and eslint with its recommended rules and
# the browser globals (pinned), both into .cache (gitignored).
if ! "$root/.cache/bin/staticcheck" -version 2>/dev/null | grep -q "(0.8.2)"; then
  echo "test-deps: installing staticcheck v0.8.2 into .cache/bin"
  (cd "$root" && GOBIN="$root/.cache/bin" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)
fi
if [ ! -f "$root/.cache/npm-eslint/node_modules/eslint/package.json" ] ||
  ! grep -q '"version": "9.39.5"' "$root/.cache/npm-eslint/node_modules/eslint/package.json"; then
  echo "test-deps: installing eslint 9.39.5 into .cache/npm-eslint"
  mkdir -p "$root/.cache/npm-eslint"
  npm install --silent --no-audit --no-fund --prefix "$root/.cache/npm-eslint" \
    eslint@9.39.5 @eslint/js@9.39.5 globals@17.15.0 >/dev/null
fi
echo "test-deps: ok ($(mosquitto_pub --help 2>&1 | head -1))"
