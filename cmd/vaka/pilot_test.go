package main

import (
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/service"
)

// startDemoHub starts the demo's hub (with its seeded two-arm trial) on
// free loopback ports, without gateways.
func startDemoHub(t *testing.T) *service.Hub {
	t.Helper()
	cfg, _, err := demoConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", demoWorld())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	pp, opts, err := startPilot(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := pp.seedDemoTrial(&cfg.Pilot.Trials[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(cfg, log, opts...)
	if err != nil {
		pp.close()
		t.Fatal(err)
	}
	pp.attach(s)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPilotAPIAndCSVForLeadOnly(t *testing.T) {
	s := startDemoHub(t)
	base := "http://" + s.HTTPAddr()
	var rep pilot.Report
	if code := testenv.GetJSON(t, base+"/api/v1/trials/natt-sensorer", "lead", "lead", &rep); code != 200 {
		t.Fatalf("report: %d", code)
	}
	if len(rep.Results) != 7 || rep.Arms["sensors"].Alarms == 0 || len(rep.Weeks) < 8 {
		t.Fatalf("report: %d results, %d alarms, %d weeks", len(rep.Results), rep.Arms["sensors"].Alarms, len(rep.Weeks))
	}
	// Eight simulated weeks decide some criteria, not all: each carries
	// its interval (open sides as null in JSON), and an undecided one the
	// sample it would need; the running trial's report is preliminary.
	for _, r := range rep.Results {
		if r.Interval.Method == "" || r.Samples == 0 {
			t.Errorf("criterion %s: no interval: %+v", r.Criterion.ID, r)
		}
		if (r.Verdict == pilot.NotEnoughData) != (r.Needed != 0) {
			t.Errorf("criterion %s: %s, needs %d", r.Criterion.ID, r.Verdict, r.Needed)
		}
	}
	if !rep.Preliminary || rep.Headline.Verdict == "" || rep.Headline.Met+rep.Headline.NotMet+rep.Headline.Undecided != 7 {
		t.Errorf("headline %+v, preliminary %v", rep.Headline, rep.Preliminary)
	}
	// The measures added for the domain notes: device uptime, time to
	// detect an offline device, continuation, visits replaced, receipts by
	// channel.
	for _, arm := range []string{"sensors", "button"} {
		m := rep.Arms[arm]
		if m.Devices == 0 || m.DeviceUptime <= 0.9 || m.DeviceUptime >= 1 || m.TimeToDetect.N == 0 || m.Participants == 0 ||
			m.ContinuationRate <= 0 || m.PhoneVia["app"] == 0 || m.PhoneVia["push"] == 0 {
			t.Errorf("%s: devices %d uptime %v detect %+v continuation %d/%d via %v", arm, m.Devices, m.DeviceUptime, m.TimeToDetect,
				m.Continued, m.Participants, m.PhoneVia)
		}
	}
	if s := rep.Arms["sensors"]; s.VisitsReplaced <= 0 || s.VisitsBaseline != "button" {
		t.Errorf("visits replaced %v against %q", s.VisitsReplaced, s.VisitsBaseline)
	}
	// ... counted from the sensor arm's supervision records (digital
	// look-ins), with their cannot-tell causes.
	if s := rep.Arms["sensors"]; s.VisitsReplacedFrom != "supervision_records" || s.Supervision == nil ||
		s.VisitsReplaced != float64(s.Supervision.VisitsReplaced) || s.Supervision.CannotTellRate <= 0 || s.Supervision.VisitsMade == 0 {
		t.Errorf("visits replaced from %q: %+v", s.VisitsReplacedFrom, s.Supervision)
	}
	if code := testenv.GetJSON(t, base+"/api/v1/trials", "natt1", "natt1", nil); code != http.StatusForbidden {
		t.Errorf("staff may see trials: %d", code)
	}
	if code := testenv.GetJSON(t, base+"/api/v1/trials/nope", "lead", "lead", nil); code != http.StatusNotFound {
		t.Errorf("unknown trial: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/trials/natt-sensorer/report.csv", nil)
	req.SetBasicAuth("admin", "admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || resp.StatusCode != 200 || len(rows) < 50 {
		t.Fatalf("csv: %d %v %d rows", resp.StatusCode, err, len(rows))
	}
	if strings.Join(rows[0], ",") != "section,period_start,arm,metric,value,samples,verdict" || rows[1][0] != "criterion" {
		t.Errorf("csv head: %v %v", rows[0], rows[1])
	}
	if strings.Contains(string(body), "r-7f3a") || strings.Contains(string(body), "sensors-r0") {
		t.Error("csv names a resident id")
	}
	have := map[string]bool{}
	for _, r := range rows {
		if r[0] == "period" && r[4] != "" {
			have[r[3]] = true
		}
	}
	for _, m := range []string{"device_uptime", "p90_to_detect_offline_s", "continuation_rate", "night_visits_replaced", "first_receipt_via.app"} {
		if !have[m] {
			t.Errorf("csv has no value for %s", m)
		}
	}
}

// report.csv?lang=sv opens right in Swedish Excel: parsed back the way
// Excel with Swedish regional settings reads it (UTF-8 BOM, semicolon
// list separator, decimal comma), its numbers are the report's, rounded,
// and a week without samples is empty, not 0.
func TestPilotCSVSwedishExcel(t *testing.T) {
	s := startDemoHub(t)
	base := "http://" + s.HTTPAddr()
	var rep pilot.Report
	if code := testenv.GetJSON(t, base+"/api/v1/trials/natt-sensorer", "lead", "lead", &rep); code != 200 {
		t.Fatalf("report: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/trials/natt-sensorer/report.csv?lang=sv", nil)
	req.SetBasicAuth("lead", "lead")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text, ok := strings.CutPrefix(string(body), "\ufeff")
	if !ok || resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "rapport.csv") {
		t.Fatalf("csv: %d, BOM %v, %q", resp.StatusCode, ok, resp.Header.Get("Content-Disposition"))
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 100 {
		t.Fatalf("csv with ';': %v, %d rows", err, len(rows))
	}
	if strings.Join(rows[0], ";") != "Avsnitt;Period från;Grupp;Mått;Värde;Enhet;Nedre 95 %;Övre 95 %;Underlag;Bedömning;Underlag som behövs" {
		t.Fatalf("header %q", rows[0])
	}
	swedish := regexp.MustCompile(`^-?\d+(,\d+)?$`)
	parse := func(cell string) float64 {
		if !swedish.MatchString(cell) {
			t.Fatalf("%q is not a number as Swedish Excel reads it", cell)
		}
		x, _ := strconv.ParseFloat(strings.Replace(cell, ",", ".", 1), 64)
		return x
	}
	crit := map[string][]string{}
	emptyWeeks := 0
	for _, row := range rows[1:] {
		if len(row) != 11 {
			t.Fatalf("row %q", row)
		}
		for _, c := range []int{4, 6, 7} {
			if row[c] != "" {
				parse(row[c])
			}
		}
		if row[0] == "Kriterium" {
			crit[row[3]] = row
		}
		if strings.HasPrefix(row[0], "Vecka") && row[8] == "0" {
			if row[4] != "" || row[6] != "" {
				t.Errorf("a week without samples has a value: %q", row)
			}
			emptyWeeks++
		}
		if row[0] == "Hela perioden" && row[3] == "" {
			t.Errorf("metric without a Swedish label: %q", row)
		}
	}
	if emptyWeeks == 0 {
		t.Error("no week without samples: the empty-cell rule was not exercised")
	}
	if len(crit) != 7 {
		t.Fatalf("criterion rows %d", len(crit))
	}
	// The numbers are the report's, in the criterion's own terms, rounded.
	verdicts := map[pilot.Verdict]string{pilot.Met: "Uppfyllt", pilot.NotMet: "Ej uppfyllt", pilot.NotEnoughData: "För lite data"}
	for _, res := range rep.Results {
		row := crit[res.Criterion.Text]
		if row == nil {
			t.Fatalf("no row for %q", res.Criterion.Text)
		}
		want, unit := res.Value, row[5]
		switch res.Criterion.ID {
		case "visits":
			want = 100 * (res.Change - 1)
		case "unaccepted":
			want = 100 * res.Change
		case "tsa60", "uptime", "continue":
			want = 100 * res.Value
		case "detect":
			want = res.Value / 60
		}
		got := parse(row[4])
		_, frac, _ := strings.Cut(row[4], ",")
		if math.Abs(got-want) > 0.5*math.Pow(10, -float64(len(frac)))+1e-9 || row[9] != verdicts[res.Verdict] || row[8] != strconv.Itoa(res.Samples) {
			t.Errorf("%s: %q, want %.3f %s (%s)", res.Criterion.ID, row, want, unit, res.Verdict)
		}
	}
	if u := crit["Enheternas drifttid minst 99,5 %"]; u == nil || u[5] != "%" || !regexp.MustCompile(`^\d+,\d\d$`).MatchString(u[4]) {
		t.Errorf("uptime row %q: want a percentage with two decimals", u)
	}
	if d := crit["Tyst enhet upptäckt inom 15 min (p90)"]; d == nil || d[5] != "min" {
		t.Errorf("detection row %q: want minutes", d)
	}
	// The benefit calculation's CSV, Swedish, with an assumption changed
	// in the link: the assumption is in it, and hours = visits × 15 / 60.
	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/trials/natt-sensorer/benefits.csv?lang=sv&minutes_per_visit=15", nil)
	req.SetBasicAuth("lead", "lead")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	body, _ = io.ReadAll(resp2.Body)
	text, ok = strings.CutPrefix(string(body), "\ufeff")
	r = csv.NewReader(strings.NewReader(text))
	r.Comma = ';'
	brows, err := r.ReadAll()
	if err != nil || !ok || len(brows) < 6 || brows[0][0] != "Grupp" {
		t.Fatalf("benefits csv: BOM %v, %v, %q", ok, err, brows)
	}
	vals := map[string]float64{}
	for _, row := range brows[1:] {
		if row[3] != "" {
			vals[row[0]+"/"+row[2]] = parse(row[3])
		}
	}
	if vals["/Personaltid per fysiskt nattbesök, inkl. resa"] != 15 {
		t.Errorf("assumption not in the CSV: %v", vals)
	}
	v, h := vals["Sensorer/Fysiska nattbesök ersatta"], vals["Sensorer/Personaltimmar frigjorda"]
	if v <= 0 || math.Abs(h-v*15/60) > 1 {
		t.Errorf("benefits csv: visits %v, hours %v", v, h)
	}
	if code := testenv.GetJSON(t, base+"/api/v1/trials/natt-sensorer/benefits.csv?minutes_per_visit=-3", "lead", "lead", nil); code != http.StatusBadRequest {
		t.Errorf("a negative assumption: %d", code)
	}
}

// The dashboard in a real headless Chromium: verdicts and charts with
// data, in Swedish and in English; screenshots kept in artifacts/.
func TestIntegrationPilotDashboardChromium(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	s := startDemoHub(t)
	base := "http://" + s.HTTPAddr()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900))
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer func() { cancelT(); cancel(); cancelA() }()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "lead"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "lead"),
		chromedp.Click(chromedp.CSS(`#login-button`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-connected="true"]`)),
		chromedp.Navigate(base+"/pilot"),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart`)),
	); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	eval := func(js string) float64 {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	charts := int(eval(`document.querySelectorAll('svg.chart').length`))
	bars := int(eval(`document.querySelectorAll('svg.chart rect.bar[data-value]').length`))
	withData := eval(`Array.from(document.querySelectorAll('svg.chart')).every(s => Array.from(s.querySelectorAll('rect.bar')).some(r => parseFloat(r.dataset.value) > 0 && r.getBBox().height > 0 && r.getBBox().width > 0)) ? 1 : 0`) == 1
	verdicts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('tr[data-verdict]')).map(r => r.dataset.verdict)`))
	if err != nil {
		t.Fatal(err)
	}
	if charts != 4 || bars < 50 || !withData {
		t.Fatalf("charts %d, bars %d, every chart has visible data %v", charts, bars, withData)
	}
	if len(verdicts) != 7 {
		t.Fatalf("verdicts %v", verdicts)
	}
	t.Logf("%d charts, %d data marks, verdicts %v", charts, bars, verdicts)
	// Charts: y axes titled, bars labelled by arm under each week, arms in
	// distinct colours and patterns, the legend naming the pattern.
	chartsOK, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const c = id => document.querySelector('#chart-' + id + ' svg');
		const fills = new Set(Array.from(c('accept').querySelectorAll('rect.bar')).map(r => r.dataset.arm + r.getAttribute('fill')));
		return [c('per-night').querySelector('.axis-title')?.textContent || '', c('accept').querySelector('.axis-title')?.textContent || '',
			Array.from(c('per-night').querySelectorAll('text.tick')).filter(t => t.textContent === 'S' || t.textContent === 'B').length > 10 ? 'labels' : 'none',
			String(fills.size), c('accept').querySelectorAll('rect[fill="url(#pat-hatch)"]').length > 0 ? 'pattern' : 'none',
			Array.from(c('per-night').querySelectorAll('text')).some(t => t.textContent === 'B = Bara larmknapp') ? 'key' : 'nokey'] })()`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(chartsOK, "|") != "larm per boendenatt|antal larm|labels|2|pattern|key" {
		t.Errorf("charts: %q", chartsOK)
	}
	// The headline: one verdict with its reason, above the fold at
	// 1366×900, marked preliminary while the trial runs.
	head, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => { const h = document.querySelector('#headline'); const r = h.getBoundingClientRect();
		return [h.dataset.verdict, document.querySelector('#headline-why').textContent, (document.querySelector('#preliminary') || {}).textContent || '', String(r.top >= 0 && r.bottom <= innerHeight)] })()`))
	if err != nil {
		t.Fatal(err)
	}
	if len(head) != 4 || head[0] == "" || !strings.Contains(head[1], " av 7 ") || !strings.HasPrefix(head[2], "Preliminärt till ") || head[3] != "true" {
		t.Errorf("headline %q", head)
	}
	// Each criterion in its own terms, Swedish style: the visits as a
	// relative change "−NN %", the TSA share and the uptime as percentages
	// with a decimal comma (uptime with two decimals against 99,5 %),
	// the detection time in min, every one with a 95 % interval.
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries(Array.from(document.querySelectorAll('tr[data-criterion]')).map(tr => [tr.dataset.criterion, tr.querySelector('td.value').textContent.trim() + ' | ' + tr.querySelector('td.ci').textContent.trim() + ' | ' + tr.cells[4].textContent.trim()]))`))
	if err != nil {
		t.Fatal(err)
	}
	for id, re := range map[string]string{
		"visits":   `^[−+]\d+\x{00a0}% .*95 % KI [−+]?\d+\x{00a0}% till [−+]?\d+\x{00a0}%`,
		"tsa60":    `^\d+,\d\x{00a0}% .*95 % KI \d+,\d+\x{00a0}% till`,
		"uptime":   `^\d+,\d\d\x{00a0}% `,
		"detect":   `^\d+,\d\x{00a0}min `,
		"p90":      `^\d+\x{00a0}s `,
		"continue": `^\d+\x{00a0}% .*Wilsons intervall`,
	} {
		if !regexp.MustCompile(re).MatchString(cells[id]) {
			t.Errorf("criterion %s reads %q, want %s", id, cells[id], re)
		}
	}
	// Nowhere on the Swedish page a decimal point: one formatter for all.
	if txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText + Array.from(document.querySelectorAll('svg text')).map(t => t.textContent).join(' ')`)); regexp.MustCompile(`\d\.\d`).MatchString(txt) {
		t.Errorf("decimal point on the Swedish page: %q", regexp.MustCompile(`.{0,30}\d\.\d.{0,30}`).FindAllString(txt, 5))
	}
	for id, c := range cells {
		if strings.Contains(c, "För lite data") && !strings.Contains(c, "Behöver omkring") && !strings.Contains(c, "100 gånger") {
			t.Errorf("criterion %s undecided without the sample it needs: %q", id, c)
		}
		if regexp.MustCompile(`\d\.\d`).MatchString(c) {
			t.Errorf("criterion %s has a decimal point on the Swedish page: %q", id, c)
		}
	}
	// Digital night supervision beside the other measures: the sensor
	// arm's look-ins, visits replaced and cannot-tell rate from its
	// supervision records; the button arm has none.
	sup, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#tillsyn tr[data-metric]')).map(tr => tr.dataset.metric + '=' + Array.from(tr.cells).slice(1).map(c => c.textContent.trim()).join('|'))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(sup) != 3 {
		t.Fatalf("supervision rows %v", sup)
	}
	for _, r := range sup {
		name, cells, _ := strings.Cut(r, "=")
		sensors, button, _ := strings.Cut(cells, "|")
		if sensors == "–" || sensors == "" || strings.HasPrefix(sensors, "0") || button != "–" {
			t.Errorf("supervision %s: sensors %q, button %q", name, sensors, button)
		}
	}
	// Device uptime and continuation per arm, shown with values.
	devRows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#devices tr[data-metric] td[data-value]')).map(td => td.closest('tr').dataset.metric + '=' + td.dataset.value)`))
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, r := range devRows {
		name, v, _ := strings.Cut(r, "=")
		x, err := strconv.ParseFloat(v, 64)
		if err == nil && x > 0 && (name == "p90_to_detect_offline_s" || x <= 1) {
			ok++
		}
	}
	if ok != 6 {
		t.Errorf("devices table: %v", devRows)
	}
	shot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join("..", "..", "artifacts")
		os.MkdirAll(dir, 0o755)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d bytes)", p, len(png))
	}
	shot("pilot-dashboard-sv.png")
	// The page may re-render while the click looks its button up ("No node
	// with given id found"): a few bounded tries.
	var langErr error
	for try := 0; try < 3; try++ {
		langErr = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#lang`)))
		if langErr == nil || !strings.Contains(langErr.Error(), "No node with given id") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if langErr != nil {
		t.Fatal(langErr)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] h1`))); err != nil {
		t.Fatal(err)
	}
	h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "Pilot results") {
		t.Errorf("English page heading %q", h1)
	}
	enHead, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#preliminary').textContent + ' | ' + document.querySelector('tr[data-criterion="tsa60"] td.value').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^Preliminary until \d{4}-\d\d-\d\d \| \d+\.\d%`).MatchString(enHead) {
		t.Errorf("English headline and share: %q", enHead)
	}
	shot("pilot-dashboard-en.png")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/pilot/trials/natt-sensorer/report"), chromedp.WaitVisible(chromedp.CSS(`svg.chart`))); err != nil {
		t.Fatal(err)
	}
	if eval(`document.body.classList.contains('print') && getComputedStyle(document.querySelector('nav')).display === 'none' ? 1 : 0`) != 1 {
		cls, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.className + '|' + getComputedStyle(document.querySelector('nav')).display + '|' + document.querySelector('style').textContent.slice(-80)`))
		t.Errorf("printable report shows the navigation: %s", cls)
	}
	if gen, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.generated`))); !strings.Contains(gen, "Rapporten skapad 20") {
		t.Errorf("printable report without its time: %q", gen)
	}
	shot("pilot-dashboard-print.png")
	// The benefit calculation: assumptions shown and editable; doubling
	// the minutes per visit doubles the hours released; a cost per hour
	// adds the cost avoided.
	benefit := func(key string) float64 {
		txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('section.benefit[data-arm="sensors"] tr[data-benefit="`+key+`"] td.value').textContent`))
		if err != nil {
			t.Fatalf("benefit %s: %v", key, err)
		}
		x, err := strconv.ParseFloat(strings.NewReplacer("\u202f", "", ",", ".", "\u00a0h", "", "\u00a0st", "", "\u00a0kr", "").Replace(txt), 64)
		if err != nil {
			t.Fatalf("benefit %s reads %q", key, txt)
		}
		return x
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/pilot/trials/natt-sensorer/benefits"), chromedp.WaitVisible(chromedp.CSS(`#assumptions`))); err != nil {
		t.Fatal(err)
	}
	visits, hours := benefit("visits"), benefit("hours")
	if visits <= 0 || math.Abs(hours-visits*10/60) > 0.5 {
		t.Errorf("visits %v, hours %v at 10 min per visit", visits, hours)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#minutes_per_visit`), "20"), chromedp.SetValue(chromedp.CSS(`#hourly_cost`), "450"),
		chromedp.Click(chromedp.CSS(`#recalc`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-benefit="costAvoided"]`))); err != nil {
		t.Fatal(err)
	}
	if h2 := benefit("hours"); math.Abs(h2-2*hours) > 1 || benefit("costAvoided") < 450*(h2-1) {
		t.Errorf("20 min per visit: hours %v (was %v), cost %v", h2, hours, benefit("costAvoided"))
	}
	if pre, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#preliminary`))); !strings.HasPrefix(pre, "Preliminärt till ") {
		t.Errorf("benefit calculation not marked preliminary: %q", pre)
	}
	shot("pilot-benefits-sv.png")
}
