package service

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
)

// places is the config read for the staff app's "where" and "access":
// names, addresses, door information, device placements and geofences,
// indexed once per config (a reload builds a new index).
type places struct {
	sites map[string]*sitePlace
	tiles string
}

type sitePlace struct {
	name, address string
	units         map[string]*hub.Unit
	residents     map[string]*hub.Resident
	// placements holds only the devices with a placement ("by the
	// bed"): most call buttons have none, and a stream frame for one of
	// them then finds nothing in a small map instead of a cache-cold
	// entry and device record among a region's 250,000 (about 1 µs of
	// CPU per frame at 10,000 alarms/s).
	placements map[string]placement
	fences     map[string]*hub.Circle
}

func indexPlaces(cfg *hub.Config) *places {
	p := &places{sites: map[string]*sitePlace{}, tiles: cfg.HTTP.MapTiles}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		sp := &sitePlace{name: s.Name, address: s.Address, units: map[string]*hub.Unit{},
			residents: map[string]*hub.Resident{}, placements: map[string]placement{}, fences: map[string]*hub.Circle{}}
		for k := range s.Units {
			sp.units[s.Units[k].ID] = &s.Units[k]
		}
		for k := range s.Residents {
			sp.residents[s.Residents[k].ID] = &s.Residents[k]
		}
		for j := range s.Gateways {
			for k := range s.Gateways[j].Devices {
				sp.addPlacement(&s.Gateways[j].Devices[k])
			}
		}
		for k := range s.Trackers {
			sp.addPlacement(&s.Trackers[k])
		}
		for _, g := range s.Geofences {
			if g.Circle != nil {
				sp.fences[g.ID] = g.Circle
			}
		}
		p.sites[s.ID] = sp
	}
	return p
}

// placement is a device's placement in Swedish and English.
type placement struct{ sv, en string }

// addPlacement indexes d's placement, if it has one. A later device with
// the same id replaces an earlier one, as the map of devices did.
func (sp *sitePlace) addPlacement(d *hub.Device) {
	if d.Placement == "" && d.PlacementEN == "" {
		delete(sp.placements, d.ID)
		return
	}
	sp.placements[d.ID] = placement{d.Placement, d.PlacementEN}
}

// unitOf is the alarm's unit, or its resident's.
func (sp *sitePlace) unitOf(a *alarm.Alarm) *hub.Unit {
	id := a.Unit
	if id == "" {
		if r := sp.residents[a.Resident]; r != nil {
			id = r.Unit
		}
	}
	return sp.units[id]
}

func (p *places) where(a *alarm.Alarm, personal bool) *httpapi.Where {
	sp := p.sites[a.Site]
	if sp == nil {
		return nil
	}
	w := &httpapi.Where{SiteName: sp.name, Address: sp.address}
	u := sp.unitOf(a)
	if u != nil {
		w.UnitName = u.Name
		if u.Address != "" {
			w.Address = u.Address
		}
		w.RoomName = u.Rooms[a.Room]
		if fp := u.FloorPlan; fp != nil {
			w.FloorPlan = &httpapi.FloorPlan{URL: "/api/v1/sites/" + url.PathEscape(a.Site) + "/units/" + url.PathEscape(u.ID) + "/floor-plan",
				South: fp.South, West: fp.West, North: fp.North, East: fp.East}
		}
	}
	r := sp.residents[a.Resident]
	if r != nil && r.Address != "" && personal {
		w.Address = r.Address
	}
	var placeSV, placeEN string
	if pl, ok := sp.placements[a.Device]; ok {
		placeSV, placeEN = pl.sv, pl.en
	}
	if a.DeviceType != "" || placeSV != "" {
		w.DeviceText = httpapi.DeviceText(a.DeviceType, placeSV, placeEN)
	}
	if r != nil && (a.Position() != nil || a.Kind == alarm.KindWander || a.DeviceType == event.Tracker) {
		for _, id := range r.Geofences {
			if c := sp.fences[id]; c != nil {
				w.Geofence = &httpapi.GeoCircle{Lat: c.Lat, Lon: c.Lon, RadiusM: c.Radius}
				break
			}
		}
	}
	if a.Position() != nil || w.Geofence != nil {
		w.MapTiles = p.tiles
	}
	if *w == (httpapi.Where{}) {
		return nil
	}
	return w
}

// access is the resident's door information, else the unit's.
func (p *places) access(a *alarm.Alarm) *httpapi.AccessInfo {
	sp := p.sites[a.Site]
	if sp == nil {
		return nil
	}
	var ac *hub.Access
	if r := sp.residents[a.Resident]; r != nil && r.Access != nil {
		ac = r.Access
	} else if u := sp.unitOf(a); u != nil && u.Access != nil {
		ac = u.Access
	}
	if ac == nil {
		return nil
	}
	return &httpapi.AccessInfo{KeyBox: ac.KeyBox, DoorCode: ac.DoorCode, Note: ac.Note}
}

// placesOf follows the hub's current config, re-indexing after a reload.
type placesOf struct {
	h    *hub.Hub
	mu   sync.Mutex
	for_ *hub.Config
	p    *places
}

func (po *placesOf) get() *places {
	cfg := po.h.Config()
	po.mu.Lock()
	defer po.mu.Unlock()
	if cfg != po.for_ {
		po.for_, po.p = cfg, indexPlaces(cfg)
	}
	return po.p
}

// tileOrigin is the tile server's origin for the page's CSP, or nothing.
func tileOrigin(tmpl string) []string {
	if tmpl == "" {
		return nil
	}
	u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a").Replace(tmpl))
	if err != nil || u.Host == "" {
		return nil
	}
	if strings.Contains(tmpl, "{s}") {
		// Subdomain-sharded servers: allow the parent domain's hosts.
		host := strings.Replace(u.Host, "a.", "*.", 1)
		return []string{u.Scheme + "://" + host}
	}
	return []string{u.Scheme + "://" + u.Host}
}

// floorPlanRoute serves a unit's floor-plan image to staff.
func floorPlanRoute(h *hub.Hub) httpapi.Route {
	return httpapi.Route{Method: http.MethodGet, Pattern: "/api/v1/sites/{site}/units/{unit}/floor-plan",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			site, unit := chi.URLParam(r, "site"), chi.URLParam(r, "unit")
			for _, s := range h.Config().Sites {
				if s.ID != site {
					continue
				}
				for _, u := range s.Units {
					if u.ID == unit && u.FloorPlan != nil {
						path := u.FloorPlan.Path()
						if strings.ToLower(filepath.Ext(path)) == ".svg" {
							// An SVG can carry script: never let it run.
							w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
						}
						w.Header().Set("Cache-Control", "private, max-age=300")
						http.ServeFile(w, r, path)
						return
					}
				}
			}
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no floor plan for this unit"})
		})}
}
