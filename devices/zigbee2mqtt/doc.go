// Package zigbee2mqtt is the gateway driver for Zigbee sensors paired with
// zigbee2mqtt (https://www.zigbee2mqtt.io). It subscribes to the broker
// zigbee2mqtt publishes to (usually Mosquitto on the same Pi) and turns the
// state of each configured friendly name into Vaka events.
//
// Mapping (zigbee2mqtt field → event), by the device's SCAIP type:
//
//	contact: true / false     → state closed / open (true = CLOSED, as zigbee2mqtt defines it)
//	occupancy: true           → occupancy_detector: state motion, stc 0119 movement
//	occupancy: true / false   → bed, chair, mat: state occupied / empty
//	action: single, double,   → personal_trigger, fixed_trigger, fall_detector:
//	  long, hold, press, sos     state pressed, stc 0010 manual alarm (every press)
//	tamper: true              → state tamper
//	battery (%)               → battery, when it changes
//	battery_low: true         → stc 0016 battery low
//	<name>/availability       → "offline" or {"state":"offline"}: stc 0073 offline;
//	                             back "online": stc 0094 restoral
//
// zigbee2mqtt publishes a device's whole state on every report, so contact,
// occupancy, tamper and battery are emitted only when they change (the first
// report after start always counts as a change). A press is emitted every
// time. Payloads that do not decode (invalid JSON, a field of the wrong
// type, an unknown availability word, more than MaxPayload bytes) are
// counted (Stats.Malformed) and logged with the device, topic and size, never
// the content, and skipped: a bad message never stops the driver.
//
// Note zigbee2mqtt's own availability timeout for battery devices defaults
// to 25 hours; Vaka's hub supervises each device at minute level instead.
//
// Configuration (gateway YAML):
//
//	drivers:
//	  zigbee2mqtt:
//	    url: tcp://127.0.0.1:1883    # the broker zigbee2mqtt publishes to (default)
//	    base_topic: zigbee2mqtt      # zigbee2mqtt's base_topic (default)
//	    # username: vaka
//	    # password_file: /etc/vaka/z2m.secret
//	devices:
//	  - {id: dorr-entre, driver: zigbee2mqtt, type: door_sensor, unit: avd-a, room: entre, exit: true,
//	     options: {friendly_name: entre/dorr}}
//	  - {id: knapp-12, driver: zigbee2mqtt, type: personal_trigger, resident: r-7f3a,
//	     options: {friendly_name: knapp-12}}
//	  - {id: pir-korridor, driver: zigbee2mqtt, type: occupancy_detector, unit: avd-a,
//	     options: {friendly_name: korridor/pir}}
package zigbee2mqtt
