#!/usr/bin/env bash
# Builds the Debian packages vaka, vaka-hub and vaka-gateway for each
# architecture into dist/ (make package). Needs only Go (the packager is
# nfpm, a Go module at a pinned version, built once into .cache/bin).
#
#   ARCHES="amd64 arm64 armhf"  which Debian architectures (default all three)
#   PKG_VERSION=…               Debian version (default: from git, increasing
#                               with the commit time: 0.0~git<UTC time>.<sha>)
#   DIST=dist                   output directory
#   VAKA_BIN=path               package this vaka binary instead of building
#                               (only with one architecture; for tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

NFPM_VERSION=v2.48.0
nfpm="$root/.cache/bin/nfpm"
if ! [ -x "$nfpm" ] || ! go version -m "$nfpm" | grep -q "nfpm/v2[[:space:]]*$NFPM_VERSION"; then
	echo "package: building nfpm $NFPM_VERSION into .cache/bin"
	GOBIN="$root/.cache/bin" GOFLAGS= go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

ARCHES="${ARCHES:-amd64 arm64 armhf}"
DIST="${DIST:-dist}"
case "$DIST" in /*) ;; *) DIST="$root/$DIST" ;; esac
if [ -z "${PKG_VERSION:-}" ]; then
	if ts=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null) &&
		sha=$(git rev-parse --short HEAD 2>/dev/null); then
		PKG_VERSION="0.0~git${ts}.${sha}"
	else
		PKG_VERSION="0.0~dev"
	fi
fi
export PKG_VERSION
mkdir -p "$DIST"

for arch in $ARCHES; do
	case "$arch" in
	amd64) goenv=(GOARCH=amd64) tags= ;;
	arm64) goenv=(GOARCH=arm64) tags= ;;
	# Raspberry Pi OS armhf is ARMv6 with hard float (Pi 1 and Zero too).
	# Its build leaves out hub redundancy (-tags nocluster): a Pi Zero runs a
	# gateway, and NATS JetStream's code alone would cost it ~4 MB of memory.
	armhf) goenv=(GOARCH=arm GOARM=6) tags=nocluster ;;
	*) echo "package: unknown architecture $arch (amd64, arm64, armhf)" >&2; exit 2 ;;
	esac
	bindir="$root/.cache/pkg/$arch"
	mkdir -p "$bindir"
	if [ -n "${VAKA_BIN:-}" ]; then
		cp "$VAKA_BIN" "$bindir/vaka"
	else
		env "${goenv[@]}" GOOS=linux CGO_ENABLED=0 go build -tags "$tags" -trimpath \
			-ldflags "-s -w -X main.version=$PKG_VERSION" -o "$bindir/vaka" ./cmd/vaka
	fi
	export DEB_ARCH="$arch" BIN_DIR="$bindir"
	for p in vaka vaka-hub vaka-gateway; do
		# nfpm reads the sources relative to packaging/.
		(cd packaging && "$nfpm" package --config "$p.yaml" --packager deb \
			--target "$DIST/${p}_${PKG_VERSION}_${arch}.deb" >/dev/null)
		echo "package: $DIST/${p}_${PKG_VERSION}_${arch}.deb"
	done
done
