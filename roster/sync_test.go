package roster

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// groupSync is the group as the roster sees it: it takes shifts, or
// refuses them when fail is set.
type groupSync struct {
	got  [][]Shift
	fail bool
}

func (g *groupSync) PutShifts(s []Shift) error {
	if g.fail {
		return errors.New("no quorum")
	}
	g.got = append(g.got, s)
	return nil
}

// TestSetAPIReplicates: with a sync set, a PUT's shifts go to the group
// after the local save; a refusal answers 503 (the shifts are saved and
// used here, the lead is told the group lacks them) and is counted;
// shifts applied from the group are saved, not sent back, and invalid
// ones are left out.
func TestSetAPIReplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roster.json")
	r, err := Open(stockholm(t), path)
	if err != nil {
		t.Fatal(err)
	}
	g := &groupSync{}
	r.SetSync(g)
	put := Routes(r, func(string) bool { return true }, nil)[1].Handler
	do := func(body string) int {
		rec := httptest.NewRecorder()
		put.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/api/v1/roster", strings.NewReader(body)))
		return rec.Code
	}
	if c := do(`{"shifts":[{"user":"natt1","date":"daily","start":"22:00","end":"07:00"}]}`); c != 200 || len(g.got) != 1 || g.got[0][0].User != "natt1" {
		t.Fatalf("PUT: %d, group got %+v", c, g.got)
	}
	g.fail = true
	if c := do(`{"shifts":[{"user":"natt2","date":"daily","start":"22:00","end":"07:00"}]}`); c != http.StatusServiceUnavailable {
		t.Errorf("PUT the group refused: %d, want 503", c)
	}
	if api := r.APIShifts(); len(api) != 1 || api[0].User != "natt2" {
		t.Errorf("the refused shifts are not used here: %+v", api)
	}
	if n := r.SyncFailures(); n != 1 {
		t.Errorf("sync failures %d, want 1", n)
	}
	g.fail = false
	kept, err := r.ApplyAPI([]Shift{{User: "natt3", Date: Daily, Start: "07:00", End: "15:00"}, {User: "", Date: Daily, Start: "x", End: "y"}})
	if err != nil || kept != 1 {
		t.Fatalf("ApplyAPI: kept %d, %v", kept, err)
	}
	if len(g.got) != 1 {
		t.Errorf("shifts applied from the group were sent back: %+v", g.got)
	}
	again, err := Open(stockholm(t), path)
	if err != nil {
		t.Fatal(err)
	}
	if api := again.APIShifts(); len(api) != 1 || api[0].User != "natt3" {
		t.Errorf("applied shifts not saved: %+v", api)
	}
	r.SetSync(nil)
	if err := r.SetAPI(nil); err != nil || len(g.got) != 1 {
		t.Errorf("with sync off: %v, group got %d", err, len(g.got))
	}
}
