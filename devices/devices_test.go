package devices_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// fake is a driver whose Init and Run results the test chooses.
type fake struct {
	name    string
	loaded  bool
	initErr error
	runErr  error // returned by Run at once when set
	panics  bool
	events  int // emitted by Run before waiting for ctx
}

func (f *fake) Name() string { return f.name }
func (f *fake) Init(context.Context) (bool, error) {
	if f.panics {
		panic("driver bug")
	}
	return f.loaded, f.initErr
}
func (f *fake) Run(ctx context.Context, emit devices.Emit) error {
	for range f.events {
		emit(event.Event{Device: f.name, Type: event.DoorSensor, State: event.StateOpen})
	}
	if f.runErr != nil {
		return f.runErr
	}
	<-ctx.Done()
	return nil
}

var _ devices.Driver = (*fake)(nil)

func TestRegisterRefusesDuplicate(t *testing.T) {
	r := devices.NewRegistry()
	if err := r.Register(&fake{name: "zigbee"}); err != nil {
		t.Fatal(err)
	}
	err := r.Register(&fake{name: "zigbee"})
	if !errors.Is(err, devices.ErrDuplicate) {
		t.Fatalf("duplicate: got %v, want ErrDuplicate", err)
	}
	if got := len(r.States()); got != 1 {
		t.Fatalf("registry holds %d drivers, want 1", got)
	}
}

func TestRegisterRefusesBadName(t *testing.T) {
	r := devices.NewRegistry()
	for _, name := range []string{"", "has space", "a/b"} {
		if err := r.Register(&fake{name: name}); err == nil {
			t.Errorf("Register(%q) = nil, want an error", name)
		}
	}
	if err := r.Register(nil); err == nil {
		t.Error("Register(nil) = nil, want an error")
	}
}

func TestRegisterAfterStartRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := devices.NewRegistry()
		ctx, cancel := context.WithCancel(t.Context())
		if err := r.Start(ctx, func(event.Event) {}, nil); err != nil {
			t.Fatal(err)
		}
		if err := r.Register(&fake{name: "late", loaded: true}); !errors.Is(err, devices.ErrStarted) {
			t.Fatalf("late Register: got %v, want ErrStarted", err)
		}
		if err := r.Start(ctx, func(event.Event) {}, nil); !errors.Is(err, devices.ErrStarted) {
			t.Fatalf("second Start: got %v, want ErrStarted", err)
		}
		cancel()
		r.Wait()
	})
}

func TestStartReportsEachDriver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := devices.NewRegistry()
		for _, d := range []devices.Driver{
			&fake{name: "gps", loaded: false}, // skipped: no GPS on this Pi
			&fake{name: "serial", initErr: errors.New("open /dev/ttyUSB0: no such file")},
			&fake{name: "bug", panics: true},
			&fake{name: "flaky", loaded: true, runErr: errors.New("radio stick unplugged")},
			quitter{}, // returns nil before shutdown: still a failure
			&fake{name: "zigbee", loaded: true, events: 3},
		} {
			if err := r.Register(d); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var got []event.Event
		var reports []devices.Status
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		err := r.Start(ctx, func(ev event.Event) {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}, func(s devices.Status) {
			mu.Lock()
			reports = append(reports, s)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // every driver has initialised and is blocked or done

		want := map[string]devices.State{
			"gps":     devices.StateSkipped,
			"serial":  devices.StateFailed,
			"bug":     devices.StateFailed,
			"flaky":   devices.StateFailed,
			"quitter": devices.StateFailed,
			"zigbee":  devices.StateRunning,
		}
		states := r.States()
		if len(states) != len(want) {
			t.Fatalf("got %d states, want %d", len(states), len(want))
		}
		for _, s := range states {
			if s.State != want[s.Name] {
				t.Errorf("driver %s: state %s, want %s (err %q)", s.Name, s.State, want[s.Name], s.Err)
			}
			if (s.State == devices.StateFailed) != (s.Err != "") {
				t.Errorf("driver %s: state %s with err %q", s.Name, s.State, s.Err)
			}
		}
		for name, frag := range map[string]string{"serial": "ttyUSB0", "bug": "panic: driver bug", "flaky": "unplugged", "quitter": "stopped before shutdown"} {
			for _, s := range states {
				if s.Name == name && !strings.Contains(s.Err, frag) {
					t.Errorf("driver %s: err %q does not say %q", name, s.Err, frag)
				}
			}
		}
		mu.Lock()
		if len(got) != 3 {
			t.Errorf("the running driver emitted %d events, want 3", len(got))
		}
		failed := 0
		for _, s := range reports {
			if s.State == devices.StateFailed {
				failed++
			}
		}
		mu.Unlock()
		if failed != 4 {
			t.Errorf("report saw %d failures, want 4", failed)
		}

		cancel()
		r.Wait()
		for _, s := range r.States() {
			if s.Name == "zigbee" && s.State != devices.StateStopped {
				t.Errorf("after shutdown zigbee is %s, want stopped", s.State)
			}
		}
	})
}

// quitter returns from Run without an error while the gateway still runs.
type quitter struct{}

func (quitter) Name() string                            { return "quitter" }
func (quitter) Init(context.Context) (bool, error)      { return true, nil }
func (quitter) Run(context.Context, devices.Emit) error { return nil }

func TestDeviceCheck(t *testing.T) {
	good := devices.Device{ID: "btn-101", Driver: "sim", Type: "personal_trigger", Resident: "r-7f3a", Unit: "unit-a", Room: "101"}
	if err := good.Check("devices", 0); err != nil {
		t.Fatalf("good device: %v", err)
	}
	if typ, _ := good.DeviceType(); typ != event.PersonalTrigger {
		t.Errorf("DeviceType = %q, want %q", typ, event.PersonalTrigger)
	}
	bad := devices.Device{ID: "btn 101", Type: "toaster", Resident: "Anna Svensson"}
	err := bad.Check("devices", 2)
	if err == nil {
		t.Fatal("bad device passed")
	}
	for _, want := range []string{"devices.2.id", "devices.2.driver: missing", "devices.2.type", "devices.2.resident"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Svensson") {
		t.Errorf("error echoes a personal name: %q", err)
	}
}
