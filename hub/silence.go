package hub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/record"
	"github.com/vaka-care/vaka/rules"
)

// Silence holds back new alarms that match it until End: the resident is
// in hospital, the door sensor is being replaced. It always has an author
// and an end, so nothing is silenced by accident or forever. Open alarms
// are not touched, and call buttons cannot be silenced by resident or
// site: a person asking for help is always heard.
type Silence struct {
	ID       string    `json:"id"`
	Site     string    `json:"site"`
	Resident string    `json:"resident,omitempty"`
	Device   string    `json:"device,omitempty"`
	Rule     string    `json:"rule,omitempty"` // empty: every rule but the call button and fall
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Author   string    `json:"author"`
	Reason   string    `json:"reason"`
}

// MaxSilence bounds a silence's length.
const MaxSilence = 90 * 24 * time.Hour

func (s *Silence) validate(now time.Time) error {
	switch {
	case s.Site == "":
		return errors.New("hub: a silence needs a site")
	case s.Resident == "" && s.Device == "" && s.Rule == "":
		return errors.New("hub: a silence needs a resident, a device or a rule; a whole site cannot be silenced")
	case s.Author == "":
		return errors.New("hub: a silence needs an author")
	case s.Reason == "" || len(s.Reason) > 500:
		return errors.New("hub: a silence needs a reason (≤ 500 characters)")
	case !s.End.After(now):
		return errors.New("hub: a silence must end in the future")
	case s.End.Sub(now) > MaxSilence:
		return fmt.Errorf("hub: a silence may last at most %v", MaxSilence)
	}
	if s.Rule != "" {
		if _, ok := rules.Rules[s.Rule]; !ok {
			return fmt.Errorf("hub: unknown rule %q", s.Rule)
		}
	}
	for _, v := range []string{s.Site, s.Resident, s.Device} {
		if v != "" && event.ValidName(v) != nil {
			return errors.New("hub: site, resident and device must be identifiers")
		}
	}
	return nil
}

func (s *Silence) matches(a rules.Action, now time.Time) bool {
	if now.Before(s.Start) || !now.Before(s.End) || s.Site != a.Site {
		return false
	}
	if s.Rule == "" && (a.Rule == rules.RuleCallButton || a.Rule == rules.RuleFall || a.Alarm == alarm.KindHazard) {
		// A person asking for help, a fall, and smoke, gas or water (a
		// danger to everyone in the home, resident in hospital or not)
		// are silenced only by a silence that names the rule.
		return false
	}
	if s.Rule != "" && s.Rule != a.Rule {
		return false
	}
	if s.Resident != "" && s.Resident != a.Resident {
		return false
	}
	if s.Device != "" && s.Device != a.Device {
		return false
	}
	return true
}

func (h *Hub) silencedLocked(a rules.Action, now time.Time) (*Silence, bool) {
	for i := range h.silences {
		if h.silences[i].matches(a, now) {
			return &h.silences[i], true
		}
	}
	return nil, false
}

// AddSilence validates, stores and persists a silence.
func (h *Hub) AddSilence(s Silence) (Silence, error) {
	now := h.now()
	if s.Start.IsZero() {
		s.Start = now
	}
	if err := s.validate(now); err != nil {
		return Silence{}, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.ID = "S" + hex.EncodeToString(b[:])
	h.mu.Lock()
	defer h.mu.Unlock()
	next := append(slices.Clone(h.silences), s)
	if err := h.saveSilencesLocked(next); err != nil {
		return Silence{}, err
	}
	h.silences = next
	h.log.Info("hub: silence added", "silence", s.ID, "site", s.Site, "resident", s.Resident, "rule", s.Rule, "until", s.End, "author", s.Author)
	return s, nil
}

// EndSilence ends a silence now.
func (h *Hub) EndSilence(id, by string) error {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.silences, func(s Silence) bool { return s.ID == id })
	if i < 0 {
		return ErrNotFound
	}
	next := slices.Clone(h.silences)
	next[i].End = now
	if err := h.saveSilencesLocked(next); err != nil {
		return err
	}
	h.silences = next
	h.log.Info("hub: silence ended", "silence", id, "by", by)
	return nil
}

// Silences lists silences that have not ended.
func (h *Hub) Silences() []Silence {
	now := h.now()
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []Silence
	for _, s := range h.silences {
		if now.Before(s.End) {
			out = append(out, s)
		}
	}
	return out
}

const silenceFile = "silences.json"

// saveSilencesLocked writes the file atomically (temp file, fsync, rename).
func (h *Hub) saveSilencesLocked(list []Silence) error {
	if h.dataDir == "" {
		return nil
	}
	// Keep ended silences a week for the record, then let them go.
	cut := h.now().Add(-7 * 24 * time.Hour)
	keep := list[:0:0]
	for _, s := range list {
		if s.End.After(cut) {
			keep = append(keep, s)
		}
	}
	b, err := json.MarshalIndent(keep, "", "  ")
	if err != nil {
		return fmt.Errorf("hub: encode silences: %w", err)
	}
	if k, ok := h.journal.(StateKeeper); ok {
		// A redundant group: every hub must see the same silences.
		return k.SaveState(silenceFile, b)
	}
	// Atomic and durable, the rename included: a silence an operator set
	// must not come back half-written or vanish after a power cut.
	if err := record.WriteFile(filepath.Join(h.dataDir, silenceFile), b, 0o640); err != nil {
		return fmt.Errorf("hub: save silences: %w", err)
	}
	return nil
}

func (h *Hub) loadSilences() error {
	if k, ok := h.journal.(StateKeeper); ok {
		b, found := k.State(silenceFile)
		if !found {
			return nil
		}
		if err := json.Unmarshal(b, &h.silences); err != nil {
			return fmt.Errorf("hub: load silences from the journal: %w", err)
		}
		return nil
	}
	if h.dataDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(h.dataDir, silenceFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hub: load silences: %w", err)
	}
	if err := json.Unmarshal(b, &h.silences); err != nil {
		return fmt.Errorf("hub: load silences %s: %w", filepath.Join(h.dataDir, silenceFile), err)
	}
	return nil
}
