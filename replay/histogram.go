package replay

import (
	"math"
	"math/bits"
	"time"
)

// histogram records non-negative durations in constant memory with a
// relative error under 1 % (log-linear buckets: exact below 128 ns, then 64
// buckets per power of two).
type histogram struct {
	counts [128 + 57*64]int64
	n      int64
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 128 {
		return int(v)
	}
	shift := bits.Len64(v) - 7
	return 128 + (shift-1)*64 + int(v>>shift) - 64
}

// bucketValue returns the middle of bucket i.
func bucketValue(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	shift := (i-128)/64 + 1
	lo := uint64((i-128)%64+64) << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the nearest-rank q-quantile (0 < q ≤ 1).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var cum int64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return min(time.Duration(bucketValue(i)), h.max)
		}
	}
	return h.max
}

// Lateness summarises how late publishes were against their deadlines.
type Lateness struct {
	Count              int64 // publishes measured (not retained restores, steps or --speed max)
	P50, P90, P99, Max time.Duration
}

func (h *histogram) summary() Lateness {
	return Lateness{Count: h.n, P50: h.quantile(0.5), P90: h.quantile(0.9), P99: h.quantile(0.99), Max: h.max}
}
