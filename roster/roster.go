// Package roster is the shift roster: who is on duty where, and when. The
// route tree (package notify) asks it for the staff on duty at an alarm's
// site and unit at the alarm's time, so a receiver can be "whoever works
// tonight on avd-a" instead of a fixed list that wakes people at home.
//
// A roster comes from two places: a CSV file named in the hub config
// (roster.file, exported from the municipality's scheduling system) and
// shifts added through the API by leads and admins, which are persisted
// in the data directory and survive a restart. Shift times are local
// wall-clock times in the hub's time zone: a night shift 22:00–07:00
// starting on the last Saturday of March is one hour shorter than usual,
// and one on the last Saturday of October one hour longer; both are
// computed with the zone's rules, never by adding hours.
package roster

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

// Daily is the Date of a shift that repeats every day.
const Daily = "daily"

// Shift is one person on duty for one site (and unit, if set) from Start
// to End local time on Date; an End not after Start is on the next day.
type Shift struct {
	User  string `json:"user"`
	Site  string `json:"site,omitempty"` // empty: every site
	Unit  string `json:"unit,omitempty"` // empty: the whole site
	Date  string `json:"date"`           // YYYY-MM-DD or "daily"
	Start string `json:"start"`          // HH:MM
	End   string `json:"end"`            // HH:MM

	line int // its line in the roster file, for errors found later
}

// Line is the shift's line in the roster file it was read from (0: from
// the API), so a check that needs the rest of the config (is the user an
// account?) can still name the line.
func (s Shift) Line() int { return s.line }

// Check reports the first problem with s as a field name and a message.
func (s Shift) Check() (field, msg string) {
	switch {
	case s.User == "":
		return "user", "missing"
	case s.Site != "" && event.ValidName(s.Site) != nil:
		return "site", "not a site id"
	case s.Unit != "" && event.ValidName(s.Unit) != nil:
		return "unit", "not a unit id"
	case s.Date != Daily && !validDate(s.Date):
		return "date", "want YYYY-MM-DD or daily"
	case !validClock(s.Start):
		return "start", "want HH:MM"
	case !validClock(s.End):
		return "end", "want HH:MM"
	case s.Start == s.End:
		return "end", "same as start: a shift cannot be empty"
	}
	return "", ""
}

func validDate(d string) bool { _, err := time.Parse("2006-01-02", d); return err == nil }

func validClock(c string) bool { _, err := time.Parse("15:04", c); return err == nil && len(c) == 5 }

// span returns the shift's interval when it starts on the day of y/m/d.
func (s Shift) span(y int, m time.Month, d int, loc *time.Location) (from, to time.Time) {
	sh, _ := time.Parse("15:04", s.Start)
	eh, _ := time.Parse("15:04", s.End)
	from = time.Date(y, m, d, sh.Hour(), sh.Minute(), 0, 0, loc)
	ed := d
	if s.End <= s.Start {
		ed++ // across midnight: time.Date normalises the day
	}
	to = time.Date(y, m, ed, eh.Hour(), eh.Minute(), 0, 0, loc)
	return from, to
}

// Covers reports whether s is on duty at instant at (start inclusive, end
// exclusive), read in loc.
func (s Shift) Covers(at time.Time, loc *time.Location) bool {
	local := at.In(loc)
	// A shift that covers at started today or (across midnight) yesterday.
	for _, back := range []int{0, -1} {
		day := time.Date(local.Year(), local.Month(), local.Day()+back, 12, 0, 0, 0, loc)
		if s.Date != Daily && day.Format("2006-01-02") != s.Date {
			continue
		}
		from, to := s.span(day.Year(), day.Month(), day.Day(), loc)
		if !at.Before(from) && at.Before(to) {
			return true
		}
	}
	return false
}

func (s Shift) matches(site, unit string) bool {
	if s.Site != "" && s.Site != site {
		return false
	}
	return s.Unit == "" || s.Unit == unit
}

// Columns of a roster CSV file; user, date, start and end are required.
var Columns = []string{"user", "site", "unit", "date", "start", "end"}

// MaxFileSize bounds a roster file (a year of a large municipality's
// shifts is a few MB).
const MaxFileSize = 16 << 20

// ParseCSV reads a roster file (named name in errors): a header of the
// Columns in any order, lines starting with # are comments. Every error
// is a *config.Error naming the file, line and column.
func ParseCSV(name string, r io.Reader) ([]Shift, error) {
	lr := &io.LimitedReader{R: r, N: MaxFileSize + 1}
	cr := csv.NewReader(lr)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	var errs []error
	fail := func(line int, field, format string, a ...any) {
		if len(errs) < 50 {
			errs = append(errs, &config.Error{File: name, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
		}
	}
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &config.Error{File: name, Line: 1, Msg: "empty: want a header " + strings.Join(Columns, ",")}
		}
		return nil, &config.Error{File: name, Line: 1, Msg: err.Error()}
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(Columns, h) {
			fail(1, h, "unknown column; columns: %s", strings.Join(Columns, ", "))
			continue
		}
		if _, dup := col[h]; dup {
			fail(1, h, "column twice")
		}
		col[h] = i
	}
	for _, req := range []string{"user", "date", "start", "end"} {
		if _, ok := col[req]; !ok {
			fail(1, req, "missing column")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out []Shift
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			line := 0
			if errors.As(err, &pe) {
				line = pe.Line
			}
			fail(line, "", "%v", err)
			if !errors.As(err, &pe) {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		s := Shift{User: get("user"), Site: get("site"), Unit: get("unit"), Date: strings.ToLower(get("date")),
			Start: get("start"), End: get("end"), line: line}
		if f, msg := s.Check(); f != "" {
			fail(line, f, "%s", msg)
			continue
		}
		out = append(out, s)
	}
	if lr.N <= 0 {
		fail(0, "", "larger than %d bytes", MaxFileSize)
	}
	return out, errors.Join(errs...)
}

// Roster answers who is on duty. It is safe for concurrent use: the route
// tree reads it for every alarm while the API changes it.
type Roster struct {
	loc  *time.Location
	path string // where API shifts are persisted; empty: in memory only

	mu   sync.RWMutex
	file []Shift // from roster.file, replaced on reload
	api  []Shift // from the API, persisted

	sync syncState // a redundant group's replication (sync.go)
}

// Open returns a roster reading shifts in loc, with the API's shifts
// persisted at path (loaded if it exists; empty path: kept in memory).
func Open(loc *time.Location, path string) (*Roster, error) {
	if loc == nil {
		loc = time.UTC
	}
	r := &Roster{loc: loc, path: path}
	if path == "" {
		return r, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("roster: %w", err)
	}
	if err := json.Unmarshal(b, &r.api); err != nil {
		return nil, fmt.Errorf("roster: %s: %w", path, err)
	}
	return r, nil
}

// SetFile replaces the shifts read from the roster file.
func (r *Roster) SetFile(shifts []Shift) {
	r.mu.Lock()
	r.file = slices.Clone(shifts)
	r.mu.Unlock()
}

// Shifts returns the file's and the API's shifts.
func (r *Roster) Shifts() (file, api []Shift) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.file), slices.Clone(r.api)
}

// SetAPI replaces the API's shifts and persists them before returning, so
// a shift the lead was told is saved survives a restart; in a redundant
// group it also replicates them (SetSync), and returns ErrNotReplicated
// if the group did not take them.
func (r *Roster) SetAPI(shifts []Shift) error {
	for i, s := range shifts {
		if f, msg := s.Check(); f != "" {
			return fmt.Errorf("roster: shift %d: %s: %s", i, f, msg)
		}
	}
	// In a redundant group the shifts go to the other hubs too, after
	// the local save and outside r.mu (alarm routing reads the roster;
	// it must not wait for the group), under the order lock, so two PUTs
	// reach the group in the order they were saved here.
	r.sync.order.Lock()
	defer r.sync.order.Unlock()
	if err := r.setLocal(shifts); err != nil {
		return err
	}
	return r.replicate(shifts)
}

func (r *Roster) setLocal(shifts []Shift) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path != "" {
		b, err := json.MarshalIndent(shifts, "", " ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(r.path, b); err != nil {
			return fmt.Errorf("roster: save: %w", err)
		}
	}
	r.api = slices.Clone(shifts)
	return nil
}

// OnDuty returns the users on duty for site and unit at instant at, in
// sorted order without duplicates.
func (r *Roster) OnDuty(site, unit string, at time.Time) []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{}
	for _, list := range [][]Shift{r.file, r.api} {
		for _, s := range list {
			if s.matches(site, unit) && s.Covers(at, r.loc) {
				seen[s.User] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".roster-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
