package trackers

import (
	"encoding/base64"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
)

// OwnTracks payload encryption (owntracks.org/booklet/features/encrypt/):
// the app seals the whole JSON message with libsodium's secretbox
// (XSalsa20-Poly1305) and publishes {"_type": "encrypted", "data":
// base64(nonce ‖ box)}, the 24-byte nonce first. The key is the secret the
// user typed into the app: its bytes, cut or padded with zeros to 32, as
// the OwnTracks Recorder loads it (recorder.c decrypt()).

// Encrypted is the Kind of an OwnTracks payload that is still sealed.
const Encrypted Kind = "encrypted"

// OwnTracksKeySize is the secretbox key size.
const OwnTracksKeySize = 32

// OwnTracksKey derives the secretbox key from the secret entered in the
// OwnTracks app.
func OwnTracksKey(secret string) *[OwnTracksKeySize]byte {
	var k [OwnTracksKeySize]byte
	copy(k[:], secret)
	return &k
}

// SealOwnTracks encrypts a message as the OwnTracks app does, with the
// given 24-byte nonce (use a random one). For tests and tools.
func SealOwnTracks(msg []byte, key *[OwnTracksKeySize]byte, nonce *[24]byte) []byte {
	box := secretbox.Seal(nonce[:], msg, nonce, key)
	return []byte(`{"_type":"encrypted","data":"` + base64.StdEncoding.EncodeToString(box) + `"}`)
}

// OpenOwnTracks decrypts the data of an encrypted report (Report.Sealed)
// with key. The error names no content: a wrong key and a forged box look
// the same.
func OpenOwnTracks(data string, key *[OwnTracksKeySize]byte) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	if err != nil {
		// Some clients drop the padding.
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(data), "=")); err != nil {
			return nil, bad("data", "not base64")
		}
	}
	if len(raw) < 24+secretbox.Overhead {
		return nil, bad("data", "too short for a nonce and a box")
	}
	var nonce [24]byte
	copy(nonce[:], raw[:24])
	msg, ok := secretbox.Open(nil, raw[24:], &nonce, key)
	if !ok {
		return nil, bad("data", "cannot be decrypted: wrong key, or not from this device")
	}
	return msg, nil
}

// DecodeOwnTracksSealed decodes an OwnTracks payload that may be
// encrypted: a sealed one is opened with key (nil: no key configured,
// ErrNoKey) and its content decoded; an encrypted message inside an
// encrypted one is refused. A plain payload decodes as DecodeOwnTracks.
func DecodeOwnTracksSealed(payload []byte, key *[OwnTracksKeySize]byte) (Report, error) {
	r, err := DecodeOwnTracks(payload)
	if err != nil || r.Kind != Encrypted {
		return r, err
	}
	if key == nil {
		return r, ErrNoKey
	}
	msg, err := OpenOwnTracks(r.Sealed, key)
	if err != nil {
		return Report{}, err
	}
	inner, err := DecodeOwnTracks(msg)
	if err != nil {
		return Report{}, err
	}
	if inner.Kind == Encrypted {
		return Report{}, bad("_type", "encrypted inside encrypted")
	}
	inner.Decrypted = true
	return inner, nil
}

// ErrNoKey is returned for an encrypted OwnTracks payload from a device
// that has no owntracks_key configured: it cannot be read, so it is
// counted and logged (without content), never silently dropped.
var ErrNoKey = &Error{Field: "_type", Reason: "encrypted, and no owntracks_key is configured for this device"}
