package nmea

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// Name is the driver name device descriptions use ("driver: nmea").
const Name = "nmea"

// Opts configure one receiver (a device's options).
type Opts struct {
	Port     string        // e.g. /dev/ttyACM0, /dev/serial0
	Baud     int           // default 9600
	Interval time.Duration // at most one position per interval (default 10s)
	UERE     float64       // metres; default DefaultUERE
}

// DefaultOpts is what an unset option means.
var DefaultOpts = Opts{Baud: 9600, Interval: 10 * time.Second, UERE: DefaultUERE}

// ParseOpts reads a device's options: port (required), baud, interval, uere.
func ParseOpts(d devices.Device) (Opts, error) {
	o := DefaultOpts
	var errs []error
	for k, v := range d.Options {
		switch k {
		case "port":
			o.Port = v
		case "baud":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1200 || n > 921600 {
				errs = append(errs, fmt.Errorf("options.baud %q: want a rate like 9600", v))
			}
			o.Baud = n
		case "interval":
			x, err := time.ParseDuration(v)
			if err != nil || x < 0 || x > time.Hour {
				errs = append(errs, fmt.Errorf("options.interval %q: want a duration like 10s", v))
			}
			o.Interval = x
		case "uere":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 || f > 100 {
				errs = append(errs, fmt.Errorf("options.uere %q: want metres, e.g. 5", v))
			}
			o.UERE = f
		default:
			errs = append(errs, fmt.Errorf("options.%s: unknown option for driver nmea; known: port, baud, interval, uere", k))
		}
	}
	if o.Port == "" {
		errs = append(errs, errors.New("options.port: missing; the receiver's serial device, e.g. /dev/ttyACM0"))
	}
	if t, err := d.DeviceType(); err == nil && t != event.Tracker {
		errs = append(errs, fmt.Errorf("type: a GPS receiver is a tracking_device (0051), not %s", t.Name()))
	}
	return o, errors.Join(errs...)
}

// CheckDevice validates a device's options without touching hardware.
func CheckDevice(d devices.Device) error { _, err := ParseOpts(d); return err }

// Opener opens a receiver's port; tests replace it.
type Opener func(o Opts) (io.ReadCloser, error)

// OpenSerial opens o.Port at o.Baud, 8N1, with a 1 s read timeout.
func OpenSerial(o Opts) (io.ReadCloser, error) {
	p, err := serial.Open(o.Port, &serial.Mode{BaudRate: o.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, err
	}
	if err := p.SetReadTimeout(time.Second); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Stats are the driver's counters (over all receivers). Bad counts
// corrupt sentences; Unsupported valid ones of a type not parsed.
type Stats struct{ Sentences, Bad, NoFix, Positions, Unsupported int64 }

// Driver reads NMEA 0183 receivers on serial ports.
type Driver struct {
	log   *slog.Logger
	rx    []*receiver
	open  Opener
	stat  func(string) error
	retry time.Duration

	sentences, bad, noFix, positions, unsupported atomic.Int64
}

type receiver struct {
	dev devices.Device
	o   Opts
}

var (
	_ devices.Driver        = (*Driver)(nil)
	_ devices.InputReporter = (*Driver)(nil)
)

// New builds the driver for devs (each with options.port).
func New(devs []devices.Device, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{log: log.With("driver", Name), open: OpenSerial, retry: 5 * time.Second,
		stat: func(p string) error { _, err := os.Stat(p); return err }}
	for _, x := range devs {
		o, err := ParseOpts(x)
		if err != nil {
			return nil, fmt.Errorf("nmea: device %s: %w", x.ID, err)
		}
		d.rx = append(d.rx, &receiver{dev: x, o: o})
	}
	return d, nil
}

// WithOpener replaces the serial port (tests: recorded sentences). The
// ports then need not exist. Call before Init.
func (d *Driver) WithOpener(open Opener) *Driver {
	d.open, d.stat = open, func(string) error { return nil }
	return d
}

// Name implements devices.Driver.
func (d *Driver) Name() string { return Name }

// Init implements devices.Driver. A port that does not exist (no GPS
// plugged in) means skipped, logged with the port; the gateway then reports
// the receiver's device offline. A port that exists but cannot be opened
// (permissions: add the user to group dialout) is an error naming both.
func (d *Driver) Init(context.Context) (bool, error) {
	present := 0
	var errs []error
	for _, r := range d.rx {
		err := d.stat(r.o.Port)
		if errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("nmea: serial port not present; is the GPS receiver plugged in?", "device", r.dev.ID, "port", r.o.Port)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: serial port %s: %w", r.dev.ID, r.o.Port, err))
			continue
		}
		p, err := d.open(r.o)
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: serial port %s: %w", r.dev.ID, r.o.Port, err))
			continue
		}
		p.Close()
		present++
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	return present > 0, nil
}

// Run implements devices.Driver: one reader per receiver; a receiver that
// goes away (unplugged) is reopened every few seconds.
func (d *Driver) Run(ctx context.Context, emit devices.Emit) error {
	var wg sync.WaitGroup
	for _, r := range d.rx {
		wg.Go(func() { d.read(ctx, r, emit) })
	}
	wg.Wait()
	return nil
}

// Stats returns the counters.
func (d *Driver) Stats() Stats {
	return Stats{d.sentences.Load(), d.bad.Load(), d.noFix.Load(), d.positions.Load(), d.unsupported.Load()}
}

// InputStats implements devices.InputReporter for the gateway's
// heartbeat: corrupt sentences are malformed (and raise a technical alarm
// at the hub when they rise), unsupported ones are only counted.
func (d *Driver) InputStats() devices.InputStats {
	return devices.InputStats{Malformed: d.bad.Load(), Unsupported: d.unsupported.Load()}
}

func (d *Driver) read(ctx context.Context, r *receiver, emit devices.Emit) {
	dec := &Decoder{UERE: r.o.UERE, MinInterval: r.o.Interval}
	for ctx.Err() == nil {
		p, err := d.open(r.o)
		if err != nil {
			d.log.Warn("nmea: cannot open serial port; retrying", "device", r.dev.ID, "port", r.o.Port, "err", err)
			if !sleep(ctx, d.retry) {
				return
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { p.Close() })
		err = d.lines(ctx, r, dec, p, emit)
		stop()
		p.Close()
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("nmea: serial port closed; reopening", "device", r.dev.ID, "port", r.o.Port, "err", err)
		if !sleep(ctx, d.retry) {
			return
		}
	}
}

func (d *Driver) lines(ctx context.Context, r *receiver, dec *Decoder, p io.Reader, emit devices.Emit) error {
	br := bufio.NewReaderSize(p, 1024)
	var (
		skipping bool
		last     time.Time // last log of a bad sentence
	)
	for ctx.Err() == nil {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			skipping = true // overlong line: drop it to its end
			continue
		}
		if len(line) > 0 && err == nil {
			if skipping {
				skipping = false
				d.count(dec, func() { dec.Sentences++; dec.Bad++ })
				continue
			}
			var ev *event.Event
			var derr error
			d.count(dec, func() { ev, derr = dec.Line(string(line)) })
			if derr != nil && errors.Is(derr, ErrBadSentence) && time.Since(last) > time.Minute {
				last = time.Now()
				d.log.Warn("nmea: unparsable sentence skipped (logged at most once a minute)", "device", r.dev.ID, "err", derr, "bad_total", d.bad.Load())
			}
			if ev != nil {
				ev.Device = r.dev.ID
				emit(*ev)
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				// go.bug.st/serial returns 0, nil on a read timeout, which
				// bufio turns into io.ErrNoProgress after many; a real EOF
				// means the port is gone.
				return err
			}
			if errors.Is(err, io.ErrNoProgress) {
				continue
			}
			return err
		}
	}
	return nil
}

// count runs f and moves the decoder's counter deltas to the driver's.
func (d *Driver) count(dec *Decoder, f func()) {
	s, b, n, p, u := dec.Sentences, dec.Bad, dec.NoFix, dec.Positions, dec.Unsupported
	f()
	d.unsupported.Add(dec.Unsupported - u)
	d.sentences.Add(dec.Sentences - s)
	d.bad.Add(dec.Bad - b)
	d.noFix.Add(dec.NoFix - n)
	d.positions.Add(dec.Positions - p)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
