#!/bin/sh
# vaka-gateway postrm. Purge removes the event spool in
# /var/lib/vaka-gateway: take a backup first (docs/operations.md). The vaka user is
# kept, as Debian keeps system users, so files restored later keep an owner.
set -e
case "$1" in
purge)
	rm -rf /var/lib/vaka-gateway
	rmdir /etc/vaka 2>/dev/null || true
	;;
esac
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
