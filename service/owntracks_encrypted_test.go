package service_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
	"github.com/vaka-care/vaka/trackers"
)

// An OwnTracks phone with payload encryption on, through mosquitto_pub and
// the embedded broker: with the device's owntracks_key its sealed fixes
// are evaluated as if in clear (a geofence exit is raised at the decrypted
// fix); the log never holds the secret or a position.
func TestIntegrationOwnTracksEncrypted(t *testing.T) {
	const secret = "mysecreTpass01"
	y := strings.Replace(string(trackerHubYAML(t, t.TempDir())), "owntracks: "+otUser+"/tel}", "owntracks: "+otUser+"/tel, owntracks_key: "+secret+"}", 1)
	if !strings.Contains(y, "owntracks_key") {
		t.Fatal("test setup: no owntracks_key")
	}
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	s, err := service.Start(&cfg, slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready
	seal := func(msg string) string {
		var nonce [24]byte
		if _, err := rand.Read(nonce[:]); err != nil {
			t.Fatal(err)
		}
		return string(trackers.SealOwnTracks([]byte(msg), trackers.OwnTracksKey(secret), &nonce))
	}
	topic := "owntracks/" + otUser + "/tel"
	now := time.Now()
	if err := mosquittoPub(t, s, otUser, otPass, topic, seal(otLocation(58.35, 11.93, 10, now.Add(-time.Minute))), 1); err != nil {
		t.Fatal(err)
	}
	if err := mosquittoPub(t, s, otUser, otPass, topic, seal(otLocation(58.36, 11.93, 12, now)), 1); err != nil {
		t.Fatal(err)
	}
	a := st.Next(t, 6*time.Second, func(a *alarm.Alarm) bool { return a.Rule == "geofence_exit" })
	if a.Device != "tel-1" || a.Position() == nil || a.Position().Lat != 58.36 {
		t.Errorf("alarm %+v, want tel-1 at the decrypted fix", a)
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_tracker_reports_total{result="ok",source="owntracks"}`); v != 2 {
		t.Errorf("owntracks ok = %v, want 2", v)
	}
	for _, leak := range []string{secret, "58.36"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
}
