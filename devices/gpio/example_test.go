package gpio_test

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	vgpio "github.com/vaka-care/vaka/devices/gpio"
	"github.com/vaka-care/vaka/event"
)

// A door contact on an opened pin (on a Pi: gpioreg.ByName("GPIO17") after
// host.Init()).
func ExampleNewSensor() {
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level, 1)}
	s, err := vgpio.NewSensor("dorr-entre", pin, vgpio.DefaultOpts(vgpio.Contact))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Halt()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.Run(ctx, func(ev event.Event) { fmt.Println(ev.Device, ev.State) })
	// Output: dorr-entre open
}
