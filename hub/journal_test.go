package hub

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/store"
)

// keeperJournal is the local journal with named state kept beside it in
// memory, standing in for the replicated journal (package cluster), whose
// own tests check that state survives a takeover.
type keeperJournal struct {
	*store.Journal
	state map[string][]byte
}

func (k *keeperJournal) SaveState(name string, b []byte) error {
	k.state[name] = append([]byte(nil), b...)
	return nil
}

func (k *keeperJournal) State(name string) ([]byte, bool) {
	b, ok := k.state[name]
	return b, ok
}

// With a journal that keeps state (a redundant group), silences go to
// the journal, not to data_dir, and the hub that takes over (a new hub on
// the same journal) holds back what was silenced.
func TestSilencesKeptByTheJournal(t *testing.T) {
	now := time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC)
	dir := t.TempDir()
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(silenceYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	kj := &keeperJournal{Journal: j, state: map[string][]byte{}}
	h, err := New(Options{Config: &cfg, Journal: kj, Replay: replay, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddSilence(Silence{Site: "s", Resident: "r-a", End: now.Add(time.Hour), Author: "lead", Reason: "på sjukhus"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := kj.State(silenceFile); !ok {
		t.Fatal("the silence was not given to the journal")
	}
	if _, err := os.Stat(filepath.Join(dir, silenceFile)); !os.IsNotExist(err) {
		t.Fatalf("silences written to data_dir beside the journal: %v", err)
	}
	// The hub that takes over: a new hub on the same journal state.
	h2, err := New(Options{Config: &cfg, Journal: kj, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if s := h2.Silences(); len(s) != 1 || s[0].Resident != "r-a" {
		t.Fatalf("silences on the hub that took over: %+v", s)
	}
	h2.HandleEvent("s", "gw", payload("e1", "bed-a", "0012", "empty", now))
	now = now.Add(20 * time.Minute)
	h2.Tick()
	for _, a := range h2.Alarms() {
		if a.Rule == "bed_exit" {
			t.Fatalf("a silenced bed exit raised on the hub that took over: %+v", a)
		}
	}
}

// onlyJournal hides the local journal's extra methods, as the replicated
// journal lacks them: the hub must write the same records without them.
type onlyJournal struct{ Journal }

// Records already encoded (a night's look-ins) reach a journal without
// AppendEncoded through AppendRecords, as the same lines.
func TestAppendEncodedWithoutTheFastPath(t *testing.T) {
	at := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)
	items := []store.EncodedItem{{At: at, Body: []byte(`{"resident":"r-1","result":"ok"}`)},
		{At: at.Add(time.Minute), Body: []byte(`{"resident":"r-2","result":"cannot_tell"}`)}}
	lines := func(j Journal, dir string) []byte {
		t.Helper()
		if err := appendEncoded(j, RecTillsyn, items); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	open := func() (*store.Journal, string) {
		dir := t.TempDir()
		j, _, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return j, dir
	}
	fast, fdir := open()
	if _, ok := Journal(fast).(encodedAppender); !ok {
		t.Fatal("the local journal lost AppendEncoded")
	}
	slow, sdir := open()
	want, got := lines(fast, fdir), lines(onlyJournal{slow}, sdir)
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("without AppendEncoded the journal holds\n%s\nwant\n%s", got, want)
	}
	re, _, err := store.Open(sdir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if rs := re.Records(); len(rs) != 2 || rs[1].Type != RecTillsyn || !bytes.Contains(rs[1].Body, []byte("cannot_tell")) {
		t.Errorf("records read back: %+v", rs)
	}
}
