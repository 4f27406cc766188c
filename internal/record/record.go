// Package record is the one codec for Vaka's append-only logs on disk: the
// alarm journal (store), the gateway spool, the InfluxDB spool and the
// embedded pilot store all write checksummed lines through it, so torn
// writes, damage in the middle of a file and failed writes are handled one
// way and tested once.
//
// A record is one line: the CRC-32C (Castagnoli) of the body as eight
// lower-case hex digits, a space, the body, a newline. The body must not
// contain a newline (JSON from encoding/json and InfluxDB line protocol
// never do). A caller may put a fixed tag in front (the gateway spool
// writes "P <crc> <json>"); Scanner's Verify option handles such lines.
//
// Why lines and not length-prefixed frames: a line survives damage to its
// neighbours. A flipped byte or a block of zeros costs the lines it touches,
// and the scanner finds the next record at the next newline, so one damaged
// record never takes the rest of the file with it.
package record

import (
	"errors"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Overhead is the bytes a record adds to its body: checksum, space, newline.
const Overhead = 10

// Errors Parse returns; both wrap ErrDamaged.
var (
	ErrDamaged  = errors.New("record: damaged")
	ErrFormat   = fmt.Errorf("%w: not a checksummed line", ErrDamaged)
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrDamaged)
)

const hexDigits = "0123456789abcdef"

// Append appends body to dst as one record line and returns the extended
// buffer. It allocates nothing when dst has room.
func Append(dst, body []byte) []byte {
	c := crc32.Checksum(body, castagnoli)
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(c>>uint(shift))&0xf])
	}
	dst = append(dst, ' ')
	dst = append(dst, body...)
	return append(dst, '\n')
}

// Parse checks one line (with or without its newline) and returns its body,
// which aliases line.
func Parse(line []byte) ([]byte, error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if len(line) < 9 || line[8] != ' ' {
		return nil, ErrFormat
	}
	var want uint32
	for _, c := range line[:8] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return nil, ErrFormat
		}
		want = want<<4 | uint32(v)
	}
	body := line[9:]
	if crc32.Checksum(body, castagnoli) != want {
		return nil, ErrChecksum
	}
	return body, nil
}
