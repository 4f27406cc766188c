#!/bin/sh
# vaka-gateway postinst: config readable by the gateway only, the spool
# directory owned by it, GPIO and serial access where those groups exist
# (Raspberry Pi OS has gpio; Debian has dialout). A fresh install is not
# started: /etc/vaka/gateway.yaml must name this gateway first.
set -e
if [ "$1" = configure ]; then
	chown root:vaka /etc/vaka /etc/vaka/gateway.yaml
	chmod 0750 /etc/vaka
	chmod 0640 /etc/vaka/gateway.yaml
	chown vaka:vaka /var/lib/vaka-gateway
	chmod 0750 /var/lib/vaka-gateway
	for g in gpio dialout; do
		if getent group "$g" >/dev/null; then usermod -a -G "$g" vaka; fi
	done
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		if [ -n "$2" ]; then
			systemctl try-restart vaka-gateway.service || true
		else
			echo "vaka-gateway: edit /etc/vaka/gateway.yaml, check it with 'vaka check --config /etc/vaka/gateway.yaml',"
			echo "              then: systemctl enable --now vaka-gateway"
		fi
	fi
fi
exit 0
