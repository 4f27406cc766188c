// Package nmea is the gateway driver for a GPS receiver speaking NMEA 0183
// on a serial port (a USB receiver on /dev/ttyACM0, a HAT on /dev/serial0),
// parsed with github.com/adrianmo/go-nmea.
//
// It uses $xxRMC (position, date, time, validity A/V) and $xxGGA (fix
// quality, satellites, HDOP) from any talker (GP, GN, GL, GA). A position
// event (dty 0051 tracking device, "pos": {lat, lon, acc}) is emitted from
// each valid RMC, at most once per interval (default 10 s, by GPS time), and
// stamped with the GPS time – which is right even when the Pi's own clock is
// not yet.
//
// Accuracy: acc = HDOP × UERE, where UERE (user equivalent range error) is
// 5 m by default (options.uere), a common 1-sigma figure for a
// single-frequency receiver under open sky. HDOP comes from a GGA of the
// same epoch (±2 s) with a fix; without one acc is 0, which Vaka's geofence
// rules read as unknown, never as perfect. Indoors and near buildings real
// errors are larger than HDOP suggests: rules must still use a hold time.
//
// Bad input never stops the driver: a broken checksum, a cut or overlong
// line, line noise or an invalid field is counted (Stats.Bad) and logged at
// most once a minute; no-fix sentences (RMC status V, GGA quality 0) are
// counted (Stats.NoFix) and send nothing. A port that does not exist (the
// receiver is not plugged in) makes Init report skipped, naming the port,
// and the gateway reports the device offline; a port that cannot be opened
// (the user vaka is not in group dialout) is an error naming device and
// port. A receiver unplugged while running is reopened every 5 s.
//
// Configuration (gateway YAML), options per device:
//
//	devices:
//	  - {id: gps-r-7f3a, driver: nmea, type: tracking_device, resident: r-7f3a,
//	     options: {port: /dev/ttyACM0, baud: "9600", interval: 10s, uere: "5"}}
package nmea
