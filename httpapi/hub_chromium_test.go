package httpapi

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/alarm"
)

type hubLabel struct {
	Hidden  bool   `json:"hidden"`
	Text    string `json:"text"`
	Fetched bool   `json:"fetched"`
}

func readHubLabel(t *testing.T, ctx context.Context) hubLabel {
	t.Helper()
	l, err := chromedp.Run(ctx, chromedp.Evaluate[hubLabel](`(() => { const e = document.getElementById('hub-name');
		return {hidden: !e || e.hidden || e.offsetParent === null, text: e ? e.textContent : '',
			fetched: performance.getEntriesByType('resource').some(r => r.name.endsWith('/api/v1/hub'))}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitHubLabel polls the header (every 50 ms, at most 5 s) until ok.
func waitHubLabel(t *testing.T, ctx context.Context, ok func(hubLabel) bool) hubLabel {
	t.Helper()
	var l hubLabel
	for range 100 {
		if l = readHubLabel(t, ctx); ok(l) {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	return l
}

// The staff app's header shows which hub of a redundant group it is on,
// in Swedish and, after the language switch, in English - already on the
// login page - and shows nothing on a single hub.
func TestIntegrationHubLabelChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: headless Chromium")
	}
	auth := NewAuth(nil, time.Hour, nil)
	group := httptest.NewServer(New(Options{Alarms: &queuedAlarms{ch: make(chan *alarm.Alarm)}, Auth: auth,
		Cluster: &ClusterInfo{Node: "hub-b", Hubs: testHubs}}))
	defer group.Close()
	single := httptest.NewServer(New(Options{Alarms: &queuedAlarms{ch: make(chan *alarm.Alarm)}, Auth: auth}))
	defer single.Close()
	ctx := mapBrowser(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(group.URL+"/"), chromedp.WaitReady(chromedp.CSS(`#lang-toggle`))); err != nil {
		t.Fatal(err)
	}
	if l := waitHubLabel(t, ctx, func(l hubLabel) bool { return !l.Hidden }); l.Hidden || l.Text != "Hubb: hub-b" {
		t.Fatalf("group, Swedish: %+v, want \"Hubb: hub-b\" shown", l)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#lang-toggle`))); err != nil {
		t.Fatal(err)
	}
	if l := waitHubLabel(t, ctx, func(l hubLabel) bool { return l.Text == "Hub: hub-b" }); l.Hidden || l.Text != "Hub: hub-b" {
		t.Errorf("group, English: %+v, want \"Hub: hub-b\" shown", l)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(single.URL+"/"), chromedp.WaitReady(chromedp.CSS(`#lang-toggle`))); err != nil {
		t.Fatal(err)
	}
	l := waitHubLabel(t, ctx, func(l hubLabel) bool { return l.Fetched })
	time.Sleep(200 * time.Millisecond) // let the answer be rendered, if it were
	if l = readHubLabel(t, ctx); !l.Fetched || !l.Hidden {
		t.Errorf("single hub: %+v, want the status asked for and nothing shown", l)
	}
}
