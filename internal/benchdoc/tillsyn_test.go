package benchdoc

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.25, 7},
		{[]float64{1, 2, 3, 4, 5}, 0.25, 2},     // exact rank
		{[]float64{5, 4, 3, 2, 1}, 0.75, 4},     // order does not matter
		{[]float64{1, 2, 3, 4}, 0.25, 1.75},     // between ranks: numpy's default
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},       // the median
		{[]float64{10, 20, 30, 40}, 0.975, 39.25},
		{[]float64{-3, 1, 100}, 1, 100},
	} {
		if got := Quantile(c.in, c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Quantile(%v, %v) = %v, want %v", c.in, c.q, got, c.want)
		}
	}
}

// The verdict: "no measurable change" only when the median difference is
// within the baseline's run-to-run IQR, over enough runs; a cost above
// it and a bias below it are not.
func TestTillsynStatsVerdict(t *testing.T) {
	offs := []float64{100, 110, 120, 130, 140, 150, 160, 170} // quartiles 117.5 and 152.5
	within := []float64{-20, -5, 0, 5, 10, 15, 20, 40}
	v := TillsynStats(within, offs)
	if v.Spread != Quantile(offs, 0.75)-Quantile(offs, 0.25) || v.Spread != 35 {
		t.Fatalf("spread %v, want 35", v.Spread)
	}
	if v.Median != 7.5 || v.Positive != 5 || v.Runs != 8 || !v.NoChange() {
		t.Errorf("within the spread: %+v", v)
	}
	if !(v.CILow <= v.Median && v.Median <= v.CIHigh) || v.CILow < -20 || v.CIHigh > 40 {
		t.Errorf("interval %v…%v around the median %v", v.CILow, v.CIHigh, v.Median)
	}
	if again := TillsynStats(within, offs); again != v {
		t.Errorf("not deterministic: %+v then %+v", v, again)
	}
	above := make([]float64, len(within))
	below := make([]float64, len(within))
	for i, d := range within {
		above[i], below[i] = d+40, d-50
	}
	if v := TillsynStats(above, offs); v.NoChange() || v.Median != 47.5 {
		t.Errorf("a +40 µs cost passed: %+v", v)
	}
	if v := TillsynStats(below, offs); v.NoChange() {
		t.Errorf("a biased comparison passed: %+v", v)
	}
	if v := TillsynStats(within[:4], offs[:4]); v.NoChange() {
		t.Errorf("4 runs judged: %+v", v)
	}
}
