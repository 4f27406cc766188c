package nmea

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/devicetest"
	"github.com/vaka-care/vaka/event"
)

// Replays sentences recorded from a receiver (cold start without fix, a
// fix, a broken checksum, a cut line, line noise, a GNSS talker, the fix
// lost again).
func TestDecoderReplay(t *testing.T) {
	f, err := os.Open("testdata/recorded.nmea")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &Decoder{MinInterval: 10 * time.Second}
	var got []event.Event
	var bad, nofix int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ev, err := d.Line(sc.Text())
		switch {
		case errors.Is(err, ErrBadSentence):
			bad++
		case errors.Is(err, ErrNoFix):
			nofix++
		case err != nil:
			t.Fatalf("%q: %v", sc.Text(), err)
		case ev != nil:
			got = append(got, *ev)
		}
	}
	if bad != 3 || nofix != 4 || d.Bad != 3 || d.NoFix != 4 {
		t.Errorf("bad %d nofix %d (counters %d %d), want 3 and 4", bad, nofix, d.Bad, d.NoFix)
	}
	want := []struct {
		at       string
		lat, acc float64
	}{
		{"2026-11-29T03:00:00Z", 58.349793, 0}, // RMC before the epoch's first GGA: accuracy unknown
		{"2026-11-29T03:00:15Z", 58.349983, 7}, // HDOP 1.40 × 5 m
		{"2026-11-29T03:00:30Z", 58.350000, 10},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d positions: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Time.UTC().Format(time.RFC3339) != w.at || g.Type != event.Tracker || g.Position == nil ||
			abs(g.Position.Lat-w.lat) > 1e-5 || g.Position.Accuracy != w.acc || g.Position.Lon < 11.9 {
			t.Errorf("position %d: %+v %+v, want %+v", i, g, g.Position, w)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// The driver reads the recording as if from a serial port, including an
// overlong line, and keeps going to the end.
func TestDriverReadsPort(t *testing.T) {
	rec, _ := os.ReadFile("testdata/recorded.nmea")
	data := strings.Repeat("X", 5000) + "\r\n" + string(rec)
	dev := devices.Device{ID: "gps-r-7f3a", Driver: Name, Type: "tracking_device", Options: map[string]string{"port": "/dev/ttyFAKE", "interval": "10s"}}
	d, err := New([]devices.Device{dev}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := 0
	var mu sync.Mutex
	d.WithOpener(func(Opts) (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		opened++
		if opened == 1 { // Init's probe
			return io.NopCloser(strings.NewReader("")), nil
		}
		pr, pw := io.Pipe()
		go func() { pw.Write([]byte(data)) }() // then blocks, like an idle port
		return pr, nil
	})
	if ok, err := d.Init(t.Context()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	s := &devicetest.Sink{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx, s.Emit); close(done) }()
	for i := 0; i < 200 && d.Stats().Sentences < 17; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	st := d.Stats()
	if s.Len() != 3 || st.Positions != 3 || st.Bad != 4 || st.NoFix != 4 {
		t.Fatalf("events %d stats %+v", s.Len(), st)
	}
	if evs := s.Events(); evs[0].Device != "gps-r-7f3a" {
		t.Errorf("device %q", evs[0].Device)
	}
}

func TestMissingPortIsSkippedWithPortNamed(t *testing.T) {
	dev := devices.Device{ID: "gps-1", Driver: Name, Type: "tracking_device", Options: map[string]string{"port": "/dev/ttyNOSUCHGPS"}}
	d, err := New([]devices.Device{dev}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Init(t.Context()); ok || err != nil {
		t.Fatalf("Init = %v, %v; want skipped", ok, err)
	}
	// A path that exists but is no serial port: a clear error.
	dev.Options["port"] = "/dev/null"
	d, _ = New([]devices.Device{dev}, nil)
	if _, err := d.Init(t.Context()); err == nil || !strings.Contains(err.Error(), "gps-1") || !strings.Contains(err.Error(), "/dev/null") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseOpts(t *testing.T) {
	for opt, want := range map[string]map[string]string{
		"options.port: missing":        {},
		`options.baud "fast"`:          {"port": "/dev/ttyACM0", "baud": "fast"},
		"options.parity: unknown":      {"port": "/dev/ttyACM0", "parity": "none"},
		`options.interval "sometimes"`: {"port": "/dev/ttyACM0", "interval": "sometimes"},
	} {
		err := CheckDevice(devices.Device{ID: "g", Type: "tracking_device", Options: want})
		if err == nil || !strings.Contains(err.Error(), opt) {
			t.Errorf("%v: %v", want, err)
		}
	}
	if err := CheckDevice(devices.Device{ID: "g", Type: "door_sensor", Options: map[string]string{"port": "/dev/ttyACM0"}}); err == nil {
		t.Error("door sensor on an NMEA port accepted")
	}
}

func FuzzDecodeNMEA(f *testing.F) {
	rec, _ := os.ReadFile("testdata/recorded.nmea")
	for _, l := range strings.Split(string(rec), "\r\n") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		d := &Decoder{}
		ev, err := d.Line(line)
		if err != nil || ev == nil {
			return
		}
		ev.V, ev.ID, ev.Device = event.Version, "x-1", "gps"
		if err := ev.Validate(); err != nil {
			t.Fatalf("%q gave an invalid event %+v: %v", line, ev.Position, err)
		}
	})
}

// Valid sentences the parser does not know (u-blox PUBX, GBS) are counted
// as unsupported, never as corrupt; a broken checksum stays corrupt.
func TestUnsupportedIsNotCorrupt(t *testing.T) {
	d := &Decoder{}
	for _, line := range []string{
		"$PUBX,00,030000.00,5820.9876,N,01156.4321,E,52.3,G3,4.1,5.2,0.512,0.0,0.0,,0.92,1.10,0.80,8,0,0*60",
		"$GPGBS,030000.00,1.2,0.9,1.9,,,,*40",
	} {
		if _, err := d.Line(line); !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrBadSentence) {
			t.Errorf("%s: %v, want ErrUnsupported", line[:6], err)
		}
	}
	if _, err := d.Line("$GPGBS,030000.00,1.2,0.9,1.9,,,,*41"); !errors.Is(err, ErrBadSentence) {
		t.Errorf("broken checksum: %v", err)
	}
	if d.Unsupported != 2 || d.Bad != 1 {
		t.Errorf("unsupported %d bad %d, want 2 and 1", d.Unsupported, d.Bad)
	}
}
