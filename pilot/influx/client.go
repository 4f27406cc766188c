package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	c      influxdb2.Client
	write  api.WriteAPIBlocking
	query  api.QueryAPI
	bucket string
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
	return &Client{c: c, write: c.WriteAPIBlocking(cfg.Org, cfg.Bucket), query: c.QueryAPI(cfg.Org), bucket: cfg.Bucket}, nil
}

// refused is a write InfluxDB answered 4xx (other than 401/403/404/413/429,
// which a fix or a wait can cure): the lines themselves are bad.
type refused struct{ err error }

func (r refused) Error() string   { return r.err.Error() }
func (r refused) Unwrap() error   { return r.err }
func (r refused) Permanent() bool { return true }

// Write implements Sink.
func (c *Client) Write(ctx context.Context, lines []string) error {
	err := c.write.WriteRecord(ctx, lines...)
	if err == nil {
		return nil
	}
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
			ToResolve: f("to_resolve_s"), Escalated: b("escalated"), Outcome: s("outcome")})
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("influx: query: %w", err)
	}
	return out, nil
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
