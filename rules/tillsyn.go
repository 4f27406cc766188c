package rules

import (
	"time"

	"github.com/vaka-care/vaka/tillsyn"
)

// TillsynSnapshot is what the engine knows, at now, of a resident's sensors
// that a look-in reads (package tillsyn): each one's last report, when it
// was last heard, its supervision period and whether it is silent (its
// supervision alarm fired, or its gateway or link is down). The engine's
// own consent for the resident is folded into Consent. Open alarms are the
// hub's to add.
func (e *Engine) TillsynSnapshot(site, resident string, refs []tillsyn.SensorRef, now time.Time) tillsyn.Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tillsynSnapshotLocked(site, resident, refs, now, nil)
}

// tillsynSnapshotLocked is TillsynSnapshot under e.mu, its sensors
// appended to sensors (from length 0).
func (e *Engine) tillsynSnapshotLocked(site, resident string, refs []tillsyn.SensorRef, now time.Time, sensors []tillsyn.Sensor) tillsyn.Snapshot {
	s := tillsyn.Snapshot{At: now, Sensors: sensors[:0]}
	ss := e.sites[site]
	if ss == nil {
		return s
	}
	rs := ss.res[resident]
	if rs != nil {
		s.Consent = rs.res.Consent[RuleTillsyn]
		s.BedEmpty, s.InBedSince, s.LastMotion = rs.bedEmpty, rs.inBedSince, rs.lastMotion
	}
	for _, ref := range refs {
		sn := tillsyn.Sensor{Device: ref.Device, Role: ref.Role}
		if ds := ss.devs[ref.Device]; ds != nil {
			sn.Heard = ds.heard
			if ds.heard {
				sn.LastSeen = ds.lastSeen
			}
			if p, ok := ss.cfg.period(ds.dev); ok && p > 0 {
				sn.Period = p
			}
			sn.Silent = ds.silentRaised || e.gatewayOffline(site, ds.dev.Gateway) || e.linkDown(site, ds.dev, now)
			sn.State = string(ds.state)
		}
		s.Sensors = append(s.Sensors, sn)
	}
	return s
}
