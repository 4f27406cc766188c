package webpush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/notify"
)

func mustB64(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 8291 Appendix A: the worked example, byte for byte.
func TestRFC8291Vector(t *testing.T) {
	as, err := ecdh.P256().NewPrivateKey(mustB64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := ecdh.P256().NewPrivateKey(mustB64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	auth := mustB64("BTBZMqHH6r4Tts7J_aSIgg")
	salt := mustB64("DGv6ra1nlYgDCS1FRnbzlw")
	pt := []byte("When I grow up, I want to be a watermelon")
	got, err := encrypt(ua.PublicKey().Bytes(), auth, pt, salt, as)
	if err != nil {
		t.Fatal(err)
	}
	want := "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
	if g := base64.RawURLEncoding.EncodeToString(got); g != want {
		t.Fatalf("ciphertext\n got %s\nwant %s", g, want)
	}
	back, err := Decrypt(ua, auth, got)
	if err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("decrypt: %q %v", back, err)
	}
}

// A local push service on loopback: it checks the VAPID JWT, decrypts the
// body with the phone's private key and sees the alarm and receipt token.
func TestPushToLoopbackEndpoint(t *testing.T) {
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	v, err := LoadOrCreateVAPID(filepath.Join(t.TempDir(), "vapid.pem"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Payload, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") != "600" || r.Header.Get("Urgency") != "high" {
			http.Error(w, "headers", 400)
			return
		}
		k, err := VerifyAuthorization(r.Header.Get("Authorization"), "http://"+r.Host, time.Now())
		if err != nil || k != v.PublicKey() {
			http.Error(w, "vapid: "+err.Error(), http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		pt, err := Decrypt(ua, auth, body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var p Payload
		if err := json.Unmarshal(pt, &p); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got <- p
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	st, _ := OpenStore(filepath.Join(t.TempDir(), "subs.json"))
	body, _ := json.Marshal(map[string]any{"endpoint": srv.URL + "/push/abc", "expirationTime": nil,
		"keys": map[string]string{"p256dh": b64(ua.PublicKey().Bytes()), "auth": b64(auth)}})
	if _, err := ParseSubscription(body, false); err == nil {
		t.Fatal("http endpoint accepted without loopback permission")
	}
	sb, err := ParseSubscription(body, true)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := st.Add("natt1", sb, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &Sender{VAPID: v, Subject: "mailto:drift@example.org", Store: st}
	// The notifier skips users without a phone (notify.PhoneChecker).
	if !s.HasPhones("natt1") || s.HasPhones("natt2") {
		t.Fatalf("HasPhones: natt1 %v, natt2 %v", s.HasPhones("natt1"), s.HasPhones("natt2"))
	}
	n, err := s.Push(context.Background(), "natt1", notify.Message{Alarm: "A000007", Step: "notify", Kind: "call", Site: "solrosen", Room: "12"})
	if err != nil || n != 1 {
		t.Fatalf("push: %d %v", n, err)
	}
	p := <-got
	if p.Alarm != "A000007" || p.Receipt != sub.Token || p.Sub != sub.ID || p.Room != "12" {
		t.Fatalf("payload %+v", p)
	}
	if s2, ok := st.ByToken(sub.Token); !ok || s2.User != "natt1" {
		t.Fatal("receipt token not found")
	}
	// The subscriptions survive a restart.
	st2, err := OpenStore(st.path)
	if err != nil || len(st2.ForUser("natt1")) != 1 {
		t.Fatalf("store reload: %v", err)
	}
}

func TestVAPIDKeyPersists(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vapid.pem")
	a, _ := LoadOrCreateVAPID(p)
	b, err := LoadOrCreateVAPID(p)
	if err != nil || a.PublicKey() != b.PublicKey() || len(mustB64(a.PublicKey())) != 65 {
		t.Fatalf("key changed or bad: %v", err)
	}
}

func FuzzSubscriptionBody(f *testing.F) {
	f.Add([]byte(`{"endpoint":"https://push.example/x","keys":{"p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}`))
	f.Add([]byte(`{"endpoint":"http://127.0.0.1:9/x","keys":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSubscription(b, true)
		if err != nil {
			return
		}
		p, _ := decodeB64(s.Keys.P256dh)
		a, _ := decodeB64(s.Keys.Auth)
		if _, err := Encrypt(p, a, []byte("x")); err != nil {
			t.Fatalf("accepted subscription cannot be encrypted to: %v", err)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	ct, _ := Encrypt(ua.PublicKey().Bytes(), auth, []byte("hej"))
	f.Add(ct)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = Decrypt(ua, auth, b) })
}

func FuzzReceiptBody(f *testing.F) {
	f.Add([]byte(`{"receipt":"abc","step":"notify","tier":0}`))
	f.Add([]byte(`{"receipt":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err == nil && (r.Receipt == "" || r.Tier < 0) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// The hub's share of one push: encryption (ECDH + HKDF + AES-GCM) and the
// VAPID signature, per phone.
func BenchmarkEncrypt(b *testing.B) {
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	msg := bytes.Repeat([]byte("x"), 300)
	for b.Loop() {
		if _, err := Encrypt(ua.PublicKey().Bytes(), auth, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVAPID(b *testing.B) {
	v, _ := NewVAPID()
	now := time.Now()
	for b.Loop() {
		if _, err := v.Authorization("https://push.example.org/x", "mailto:a@example.org", now); err != nil {
			b.Fatal(err)
		}
	}
}
