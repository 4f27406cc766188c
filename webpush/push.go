package webpush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vaka-care/vaka/internal/record"
	"github.com/vaka-care/vaka/notify"
)

// Subscription is one phone's push subscription.
type Subscription struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Endpoint string    `json:"endpoint"`
	P256dh   string    `json:"p256dh"` // base64url
	Auth     string    `json:"auth"`   // base64url
	Token    string    `json:"token"`  // receipt token, sent inside the encrypted payload
	Created  time.Time `json:"created"`
}

// SubscriptionBody is what the browser's PushSubscription.toJSON() gives.
type SubscriptionBody struct {
	Endpoint       string   `json:"endpoint"`
	ExpirationTime *float64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// ParseSubscription decodes and checks a subscription body. Plain http
// endpoints are refused unless allowLoopbackHTTP and the host is a
// loopback address (tests' local push service).
func ParseSubscription(body []byte, allowLoopbackHTTP bool) (SubscriptionBody, error) {
	var s SubscriptionBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&s); err != nil {
		return s, errors.New("webpush: body must be a PushSubscription as JSON")
	}
	if len(s.Endpoint) > 2048 {
		return s, errors.New("webpush: endpoint too long")
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" || u.User != nil {
		return s, errors.New("webpush: endpoint is not a URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if !allowLoopbackHTTP || ip == nil || !ip.IsLoopback() {
			return s, errors.New("webpush: endpoint must be https")
		}
	default:
		return s, errors.New("webpush: endpoint must be https")
	}
	p, err := decodeB64(s.Keys.P256dh)
	if err != nil {
		return s, errors.New("webpush: keys.p256dh is not base64url")
	}
	if _, err := ecdh.P256().NewPublicKey(p); err != nil {
		return s, errors.New("webpush: keys.p256dh is not a P-256 public key")
	}
	a, err := decodeB64(s.Keys.Auth)
	if err != nil || len(a) != 16 {
		return s, errors.New("webpush: keys.auth must be 16 bytes, base64url")
	}
	return s, nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return base64.RawURLEncoding.DecodeString(s)
}

// Store keeps subscriptions, in memory and (with a path) in a JSON file
// rewritten atomically on change.
type Store struct {
	path string
	mu   sync.Mutex
	subs map[string]*Subscription // id → subscription
	sync StoreSync                // replicates subscriptions in a redundant group (sync.go)
}

// MaxPerUser bounds one user's phones; the oldest goes first.
const MaxPerUser = 5

// OpenStore loads path ("" keeps subscriptions in memory only).
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path, subs: map[string]*Subscription{}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webpush: %w", err)
	}
	var list []*Subscription
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("webpush: %s: %w", path, err)
	}
	for _, sub := range list {
		s.subs[sub.ID] = sub
	}
	return s, nil
}

// Add stores a subscription for user, replacing one with the same endpoint.
func (s *Store) Add(user string, b SubscriptionBody, now time.Time) (*Subscription, error) {
	s.mu.Lock()
	sub, removed, err := s.addLocked(user, b, now)
	x := s.sync
	s.mu.Unlock()
	if x != nil {
		s.replicate(x, sub, removed)
	}
	return sub, err
}

func (s *Store) addLocked(user string, b SubscriptionBody, now time.Time) (*Subscription, []string, error) {
	var mine []*Subscription
	var removed []string
	for id, old := range s.subs {
		if old.Endpoint == b.Endpoint {
			delete(s.subs, id)
			removed = append(removed, id)
			continue
		}
		if old.User == user {
			mine = append(mine, old)
		}
	}
	for len(mine) >= MaxPerUser {
		oldest := 0
		for i, m := range mine {
			if m.Created.Before(mine[oldest].Created) {
				oldest = i
			}
		}
		delete(s.subs, mine[oldest].ID)
		removed = append(removed, mine[oldest].ID)
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
	sub := &Subscription{ID: "P" + token()[:12], User: user, Endpoint: b.Endpoint, P256dh: b.Keys.P256dh,
		Auth: b.Keys.Auth, Token: token(), Created: now}
	s.subs[sub.ID] = sub
	return sub, removed, s.saveLocked()
}

// Remove deletes a subscription (the push service said it is gone).
func (s *Store) Remove(id string) {
	s.mu.Lock()
	_, ok := s.subs[id]
	if ok {
		delete(s.subs, id)
		_ = s.saveLocked()
	}
	x := s.sync
	s.mu.Unlock()
	if ok && x != nil {
		s.replicate(x, nil, []string{id})
	}
}

// ForUser lists a user's subscriptions.
func (s *Store) ForUser(user string) []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Subscription
	for _, sub := range s.subs {
		if sub.User == user {
			out = append(out, *sub)
		}
	}
	return out
}

// ByToken finds the subscription a receipt token belongs to, comparing in
// constant time.
func (s *Store) ByToken(tok string) (Subscription, bool) {
	if tok == "" {
		return Subscription{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if subtle.ConstantTimeCompare([]byte(sub.Token), []byte(tok)) == 1 {
			return *sub, true
		}
	}
	return Subscription{}, false
}

func (s *Store) saveLocked() error {
	if s.path == "" {
		return nil
	}
	list := make([]*Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		list = append(list, sub)
	}
	b, _ := json.MarshalIndent(list, "", "  ")
	// Atomic and durable: a power cut leaves the old list or the new one,
	// never half a file that would lose every phone's subscription.
	if err := record.WriteFile(filepath.Clean(s.path), b, 0o600); err != nil {
		return fmt.Errorf("webpush: %w", err)
	}
	return nil
}

func token() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Payload is what a service worker receives (encrypted) for an alarm.
type Payload struct {
	notify.Message
	Sub     string `json:"sub"`     // subscription id
	Receipt string `json:"receipt"` // token for POST /api/v1/alarms/{id}/delivered
	Sent    int64  `json:"sent"`    // unix ms, for time-to-phone
}

// AlarmTTL is how long a push service keeps an alarm push for a phone
// that is off the network (the TTL header). Long enough to ride out a lift
// or a dead spot in the building, short enough that a phone coming back
// after the night is not woken for alarms long since escalated to others
// and handled: the escalation timers (minutes) take over from there.
// Every push also carries "Urgency: high" so Android wakes from Doze.
const AlarmTTL = 10 * time.Minute

// Sender sends encrypted, VAPID-signed pushes and implements notify.Pusher.
type Sender struct {
	VAPID   *VAPID
	Subject string // mailto: or https: contact for the push service
	Store   *Store
	Client  *http.Client
	TTL     time.Duration
	Now     func() time.Time
}

var _ notify.Pusher = (*Sender)(nil)

// Push sends m to every phone of user.
func (s *Sender) Push(ctx context.Context, user string, m notify.Message) (int, error) {
	var n int
	var errs []error
	for _, sub := range s.Store.ForUser(user) {
		p := Payload{Message: m, Sub: sub.ID, Receipt: sub.Token, Sent: s.now().UnixMilli()}
		b, _ := json.Marshal(p)
		code, err := s.Send(ctx, sub, b)
		switch {
		case err != nil:
			errs = append(errs, err)
		case code == http.StatusNotFound || code == http.StatusGone:
			s.Store.Remove(sub.ID) // the phone unsubscribed
			errs = append(errs, fmt.Errorf("webpush: subscription %s gone (%d)", sub.ID, code))
		case code/100 != 2:
			errs = append(errs, fmt.Errorf("webpush: push service answered %d", code))
		default:
			n++
		}
	}
	return n, errors.Join(errs...)
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Send encrypts payload for sub and posts it to the push service. It
// returns the push service's status code.
func (s *Sender) Send(ctx context.Context, sub Subscription, payload []byte) (int, error) {
	p, err := decodeB64(sub.P256dh)
	if err != nil {
		return 0, err
	}
	a, err := decodeB64(sub.Auth)
	if err != nil {
		return 0, err
	}
	body, err := Encrypt(p, a, payload)
	if err != nil {
		return 0, err
	}
	auth, err := s.VAPID.Authorization(sub.Endpoint, s.Subject, s.now())
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = AlarmTTL
	}
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", fmt.Sprint(int(ttl.Seconds())))
	req.Header.Set("Urgency", "high") // wakes a sleeping phone
	req.Header.Set("Authorization", auth)
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webpush: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// VerifyAuthorization checks a VAPID Authorization header as a push
// service does: ES256 signature by the key k, audience, expiry within 24 h.
// It returns the public key (base64url).
func VerifyAuthorization(header, audience string, now time.Time) (string, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return "", errors.New("webpush: not a vapid authorization")
	}
	var tok, k string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			tok = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	pub, err := decodeB64(k)
	if err != nil {
		return "", errors.New("webpush: bad k")
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		return "", errors.New("webpush: bad k")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("webpush: bad t")
	}
	sig, err := decodeB64(parts[2])
	if err != nil || len(sig) != 64 {
		return "", errors.New("webpush: bad signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(key, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("webpush: signature does not verify")
	}
	hb, _ := decodeB64(parts[0])
	cb, _ := decodeB64(parts[1])
	var h struct{ Alg, Typ string }
	var c struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "ES256" || json.Unmarshal(cb, &c) != nil {
		return "", errors.New("webpush: bad JWT")
	}
	if c.Aud != audience {
		return "", fmt.Errorf("webpush: aud %q, want %q", c.Aud, audience)
	}
	if exp := time.Unix(c.Exp, 0); exp.Before(now) || exp.After(now.Add(24*time.Hour)) {
		return "", errors.New("webpush: exp out of range")
	}
	if c.Sub == "" {
		return "", errors.New("webpush: sub missing")
	}
	return k, nil
}

// Receipt is a service worker's delivery receipt body.
type Receipt struct {
	Receipt string `json:"receipt"` // the subscription's token from the payload
	Step    string `json:"step"`    // notify, escalate or reminder
	Tier    int    `json:"tier"`
}

// ParseReceipt decodes and checks a receipt body.
func ParseReceipt(body []byte) (Receipt, error) {
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, errors.New("webpush: receipt must be JSON {receipt, step, tier}")
	}
	if r.Receipt == "" || len(r.Receipt) > 128 {
		return r, errors.New("webpush: receipt token missing")
	}
	switch r.Step {
	case "", "notify", "escalate", "reminder":
	default:
		return r, errors.New("webpush: step must be notify, escalate or reminder")
	}
	if r.Tier < 0 || r.Tier > 100 {
		return r, errors.New("webpush: tier out of range")
	}
	return r, nil
}
