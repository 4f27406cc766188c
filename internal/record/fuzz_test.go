package record

import (
	"bytes"
	"testing"
)

// FuzzParse: no line makes Parse panic, and whatever it accepts is exactly
// what Append would have written for that body.
func FuzzParse(f *testing.F) {
	f.Add(Append(nil, []byte(`{"seq":1}`)))
	f.Add([]byte("00000000 \n"))
	f.Add([]byte("zzzzzzzz {}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, line []byte) {
		body, err := Parse(line)
		if err != nil {
			return
		}
		again := Append(nil, body)
		if !bytes.EqualFold(bytes.TrimSuffix(line, []byte("\n")), again[:len(again)-1]) {
			t.Fatalf("Parse(%q) accepted body %q that encodes as %q", line, body, again)
		}
	})
}

// FuzzScan: no file makes the scanner panic or loop, its report adds up,
// and a good record appended after End reads back.
func FuzzScan(f *testing.F) {
	full, _ := logOf(4)
	f.Add(full)
	f.Add(full[:len(full)-7])
	f.Add(append(bytes.Clone(full[:20]), full[40:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := scan(t, b)
		if got.rep.End < 0 || got.rep.End > int64(len(b)) || got.rep.Records != len(got.bodies) {
			t.Fatalf("report %+v for %d bytes", got.rep, len(b))
		}
		next := bytes.Clone(b[:got.rep.End])
		if got.rep.Unterminated {
			next = append(next, '\n')
		}
		next = Append(next, []byte("marker"))
		again := scan(t, next)
		if len(again.bodies) == 0 || again.bodies[len(again.bodies)-1] != "marker" || again.rep.Torn != nil {
			t.Fatalf("record after End not read back: %q %+v", again.bodies, again.rep)
		}
	})
}
