#!/bin/sh
# vaka-gateway prerm: stop the gateway before its files go (not on upgrade: the
# postinst of the new version restarts it, so the gap is one restart).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now vaka-gateway.service >/dev/null 2>&1 || true
fi
exit 0
