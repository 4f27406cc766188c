package hub

import (
	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/rules"
)

// CentreUnreachable raises (down true) or restores the technical alarm
// that an alarm receiving centre stopped answering the SCAIP heartbeats
// (notify/scaip.go). One alarm per centre receiver, keyed by its name, so
// a second silent centre is its own alarm and a restore clears only its
// own. It is what notify.CentreAlarms asks of the recorder.
func (h *Hub) CentreUnreachable(receiver string, down bool, note string) {
	kind := rules.Raise
	if !down {
		kind = rules.Restore
	}
	h.apply(rules.Action{Kind: kind, Rule: notify.RuleCentreUnreachable, Key: notify.RuleCentreUnreachable + ":" + receiver,
		Alarm: alarm.KindTechnical, Priority: 2, Status: event.IPConnectionFailed, Type: event.CommLink, Site: "hub",
		Device: "scaip:" + receiver, Note: note}, h.now())
}
