package service_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
)

// artifactDir is where screenshots go (gitignored), at the repo root.
func artifactDir(t *testing.T) string {
	dir := filepath.Join("..", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// phoneBrowser starts a headless Chromium of its own (a separate session:
// own profile, own cookies) with a 360×740 viewport at DPR 2.
func phoneBrowser(t *testing.T, chrome string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(360, 740),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second) // every browser step is bounded
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

func login(t *testing.T, ctx context.Context, base, user, pass string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), user),
		chromedp.SendKeys(chromedp.CSS(`#password`), pass),
		chromedp.Click(chromedp.CSS(`#login-button`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-connected="true"]`)),
	)
	if err != nil {
		t.Fatalf("%s: login: %v", user, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// Two night staff on their phones (real Chromium, separate sessions): an
// MQTT call-button press shows on both within 1 s; natt1 accepts and
// natt2's screen shows it taken; natt1 resolves with an outcome and a note.
func TestIntegrationBrowserStaffFlow(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	s := startStaffHub(t, t.TempDir(), "")
	base := "http://" + s.HTTPAddr()
	a := phoneBrowser(t, chrome)
	b := phoneBrowser(t, chrome)
	login(t, a, base, "natt1", "natt1-secret")
	login(t, b, base, "natt2", "natt2-secret")

	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "browser-gw")
	if err != nil {
		t.Fatal(err)
	}
	card := `.alarm-card[data-state="raised"][data-kind="call"]`
	// The page notes the wall-clock time the card enters the DOM.
	if _, err := chromedp.Run(a, chromedp.Evaluate[bool](`(() => { new MutationObserver((_, o) => {
		if (document.querySelector('`+card+`')) { window.__cardAt = Date.now(); o.disconnect(); }
	}).observe(document.body, {childList: true, subtree: true}); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("b-1")); err != nil {
		t.Fatal(err)
	}
	wait1s, cancel := context.WithTimeout(a, time.Second)
	err = chromedp.Do(wait1s, chromedp.WaitVisible(chromedp.CSS(card)))
	cancel()
	if err != nil {
		t.Fatalf("alarm not visible in natt1's browser within 1 s of the MQTT publish: %v", err)
	}
	t.Logf("MQTT publish → card seen by the test through CDP: %v", time.Since(start))
	if at, err := chromedp.Run(a, chromedp.Evaluate[float64](`window.__cardAt || 0`)); err == nil && at > 0 {
		t.Logf("MQTT publish → card in the page's DOM: %v", time.UnixMilli(int64(at)).Sub(start).Round(time.Millisecond))
	}
	if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.CSS(card))); err != nil {
		t.Fatalf("natt2 does not see the alarm: %v", err)
	}
	attr, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.CSS(card), "data-alarm-id"))
	if err != nil || attr.Value == "" {
		t.Fatalf("alarm id: %v", err)
	}
	id := attr.Value
	text, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(card)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Trygghetslarm", "rum 12", "Jag tar det"} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q: %q", want, text)
		}
	}
	// Both phones have no push (headless Chromium): each app, showing the
	// card it got over the live stream, posts its own receipt, journaled as
	// a delivered transition with channel app; the card then says so.
	var got alarm.Alarm
	var via []string
	for i := 0; i < 100; i++ {
		via = via[:0]
		testenv.DoJSON(t, http.MethodGet, base+"/api/v1/alarms/"+id, "natt1", "natt1-secret", nil, &got)
		for _, h := range got.History() {
			if h.Action == alarm.ActDelivered && h.Channel == alarm.ChannelApp && strings.HasPrefix(h.Phone, "app:") {
				via = append(via, h.By)
			}
		}
		if slices.Contains(via, "natt1") && slices.Contains(via, "natt2") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Contains(via, "natt1") || !slices.Contains(via, "natt2") {
		t.Fatalf("delivered transitions with channel app from %v, want natt1 and natt2; history %+v", via, got.History())
	}
	if err := chromedp.Do(a, chromedp.WaitVisible(chromedp.CSS(card+` .delivery[data-delivered]:not([data-delivered="0"])`))); err != nil {
		t.Errorf("natt1's card does not show the delivery: %v", err)
	}
	t.Logf("app receipts journaled for %v", via)
	screenshot(t, a, "staff-phone-raised.png")

	sel := `.alarm-card[data-alarm-id="` + id + `"]`
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS(sel+` [data-action="accept"]`)),
		chromedp.WaitVisible(chromedp.CSS(sel+`[data-state="accepted"]`))); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.CSS(sel+`[data-state="accepted"]`))); err != nil {
		t.Fatalf("natt2 does not see it accepted: %v", err)
	}
	other, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(other, "Taget av") || strings.Contains(other, "Jag tar det") {
		t.Errorf("natt2's card after natt1 accepted: %q", other)
	}
	screenshot(t, b, "staff-phone-taken-by-colleague.png")

	if err := chromedp.Do(a,
		chromedp.Click(chromedp.CSS(sel+` [data-action="resolve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-outcome="real_need"]`)),
		chromedp.Click(chromedp.CSS(`[data-outcome="real_need"]`)),
		chromedp.SendKeys(chromedp.CSS(`#resolve-note`), "hjälp till toaletten"),
	); err != nil {
		t.Fatalf("resolve form: %v", err)
	}
	screenshot(t, a, "staff-phone-resolve-form.png")
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS(`#resolve-submit`)),
		chromedp.WaitReady(chromedp.CSS(sel+`[data-state="resolved"]`))); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	got = alarm.Alarm{}
	if code := testenv.DoJSON(t, http.MethodGet, base+"/api/v1/alarms/"+id, "natt1", "natt1-secret", nil, &got); code != 200 ||
		got.State != alarm.Resolved || got.Outcome() != alarm.OutcomeRealNeed || got.Note != "hjälp till toaletten" || got.ResolvedBy() != "natt1" {
		t.Fatalf("after resolve: %d %+v", code, got)
	}
	if err := chromedp.Do(b, chromedp.WaitReady(chromedp.CSS(sel+`[data-state="resolved"]`))); err != nil {
		t.Fatalf("natt2 does not see it resolved: %v", err)
	}
	// The service worker is registered from the root scope.
	sw, _ := chromedp.Run(a, chromedp.Poll[string](`document.documentElement.dataset.sw || ""`, chromedp.WithPollingTimeout(5*time.Second)))
	if sw != "registered" {
		t.Errorf("service worker not registered: %q", sw)
	}
	screenshot(t, a, "staff-phone-resolved.png")
}
