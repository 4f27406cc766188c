package hub

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

// A gateway's drivers count what they could not use: payloads that did not
// decode (malformed), properties and action words that map to nothing
// (unmapped: an unknown button word may have been a call) and valid input
// of a kind they do not read (unsupported), and the configured devices
// they know cannot work (problems). The counts travel in the heartbeat;
// here they become metrics and, when malformed or unmapped rise or a
// problem appears, a technical alarm, so a drop never lives only in a
// gateway's log.

// InputKey is the alarm key of a gateway driver's input alarm.
func InputKey(site, gateway, driver string) string {
	return rules.RuleGatewayFault + "/" + site + "/" + gateway + "/input-" + driver
}

// checkInput compares a gateway's report with its previous one (empty for
// the gateway's first heartbeat: all it counted is new) and raises a
// technical alarm per driver whose malformed or unmapped count rose. A
// count below the previous one is a gateway restart: it rose by itself.
// After a hub restart the first report is only a baseline, so old drops
// are not raised again.
// Unsupported input is only counted: it is valid, and nothing was lost.
func (h *Hub) checkInput(site, gateway string, prev, rep *GatewayReport, now time.Time) {
	old := map[string][2]int64{}
	oldProblems := map[string][]string{}
	for _, d := range prev.Drivers {
		old[d.Name] = [2]int64{d.Malformed, d.Unmapped}
		oldProblems[d.Name] = d.Problems
	}
	for _, d := range rep.Drivers {
		h.checkProblems(site, gateway, d.Name, oldProblems[d.Name], d.Problems, now)
	}
	for _, d := range rep.Drivers {
		o := old[d.Name]
		mal, unm := rise(o[0], d.Malformed), rise(o[1], d.Unmapped)
		if mal == 0 && unm == 0 {
			continue
		}
		words := d.Words
		if len(words) > 5 {
			words = words[:5]
		}
		note := fmt.Sprintf("%s: %d felaktiga, %d okända meddelanden / %d malformed, %d unmapped (total %d, %d)",
			d.Name, mal, unm, mal, unm, d.Malformed, d.Unmapped)
		if len(words) > 0 {
			note += "; " + strings.Join(words, ", ")
		}
		h.log.Error("hub: a gateway driver could not use its input", "site", site, "gateway", gateway,
			"driver", d.Name, "malformed", mal, "unmapped", unm)
		h.apply(rules.Action{Kind: rules.Raise, Rule: rules.RuleGatewayFault, Key: InputKey(site, gateway, d.Name),
			Alarm: alarm.KindTechnical, Priority: 3, Status: event.IPConnectionFailed, Site: site, Gateway: gateway,
			Device: d.Name, Type: event.CommLink, Note: note}, now)
	}
}

// ProblemKey is the alarm key of a gateway driver's device problems.
func ProblemKey(site, gateway, driver string) string {
	return rules.RuleGatewayFault + "/" + site + "/" + gateway + "/devices-" + driver
}

// checkProblems raises a technical alarm when a driver reports configured
// devices that cannot work (a call button whose zigbee2mqtt definition has
// no press), updates it when new ones appear, and restores it when none
// are left.
func (h *Hub) checkProblems(site, gateway, driver string, old, cur []string, now time.Time) {
	fresh := 0
	for _, p := range cur {
		if !slices.Contains(old, p) {
			fresh++
		}
	}
	key := ProblemKey(site, gateway, driver)
	base := rules.Action{Rule: rules.RuleGatewayFault, Key: key, Alarm: alarm.KindTechnical, Priority: 2,
		Site: site, Gateway: gateway, Device: driver, Type: event.CommLink}
	switch {
	case fresh > 0:
		list := cur
		if len(list) > 5 {
			list = list[:5]
		}
		h.log.Error("hub: a gateway reports devices that cannot work as configured", "site", site, "gateway", gateway,
			"driver", driver, "count", len(cur))
		a := base
		a.Kind, a.Status = rules.Raise, event.Offline
		a.Note = fmt.Sprintf("%d enheter kan inte fungera som de är inställda / %d devices cannot work as configured: %s",
			len(cur), len(cur), strings.Join(list, "; "))
		h.apply(a, now)
	case len(cur) == 0 && len(old) > 0:
		a := base
		a.Kind, a.Status, a.Note = rules.Restore, event.Restoral, "alla enheter stämmer / every device fits its definition"
		h.apply(a, now)
	}
}

func rise(old, cur int64) int64 {
	if cur < old {
		return cur
	}
	return cur - old
}

// inputCollector exports each gateway's reported drops as
// vaka_gateway_input_total{site,gateway,driver,reason} and
// vaka_gateway_dropped_total{site,gateway}, from the latest heartbeats.
type inputCollector struct {
	h                   *Hub
	input, drop, queued *prometheus.Desc
}

func newInputCollector(h *Hub) *inputCollector {
	return &inputCollector{h: h,
		input: prometheus.NewDesc("vaka_gateway_input_total",
			"Input a gateway driver could not use, as its latest heartbeat reports: malformed (did not decode), unmapped (a property or word that maps to nothing), unsupported (valid, not read). Counted since the gateway started.",
			[]string{"site", "gateway", "driver", "reason"}, nil),
		drop: prometheus.NewDesc("vaka_gateway_dropped_total",
			"Events a gateway dropped (outbox full, evicted, invalid, shutdown), as its latest heartbeat reports.",
			[]string{"site", "gateway"}, nil),
		queued: prometheus.NewDesc("vaka_gateway_queued",
			"Events waiting in a gateway's outbox or spool for the hub, as its latest heartbeat reports.",
			[]string{"site", "gateway"}, nil),
	}
}

func (c *inputCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.input
	ch <- c.drop
	ch <- c.queued
}

func (c *inputCollector) Collect(ch chan<- prometheus.Metric) {
	c.h.mu.RLock()
	defer c.h.mu.RUnlock()
	for k, r := range c.h.reports {
		site, gw, _ := strings.Cut(k, "/")
		ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(r.Dropped), site, gw)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(r.Spool), site, gw)
		seen := map[string]bool{}
		for _, d := range r.Drivers {
			name := safeLabel(d.Name)
			if seen[name] || len(seen) == maxReportDrivers {
				continue // a repeated name would break the whole scrape
			}
			seen[name] = true
			for _, v := range [...]struct {
				reason string
				n      int64
			}{{"malformed", d.Malformed}, {"unmapped", d.Unmapped}, {"unsupported", d.Unsupported}} {
				ch <- prometheus.MustNewConstMetric(c.input, prometheus.CounterValue, float64(v.n), site, gw, name, v.reason)
			}
		}
	}
}

// maxReportDrivers bounds the drivers exported per gateway.
const maxReportDrivers = 16

// safeLabel keeps a driver name from a gateway's payload fit for a label.
func safeLabel(s string) string {
	if event.ValidName(s) != nil {
		return "invalid"
	}
	return s
}
