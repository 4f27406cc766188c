package service_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// The device page for a technician, after a hub restart, in Swedish and
// then English, one language at a time: device types, durations and
// battery in words, no internal codes, and devices heard before the
// restart not shown as unpaired.
func TestIntegrationDevicePageWordsAfterRestart(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	dir := t.TempDir()
	y := strings.Replace(string(hubYAML(t, filepath.Join(dir, "data"))), "users:\n",
		fmt.Sprintf("users:\n  - {username: tekn, name: Tekniker Tova, role: technician, password_hash: %q}\n", testenv.Hash(t, "tekn-secret")), 1)
	start := func() *service.Hub {
		var cfg hub.Config
		if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
			t.Fatal(err)
		}
		s, err := service.Start(&cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ev := func(s *service.Hub, id, device, dty, state, extra string) {
		s.Hub.HandleEvent("solrosen", "avd-a", []byte(fmt.Sprintf(`{"v":1,"id":%q,"device":%q,"dty":%q,"state":%q%s,"ts":%q}`,
			id, device, dty, state, extra, time.Now().UTC().Format(time.RFC3339Nano))))
	}
	s := start()
	ev(s, "e-1", "knapp-12", "0003", "pressed", `,"stc":"0010","battery":80`)
	ev(s, "e-2", "sang-12", "0012", "occupied", "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer s.Close()
	ev(s, "e-3", "dorr-entre", "0014", "closed", "")
	base := "http://" + s.HTTPAddr()

	ctx := phoneBrowser(t, chrome)
	login(t, ctx, base, "tekn", "tekn-secret")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/devices"), chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="true"] #devices li`))); err != nil {
		t.Fatal(err)
	}
	cardText := func(device string) string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector('#devices li[data-device=%q]') || {}).innerText || ''`, device)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pageText := func() string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	screenshot(t, ctx, "devices-sv.png")
	check := func(lang string, want map[string][]string, never []string) {
		t.Helper()
		for dev, words := range want {
			c := cardText(dev)
			for _, w := range words {
				if !strings.Contains(c, w) {
					t.Errorf("%s: card %s lacks %q:\n%s", lang, dev, w, c)
				}
			}
		}
		all := pageText()
		for _, code := range never {
			if strings.Contains(all, code) {
				t.Errorf("%s: page shows %q", lang, code)
			}
		}
	}
	codes := []string{"personal_trigger", "bed_monitor", "door_sensor", "never_heard", "not_heard_since_restart",
		"0003", "0012", "m0s", "h0m", " / ", "occupied", "pressed"}
	check("sv", map[string][]string{
		"knapp-12":   {"Larmknapp · knapp-12", "Inte hörd sedan omstart", "80 %", "högst 3 min"},
		"sang-12":    {"Sänglarm", "Inte hörd sedan omstart", "ingen batterinivå i meddelandena"},
		"dorr-entre": {"Dörrlarm", "OK", "stängd", "högst 2 tim", "ingen batterinivå i meddelandena"},
		"knapp-1":    {"Larmknapp", "Aldrig hörd – ej parkopplad?", "aldrig sedan hubben startade", "Batteri\nokänt"},
	}, append(codes, "Battery", "Last heard", "Never heard", "Device health"))
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#lang`)), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"]`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "devices-en.png")
	check("en", map[string][]string{
		"knapp-12":   {"Call button · knapp-12", "Not heard since restart", "80 %", "at most 3 min"},
		"dorr-entre": {"Door sensor", "closed", "at most 2 h"},
		"knapp-1":    {"Never heard – not paired?", "Battery\nunknown"},
	}, append(codes, "Batteri", "Senast hörd", "Aldrig hörd", "Enhetsstatus"))
}
