package broker

import (
	"context"
	"log/slog"
)

// redactHandler removes mochi's packet dumps from its log records: on a
// packet error mochi logs the whole packet ("pk"), payload and password
// bytes included, and a payload may carry personal data. Everything else
// passes through unchanged.
type redactHandler struct{ next slog.Handler }

var redacted = map[string]bool{"pk": true, "packet": true, "payload": true, "password": true}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !redacted[a.Key] {
			out.AddAttrs(a)
		}
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	keep := as[:0:0]
	for _, a := range as {
		if !redacted[a.Key] {
			keep = append(keep, a)
		}
	}
	return redactHandler{h.next.WithAttrs(keep)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.next.WithGroup(name)}
}
