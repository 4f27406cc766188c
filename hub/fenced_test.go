package hub

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// refusingJournal is the local journal presented as a redundant group's
// (Fenced): while refuse is set every append fails as the replicated
// journal's does when this hub was deposed or lost its quorum. The real
// replicated journal is tested in cmd/vaka (TestIntegrationClusterEscalationOnce).
type refusingJournal struct {
	*store.Journal
	refuse atomic.Bool
}

var errRefused = errors.New("test: append refused (another hub is active)")

func (j *refusingJournal) Fenced() bool { return true }

func (j *refusingJournal) Append(t *alarm.Transition) error {
	if j.refuse.Load() {
		return errRefused
	}
	return j.Journal.Append(t)
}

func (j *refusingJournal) AppendAll(ts []*alarm.Transition) error {
	if j.refuse.Load() {
		return errRefused
	}
	return j.Journal.AppendAll(ts)
}

const fencedYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: natt1, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}
  - {username: lead1, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 0s}
    units:
      - {id: u}
    residents:
      - {id: r-a, unit: u}
    gateways:
      - id: gw
        devices:
          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: "12"}
          - {id: btn-b, type: personal_trigger, resident: r-a, unit: u, room: "14"}
routing:
  receivers:
    - {name: natt, users: [natt1]}
    - {name: lead, users: [lead1]}
  route: {receiver: natt, escalate: [lead], accept_timeout: 10s, remind_every: 0s}
`

// On a redundant group's journal the hub alerts nobody for a step the
// journal refused: not the first notify of an alarm raised while it is
// refused (its raise is held and shown, the notify waits with it), not an
// escalation (not applied; the notifier tries again). Once the journal
// takes them, each is sent exactly once.
func TestFencedJournalAlertsOnlyWhatIsJournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, replay, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		j := &refusingJournal{Journal: st}
		h, d, pl := pushingHub(t, loadConfig(t, fencedYAML), j, replay)
		closeAll := sync.OnceFunc(func() { d.Close(); st.Close() })
		defer closeAll()
		steps := func(id string) map[alarm.Action]int {
			n := map[alarm.Action]int{}
			for _, p := range pl.to(id) {
				n[p.m.Step]++
			}
			return n
		}

		h.HandleEvent("s", "gw", press("p-1", time.Now()))
		synctest.Wait()
		list := h.Alarms()
		if len(list) != 1 {
			t.Fatalf("%d alarms, want 1", len(list))
		}
		a1 := list[0].ID
		if n := steps(a1); n[alarm.ActNotify] != 1 {
			t.Fatalf("first alarm pushed %v, want one notify", n)
		}

		// The journal refuses: the escalation due at 10 s is not made and
		// nobody is alerted; a new press is shown but alerts nobody.
		j.refuse.Store(true)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if n := steps(a1); n[alarm.ActEscalate] != 0 {
			t.Fatalf("escalation pushed while the journal refused it: %v", n)
		}
		if d.NotKept.Load() == 0 {
			t.Fatal("the notifier was never told its step was not kept")
		}
		if a, _ := h.Alarm(a1); a.Tier() != 0 {
			t.Fatalf("alarm at tier %d after a refused escalation, want 0 (not applied)", a.Tier())
		}
		h.HandleEvent("s", "gw", evPayload("p-2", "btn-b", "0003", "pressed", "", time.Now()))
		synctest.Wait()
		var a2 string
		for _, a := range h.Alarms() {
			if a.ID != a1 && a.Device == "btn-b" {
				a2 = a.ID
			}
		}
		if a2 == "" {
			t.Fatalf("the press while the journal refused is not shown: %+v", h.Alarms())
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := steps(a1); n[alarm.ActEscalate] != 0 {
			t.Fatalf("escalation pushed on a retry while refused: %v", n)
		}
		if n := steps(a2); len(n) != 0 {
			t.Fatalf("alarm raised while the journal refused it pushed %v, want nothing yet", n)
		}

		// The journal takes appends again: each step is sent once.
		j.refuse.Store(false)
		h.Tick()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := steps(a1); n[alarm.ActNotify] != 1 || n[alarm.ActEscalate] != 1 {
			t.Fatalf("first alarm pushed %v, want one notify and one escalate", n)
		}
		if n := steps(a2); n[alarm.ActNotify] != 1 {
			t.Fatalf("second alarm pushed %v once journaled, want one notify", n)
		}
		if a, _ := h.Alarm(a1); a.Tier() != 1 {
			t.Fatalf("alarm at tier %d, want 1", a.Tier())
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := steps(a1); n[alarm.ActEscalate] != 1 {
			t.Fatalf("first alarm pushed %v later, want still one escalate", n)
		}
		if n := steps(a2); n[alarm.ActNotify] != 1 || n[alarm.ActEscalate] != 1 {
			t.Fatalf("second alarm pushed %v, want one notify, then one escalate", n)
		}
		closeAll()
	})
}
