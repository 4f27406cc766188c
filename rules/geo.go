package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Fence is a geofence: a circle or a polygon. A resident "inside" one of
// their fences is safe; leaving all of them, with a trustworthy fix, for
// longer than the hold time raises a wander alarm.
type Fence struct {
	ID     string
	Circle *Circle
	// Polygon is one outer ring of [lon, lat] points (GeoJSON order).
	Polygon [][2]float64
}

// Circle is a centre and a radius in metres.
type Circle struct {
	Lat, Lon, Radius float64
}

const earthRadius = 6371008.8 // metres, mean

// Distance is the great-circle distance in metres (haversine).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	r := math.Pi / 180
	dLat, dLon := (lat2-lat1)*r, (lon2-lon1)*r
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*r)*math.Cos(lat2*r)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Contains reports whether the point is inside the fence, shrunk by margin
// metres: a fix counts as outside only if even its accuracy circle cannot
// reach back inside. Callers pass the fix's accuracy as margin, so GPS
// jitter at the fence edge does not raise alarms.
func (f *Fence) Contains(lat, lon, margin float64) bool {
	if f.Circle != nil {
		return Distance(lat, lon, f.Circle.Lat, f.Circle.Lon) <= f.Circle.Radius+margin
	}
	if len(f.Polygon) < 3 {
		return false
	}
	if inPolygon(f.Polygon, lat, lon) {
		return true
	}
	if margin <= 0 {
		return false
	}
	return distToPolygon(f.Polygon, lat, lon) <= margin
}

// inPolygon is the even-odd ray test on a small area, in degrees.
func inPolygon(ring [][2]float64, lat, lon float64) bool {
	in := false
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		xi, yi := ring[i][0], ring[i][1]
		xj, yj := ring[j][0], ring[j][1]
		if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// distToPolygon is the distance in metres from the point to the nearest
// edge, on a local flat projection (fences are a few hundred metres).
func distToPolygon(ring [][2]float64, lat, lon float64) float64 {
	kx := math.Cos(lat*math.Pi/180) * earthRadius * math.Pi / 180
	ky := earthRadius * math.Pi / 180
	best := math.Inf(1)
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		ax, ay := (ring[j][0]-lon)*kx, (ring[j][1]-lat)*ky
		bx, by := (ring[i][0]-lon)*kx, (ring[i][1]-lat)*ky
		dx, dy := bx-ax, by-ay
		t := 0.0
		if l := dx*dx + dy*dy; l > 0 {
			t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l))
		}
		px, py := ax+t*dx, ay+t*dy
		best = math.Min(best, math.Hypot(px, py))
	}
	return best
}

// ParseGeoJSON reads a GeoJSON Polygon geometry, a Feature holding one, or
// a Point Feature with a "radius" property (metres) as a circle.
func ParseGeoJSON(id string, data []byte) (Fence, error) {
	var g struct {
		Type       string          `json:"type"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties struct {
			Radius float64 `json:"radius"`
		} `json:"properties"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if len(data) > 1<<20 {
		return Fence{}, errors.New("geojson: larger than 1 MiB")
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return Fence{}, fmt.Errorf("geojson: %w", err)
	}
	if g.Type == "Feature" {
		var geom struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		}
		if err := json.Unmarshal(g.Geometry, &geom); err != nil {
			return Fence{}, fmt.Errorf("geojson: geometry: %w", err)
		}
		if geom.Type == "Point" {
			var p []float64
			if err := json.Unmarshal(geom.Coordinates, &p); err != nil || len(p) < 2 {
				return Fence{}, errors.New("geojson: a Point needs [lon, lat]")
			}
			c := Circle{Lon: p[0], Lat: p[1], Radius: g.Properties.Radius}
			f := Fence{ID: id, Circle: &c}
			return f, f.Validate()
		}
		g.Type, g.Coordinates = geom.Type, geom.Coordinates
	}
	if g.Type != "Polygon" {
		return Fence{}, fmt.Errorf("geojson: type %q: want Polygon, or a Feature with a Polygon or a Point with a radius", g.Type)
	}
	var rings [][][]float64
	if err := json.Unmarshal(g.Coordinates, &rings); err != nil || len(rings) == 0 {
		return Fence{}, errors.New("geojson: Polygon coordinates must be a list of rings of [lon, lat]")
	}
	f := Fence{ID: id}
	for _, p := range rings[0] {
		if len(p) < 2 {
			return Fence{}, errors.New("geojson: a position needs [lon, lat]")
		}
		f.Polygon = append(f.Polygon, [2]float64{p[0], p[1]})
	}
	return f, f.Validate()
}

// Validate checks ranges.
func (f *Fence) Validate() error {
	ok := func(lat, lon float64) bool {
		return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
	}
	if f.Circle != nil {
		if !ok(f.Circle.Lat, f.Circle.Lon) {
			return errors.New("geofence: centre out of range")
		}
		if !(f.Circle.Radius > 0 && f.Circle.Radius < 100000) {
			return errors.New("geofence: radius must be between 0 and 100 km")
		}
		return nil
	}
	if len(f.Polygon) < 3 {
		return errors.New("geofence: a polygon needs at least 3 points")
	}
	for _, p := range f.Polygon {
		if !ok(p[1], p[0]) {
			return errors.New("geofence: polygon point out of range")
		}
	}
	return nil
}
