package service_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/service"
)

// With store.sync_each_write a third-party unit (npm "sip") still gets
// snu 0 for each alarm over UDP and TCP, now from the hub's syncer after
// the journal's fsync (the read loop does not wait for it), the alarms
// reach the staff stream, and each answer was preceded by an fsync.
func TestIntegrationSCAIPSyncEachWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a third-party SIP unit under node against a whole hub")
	}
	certFile, keyFile, certPEM, keyPEM := selfSigned(t)
	var cfg hub.Config
	yml := append(scaipHubYAML(t, t.TempDir(), certFile, keyFile), "store: {sync_each_write: true}\n"...)
	if err := config.Decode("hub.yaml", yml, &cfg); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logBuf{}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := service.Start(&cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := "http://" + s.HTTPAddr()
	metrics := base + "/metrics"
	if v := testenv.Metric(t, metrics, "vaka_store_sync_window_seconds"); v != 0 {
		t.Fatalf("sync window %v s with sync_each_write, want 0", v)
	}
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready
	peer := newSCAIPPeer(t, certPEM, keyPEM)
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			// An alarm, then presence and check-out on it: three journaled
			// messages, each answered only once on disk.
			ref := "S" + strings.ToUpper(tr)
			bodies := []string{
				"<mrq><ref>" + ref + "</ref><cid>4711</cid><dty>0003</dty></mrq>",
				"<mrq><ref>" + ref + "</ref><cid>4711</cid><dty>0003</dty><stc>0088</stc></mrq>",
				"<mrq><ref>" + ref + "</ref><cid>4711</cid><dty>0003</dty><stc>0111</stc></mrq>",
			}
			fsyncs0 := testenv.Metric(t, metrics, "vaka_store_fsyncs_total")
			lines := peer.send(t, tr, s.SCAIPAddr(tr), scaipUser, scaipPass, len(bodies), false, bodies...)
			if f := finals(lines); len(f) != len(bodies) {
				t.Fatalf("SIP answers %+v (all: %+v)", f, lines)
			}
			mrs := mrsOf(t, lines)
			if len(mrs) != len(bodies) {
				t.Fatalf("%d <mrs> for %d messages: %+v", len(mrs), len(bodies), lines)
			}
			for i, m := range mrs {
				if m.Ref != ref || m.SNU != scaip.OK {
					t.Fatalf("<mrs> %d: %+v, want ref %s snu 0", i, m, ref)
				}
			}
			a := st.Next(t, 2*time.Second, func(a *alarm.Alarm) bool {
				return a.Device == "larm-4711" && a.State == alarm.Presence && strings.Contains(a.EventID, "/"+ref+".")
			})
			if n := testenv.Metric(t, metrics, "vaka_store_fsyncs_total") - fsyncs0; n < 1 {
				t.Fatalf("%v fsyncs for %d journaled messages answered snu 0", n, len(bodies))
			}
			// Staff close it, so the next transport raises a fresh alarm.
			var got alarm.Alarm
			if code := testenv.DoJSON(t, "POST", base+"/api/v1/alarms/"+a.ID+"/resolve", staffUser, staffPass,
				map[string]string{"outcome": "test"}, &got); code != 200 {
				t.Fatalf("resolve: %d", code)
			}
		})
	}
	if v := testenv.Metric(t, metrics, fmt.Sprintf("vaka_scaip_messages_total{result=%q}", "fsync_failed")); v != 0 {
		t.Fatalf("fsync_failed %v", v)
	}
}
