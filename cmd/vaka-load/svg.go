package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
)

// writeSVG plots p99 (log scale) against offered rate (log scale) for each
// peer's ramp steps, with the 10 ms knee line. A lost alarm marks its
// point with a cross. No external tools: plain SVG text.
func writeSVG(file string, ramp []*Result) error {
	const (
		W, H                   = 760, 440
		left, right, top, bott = 70, 170, 30, 60
	)
	pw, ph := float64(W-left-right), float64(H-top-bott)
	var rates []float64
	yMin, yMax := 0.1, 100.0
	for _, r := range ramp {
		rates = append(rates, r.OfferedRate)
		if r.Latency.P99 > 0 {
			yMin = min(yMin, r.Latency.P99)
			yMax = max(yMax, r.Latency.P99)
		}
	}
	slices.Sort(rates)
	if len(rates) == 0 {
		return nil
	}
	xMin, xMax := rates[0], rates[len(rates)-1]
	if xMax <= xMin {
		xMax = xMin * 10
	}
	lx0, lx1 := math.Log10(xMin), math.Log10(xMax)
	ly0, ly1 := math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
	x := func(v float64) float64 { return float64(left) + (math.Log10(v)-lx0)/(lx1-lx0)*pw }
	y := func(v float64) float64 {
		v = max(v, math.Pow(10, ly0))
		return float64(top) + ph - (math.Log10(v)-ly0)/(ly1-ly0)*ph
	}
	var b bytes.Buffer
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="18" font-size="14">Alarm latency p99 against offered rate (log–log)</text>`+"\n", left)
	// Axes and grid.
	p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	for e := ly0; e <= ly1; e++ {
		v := math.Pow(10, e)
		p(`<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, float64(left)+pw, y(v), y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, trimNum(v))
	}
	seen := map[float64]bool{}
	for _, r := range rates {
		if seen[r] {
			continue
		}
		seen[r] = true
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f" stroke="#eee"/>`+"\n", x(r), x(r), top, float64(top)+ph)
		p(`<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x(r), float64(top)+ph+16, kilo(r))
	}
	p(`<text x="%.0f" y="%d" text-anchor="middle">offered events/s</text>`+"\n", float64(left)+pw/2, H-18)
	p(`<text transform="translate(18,%.0f) rotate(-90)" text-anchor="middle">p99 ms</text>`+"\n", float64(top)+ph/2)
	// Knee line.
	p(`<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/>`+"\n", left, float64(left)+pw, y(kneeMs), y(kneeMs))
	p(`<text x="%.0f" y="%.1f" fill="#c00">knee: 10 ms</text>`+"\n", float64(left)+pw+6, y(kneeMs)+4)
	colors := map[string]string{peerVaka: "#1f77b4", peerMosqExt: "#ff7f0e", peerNodeRED: "#2ca02c"}
	for k, pn := range peersIn(ramp) {
		rs := bestPerRate(byPeer(ramp, pn))
		slices.SortFunc(rs, func(a, b *Result) int { return int(a.OfferedRate - b.OfferedRate) })
		c := colors[pn]
		var pts bytes.Buffer
		for _, r := range rs {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(r.OfferedRate), y(r.Latency.P99))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, bytes.TrimSpace(pts.Bytes()))
		for _, r := range rs {
			cx, cy := x(r.OfferedRate), y(r.Latency.P99)
			if r.Lost > 0 || r.Duplicated > 0 || r.Aborted != "" {
				p(`<path d="M%.1f %.1fl8 8m0 -8l-8 8" stroke="%s" stroke-width="2"/>`+"\n", cx-4, cy-4, c)
			} else {
				p(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", cx, cy, c)
			}
		}
		ly := top + 20 + 20*k
		p(`<line x1="%.0f" x2="%.0f" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", float64(left)+pw+10, float64(left)+pw+30, ly, ly, c)
		p(`<text x="%.0f" y="%d">%s</text>`+"\n", float64(left)+pw+34, ly+4, peerTitle(pn))
	}
	p(`<text x="%.0f" y="%d" fill="#555">× = loss</text>`+"\n", float64(left)+pw+10, top+20+20*3)
	p("</svg>\n")
	return os.WriteFile(file, b.Bytes(), 0o644)
}

func trimNum(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

func kilo(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}
