package replay

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100000 {
		// Log-uniform from 1 ns to ~10 s, like lateness under load.
		d := time.Duration(1 << r.IntN(34))
		d += time.Duration(r.Int64N(int64(d)))
		all = append(all, d)
		h.add(d)
	}
	h.add(-time.Second) // counted as 0
	all = append(all, 0)
	slices.Sort(all)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all))+0.999999)-1]
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	if h.max != all[len(all)-1] || h.n != int64(len(all)) {
		t.Errorf("max %v n %d", h.max, h.n)
	}
	var empty histogram
	if s := empty.summary(); s != (Lateness{}) {
		t.Errorf("empty summary = %+v", s)
	}
}

func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<40; v = v*17/16 + 1 {
		b := bucketOf(v)
		if b < prev || b >= len(histogram{}.counts) {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		if mid := bucketValue(b); float64(mid) < float64(v)*0.99 || float64(mid) > float64(v)*1.01+1 {
			t.Fatalf("bucketValue(bucketOf(%d)) = %d", v, mid)
		}
		prev = b
	}
	if b := bucketOf(1<<63 - 1); b >= len(histogram{}.counts) {
		t.Fatalf("bucketOf(max) = %d", b)
	}
}
