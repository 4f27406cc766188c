package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	apihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/vaka-care/vaka/pilot"
)

// Client is one InfluxDB connection: a Sink for the exporter's writer (the
// blocking write API: one call, one HTTP request, no hidden buffer) and a
// Reader of pilot records (Flux).
type Client struct {
	c        influxdb2.Client
	query    api.QueryAPI
	bucket   string
	writeURL string
}

// Dial builds a client from the config (token from token_file if set).
// It does not contact the server: the exporter works through an outage.
func Dial(cfg *pilot.InfluxConfig) (*Client, error) {
	token := cfg.Token
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("influx: token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(15).SetPrecision(time.Nanosecond).
		SetApplicationName("vaka").SetLogLevel(0)
	c := influxdb2.NewClientWithOptions(cfg.URL, token, opts)
	// The v2 write endpoint (1.8 has it too), as the client's write API
	// builds it; the body is posted as the spool holds it, uncompressed
	// (on a LAN or loopback gzip costs more CPU than it saves).
	u, err := url.Parse(c.HTTPService().ServerAPIURL())
	if err != nil {
		return nil, fmt.Errorf("influx: url: %w", err)
	}
	u, _ = u.Parse("write")
	q := u.Query()
	q.Set("org", cfg.Org)
	q.Set("bucket", cfg.Bucket)
	q.Set("precision", "ns")
	u.RawQuery = q.Encode()
	return &Client{c: c, query: c.QueryAPI(cfg.Org), bucket: cfg.Bucket, writeURL: u.String()}, nil
}

// refused is a write InfluxDB answered 4xx (other than 401/403/404/413/429,
// which a fix or a wait can cure): the lines themselves are bad.
type refused struct{ err error }

func (r refused) Error() string   { return r.err.Error() }
func (r refused) Unwrap() error   { return r.err }
func (r refused) Permanent() bool { return true }

// Write implements Sink: one request through the client's HTTP service
// (its auth and error decoding), the body as it is, no copy.
func (c *Client) Write(ctx context.Context, body []byte) error {
	herr := c.c.HTTPService().DoPostRequest(ctx, c.writeURL, bytes.NewReader(body), func(r *http.Request) {
		r.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}, func(r *http.Response) error {
		_, _ = io.Copy(io.Discard, r.Body)
		return r.Body.Close()
	})
	if herr == nil {
		return nil
	}
	var err error = herr
	var he *apihttp.Error
	if errors.As(err, &he) && he.StatusCode == http.StatusBadRequest {
		return refused{err}
	}
	return fmt.Errorf("influx: write: %w", err)
}

// Close releases the client's connections.
func (c *Client) Close() error { c.c.Close(); return nil }

// Records implements the dashboards' record source: every pilot record of
// trial raised in [from, to), read back with Flux.
func (c *Client) Records(ctx context.Context, trial string, from, to time.Time) ([]pilot.Record, error) {
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.trial == %q)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
		c.bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), MeasAlarm, trial)
	res, err := c.query.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	defer res.Close()
	var out []pilot.Record
	for res.Next() {
		v := res.Record().Values()
		s := func(k string) string { x, _ := v[k].(string); return x }
		f := func(k string) float64 {
			if x, ok := v[k].(float64); ok {
				return x
			}
			return pilot.Missing
		}
		b := func(k string) bool { x, _ := v[k].(bool); return x }
		out = append(out, pilot.Record{Alarm: s("alarm"), Trial: s("trial"), Arm: s("arm"), Site: s("site"),
			Unit: s("unit"), Resident: s("resident"), Device: s("device"), Source: pilot.Source(s("source")),
			Kind: s("kind"), Rule: s("rule"), RaisedAt: res.Record().Time(), Night: b("night"),
			ToPhone: f("to_phone_s"), ToAccept: f("to_accept_s"), ToPresence: f("to_presence_s"),
			ToResolve: f("to_resolve_s"), Escalated: b("escalated"), Outcome: s("outcome"), PhoneVia: s("phone_via")})
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	return out, nil
}

// Outages implements the dashboards' outage source: the device outages
// of trial detected in [from-7d, to) (an outage that began before the
// period may reach into it), the latest record of each.
func (c *Client) Outages(ctx context.Context, trial string, from, to time.Time) ([]pilot.Outage, error) {
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.trial == %q)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
		c.bucket, from.Add(-7*24*time.Hour).UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), MeasOutage, trial)
	var out []pilot.Outage
	err := c.rows(ctx, q, func(v map[string]any, at time.Time) {
		s := func(k string) string { x, _ := v[k].(string); return x }
		ns := func(k string) time.Time {
			if x, ok := v[k].(int64); ok && x != 0 {
				return time.Unix(0, x)
			}
			return time.Time{}
		}
		out = append(out, pilot.Outage{ID: s("outage"), Trial: s("trial"), Arm: s("arm"), Site: s("site"), Unit: s("unit"),
			Device: s("device"), Source: pilot.Source(s("source")), SilentFrom: ns("silent_from_ns"), DetectedAt: at,
			RestoredAt: ns("restored_ns")})
	})
	return pilot.Latest(out), err
}

// Participants returns trial's participants as last exported (a year
// before from up to to).
func (c *Client) Participants(ctx context.Context, trial string, from, to time.Time) ([]pilot.Participation, error) {
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.trial == %q)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
		c.bucket, from.AddDate(-1, 0, 0).UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), MeasParticipation, trial)
	var out []pilot.Participation
	err := c.rows(ctx, q, func(v map[string]any, at time.Time) {
		s := func(k string) string { x, _ := v[k].(string); return x }
		p := pilot.Participation{Trial: s("trial"), Arm: s("arm"), Site: s("site"), Resident: s("participant"), Started: at,
			Reason: s("reason")}
		if x, ok := v["ended_ns"].(int64); ok && x != 0 {
			p.Ended = time.Unix(0, x)
		}
		out = append(out, p)
	})
	return out, err
}

func (c *Client) rows(ctx context.Context, q string, f func(v map[string]any, at time.Time)) error {
	res, err := c.query.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("influx: query: %w", err)
	}
	defer res.Close()
	for res.Next() {
		f(res.Record().Values(), res.Record().Time())
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("influx: query: %w", err)
	}
	return nil
}

// Count returns how many points of measurement are in [from, to) (tests,
// checks after an outage).
func (c *Client) Count(ctx context.Context, measurement, field string, from, to time.Time) (int64, error) {
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q)
  |> group()
  |> count()`, c.bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), measurement, field)
	res, err := c.query.Query(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("influx: query: %w", err)
	}
	defer res.Close()
	var n int64
	for res.Next() {
		if x, ok := res.Record().Value().(int64); ok {
			n += x
		}
	}
	return n, res.Err()
}
