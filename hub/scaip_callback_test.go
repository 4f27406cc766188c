package hub

import (
	"strings"
	"testing"

	"github.com/vaka-care/vaka/scaip"
)

// A unit that asks to be called back (cha 1) about an alarm, with a number
// to call, is told to keep auto-answer open (cre, the configured minutes,
// two digits); without a number, for a test transmission or a technical
// message, or with callback_answer 0s, it is promised nothing. A resend of
// the same alarm gets the same answer as the first.
func TestSCAIPCallbackAnswer(t *testing.T) {
	c := newClock(dayTime)
	h, _, _ := scaipHub(t, t.TempDir(), c)
	for _, tc := range []struct {
		name, tags, cre string
	}{
		{"call with a number", `<ref>c1</ref><cha>1</cha><cid>678</cid><dty>0003</dty><crd>gsm:+46701234567</crd>`, "15"},
		{"the same again", `<ref>c1</ref><cha>1</cha><cid>678</cid><dty>0003</dty><crd>gsm:+46701234567</crd>`, "15"},
		{"no callback asked", `<ref>c2</ref><cha>0</cha><cid>678</cid><did>2</did><dty>0005</dty><crd>gsm:+46701234567</crd>`, ""},
		{"no number to call", `<ref>c3</ref><cha>1</cha><cid>999</cid><dty>0003</dty><crd>no-voice:</crd>`, ""},
		{"test transmission", `<ref>c4</ref><cha>1</cha><cid>678</cid><dty>0003</dty><stc>0102</stc><crd>gsm:+46701234567</crd>`, ""},
	} {
		r := h.HandleSCAIP(map[bool]string{true: "other", false: "unit678"}[strings.Contains(tc.tags, "<cid>999")], mrq(tc.tags))
		if r.SNU != scaip.OK || r.Cre != tc.cre {
			t.Errorf("%s: snu %d cre %q, want snu 0 cre %q", tc.name, r.SNU, r.Cre, tc.cre)
		}
		if tc.cre != "" && !strings.Contains(string(r.Marshal()), "<mre>0</mre><cre>"+tc.cre+"</cre>") {
			t.Errorf("%s: %s lacks cre after mre", tc.name, r.Marshal())
		}
	}
	if got := callbackAnswer(&scaip.Request{Cha: "1", Crd: "gsm:+46701234567"}, scaip.ClassTechnical, 15); got != "" {
		t.Errorf("technical message: cre %q, want none", got)
	}
	if got := callbackAnswer(&scaip.Request{Cha: "1", Crd: "gsm:+46701234567"}, scaip.ClassAlarm, 5); got != "05" {
		t.Errorf("5 minutes: cre %q, want 05", got)
	}
	if got := callbackAnswer(&scaip.Request{Cha: "1", Crd: "gsm:+46701234567"}, scaip.ClassAlarm, 0); got != "" {
		t.Errorf("callback_answer 0s: cre %q, want none", got)
	}
}

// callback_answer must be 0s or whole minutes 1–60 (cre's range); the
// error names the field.
func TestSCAIPCallbackAnswerConfig(t *testing.T) {
	for _, v := range []string{"90s", "61m", "-1m"} {
		var cfg Config
		err := loadConfigErr(strings.Replace(scaipYAML, "  missed: 2\n", "  missed: 2\n  callback_answer: "+v+"\n", 1), &cfg)
		if err == nil || !strings.Contains(err.Error(), "scaip.callback_answer") {
			t.Errorf("callback_answer %s: error %v, want one naming scaip.callback_answer", v, err)
		}
	}
	for v, want := range map[string]int{"0s": 0, "30m": 30, "": 15} {
		y := scaipYAML
		if v != "" {
			y = strings.Replace(y, "  missed: 2\n", "  missed: 2\n  callback_answer: "+v+"\n", 1)
		}
		var cfg Config
		if err := loadConfigErr(y, &cfg); err != nil {
			t.Fatalf("callback_answer %q: %v", v, err)
		}
		if got := cfg.SCAIP.CallbackMinutes(); got != want {
			t.Errorf("callback_answer %q: %d minutes, want %d", v, got, want)
		}
	}
}
