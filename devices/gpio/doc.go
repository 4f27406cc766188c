// Package gpio is the gateway driver for wired sensors on a Raspberry Pi's
// GPIO header, on periph.io (periph.io/x/conn/v3, host/v3):
//
//	door contact (reed switch)   door_sensor, wandering_sensor  active = closed → state closed / open
//	PIR motion                   occupancy_detector             active = motion → state motion, stc 0119
//	call button                  personal_trigger, fixed_trigger, fall_detector
//	                             active = pressed → state pressed, stc 0010; held long_press → stc 0110 assistance
//	pressure mat (bed, chair)    bed_monitor, mat_sensor, chair_monitor
//	                             active = occupied → state occupied / empty, after hold
//
// Every level change counts only once it has been stable for debounce
// (default 50 ms): contact chatter and button bounce give one event. A mat's
// state is reported only after it has stayed so for hold (default 10 s),
// so turning over in bed is not leaving it. A PIR reports motion at most
// once per hold (default 10 s). Contacts and mats report their state at
// start, so the hub knows where a door stands after a restart.
//
// Wiring: by default a sensor is active low (it connects the pin to GND)
// with the Pi's internal pull-up, which suits reed switches, buttons and
// most mats with a dry contact. Set active: high for a sensor that drives
// the pin to 3.3 V (the pull then defaults to down). Never feed 5 V into a
// GPIO pin. Pinout: https://pinout.xyz; BCM2711/BCM2712 GPIO:
// https://datasheets.raspberrypi.com/bcm2711/bcm2711-peripherals.pdf
//
// On a host without GPIO (a laptop, a VM, CI) Init reports skipped, never a
// crash; a pin name the host does not have is an error naming the device
// and the pin, and the gateway reports that driver's devices offline.
// Sensor takes an already opened pin (NewSensor), like periph's own device
// drivers, so tests use gpiotest.Pin fakes and testing/synctest for time.
//
// Configuration (gateway YAML), options per device:
//
//	devices:
//	  - {id: dorr-entre, driver: gpio, type: door_sensor, unit: avd-a, room: entre, exit: true,
//	     options: {pin: GPIO17}}
//	  - {id: knapp-12, driver: gpio, type: personal_trigger, resident: r-7f3a,
//	     options: {pin: GPIO27, long_press: 3s}}
//	  - {id: sang-12, driver: gpio, type: bed_monitor, resident: r-7f3a,
//	     options: {pin: GPIO22, hold: 30s}}
//	  - {id: pir-korridor, driver: gpio, type: occupancy_detector, unit: avd-a,
//	     options: {pin: GPIO23, active: high, hold: 30s}}
//
// Options: pin (GPIO17 or a header name such as P1_11; required), active
// (low|high), pull (up|down|none), debounce, hold, long_press (durations).
package gpio
