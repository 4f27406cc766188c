#!/bin/sh
# vaka-hub postinst. The config holds password hashes: root may write it,
# the hub may read it. The data directory belongs to the hub. A fresh
# install is not started: /etc/vaka/hub.yaml is an example to edit first.
# An upgrade restarts a running hub (its journal is replayed at start).
set -e
if [ "$1" = configure ]; then
	chown root:vaka /etc/vaka /etc/vaka/hub.yaml
	chmod 0750 /etc/vaka
	chmod 0640 /etc/vaka/hub.yaml
	chown vaka:vaka /var/lib/vaka
	chmod 0750 /var/lib/vaka
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		if [ -n "$2" ]; then
			systemctl try-restart vaka-hub.service || true
		else
			echo "vaka-hub: edit /etc/vaka/hub.yaml, check it with 'vaka check --config /etc/vaka/hub.yaml',"
			echo "          then: systemctl enable --now vaka-hub"
		fi
	fi
fi
exit 0
