package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// VAPID is the application server's key pair (RFC 8292).
type VAPID struct {
	key *ecdsa.PrivateKey
	pub []byte // uncompressed point, 65 bytes
}

// NewVAPID generates a key pair.
func NewVAPID() (*VAPID, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return vapidFrom(k)
}

func vapidFrom(k *ecdsa.PrivateKey) (*VAPID, error) {
	e, err := k.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	return &VAPID{key: k, pub: e.Bytes()}, nil
}

// LoadOrCreateVAPID reads the key from path (PEM, EC PRIVATE KEY) or
// creates it there (mode 0600). Phones subscribe against the public key,
// so it must survive restarts.
func LoadOrCreateVAPID(path string) (*VAPID, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		v, err := NewVAPID()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(v.key)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("webpush: %w", err)
		}
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webpush: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("webpush: %s: no PEM block", path)
	}
	k, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("webpush: %s: %w", path, err)
	}
	return vapidFrom(k)
}

// PublicKey is the applicationServerKey for pushManager.subscribe,
// base64url without padding.
func (v *VAPID) PublicKey() string { return base64.RawURLEncoding.EncodeToString(v.pub) }

// Authorization returns the header value for a push to endpoint:
// "vapid t=<JWT>, k=<public key>" (RFC 8292 section 3).
func (v *VAPID) Authorization(endpoint, subject string, now time.Time) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", errors.New("webpush: endpoint is not a URL")
	}
	hdr, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "ES256"})
	claims, _ := json.Marshal(map[string]any{"aud": u.Scheme + "://" + u.Host, "exp": now.Add(12 * time.Hour).Unix(), "sub": subject})
	signing := b64(hdr) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, v.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "vapid t=" + signing + "." + b64(sig) + ", k=" + v.PublicKey(), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
