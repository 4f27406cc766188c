// Package webpush sends Web Push messages: VAPID authentication (RFC 8292,
// an ES256 JWT) and message encryption (RFC 8291, "aes128gcm" content
// coding of RFC 8188), with the standard library only. It also keeps the
// staff phones' push subscriptions, each with its own receipt token so a
// service worker can prove the phone alerted.
package webpush

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// RecordSize is the single record size we send; a push message must fit
// in one record of at most 4096 bytes (RFC 8291 section 4).
const RecordSize = 4096

// MaxPlaintext is the largest payload Encrypt accepts: one record minus
// the 16-byte tag and the 1-byte delimiter, less the header overhead push
// services count against their 4096-byte limit.
const MaxPlaintext = RecordSize - 16 - 1 - 86

var (
	errShort = errors.New("webpush: message too short")
	errBad   = errors.New("webpush: cannot decrypt")
)

// Encrypt encrypts plaintext for a user agent's public key (p256dh, 65
// bytes uncompressed) and authentication secret (16 bytes).
func Encrypt(uaPublic, authSecret, plaintext []byte) ([]byte, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return encrypt(uaPublic, authSecret, plaintext, salt, as)
}

func encrypt(uaPublic, authSecret, plaintext, salt []byte, as *ecdh.PrivateKey) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("webpush: payload of %d bytes exceeds %d", len(plaintext), MaxPlaintext)
	}
	if len(authSecret) != 16 {
		return nil, errors.New("webpush: auth secret must be 16 bytes")
	}
	ua, err := ecdh.P256().NewPublicKey(uaPublic)
	if err != nil {
		return nil, fmt.Errorf("webpush: p256dh: %w", err)
	}
	asPub := as.PublicKey().Bytes()
	cek, nonce, err := keys(as, ua, uaPublic, asPub, authSecret, salt)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	// One record: plaintext, then 0x02 (last record), no padding.
	rec := append(append(make([]byte, 0, len(plaintext)+1), plaintext...), 0x02)
	var hdr bytes.Buffer
	hdr.Write(salt)
	_ = binary.Write(&hdr, binary.BigEndian, uint32(RecordSize))
	hdr.WriteByte(byte(len(asPub)))
	hdr.Write(asPub)
	return gcm.Seal(hdr.Bytes(), nonce, rec, nil), nil
}

// keys derives the content encryption key and nonce (RFC 8291 section 3.4).
func keys(priv *ecdh.PrivateKey, peer *ecdh.PublicKey, uaPub, asPub, authSecret, salt []byte) (cek, nonce []byte, err error) {
	shared, err := priv.ECDH(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("webpush: ecdh: %w", err)
	}
	info := append(append([]byte("WebPush: info\x00"), uaPub...), asPub...)
	prkKey, err := hkdf.Extract(sha256.New, shared, authSecret)
	if err != nil {
		return nil, nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, err
	}
	if cek, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16); err != nil {
		return nil, nil, err
	}
	nonce, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	return cek, nonce, err
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Decrypt is the user agent's side: it decrypts an aes128gcm message with
// the subscription's private key and auth secret. Vaka uses it to test its
// own messages against a loopback push endpoint; it accepts exactly one
// record, as RFC 8291 requires of push messages.
func Decrypt(ua *ecdh.PrivateKey, authSecret, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errShort
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if rs < 18 || len(body) < 21+idlen {
		return nil, errShort
	}
	asPub := body[21 : 21+idlen]
	ct := body[21+idlen:]
	if len(ct) > int(rs) || len(ct) < 17 {
		return nil, errBad
	}
	as, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, errBad
	}
	cek, nonce, err := keys(ua, as, ua.PublicKey().Bytes(), asPub, authSecret, salt)
	if err != nil {
		return nil, errBad
	}
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, errBad
	}
	pt, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, errBad
	}
	// Strip padding: zeros after the 0x02 delimiter of the last record.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 0x02 {
		return nil, errBad
	}
	return pt[:i], nil
}
