package trackers

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OsmAndSink takes one OsmAnd report's parameters. The hub implements it:
// it decodes, maps the id to a device, runs the rules and counts. It
// returns an *Error for a malformed report and ErrUnknown for an id that
// maps to no device.
type OsmAndSink interface {
	HandleOsmAnd(v url.Values) error
}

// OsmAndJSONSink takes one JSON body of the protocol (Traccar Client's
// POST with Content-Type application/json, DecodeOsmAndJSON). The hub
// implements it; errors mean what they mean for OsmAndSink.
type OsmAndJSONSink interface {
	HandleOsmAndJSON(body []byte) error
}

// IsJSON reports whether a request carries a JSON body, by Traccar's own
// test: the Content-Type starts with application/json.
func IsJSON(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type"))), "application/json")
}

// HandlerOptions tune the OsmAnd HTTP handler.
type HandlerOptions struct {
	// FailBurst failed requests (400, 404) a remote address may make before
	// it is answered 429 for a while; FailEvery is how often one failure is
	// forgiven. Valid reports never use up the budget. Zero means 30 and 10s.
	FailBurst int
	FailEvery time.Duration
	Now       func() time.Time
}

// Handler serves the OsmAnd/Traccar protocol: GET or POST with the
// parameters in the query or a form body, or POST with a JSON body (Traccar
// Client) when the sink takes JSON. It answers 200 for an accepted
// report, 400 for a malformed one, 404 for an unknown id, 429 for an
// address that keeps failing, and 405 for other methods. Devices cannot
// log in: the id is the secret, so serve this only over HTTPS.
type Handler struct {
	sink OsmAndSink
	o    HandlerOptions

	mu      sync.Mutex
	budgets map[string]*budget
	limited atomic.Int64
}

type budget struct {
	left float64
	at   time.Time
}

// NewHandler returns the OsmAnd endpoint for sink.
func NewHandler(sink OsmAndSink, o HandlerOptions) *Handler {
	if o.FailBurst <= 0 {
		o.FailBurst = 30
	}
	if o.FailEvery <= 0 {
		o.FailEvery = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{sink: sink, o: o, budgets: map[string]*budget{}}
}

// Limited is how many requests were answered 429.
func (h *Handler) Limited() int64 { return h.limited.Load() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	ip := remoteIP(r)
	if !h.allowed(ip) {
		h.limited.Add(1)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many failed requests", http.StatusTooManyRequests)
		return
	}
	var err error
	if IsJSON(r) {
		js, ok := h.sink.(OsmAndJSONSink)
		if !ok {
			http.Error(w, "trackers: JSON bodies are not accepted here", http.StatusUnsupportedMediaType)
			return
		}
		body, rerr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
		if rerr != nil {
			h.fail(ip)
			http.Error(w, "trackers: unreadable or too large JSON body", http.StatusBadRequest)
			return
		}
		err = js.HandleOsmAndJSON(body)
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, MaxPayload)
		if perr := r.ParseForm(); perr != nil {
			h.fail(ip)
			http.Error(w, "trackers: unreadable parameters", http.StatusBadRequest)
			return
		}
		err = h.sink.HandleOsmAnd(r.Form)
	}
	var te *Error
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK\n"))
	case errors.Is(err, ErrNotStored):
		// Not the tracker's fault: no fail() count. Traccar Client and
		// OsmAnd resend a report that did not get a 200.
		w.Header().Set("Retry-After", "5")
		http.Error(w, "trackers: not stored, send again", http.StatusServiceUnavailable)
	case errors.Is(err, ErrUnknown):
		h.fail(ip)
		http.Error(w, "trackers: unknown device id", http.StatusNotFound)
	case errors.As(err, &te):
		h.fail(ip)
		http.Error(w, te.Error(), http.StatusBadRequest)
	default:
		http.Error(w, "trackers: not accepted", http.StatusInternalServerError)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) refill(b *budget, now time.Time) {
	b.left += float64(now.Sub(b.at)) / float64(h.o.FailEvery)
	if max := float64(h.o.FailBurst); b.left > max {
		b.left = max
	}
	b.at = now
}

func (h *Handler) allowed(ip string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.budgets[ip]
	if !ok {
		return true
	}
	h.refill(b, h.o.Now())
	return b.left >= 1
}

func (h *Handler) fail(ip string) {
	now := h.o.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.budgets[ip]
	if !ok {
		if len(h.budgets) >= 10000 {
			h.pruneLocked(now)
		}
		b = &budget{left: float64(h.o.FailBurst), at: now}
		h.budgets[ip] = b
	}
	h.refill(b, now)
	if b.left >= 1 {
		b.left--
	}
}

// pruneLocked forgets addresses whose budget is full again, bounding memory.
func (h *Handler) pruneLocked(now time.Time) {
	for ip, b := range h.budgets {
		h.refill(b, now)
		if b.left >= float64(h.o.FailBurst) {
			delete(h.budgets, ip)
		}
	}
	if len(h.budgets) >= 10000 {
		clear(h.budgets) // a flood from many addresses: start over rather than grow
	}
}
