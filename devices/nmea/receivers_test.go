package nmea

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// receiverFixtures are sentences real receivers sent, taken from gpsd's
// receiver logs (testdata/README.md names each source). Their counts are
// facts about the recordings, not about this decoder: fixes are the RMC
// sentences with status A, unsupported the valid sentences of types
// go-nmea does not parse (GST, GBS, the MTK firmware report PMTK705).
// Nothing in them is corrupt.
var receiverFixtures = []struct {
	file               string
	sentences          int
	fixes, unsupported int64
}{
	{"ublox8-nl8002u.nmea", 47, 3, 0},
	{"ublox8-gr8013w.nmea", 48, 3, 6},
	{"sirf4-bu353s4.nmea", 39, 11, 0},
	{"mtk-it520u.nmea", 28, 5, 1},
}

// readFixture returns a fixture's sentences without its "#" lines, which
// cite where the sentences come from.
func readFixture(t *testing.T, name string) []string {
	t.Helper()
	p, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(p), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// breakChecksum changes the last checksum digit to another hex digit, so
// the sentence stays well formed but its checksum no longer matches: what
// one flipped bit on the serial line does.
func breakChecksum(t *testing.T, l string) string {
	t.Helper()
	i := strings.LastIndexByte(l, '*')
	if i < 0 || i+3 > len(l) {
		t.Fatalf("no checksum in %q", l)
	}
	c := byte('0')
	if l[i+2] == '0' {
		c = '1'
	}
	return l[:i+2] + string(c) + l[i+3:]
}

// kind is what one sentence added to the decoder's counters.
type kind int

const (
	other kind = iota
	fix
	unsupported
)

// TestNMEAReceiverFixtures replays what u-blox, SiRF and MTK receivers sent
// (gpsd's logs): a healthy receiver must show 0 % corrupt, since the hub
// raises a technical alarm when corrupt sentences rise and the gateway
// logs each minute it sees one. Valid sentences the parser does not know
// are unsupported, never corrupt. Breaking the checksum of any one
// sentence must count exactly that sentence as corrupt and leave every
// other count as it was.
func TestNMEAReceiverFixtures(t *testing.T) {
	for _, tc := range receiverFixtures {
		t.Run(tc.file, func(t *testing.T) {
			lines := readFixture(t, tc.file)
			if len(lines) != tc.sentences {
				t.Fatalf("%d sentences, want %d", len(lines), tc.sentences)
			}
			d := &Decoder{} // no MinInterval: every valid RMC is a fix
			kinds := make([]kind, len(lines))
			for i, l := range lines {
				p, u := d.Positions, d.Unsupported
				ev, err := d.Line(l)
				switch {
				case errors.Is(err, ErrBadSentence):
					t.Errorf("healthy sentence counted corrupt: %q: %v", l, err)
				case errors.Is(err, ErrUnsupported):
				case err != nil:
					t.Errorf("%q: %v", l, err)
				}
				if ev != nil {
					ev.V, ev.ID, ev.Device = event.Version, "x-1", "gps-1"
					if err := ev.Validate(); err != nil {
						t.Errorf("%q gave an invalid event: %v", l, err)
					}
				}
				switch {
				case d.Positions > p:
					kinds[i] = fix
				case d.Unsupported > u:
					kinds[i] = unsupported
				}
			}
			if d.Bad != 0 {
				t.Errorf("corrupt %d of %d sentences (%.0f %%), want 0 %%", d.Bad, d.Sentences, 100*float64(d.Bad)/float64(d.Sentences))
			}
			if d.Sentences != int64(tc.sentences) || d.Positions != tc.fixes || d.Unsupported != tc.unsupported || d.NoFix != 0 {
				t.Errorf("sentences %d fixes %d unsupported %d nofix %d, want %d %d %d 0",
					d.Sentences, d.Positions, d.Unsupported, d.NoFix, tc.sentences, tc.fixes, tc.unsupported)
			}

			for i := range lines {
				d := &Decoder{}
				for j, l := range lines {
					if j != i {
						d.Line(l)
						continue
					}
					if _, err := d.Line(breakChecksum(t, l)); !errors.Is(err, ErrBadSentence) {
						t.Errorf("broken checksum in %q: %v, want ErrBadSentence", l, err)
					}
				}
				wantFix, wantUns := tc.fixes, tc.unsupported
				switch kinds[i] {
				case fix:
					wantFix--
				case unsupported:
					wantUns--
				}
				if d.Bad != 1 || d.Positions != wantFix || d.Unsupported != wantUns {
					t.Errorf("checksum of sentence %d (%.6s) broken: corrupt %d fixes %d unsupported %d, want 1 %d %d",
						i+1, lines[i], d.Bad, d.Positions, d.Unsupported, wantFix, wantUns)
				}
			}
		})
	}
}

// TestNMEADriverHealthyUbloxNoCorrupt runs the u-blox recordings through the
// driver's port reader, as the gateway does: the heartbeat's malformed
// count stays 0 and nothing is logged as unparsable, so the hub raises no
// technical alarm for a healthy receiver. One broken checksum is counted
// once and logged once.
func TestNMEADriverHealthyUbloxNoCorrupt(t *testing.T) {
	for _, tc := range receiverFixtures[:2] {
		t.Run(tc.file, func(t *testing.T) {
			lines := readFixture(t, tc.file)
			for _, broken := range []int{-1, len(lines) / 2} {
				var logs bytes.Buffer
				dev := devices.Device{ID: "gps-1", Driver: Name, Type: "tracking_device", Options: map[string]string{"port": "/dev/ttyFAKE"}}
				d, err := New([]devices.Device{dev}, slog.New(slog.NewTextHandler(&logs, nil)))
				if err != nil {
					t.Fatal(err)
				}
				var port strings.Builder
				for i, l := range lines {
					if i == broken {
						l = breakChecksum(t, l)
					}
					fmt.Fprintf(&port, "%s\r\n", l)
				}
				r := d.rx[0]
				dec := &Decoder{UERE: r.o.UERE, MinInterval: r.o.Interval}
				var n int
				err = d.lines(context.Background(), r, dec, strings.NewReader(port.String()), func(event.Event) { n++ })
				if !errors.Is(err, io.EOF) {
					t.Fatalf("lines: %v", err)
				}
				want := int64(0)
				if broken >= 0 {
					want = 1
				}
				in := d.InputStats()
				if in.Malformed != want || in.Unsupported != tc.unsupported {
					t.Errorf("broken %d: malformed %d unsupported %d, want %d %d", broken, in.Malformed, in.Unsupported, want, tc.unsupported)
				}
				if c := int64(strings.Count(logs.String(), "unparsable sentence skipped")); c != want {
					t.Errorf("broken %d: %d warnings, want %d:\n%s", broken, c, want, logs.String())
				}
				if n == 0 {
					t.Errorf("no position from a receiver with a fix")
				}
			}
		})
	}
}
