// Package httpapi is the hub's web face: the JSON API, the live alarm
// stream (server-sent events), /healthz, /metrics and the staff app.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
	"github.com/vaka-care/vaka/httpapi/ui"
)

// Alarms is what the API needs of the alarm service (the hub).
type Alarms interface {
	Alarms() []*alarm.Alarm
	Alarm(id string) (*alarm.Alarm, bool)
	Act(id string, action alarm.Action, by string, outcome alarm.Outcome, note string) (*alarm.Alarm, error)
	Subscribe() (<-chan *alarm.Alarm, func())
	Healthy() error
}

// ErrNotFound is what Alarms.Act returns for an unknown id; set by the caller
// so this package need not import the hub.
var ErrNotFound = errors.New("not found")

// Options configure the server.
type Options struct {
	Alarms   Alarms
	Auth     *Auth
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// NotFound is the error Act returns for an unknown alarm.
	NotFound error
	// SecureCookies marks the session cookie Secure (behind TLS).
	SecureCookies bool
	// StreamKeepAlive is the interval of SSE keep-alive comments.
	StreamKeepAlive time.Duration
	// ResidentName returns a resident's display name, if configured. Names
	// go only to roles in NameRoles, and only on the wire to them.
	ResidentName func(site, resident string) string
	NameRoles    []string
	// Where describes an alarm's place in words (where.go); personal is
	// whether the viewer may see personal data (a home's address).
	Where func(a *alarm.Alarm, personal bool) *Where
	// Access returns a home's door and key information; it goes only to
	// roles in AccessRoles, and only on the wire to them.
	Access      func(a *alarm.Alarm) *AccessInfo
	AccessRoles []string
	// ImgSources are extra origins the page may load images from (the
	// configured map tile server); none by default.
	ImgSources []string
	// Routes are extra pages and endpoints from other parts of the hub
	// (pilot dashboards, device health), mounted behind login.
	Routes []Route
	// PublicRoutes are mounted without login or CSRF check: the handler
	// authenticates the request itself (a service worker's delivery
	// receipt carries a per-subscription token instead of a session).
	PublicRoutes []Route
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed for the client's address (the login throttle's source).
	// Empty: the TCP peer is the client, and the header is ignored.
	TrustedProxies []netip.Prefix
	// BodyTimeout bounds reading a request's body, so a client trickling
	// bytes cannot hold a connection and a goroutine for long (default
	// DefaultBodyTimeout). The live stream has no body and is not cut.
	BodyTimeout time.Duration
	// Cluster, in a redundant group, tells the staff app which hub it is
	// on and where the others are (GET /api/v1/hub, clusterstatus.go).
	// Nil on a single hub: nothing changes.
	Cluster *ClusterInfo
}

// DefaultBodyTimeout is Options.BodyTimeout's default: a phone on a poor
// link sends a login or an outcome in well under a second.
const DefaultBodyTimeout = 15 * time.Second

// MaxRequestBody bounds every request body (handlers may set less).
const MaxRequestBody = 1 << 20

// Route is an extra endpoint. Who may use it is decided by the policy
// table (policy.go), by its method and pattern; a route missing there is
// refused.
type Route struct {
	Method  string // GET, POST …
	Pattern string // chi pattern, e.g. /api/v1/trials/{id}
	Handler http.Handler
}

// UserFromRequest returns the logged-in user of a request served behind
// the API's login (for handlers mounted through Options.Routes).
func UserFromRequest(r *http.Request) (*User, bool) {
	p := who(r)
	return p.user, p.user != nil
}

func init() {
	// Go's MIME table lacks the web app manifest; with nosniff the browser
	// would otherwise refuse it.
	_ = mime.AddExtensionType(".webmanifest", "application/manifest+json")
}

// CookieName is the session cookie.
const CookieName = "vaka_session"

type server struct {
	o      Options
	frames [viewClasses]frameCache // per viewer class (where.go)
}

// frameCache holds the encoded SSE frame of the latest alarm changes. The
// hub sends every subscriber the same *alarm.Alarm for a change, so with
// 200 staff sessions the change is encoded once, not 200 times. Holding
// the pointer keeps it from being reused while cached. It holds the last
// frameCacheSize changes: in a storm each screen takes frames in chunks
// of about 64 KiB (streamfeed.go), at its own moments, and a cache of a
// few chunks would have them encode every frame once per screen.
type frameCache struct {
	mu   sync.Mutex
	at   map[*alarm.Alarm]int // key → slot
	keys [frameCacheSize]*alarm.Alarm
	vals [frameCacheSize][]byte
	next int
}

const frameCacheSize = 2048

// frame returns the SSE frame for a, cached by the alarm snapshot's
// pointer so 200 sessions cost one encoding; v is what is encoded (a, or
// the view of it for one class of viewer).
func (c *frameCache) frame(a *alarm.Alarm, v func() any) ([]byte, error) {
	if b, ok := c.lookup(a); ok {
		return b, nil
	}
	b, err := encodeFrame(v())
	if err != nil {
		return nil, err
	}
	c.store(a, b)
	return b, nil
}

// lookup returns a's cached frame.
func (c *frameCache) lookup(a *alarm.Alarm) ([]byte, bool) {
	c.mu.Lock()
	i, ok := c.at[a]
	var b []byte
	if ok {
		b = c.vals[i]
	}
	c.mu.Unlock()
	return b, ok
}

// store caches b as a's frame.
func (c *frameCache) store(a *alarm.Alarm, b []byte) {
	c.mu.Lock()
	if _, ok := c.at[a]; !ok { // another screen may have encoded it meanwhile
		if c.at == nil {
			c.at = make(map[*alarm.Alarm]int, frameCacheSize)
		}
		if old := c.keys[c.next]; old != nil {
			delete(c.at, old)
		}
		c.keys[c.next], c.vals[c.next] = a, b
		c.at[a] = c.next
		c.next = (c.next + 1) % frameCacheSize
	}
	c.mu.Unlock()
}

// frameEncoder is a reusable buffer and JSON encoder for encodeFrame.
type frameEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var frameEncoders = sync.Pool{New: func() any {
	e := &frameEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// encodeFrame returns v's SSE alarm frame, "event: alarm\ndata: <json>\n\n",
// in one allocation of its own (json.Marshal and a copy would take two).
func encodeFrame(v any) ([]byte, error) {
	e := frameEncoders.Get().(*frameEncoder)
	e.buf.Reset()
	e.buf.WriteString("event: alarm\ndata: ")
	if err := e.enc.Encode(v); err != nil { // the JSON and a newline
		return nil, err // e is not reused
	}
	e.buf.WriteByte('\n')
	b := bytes.Clone(e.buf.Bytes())
	if e.buf.Cap() > 1<<20 {
		e.buf = bytes.Buffer{} // do not keep one huge frame's buffer
	}
	frameEncoders.Put(e)
	return b, nil
}

// New returns the HTTP handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StreamKeepAlive == 0 {
		o.StreamKeepAlive = 15 * time.Second
	}
	if o.NotFound == nil {
		o.NotFound = ErrNotFound
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	s := &server{o: o}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, securityHeaders(o.ImgSources, o.Cluster.origins()...), s.bodyLimits)
	static, _ := fs.Sub(ui.Static, "static")
	routes := []Route{
		{http.MethodGet, "/healthz", http.HandlerFunc(s.healthz)},
		{http.MethodGet, "/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, static, "index.html")
		})},
		{http.MethodGet, "/static/*", http.StripPrefix("/static/", http.FileServerFS(static))},
		// The service worker must come from the root to control the whole app.
		{http.MethodGet, "/sw.js", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Service-Worker-Allowed", "/")
			http.ServeFileFS(w, r, static, "sw.js")
		})},
		{http.MethodPost, "/api/v1/login", http.HandlerFunc(s.login)},
		{http.MethodGet, "/api/v1/me", http.HandlerFunc(s.me)},
		{http.MethodPost, "/api/v1/logout", http.HandlerFunc(s.logout)},
		{http.MethodGet, "/api/v1/alarms", http.HandlerFunc(s.listAlarms)},
		{http.MethodGet, "/api/v1/alarms/{id}", http.HandlerFunc(s.getAlarm)},
		{http.MethodPost, "/api/v1/alarms/{id}/accept", s.act(alarm.ActAccept)},
		{http.MethodPost, "/api/v1/alarms/{id}/presence", s.act(alarm.ActPresence)},
		{http.MethodPost, "/api/v1/alarms/{id}/resolve", s.act(alarm.ActResolve)},
		{http.MethodPost, "/api/v1/alarms/{id}/take_over", s.act(alarm.ActTakeOver)},
		{http.MethodPost, "/api/v1/admin/sessions/revoke", http.HandlerFunc(s.revokeSessions)},
		{http.MethodGet, "/api/v1/stream", http.HandlerFunc(s.stream)},
	}
	routes = append(routes, Route{http.MethodGet, "/api/v1/hub", http.HandlerFunc(s.hubStatus)}) // clusterstatus.go
	if o.Gatherer != nil {
		routes = append(routes, Route{http.MethodGet, "/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})})
	}
	routes = append(append(routes, o.PublicRoutes...), o.Routes...)
	// Every route, ours and the other packages', goes through the one
	// policy table: public, or login plus the roles it names.
	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		acc, ok := policy[key]
		if !ok {
			o.Logger.Error("httpapi: route not in the access policy; refused for everyone", "route", key)
			r.Method(rt.Method, rt.Pattern, http.HandlerFunc(refuse))
			continue
		}
		r.Method(rt.Method, rt.Pattern, s.guard(acc, rt.Handler))
	}
	return r
}

// bodyLimits bounds reading any request body, in size and in time: the
// read deadline applies only to requests that have a body, so the live
// stream (a GET without one) stays open as long as the phone listens.
// net/http lifts the deadline itself once the whole body is in (it then
// watches the connection for the client going away), so a handler may
// work longer than the bound after reading.
func (s *server) bodyLimits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.o.BodyTimeout))
			r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		}
		next.ServeHTTP(w, r)
	})
}

// mayName reports whether p's role may see residents' names.
func (s *server) mayName(p principal) bool {
	if p.user == nil || s.o.ResidentName == nil {
		return false
	}
	for _, r := range s.o.NameRoles {
		if r == p.user.Role {
			return true
		}
	}
	return false
}

// named returns a copy of a carrying the resident's name, if one is known.
func (s *server) named(a *alarm.Alarm) *alarm.Alarm {
	if a.Resident == "" {
		return a
	}
	n := s.o.ResidentName(a.Site, a.Resident)
	if n == "" {
		return a
	}
	c := *a
	c.SetResidentName(n)
	return &c
}

func securityHeaders(imgSources []string, connectSources ...string) func(http.Handler) http.Handler {
	csp := "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
	if len(imgSources) > 0 {
		csp = "default-src 'self'; img-src 'self' data: " + strings.Join(imgSources, " ") + "; frame-ancestors 'none'"
	}
	if len(connectSources) > 0 { // the other hubs of a redundant group (clusterstatus.go)
		csp += "; connect-src 'self' " + strings.Join(connectSources, " ")
	}
	return func(next http.Handler) http.Handler { return securityHeadersCSP(csp, next) }
}

func securityHeadersCSP(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := s.o.Alarms.Healthy(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "error": err.Error()})
		return
	}
	if d, ok := s.o.Alarms.(interface{ Degraded() []string }); ok {
		if problems := d.Degraded(); len(problems) > 0 {
			// Still 200: the hub keeps what it is sent. A monitor that
			// reads the body sees what someone must look at.
			writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "problems": problems})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type ctxKey struct{}

// principal is who made a request: a browser session or an API client
// using HTTP Basic authentication (which needs no CSRF token, since the
// server never asks a browser to remember it).
type principal struct {
	user    *User
	session *Session
	// technical: the route limits this user to technical alarms (policy.go).
	technical bool
}

func withPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

func (s *server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p principal
		if c, err := r.Cookie(CookieName); err == nil {
			if sess, ok := s.o.Auth.Session(c.Value); ok {
				p = principal{user: sess.User, session: sess}
			}
		}
		if p.user == nil {
			if u, pw, ok := r.BasicAuth(); ok {
				user, err := s.o.Auth.Check(r.Context(), s.source(r), u, pw)
				var te *ThrottleError
				if errors.As(err, &te) {
					s.throttled(w, r, te, u)
					return
				}
				if err == nil {
					p = principal{user: user}
				}
			}
		}
		if p.user == nil {
			if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
				// A person opening a page (the pilot dashboard) goes to
				// the login, which sends them back here afterwards; API
				// clients get the 401 they can act on.
				http.Redirect(w, r, loginRedirect(r), http.StatusSeeOther)
				return
			}
			writeError(w, http.StatusUnauthorized, errors.New("login required"))
			return
		}
		if p.session != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !p.session.ValidCSRF(r.Header.Get("X-CSRF-Token")) {
				writeError(w, http.StatusForbidden, errors.New("missing or wrong X-CSRF-Token"))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

func who(r *http.Request) principal { p, _ := r.Context().Value(ctxKey{}).(principal); return p }

type meResponse struct {
	User string `json:"user"`
	Name string `json:"name"`
	Role string `json:"role"`
	CSRF string `json:"csrf,omitempty"`
	// UserNames maps every staff login to its display name, so the app
	// names colleagues ("Taget av Natt Ett"), never by login name.
	UserNames map[string]string `json:"user_names,omitempty"`
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	sess, err := s.o.Auth.Login(r.Context(), s.source(r), req.Username, req.Password)
	var te *ThrottleError
	switch {
	case errors.As(err, &te):
		s.throttled(w, r, te, req.Username)
		return
	case err != nil:
		s.o.Logger.Warn("httpapi: login failed", s.userAttr(req.Username), "source", s.source(r))
		writeError(w, http.StatusUnauthorized, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess.Token, Path: "/", HttpOnly: true,
		Secure: s.o.SecureCookies, SameSite: http.SameSiteStrictMode, Expires: sess.Expires})
	writeJSON(w, http.StatusOK, meResponse{User: sess.User.Username, Name: sess.User.Name, Role: sess.User.Role, CSRF: sess.CSRF,
		UserNames: s.o.Auth.DisplayNames()})
}

// throttled answers 429 with Retry-After in whole seconds. It logs at
// debug level only: a flood is thousands of these a second, and a log line
// each would wear the gateway's SD card; vaka_login_throttled_total counts
// them, and the failures that started the throttle were logged.
func (s *server) throttled(w http.ResponseWriter, r *http.Request, te *ThrottleError, username string) {
	s.o.Logger.Debug("httpapi: login throttled", s.userAttr(username), "source", s.source(r), "wait", te.Wait.Round(time.Second))
	secs := int64((te.Wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	writeError(w, http.StatusTooManyRequests, te)
}

// userAttr logs a staff login name, but not a name that is no account:
// that is often a password typed into the wrong field.
func (s *server) userAttr(username string) slog.Attr {
	if s.o.Auth.Known(username) {
		return slog.String("user", username)
	}
	return slog.Bool("user_known", false)
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	p := who(r)
	resp := meResponse{User: p.user.Username, Name: p.user.Name, Role: p.user.Role, UserNames: s.o.Auth.DisplayNames()}
	if p.session != nil {
		resp.CSRF = p.session.CSRF
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if p := who(r); p.session != nil {
		s.o.Auth.Logout(p.session.Token)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

func (s *server) listAlarms(w http.ResponseWriter, r *http.Request) {
	list := s.o.Alarms.Alarms()
	if list == nil {
		list = []*alarm.Alarm{}
	}
	if who(r).technical {
		list = slices.DeleteFunc(list, func(a *alarm.Alarm) bool { return a.Kind != alarm.KindTechnical })
	}
	c := s.class(who(r))
	out := make([]any, len(list))
	for i, a := range list {
		out[i] = s.view(a, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"alarms": out})
}

func (s *server) getAlarm(w http.ResponseWriter, r *http.Request) {
	a, ok := s.o.Alarms.Alarm(chi.URLParam(r, "id"))
	if !ok {
		writeError(w, http.StatusNotFound, errors.New("no such alarm"))
		return
	}
	if who(r).technical && a.Kind != alarm.KindTechnical {
		writeError(w, http.StatusForbidden, errTechnicalOnly)
		return
	}
	writeJSON(w, http.StatusOK, s.view(a, s.class(who(r))))
}

func (s *server) act(action alarm.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Outcome alarm.Outcome `json:"outcome"`
			Note    string        `json:"note"`
		}
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		p := who(r)
		id := chi.URLParam(r, "id")
		if p.technical {
			// A care alarm is answered by carers; the kind never changes,
			// so looking first and acting next is safe.
			if a, ok := s.o.Alarms.Alarm(id); ok && a.Kind != alarm.KindTechnical {
				writeError(w, http.StatusForbidden, errTechnicalOnly)
				return
			}
		}
		// One owner per alarm: refused here for any Alarms behind the
		// API, and again by the hub under its lock (the authoritative
		// check; this one only gives the answer early).
		if cur, ok := s.o.Alarms.Alarm(id); ok {
			if err := alarm.CheckOwner(cur, alarm.Transition{Action: action, By: p.user.Username}); err != nil {
				s.ownedByOther(w, cur.AcceptedBy())
				return
			}
		}
		a, err := s.o.Alarms.Act(id, action, p.user.Username, req.Outcome, req.Note)
		switch {
		case err == nil:
			s.o.Logger.Info("httpapi: alarm action", "alarm", a.ID, "action", action, "user", p.user.Username)
			writeJSON(w, http.StatusOK, s.view(a, s.class(p)))
		case errors.Is(err, s.o.NotFound):
			writeError(w, http.StatusNotFound, err)
		case errors.Is(err, alarm.ErrBadOutcome):
			writeError(w, http.StatusBadRequest, err)
		case errors.Is(err, alarm.ErrOwnedByOther):
			owner := ""
			if cur, ok := s.o.Alarms.Alarm(id); ok {
				owner = cur.AcceptedBy()
			}
			s.ownedByOther(w, owner)
		case errors.Is(err, alarm.ErrAlreadyAccepted), errors.Is(err, alarm.ErrNotAccepted), errors.Is(err, alarm.ErrResolved):
			writeError(w, http.StatusConflict, err)
		default:
			writeError(w, http.StatusBadRequest, err)
		}
	}
}

// stream sends alarm changes as server-sent events. It first sends "hello"
// so the client knows the stream is live, then every change, and a comment
// every StreamKeepAlive so proxies and the client notice a dead link.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	class, technical := s.class(who(r)), who(r).technical
	var ch <-chan *alarm.Alarm
	var q *feed.Queue
	var cancel func()
	if fd, ok := s.o.Alarms.(Feeder); ok {
		q, cancel = fd.Feed() // streamfeed.go: lanes, never cut for technical traffic
	} else {
		ch, cancel = s.o.Alarms.Subscribe()
	}
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// Each write must get through within a bound of its own, so a phone
	// that vanished without closing cannot hold the stream's goroutine
	// forever; a live phone takes the ping well within it.
	rc := http.NewResponseController(w)
	writeBy := func() { _ = rc.SetWriteDeadline(time.Now().Add(max(streamWriteTimeout, 2*s.o.StreamKeepAlive))) }
	sc := s.newStreamControl(w, fl, writeBy, who(r).session)
	writeBy()
	// The connection may carry another request after the stream ends.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 2000\nevent: hello\ndata: {}\n\n")
	fl.Flush()
	if q != nil {
		s.streamFeed(w, r, fl, writeBy, q, class, technical, sc)
		return
	}
	tick := time.NewTicker(s.o.StreamKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sc.revoked:
			if sc.onRevoked() {
				return
			}
		case <-tick.C:
			if sc.onTick() {
				return
			}
		case a, ok := <-ch:
			writeBy()
			// Frames already queued behind this one go out in the same
			// flush, one write(2) for the burst: an alarm and its notify
			// step are usually queued together, and a burst of alarms
			// would otherwise cost every open staff screen a write per
			// frame. Nothing waits for more to arrive.
			for n := 0; ; n++ {
				if !ok {
					// Cut off for falling behind: end the stream; the
					// client reconnects and refetches the list.
					fl.Flush()
					return
				}
				if technical && a.Kind != alarm.KindTechnical {
					// Not for this role: skip it, but keep draining.
				} else if err := s.writeFrame(w, a, class); err != nil {
					return
				}
				if n == streamBurst-1 {
					break
				}
				select {
				case a, ok = <-ch:
					continue
				default:
				}
				break
			}
			fl.Flush()
		}
	}
}

// streamControl is what both stream loops do besides frames: the
// keep-alive ping and the end of a session. A browser session's stream
// ends with a "logout" event as soon as the session is revoked, logged
// out elsewhere or expires, so the phone says so at once instead of
// looking connected.
type streamControl struct {
	s       *server
	w       io.Writer
	fl      http.Flusher
	writeBy func()
	sess    *Session
	revoked <-chan struct{} // nil (never ready) without a browser session
}

func (s *server) newStreamControl(w io.Writer, fl http.Flusher, writeBy func(), sess *Session) *streamControl {
	c := &streamControl{s: s, w: w, fl: fl, writeBy: writeBy, sess: sess}
	if sess != nil {
		c.revoked = s.o.Auth.revokedSignal()
	}
	return c
}

func (c *streamControl) gone() bool {
	if c.sess == nil {
		return false
	}
	_, ok := c.s.o.Auth.Session(c.sess.Token)
	return !ok
}

func (c *streamControl) logout() {
	io.WriteString(c.w, "event: logout\ndata: {}\n\n")
	c.fl.Flush()
}

// onRevoked handles a revocation signal; true: the stream must end.
func (c *streamControl) onRevoked() bool {
	c.revoked = c.s.o.Auth.revokedSignal()
	if !c.gone() {
		return false
	}
	c.writeBy()
	c.logout()
	return true
}

// onTick sends the keep-alive ping (or the logout of an expired
// session); true: the stream must end. A named event, not a comment: the
// page's JavaScript sees it and shows the red banner within two
// intervals of a dead link.
func (c *streamControl) onTick() bool {
	c.writeBy()
	if c.gone() {
		c.logout()
		return true
	}
	if _, err := io.WriteString(c.w, "event: ping\ndata: {}\n\n"); err != nil {
		return true
	}
	c.fl.Flush()
	return false
}

// streamWriteTimeout bounds one write to the stream (at least two
// keep-alive intervals).
const streamWriteTimeout = 30 * time.Second

// streamBurst bounds how many queued frames share one flush, so a busy
// stream still reaches the screen in pieces of bounded size.
const streamBurst = 64

// writeFrame writes a's stream frame as a viewer of class c sees it
// (where.go: names, door codes). An alarm that cannot be encoded (none
// can: it is plain data) is logged and skipped; the client's next list
// fetch still has it.
func (s *server) writeFrame(w io.Writer, a *alarm.Alarm, c int) error {
	b, err := s.cachedFrame(a, c)
	if err != nil {
		s.o.Logger.Error("httpapi: stream frame not encoded", "alarm", a.ID, "err", err)
		return nil
	}
	_, err = w.Write(b)
	return err
}

// errTechnicalOnly refuses a care alarm to a role limited to technical ones.
var errTechnicalOnly = errors.New("your role handles technical alarms only")

// MaxBody bounds JSON request bodies.
const MaxBody = 16 << 10

func decodeBody(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		msg := err.Error()
		if !strings.HasPrefix(msg, "json: unknown field") {
			msg = "request body is not valid JSON"
		}
		return errors.New(msg)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// ownedByOther answers 409 for a step on an alarm someone else accepted,
// naming them (display name too) and the way forward: take it over.
func (s *server) ownedByOther(w http.ResponseWriter, owner string) {
	writeJSON(w, http.StatusConflict, map[string]string{
		"error": "accepted by " + owner + " (" + s.o.Auth.DisplayName(owner) + "); take it over first: POST /api/v1/alarms/{id}/take_over",
		"code":  "owned_by_other", "accepted_by": owner, "accepted_by_name": s.o.Auth.DisplayName(owner),
	})
}

// loginRedirect is where a logged-out person opening a page is sent: the
// login, with the page to return to. Only the request's own path and
// query go into it (a same-origin relative URL); the app checks it again
// before following it.
func loginRedirect(r *http.Request) string {
	next := r.URL.RequestURI()
	if next == "" || next == "/" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return "/?next=" + url.QueryEscape(next)
}

// revokeSessions ends every session of a user (admin): a lost phone, or a
// login that must stop receiving alarms now. Body: {"user": "natt2"}.
func (s *server) revokeSessions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User string `json:"user"`
	}
	if err := decodeBody(r, &req); err != nil || req.User == "" {
		writeError(w, http.StatusBadRequest, errors.New(`body must be {"user": "<login>"}`))
		return
	}
	if !s.o.Auth.Known(req.User) {
		writeError(w, http.StatusNotFound, errors.New("no such user"))
		return
	}
	n := s.o.Auth.RevokeUser(req.User)
	s.o.Logger.Info("httpapi: sessions revoked", "user", req.User, "by", who(r).user.Username, "sessions", n)
	writeJSON(w, http.StatusOK, map[string]any{"user": req.User, "revoked": n})
}
