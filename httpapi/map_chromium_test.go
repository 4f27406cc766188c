package httpapi

import (
	"context"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/httpapi/ui"
	"github.com/vaka-care/vaka/internal/testenv"
)

// mapPage serves the app's static files and a bare page that loads
// map.js, under the app's own CSP (no inline script: the test drives the
// page through the DevTools protocol). It records every path requested.
func mapPage(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	static, _ := fs.Sub(ui.Static, "static")
	var mu sync.Mutex
	var paths []string
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("/map.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html lang="sv"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><script src="/static/map.js"></script></head>
<body style="margin:0"><div id="m" style="width:360px"></div></body></html>`))
	})
	mux.HandleFunc("/tiles/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = w.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"><rect width="256" height="256" fill="#dde"/></svg>`))
	})
	srv := httptest.NewServer(securityHeaders(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }
}

func mapBrowser(t *testing.T) context.Context {
	t.Helper()
	chrome := testenv.LookPath(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(360, 740),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// offset returns the point north and east metres from lat/lon.
func offset(lat, lon, north, east float64) (float64, float64) {
	const r = 6378137.0
	return lat + north/r*180/math.Pi, lon + east/(r*math.Cos(lat*math.Pi/180))*180/math.Pi
}

type drawn struct {
	Points []struct {
		I int     `json:"i"`
		X float64 `json:"x"`
		Y float64 `json:"y"`
	} `json:"points"`
	PX, PY, FX, FY, FR float64
	ScaleM, ScaleW     float64
	Images             []string
	Track              string
	Text               string
}

const readMap = `(() => {
  const q = s => document.querySelector('#m ' + s);
  const num = (e, a) => e ? parseFloat(e.getAttribute(a)) : NaN;
  const pts = [...document.querySelectorAll('#m .vaka-map-point')].map(e => ({i: +e.dataset.i, x: num(e,'cx'), y: num(e,'cy')}));
  return {points: pts, PX: num(q('.vaka-map-pos'),'cx'), PY: num(q('.vaka-map-pos'),'cy'),
    FX: num(q('.vaka-map-geofence'),'cx'), FY: num(q('.vaka-map-geofence'),'cy'), FR: num(q('.vaka-map-geofence'),'r'),
    ScaleM: num(q('.vaka-map-scale'),'data-metres'), ScaleW: num(q('.vaka-map-scale'),'data-width'),
    Images: [...document.querySelectorAll('#m image')].map(e => e.getAttribute('href')),
    Track: q('.vaka-map-track') ? q('.vaka-map-track').getAttribute('points') : '',
    Text: document.querySelector('#m').textContent};
})()`

// The map in a real Chromium at 360×740: a wander alarm's track is drawn
// oldest first, north up, at the right distances from the home circle
// (checked against the circle's radius and the scale bar), the latest
// position on the last point, and nothing is fetched from anywhere (no
// tiles) unless a tile server is configured.
func TestIntegrationMapChromium(t *testing.T) {
	srv, requested := mapPage(t)
	ctx := mapBrowser(t)
	const lat0, lon0 = 59.3300, 18.0600
	// Leaving home: out of the door, north, then north-east, then east.
	steps := [][2]float64{{0, 0}, {60, 0}, {120, 40}, {150, 160}}
	var track []map[string]float64
	for _, s := range steps {
		la, lo := offset(lat0, lon0, s[0], s[1])
		track = append(track, map[string]float64{"lat": la, "lon": lo})
	}
	alarm := map[string]any{"id": "a1", "kind": "wander", "pos": track[len(track)-1], "track": track,
		"where": map[string]any{"geofence": map[string]float64{"lat": lat0, "lon": lon0, "radius_m": 100}}}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/map.html"), chromedp.WaitReady(chromedp.CSS(`#m`))); err != nil {
		t.Fatal(err)
	}
	d := renderMap(t, ctx, alarm)
	if len(d.Points) != len(steps) {
		t.Fatalf("%d points drawn, want %d: %+v", len(d.Points), len(steps), d)
	}
	svgPerMetre := d.FR / 100
	if d.FR <= 0 || math.Abs(d.ScaleW/d.ScaleM-svgPerMetre)/svgPerMetre > 0.01 {
		t.Errorf("scale bar %v m = %v units, circle 100 m = %v units", d.ScaleM, d.ScaleW, d.FR)
	}
	for i, p := range d.Points {
		if p.I != i {
			t.Errorf("point %d drawn as data-i %d: not oldest first", i, p.I)
		}
		// North up, east right: SVG y grows southwards.
		wantX := d.FX + steps[i][1]*svgPerMetre
		wantY := d.FY - steps[i][0]*svgPerMetre
		if math.Abs(p.X-wantX) > 1 || math.Abs(p.Y-wantY) > 1 {
			t.Errorf("point %d at (%.1f, %.1f), want (%.1f, %.1f): %v m north, %v m east of home", i, p.X, p.Y, wantX, wantY, steps[i][0], steps[i][1])
		}
	}
	last := d.Points[len(d.Points)-1]
	if math.Abs(d.PX-last.X) > 0.5 || math.Abs(d.PY-last.Y) > 0.5 {
		t.Errorf("latest position (%v, %v) is not the last track point (%v, %v)", d.PX, d.PY, last.X, last.Y)
	}
	if n := len(strings.Fields(d.Track)); n != len(steps) {
		t.Errorf("track line has %d vertices", n)
	}
	if len(d.Images) != 0 {
		t.Errorf("images drawn without a tile server: %v", d.Images)
	}
	if !strings.Contains(d.Text, "N") || !strings.Contains(d.Text, " m") {
		t.Errorf("no north arrow or scale text: %q", d.Text)
	}
	png := screenshot(t, ctx)
	_ = os.WriteFile(filepath.Join(mapArtifacts(t), "map-track.png"), png, 0o644)
	for _, p := range requested() {
		if p != "/map.html" && p != "/static/map.js" && p != "/favicon.ico" {
			t.Errorf("the page fetched %s", p)
		}
	}
	var external []string
	external, _ = chromedp.Run(ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))`))
	if len(external) > 0 {
		t.Errorf("outside calls: %v", external)
	}

	// With a configured tile server (here our own) tiles come from it, at
	// a zoom that fits the track.
	alarm["where"].(map[string]any)["map_tiles"] = srv.URL + "/tiles/{z}/{x}/{y}.png"
	d = renderMap(t, ctx, alarm)
	if len(d.Images) == 0 || len(d.Images) > 64 {
		t.Fatalf("tiles: %v", d.Images)
	}
	for _, h := range d.Images {
		// 250 m over 192 SVG units drawn 2.25 device pixels each: z 17.
		if !strings.HasPrefix(h, srv.URL+"/tiles/17/") {
			t.Errorf("tile %s: want zoom 17 for a 300 m track on a 360 px phone at DPR 2", h)
		}
	}
	png = screenshot(t, ctx)
	_ = os.WriteFile(filepath.Join(mapArtifacts(t), "map-tiles.png"), png, 0o644)

	// A unit's floor plan is stretched over the box it shows: its corners
	// land where those latitudes and longitudes do.
	delete(alarm["where"].(map[string]any), "map_tiles")
	south, west := offset(lat0, lon0, -100, -100)
	north, east := offset(lat0, lon0, 200, 200)
	alarm["where"].(map[string]any)["floor_plan"] = map[string]any{"url": "/tiles/plan.svg", "south": south, "west": west, "north": north, "east": east}
	d = renderMap(t, ctx, alarm)
	box, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](`(() => { const e = document.querySelector('#m .vaka-map-floorplan');
	  return e ? {x: +e.getAttribute('x'), y: +e.getAttribute('y'), w: +e.getAttribute('width'), h: +e.getAttribute('height')} : {}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	per := d.FR / 100
	if math.Abs(box["x"]-(d.FX-100*per)) > 1 || math.Abs(box["y"]-(d.FY-200*per)) > 1 || math.Abs(box["w"]-300*per) > 1.5 || math.Abs(box["h"]-300*per) > 1.5 {
		t.Errorf("floor plan at %v, want x %.1f y %.1f size %.1f", box, d.FX-100*per, d.FY-200*per, 300*per)
	}
}

func screenshot(t *testing.T, ctx context.Context) []byte {
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#m`)))
	if err != nil {
		t.Fatal(err)
	}
	return png
}

func mapArtifacts(t *testing.T) string {
	dir := filepath.Join("..", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// renderMap renders alarm into #m and reads back what was drawn.
func renderMap(t *testing.T, ctx context.Context, alarm map[string]any) drawn {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.VakaMap.render(document.getElementById('m'), `+toJSON(t, alarm)+`) !== null`))
	if err != nil || !ok {
		t.Fatalf("render: %v %v", ok, err)
	}
	d, err := chromedp.Run(ctx, chromedp.Evaluate[drawn](readMap))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
