// Package zigbee2mqtt is the gateway driver for Zigbee sensors paired with
// zigbee2mqtt (https://www.zigbee2mqtt.io). It subscribes to the broker
// zigbee2mqtt publishes to (usually Mosquitto on the same Pi) and turns the
// state of each configured friendly name into Vaka events.
//
// Mapping (zigbee2mqtt field → event), by the device's SCAIP type:
//
//	contact: true / false       → state closed / open (true = CLOSED, as zigbee2mqtt defines it)
//	occupancy: true             → occupancy_detector: state motion, stc 0119 movement
//	presence: true / false      → occupancy_detector: occupied + 0119 / (nothing);
//	occupancy, presence         → bed, chair, mat: state occupied / empty
//	action: a press word        → personal_trigger, fixed_trigger, fall_detector:
//	                               state pressed, stc 0010 manual alarm (every press)
//	sos, emergency, panic: true → state pressed, stc 0010, on the rise, whatever the type
//	fall_down_status: fall,     → state fall, stc 0009 (the hub raises a fall alarm), on the rise
//	  maybe_fall; fall: true
//	smoke, water_leak, gas,     → state smoke / water_leak / gas / carbon_monoxide with stc 0009
//	  carbon_monoxide              on the rise, stc 0094 restoral on the fall
//	vibration: true             → state motion, stc 0119, on the rise
//	tamper: true                → state tamper
//	battery (%)                 → battery, when it changes
//	battery_low: true           → stc 0016 battery low
//	<name>/availability         → "offline" or {"state":"offline"}: stc 0073 offline;
//	                               back "online": stc 0094 restoral
//	bridge/state offline        → device "zigbee2mqtt", type communication_link, stc 0073:
//	                               the hub raises gateway_fault naming the gateway; online: 0094
//	zigbee broker unreachable   → device "zigbee2mqtt-broker", type communication_link, stc 0073
//	  for over LinkGrace (60 s)    (also when it never comes up); reachable again: 0094
//
// zigbee2mqtt must publish JSON state (its default "output: json", or
// "attribute_and_json"): with "output: attribute" alone every property has
// its own topic, which the driver does not read.
//
// Press words (ClassifyAction) are read from zigbee-herdsman-converters:
// single, double, triple, quadruple, quintuple, many, hold, long, press,
// on, off, toggle, emergency, panic, sos, brightness_move_up/_down (IKEA
// long press), their numbered forms (1_single … 4_hold, button_1_single),
// left/right/both forms and key-named words (on_press, up_hold). Words
// ending in _release or _stop are not presses. A button with other words
// gets options press_actions / ignore_actions (comma-separated).
//
// Nothing is ignored silently: a property that is neither mapped nor known
// to be informational (linkquality, voltage, temperature …), and an action
// or enum word that maps to nothing on a call button or fall detector, is
// counted (Stats.Unmapped, and per device in InputStats.Words, which the
// gateway's heartbeat carries to the hub) and logged once per device and
// word.
//
// zigbee2mqtt publishes a device's whole state on every report, so contact,
// occupancy, presence, tamper, hazards and battery are emitted only when
// they change (the first report after start always counts as a change). A
// press is emitted every time.
//
// Every report is proof of life, changed or not, including a repeated
// "online" and a report that only moves last_seen: when a report brings no
// event and the device had no event for Opts.Liveness (default 1 min), the
// driver emits a liveness event (neither state nor status). So the hub's
// supervision sees each report, at most once a minute per device.
//
// The driver also reads zigbee2mqtt's retained bridge/devices (each paired
// device's definition and exposes) and checks every configured device
// against it: a call button whose definition exposes no press-like action,
// sos, emergency or panic (an IKEA open/close remote), a door sensor
// without contact, a device zigbee2mqtt does not know or has no
// definition for. Each problem is logged once and carried in the
// heartbeat (InputStats.Problems); the hub raises a technical alarm.
// CheckBridgeDevices makes the same check on a saved list, for `vaka check
// --zigbee-devices` before the gateway runs.
//
// Payloads that do not decode (invalid JSON, a known field of the wrong
// type, an unknown availability word, more than MaxPayload bytes) are
// counted (Stats.Malformed) and logged with the device, topic and size, never
// the content, and skipped: a bad message never stops the driver.
//
// Note zigbee2mqtt's own availability timeout for battery devices defaults
// to 25 hours; Vaka's hub supervises each device itself, but a battery
// Zigbee device reports only when something happens or at its own check-in
// (often about hourly): docs/config.md says which periods each radio can
// meet.
//
// Configuration (gateway YAML):
//
//	drivers:
//	  zigbee2mqtt:
//	    url: tcp://127.0.0.1:1883    # the broker zigbee2mqtt publishes to (default)
//	    base_topic: zigbee2mqtt      # zigbee2mqtt's base_topic (default)
//	    # username: vaka
//	    # password_file: /etc/vaka/z2m.secret
//	    # liveness_interval: 1m       # at most one liveness event per device per interval
//	devices:
//	  - {id: dorr-entre, driver: zigbee2mqtt, type: door_sensor, unit: avd-a, room: entre, exit: true,
//	     options: {friendly_name: entre/dorr}}
//	  - {id: knapp-12, driver: zigbee2mqtt, type: personal_trigger, resident: r-7f3a,
//	     options: {friendly_name: knapp-12}}
//	  - {id: pir-korridor, driver: zigbee2mqtt, type: occupancy_detector, unit: avd-a,
//	     options: {friendly_name: korridor/pir}}
//	  - {id: larm-kok, driver: zigbee2mqtt, type: fixed_trigger, unit: avd-a,    # Climax keypad
//	     options: {friendly_name: kok/knappsats, ignore_actions: "disarm,arm_all_zones,arm_day_zones"}}
package zigbee2mqtt
