package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/alarm"
)

// A SCAIP unit's caller id is a phone number of the resident's: only the
// roles that may see names get it; the others still see that a call-back
// was asked for.
func TestViewCallerIDFollowsTheNameRule(t *testing.T) {
	s := &server{o: Options{
		NameRoles:    []string{"staff"},
		ResidentName: func(site, resident string) string { return "Karin Andersson" },
	}}
	a := &alarm.Alarm{ID: "a1", Kind: alarm.KindCall, Site: "s", Resident: "r-1"}
	a.SetCallerID("gsm:+46701112233")
	a.SetCallback("1")
	for _, tc := range []struct {
		role       string
		wantNumber bool
	}{{"staff", true}, {"technician", false}, {"admin", false}} {
		p := principal{user: &User{Username: "u", Role: tc.role}}
		b, err := json.Marshal(s.view(a, s.class(p)))
		if err != nil {
			t.Fatal(err)
		}
		got := string(b)
		if strings.Contains(got, "+46701112233") != tc.wantNumber {
			t.Errorf("%s sees the caller id: %v, want %v (%s)", tc.role, !tc.wantNumber, tc.wantNumber, got)
		}
		if !strings.Contains(got, `"cha":"1"`) {
			t.Errorf("%s is not told a call-back was asked for: %s", tc.role, got)
		}
	}
	if a.CallerID() == "" {
		t.Error("the view changed the hub's alarm")
	}
}
