package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// AppendEncoded writes the bytes AppendRecords writes for the same
// bodies, beside transitions, with the same sequence numbers, and the
// caller's buffer is free once it returns.
func TestAppendEncodedSameAsAppendRecords(t *testing.T) {
	sthlm, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 10, 25, 2, 0, 1, 500, sthlm)
	bodies := []any{
		map[string]any{"wall": "02:00", "outcome": "all_right", "evidence": []any{}},
		map[string]any{"wall": "02:00", "reasons": []string{"inte i sängen / not in bed"}},
		map[string]any{},
	}
	write := func(enc bool) []byte {
		dir := t.TempDir()
		j, _, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Append(tr("A1", alarm.ActAccept)); err != nil {
			t.Fatal(err)
		}
		if enc {
			var scratch []byte
			items := make([]EncodedItem, len(bodies))
			for i, b := range bodies {
				raw, err := json.Marshal(b)
				if err != nil {
					t.Fatal(err)
				}
				n := len(scratch)
				scratch = append(scratch, raw...)
				items[i] = EncodedItem{At: at.Add(time.Duration(i) * time.Second), Body: scratch[n:len(scratch):len(scratch)]}
			}
			if err := j.AppendEncoded("tillsyn", items); err != nil {
				t.Fatal(err)
			}
			for i := range scratch {
				scratch[i] = 'x' // the caller reuses its buffer
			}
		} else {
			items := make([]RecordItem, len(bodies))
			for i, b := range bodies {
				items[i] = RecordItem{At: at.Add(time.Duration(i) * time.Second), Body: b}
			}
			if err := j.AppendRecords("tillsyn", items); err != nil {
				t.Fatal(err)
			}
		}
		n := tr("A2", alarm.ActAccept)
		if err := j.Append(n); err != nil {
			t.Fatal(err)
		}
		if n.Seq != 5 {
			t.Errorf("seq after three records %d, want 5", n.Seq)
		}
		if err := j.AppendEncoded("tillsyn", nil); err != nil {
			t.Errorf("no records: %v", err)
		}
		for _, bad := range [][]byte{nil, []byte(`"x"`), []byte(`{"a":1`), []byte(`[]`)} {
			if err := j.AppendEncoded("tillsyn", []EncodedItem{{At: at, Body: []byte(`{}`)}, {At: at, Body: bad}}); err == nil {
				t.Errorf("body %q accepted", bad)
			}
		}
		if err := j.AppendEncoded(`bad"type`, []EncodedItem{{At: at, Body: []byte(`{}`)}}); err == nil {
			t.Error("record type with a quote accepted")
		}
		j.Close()
		if err := j.AppendEncoded("tillsyn", []EncodedItem{{At: at, Body: []byte(`{}`)}}); err == nil {
			t.Error("append to a closed journal accepted")
		}
		j2, ts, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j2.Close()
		if l := j2.Loss(); l.Corrupt != 0 || l.Torn != 0 || l.New {
			t.Errorf("loss after records: %+v", l)
		}
		if recs := j2.Records(); len(recs) != 3 || recs[2].Seq != 4 || len(ts) != 2 {
			t.Errorf("read back %d records, %d transitions", len(recs), len(ts))
		}
		b, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want, got := write(false), write(true)
	// The transitions' lines carry nothing of the directory; the files are
	// the same byte for byte.
	if !bytes.Equal(got, want) {
		t.Errorf("journal differs:\n got %s\nwant %s", got, want)
	}
}
