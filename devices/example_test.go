package devices_test

import (
	"context"
	"fmt"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// A gateway registers its drivers at start-up, then starts them all; a
// driver whose hardware is absent is skipped and the others run.
func ExampleRegistry() {
	reg := devices.NewRegistry()
	_ = reg.Register(&fake{name: "gps", loaded: false})
	_ = reg.Register(&fake{name: "zigbee", loaded: true, runErr: fmt.Errorf("stick unplugged")})
	fmt.Println(reg.Register(&fake{name: "zigbee"}))

	ctx, cancel := context.WithCancel(context.Background())
	_ = reg.Start(ctx, func(event.Event) {}, nil)
	reg.Wait() // both drivers are done: one skipped, one failed
	cancel()
	for _, s := range reg.States() {
		fmt.Println(s.Name, s.State)
	}
	// Output:
	// devices: driver already registered: "zigbee"
	// gps skipped
	// zigbee failed
}
