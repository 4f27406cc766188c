package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/store"
)

// scaipYAML registers one SCAIP unit (cid 678) with a pendant (no did)
// and a fall detector (did 2), and a second unit on another account.
var scaipYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    units:
      - {id: u}
    residents:
      - {id: r-a, unit: u}
scaip:
  enabled: true
  udp: 127.0.0.1:0
  heartbeat: 1m
  missed: 2
  accounts:
    - {username: unit678, ha1: ` + HA1("unit678", "vaka", "pw") + `}
    - {username: other, ha1: ` + HA1("other", "vaka", "pw") + `}
  units:
    - {cid: "678", account: unit678, site: s, device: scaip-678, type: personal_trigger, resident: r-a, unit: u, room: "12"}
    - {cid: "678", did: "2", account: unit678, site: s, device: scaip-678-fall, type: fall_detector, resident: r-a, unit: u, room: "12"}
    - {cid: "999", account: other, site: s, device: scaip-999, resident: r-a, unit: u}
`

func scaipHub(t *testing.T, dir string, c *clock) (*Hub, *prometheus.Registry, *store.Journal) {
	t.Helper()
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	reg := prometheus.NewRegistry()
	h, err := New(Options{Config: loadConfig(t, scaipYAML), Journal: j, Replay: replay, Now: c.Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RegisterSCAIPMetrics(reg); err != nil {
		t.Fatal(err)
	}
	return h, reg, j
}

func mrq(tags string) []byte { return []byte("<mrq>" + tags + "</mrq>") }

func wantSNU(t *testing.T, r scaip.Response, ref string, snu scaip.SNU) {
	t.Helper()
	if r.Ref != ref || r.SNU != snu {
		t.Fatalf("response %+v, want ref %q snu %d", r, ref, snu)
	}
	if r.Mre != 0 {
		t.Fatalf("mre %d: Vaka takes no voice, want 0", r.Mre)
	}
}

func openCall(h *Hub, device string) *alarm.Alarm {
	for _, a := range h.Alarms() {
		if a.Device == device && a.Open() && (a.Rule == rules.RuleCallButton || a.Rule == rules.RuleFall) {
			return a
		}
	}
	return nil
}

func TestSCAIPAlarmPresenceCheckout(t *testing.T) {
	c := newClock(dayTime)
	h, reg, _ := scaipHub(t, t.TempDir(), c)
	ch, stop := h.Subscribe()
	defer stop()

	r := h.HandleSCAIP("unit678", mrq(`<ref>1242</ref><cha>1</cha><cid>678</cid><dty>0003</dty><crd>gsm:+46701234567</crd><lco>039</lco><lge><geo>59.1,18.2</geo></lge>`))
	wantSNU(t, r, "1242", scaip.OK)
	got := drain(ch)
	if len(got) != 1 || got[0].Kind != alarm.KindCall || got[0].Device != "scaip-678" || got[0].Resident != "r-a" {
		t.Fatalf("stream: %+v", got)
	}
	a := got[0]
	if a.CallerID() != "gsm:+46701234567" || a.Callback() != "1" || a.Location != "039" || a.Position() == nil || a.Position().Lat != 59.1 {
		t.Fatalf("alarm fields crd %q cha %q lco %q pos %+v", a.CallerID(), a.Callback(), a.Location, a.Position())
	}
	// The same message again (a resend): answered 0, not a second alarm, not a repeat.
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>1242</ref><cha>1</cha><cid>678</cid><dty>0003</dty><crd>gsm:+46701234567</crd><lco>039</lco><lge><geo>59.1,18.2</geo></lge>`)), "1242", scaip.OK)
	if b, _ := h.Alarm(a.ID); b.Repeats() != 0 {
		t.Fatalf("a resend counted as a repeat: %d", b.Repeats())
	}
	// The ref reused for another event: refused, counted.
	r = h.HandleSCAIP("unit678", mrq(`<ref>1242</ref><cid>678</cid><did>2</did><dty>0005</dty>`))
	wantSNU(t, r, "1242", scaip.WrongData)
	if !strings.Contains(r.Ste, "ref") || counter(t, reg, "vaka_scaip_messages_total", "result", "ref_reused") != 1 {
		t.Fatalf("ref reuse: %+v", r)
	}
	// IN on the same ref updates the open alarm with the new position.
	c.Add(time.Second)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>1242</ref><mty>IN</mty><cid>678</cid><dty>0003</dty><lge><geo>59.2,18.3</geo></lge>`)), "1242", scaip.OK)
	if b, _ := h.Alarm(a.ID); b.Position() == nil || b.Position().Lat != 59.2 {
		t.Fatalf("IN did not update the position: %+v", b.Position())
	}
	// Staff press presence on the unit: accepted and at the resident, as the app's buttons do.
	c.Add(time.Minute)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>P1</ref><cid>678</cid><dty>3</dty><stc>0088</stc>`)), "P1", scaip.OK)
	b, _ := h.Alarm(a.ID)
	if b.State != alarm.Presence || b.PresenceAt() == nil || b.AcceptedBy() == "" {
		t.Fatalf("after 0088: state %s", b.State)
	}
	// Check-out: intervention complete, awaiting the outcome staff code in the app.
	c.Add(time.Minute)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>P2</ref><cid>678</cid><dty>3</dty><stc>0111</stc>`)), "P2", scaip.OK)
	b, _ = h.Alarm(a.ID)
	last := b.History()[len(b.History())-1]
	if !b.Open() || b.State != alarm.Presence || !strings.Contains(last.Note, "0111") {
		t.Fatalf("after 0111: open %v state %s last %+v", b.Open(), b.State, last)
	}
	if _, err := h.Act(a.ID, alarm.ActResolve, "natt1", alarm.OutcomeRealNeed, ""); err != nil {
		t.Fatalf("staff code the outcome: %v", err)
	}
	// A unit that sends presence under the alarm's own ref: taken, not refused as a reused ref.
	c.Add(time.Minute)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>Q1</ref><cid>678</cid><dty>0003</dty>`)), "Q1", scaip.OK)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>Q1</ref><cid>678</cid><dty>0003</dty><stc>0088</stc>`)), "Q1", scaip.OK)
	if q := openCall(h, "scaip-678"); q == nil || q.State != alarm.Presence {
		t.Fatalf("presence under the alarm's ref: %+v", q)
	}
}

func TestSCAIPResetTestAndRefusals(t *testing.T) {
	c := newClock(dayTime)
	h, reg, _ := scaipHub(t, t.TempDir(), c)
	ch, stop := h.Subscribe()
	defer stop()

	// Test transmissions are recorded, not alarms.
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>T1</ref><cid>678</cid><dty>3</dty><stc>0102</stc>`)), "T1", scaip.OK)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>T2</ref><cid>678</cid><dty>3</dty><stc>0103</stc>`)), "T2", scaip.OK)
	if got := drain(ch); len(got) != 0 || counter(t, reg, "vaka_scaip_messages_total", "result", "test") != 2 {
		t.Fatalf("a test transmission raised %d alarms", len(got))
	}
	// A fall from the fall detector (did 2), then RE: the abort is on the alarm.
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>F1</ref><cid>678</cid><did>2</did><dty>5</dty><stc>0009</stc>`)), "F1", scaip.OK)
	fall := openCall(h, "scaip-678-fall")
	if fall == nil || fall.Kind != alarm.KindFall {
		t.Fatalf("no fall alarm: %+v", fall)
	}
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>F1</ref><mty>RE</mty><cid>678</cid><did>2</did><dty>5</dty>`)), "F1", scaip.OK)
	if b, _ := h.Alarm(fall.ID); b.RestoredAt() == nil || !b.Open() || !strings.Contains(b.History()[len(b.History())-1].Note, "RE") {
		t.Fatalf("RE not recorded: %+v", b)
	}

	cases := []struct {
		account, body, ref, result string
		snu                        scaip.SNU
	}{
		{"unit678", `<ref>X1</ref><cid>12345</cid><dty>3</dty>`, "X1", "unknown_device", scaip.WrongData},
		{"unit678", `<ref>X2</ref><cid>678</cid><did>9</did><dty>3</dty>`, "X2", "unknown_device", scaip.WrongData},
		{"other", `<ref>X3</ref><cid>678</cid><dty>3</dty>`, "X3", "wrong_account", scaip.WrongData},
		{"unit678", `<ref>X4</ref><dty>3</dty>`, "X4", "mandatory_missing", scaip.MandatoryMiss},
		{"unit678", `<cid>678</cid><dty>3</dty>`, "", "ref_missing", scaip.RefMissing},
		{"unit678", `<ref>X5</ref><cid>678</cid><dty>3</dty><zzz>1</zzz>`, "X5", "invalid_format", scaip.InvalidFormat},
		{"unit678", `<ref>X6</ref><cid>678</cid><dty>3</dty><stt>` + strings.Repeat("x", 3000) + `</stt>`, "", "too_long", scaip.TooLong},
	}
	for _, k := range cases {
		before := counter(t, reg, "vaka_scaip_messages_total", "result", k.result)
		r := h.HandleSCAIP(k.account, mrq(k.body))
		if r.SNU != k.snu || r.Ref != k.ref || r.Ste == "" {
			t.Errorf("%s: %+v, want snu %d ref %q and a reason", k.result, r, k.snu, k.ref)
		}
		if counter(t, reg, "vaka_scaip_messages_total", "result", k.result)-before != 1 {
			t.Errorf("%s not counted", k.result)
		}
	}
	if got := drain(ch); len(got) != 2 { // the fall's raise and its RE restore
		t.Fatalf("refused requests changed alarms: %d changes", len(got))
	}
}

// Heartbeats are the unit's supervision: answered 0 (with hbi when the
// unit accepts it); when they stop, the supervision alarm (0123 for a call
// button) comes within missed × heartbeat plus half an interval; a flood is
// answered, counted and not evaluated.
func TestSCAIPHeartbeatSupervision(t *testing.T) {
	c := newClock(dayTime)
	h, reg, _ := scaipHub(t, t.TempDir(), c)
	ch, stop := h.Subscribe()
	defer stop()
	for i := range 3 {
		r := h.HandleSCAIP("unit678", mrq(fmt.Sprintf(`<ref>H%d</ref><mty>PI</mty><hbo>1</hbo><cid>678</cid><dty>3</dty>`, i)))
		wantSNU(t, r, fmt.Sprintf("H%d", i), scaip.OK)
		if r.Hbi != 1 {
			t.Fatalf("hbi %d, want the configured 1 minute", r.Hbi)
		}
		c.Add(time.Minute)
		h.Tick()
	}
	for _, a := range drain(ch) {
		if strings.HasPrefix(a.Device, "scaip-678") {
			t.Fatalf("alarm while heartbeats came: %s %s", a.Rule, a.Device)
		}
	}
	// A flood: 50 heartbeats in one second, answered 0, evaluated once.
	for i := range 50 {
		if r := h.HandleSCAIP("unit678", mrq(fmt.Sprintf(`<ref>F%d</ref><mty>PI</mty><cid>678</cid><dty>3</dty>`, i))); r.SNU != scaip.OK {
			t.Fatalf("flood answered %+v", r)
		}
	}
	if n := counter(t, reg, "vaka_scaip_messages_total", "result", "heartbeat_flood"); n != 49 {
		t.Fatalf("flood counted %v, want 49", n)
	}
	// Silence: supervision is 2 × 1m + 30s.
	var raised *alarm.Alarm
	for step := 0; step < 20 && raised == nil; step++ {
		c.Add(10 * time.Second)
		h.Tick()
		for _, a := range drain(ch) {
			if a.Rule == rules.RuleDeviceSilent && a.Device == "scaip-678" {
				raised = a
				if d := a.RaisedAt.Sub(dayTime.Add(3 * time.Minute)); d > 2*time.Minute+40*time.Second {
					t.Fatalf("supervision alarm %v after the last heartbeat, promised 2m30s", d)
				}
			}
		}
	}
	if raised == nil || raised.Status != "0123" {
		t.Fatalf("no supervision alarm (0123) after heartbeats stopped: %+v", raised)
	}
	// The unit comes back: the alarm is restored.
	c.Add(time.Minute)
	h.HandleSCAIP("unit678", mrq(`<ref>B1</ref><mty>PI</mty><cid>678</cid><dty>3</dty>`))
	if b, _ := h.Alarm(raised.ID); b.RestoredAt() == nil {
		t.Fatal("a heartbeat after silence did not restore the supervision alarm")
	}
}

// On a full disk a SCAIP alarm is shown but answered snu 6 (busy), like a
// PUBACK withheld; the unit's resend after space returns gets snu 0 and is
// not evaluated twice.
func TestSCAIPFullDiskBusy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	testenv.Tmpfs(t, dir, 256<<10)
	c := newClock(dayTime)
	h, _, _ := scaipHub(t, dir, c)
	filler := filepath.Join(dir, "filler")
	testenv.FillDisk(t, filler)
	var busyBody []byte
	for i := range 200 {
		c.Add(time.Second)
		body := mrq(fmt.Sprintf(`<ref>D%d</ref><cid>678</cid><dty>3</dty>`, i))
		r := h.HandleSCAIP("unit678", body)
		if r.SNU == scaip.Busy {
			busyBody = body
			break
		}
		if r.SNU != scaip.OK {
			t.Fatalf("%+v", r)
		}
	}
	if busyBody == nil {
		t.Fatal("never answered busy on a full disk")
	}
	if openCall(h, "scaip-678") == nil {
		t.Fatal("the alarm is not shown while the disk is full")
	}
	if r := h.HandleSCAIP("unit678", busyBody); r.SNU != scaip.Busy {
		t.Fatalf("resend on a full disk: %+v", r)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if r := h.HandleSCAIP("unit678", busyBody); r.SNU != scaip.OK {
		t.Fatalf("resend after space returned: %+v", r)
	}
}

func TestSCAIPConfigErrors(t *testing.T) {
	bad := strings.Replace(scaipYAML, "{cid: \"999\", account: other", "{cid: \"99x\", account: nobody", 1)
	bad = strings.Replace(bad, "heartbeat: 1m", "heartbeat: 90s", 1)
	var cfg Config
	err := loadConfigErr(bad, &cfg)
	if err == nil {
		t.Fatal("bad scaip config accepted")
	}
	for _, want := range []string{"scaip.units.2.cid", "scaip.units.2.account", "scaip.heartbeat", "hub.yaml:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// Off by default: nothing registered, nothing required.
	var off Config
	if err := loadConfigErr(strings.Split(scaipYAML, "scaip:")[0], &off); err != nil || off.SCAIP.Enabled {
		t.Fatalf("default: %v enabled %v", err, off.SCAIP.Enabled)
	}
}

func loadConfigErr(yaml string, cfg *Config) error {
	return config.Decode("hub.yaml", []byte(yaml), cfg)
}

// The unit's pri raises an alarm, never lowers one: a call sent with pri
// 1 (lowest stated) stays priority 1; a low battery (the rules' 3) sent
// with pri 9 rises to 2, no higher (technical ranks below care), with pri
// 2 it stays 3, and without pri it is the rules' 3.
func TestSCAIPUnitPriority(t *testing.T) {
	c := newClock(dayTime)
	h, _, _ := scaipHub(t, t.TempDir(), c)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>C1</ref><cid>678</cid><dty>0003</dty><pri>1</pri>`)), "C1", scaip.OK)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>B1</ref><cid>678</cid><dty>0003</dty><stc>0016</stc><pri>9</pri>`)), "B1", scaip.OK)
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>B2</ref><cid>678</cid><did>2</did><dty>0005</dty><stc>0016</stc><pri>2</pri>`)), "B2", scaip.OK)
	wantSNU(t, h.HandleSCAIP("other", mrq(`<ref>B3</ref><cid>999</cid><dty>0003</dty><stc>0016</stc>`)), "B3", scaip.OK)
	got := map[string]alarm.Priority{}
	for _, a := range h.Alarms() {
		got[a.Rule+"/"+a.Device] = a.Priority
	}
	want := map[string]alarm.Priority{
		rules.RuleCallButton + "/scaip-678":      1,
		rules.RuleBatteryLow + "/scaip-678":      2,
		rules.RuleBatteryLow + "/scaip-678-fall": 3,
		rules.RuleBatteryLow + "/scaip-999":      3,
	}
	for k, w := range want {
		if p, ok := got[k]; !ok || p != w {
			t.Errorf("%s: priority %d (raised %v), want %d", k, p, ok, w)
		}
	}
}

func TestUnitPriority(t *testing.T) {
	for _, c := range []struct {
		pri  int
		kind alarm.Kind
		rule alarm.Priority
		want alarm.Priority
	}{
		{0, alarm.KindCall, 1, 1}, {1, alarm.KindCall, 1, 1}, {9, alarm.KindCall, 1, 1},
		{9, alarm.KindWander, 2, 1}, {5, alarm.KindWander, 2, 2}, {2, alarm.KindWander, 2, 2},
		{9, alarm.KindTechnical, 3, 2}, {6, alarm.KindTechnical, 3, 2}, {3, alarm.KindTechnical, 3, 3}, {0, alarm.KindTechnical, 3, 3},
	} {
		r := scaip.Request{Pri: c.pri}
		if got := unitPriority(c.kind, c.rule, r.Priority()); got != c.want {
			t.Errorf("pri %d on %s (rules %d): %d, want %d", c.pri, c.kind, c.rule, got, c.want)
		}
	}
}
