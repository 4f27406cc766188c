#!/bin/sh
# vaka-gateway preinst: the system user the gateway runs as must exist before dpkg
# unpacks files owned by it (/var/lib/vaka-gateway).
set -e
if ! getent group vaka >/dev/null; then
	groupadd --system vaka
fi
if ! getent passwd vaka >/dev/null; then
	useradd --system --gid vaka --home-dir /var/lib/vaka --no-create-home \
		--shell /usr/sbin/nologin --comment "Vaka alarm platform" vaka
fi
exit 0
