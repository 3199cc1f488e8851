package inspector

import (
	"context"

	"github.com/mqtape/mqtape/storage"
)

// rankShift sets the rank index's bucket width: 1<<17 seqs, about 80
// buckets per 10 million messages (a few hundred KB of counts for 200
// topics); ranking a seq counts at most half a bucket. Narrower buckets make
// that count cheaper but the pass that builds the index slower (one query
// per bucket: 1.4 s at 1<<16, 1.1 s at 1<<18 on 10 million messages). A
// variable so tests exercise several buckets on small captures.
var rankShift uint = 17

// rankIndex knows, for every topic, how many of its messages come before
// each bucket boundary (seq b<<shift). With it a topic filter's matches
// before any seq are a sum over its topics plus one count inside a bucket:
// filters by topic, jumps inside them and the rows of far pages need no
// count over the capture. It is built once, by the same pass over the topic
// index that counts the topic tree, and never changes (a live capture's
// newer messages are counted above horizon).
type rankIndex struct {
	shift   uint
	horizon int64             // the highest seq covered
	cum     map[int64][]int64 // topic id → cum[b]: its messages with seq < b<<shift
}

// newRankIndex builds a rank index from TopicBuckets(0, horizon, shift).
func newRankIndex(buckets map[int64][]int64, horizon int64, shift uint) *rankIndex {
	r := &rankIndex{shift: shift, horizon: horizon, cum: make(map[int64][]int64, len(buckets))}
	for id, counts := range buckets {
		cum := make([]int64, len(counts)+1)
		for b, n := range counts {
			cum[b+1] = cum[b] + n
		}
		r.cum[id] = cum
	}
	return r
}

// totals returns the messages per topic id (the tree's counts).
func (r *rankIndex) totals() map[int64]int64 {
	out := make(map[int64]int64, len(r.cum))
	for id, cum := range r.cum {
		out[id] = cum[len(cum)-1]
	}
	return out
}

// boundary returns the topics' messages with seq < b<<shift.
func (r *rankIndex) boundary(ids []int64, b int64) int64 {
	var n int64
	for _, id := range ids {
		cum := r.cum[id]
		if len(cum) > 0 {
			n += cum[min(b, int64(len(cum)-1))]
		}
	}
	return n
}

// ranked is a topic-only query with the rank index of its topics.
type ranked struct {
	r   *rankIndex
	ids []int64 // the filter's topic ids
}

// before returns the matches of p (which selects exactly rk.ids) with seq
// < x: the bucket boundary nearer x, corrected by a count inside the bucket;
// seqs above the index's horizon are counted.
func (rk *ranked) before(ctx context.Context, p *storage.Prepared, x int64) (int64, error) {
	r := rk.r
	if x <= 0 {
		return 0, nil
	}
	if x > r.horizon+1 {
		n, err := rk.before(ctx, p, r.horizon+1)
		if err != nil {
			return 0, err
		}
		m, err := countSQL(ctx, p, r.horizon+1, x-1)
		return n + m, err
	}
	b := x >> r.shift
	lo, hi := b<<r.shift, (b+1)<<r.shift
	if x-lo <= hi-x || hi > r.horizon+1 {
		n, err := countSQL(ctx, p, lo, x-1)
		return rk.r.boundary(rk.ids, b) + n, err
	}
	n, err := countSQL(ctx, p, x, hi-1)
	return rk.r.boundary(rk.ids, b+1) - n, err
}

// seqAtRow returns the seq of row row (0-based) of the matches, or
// horizon+1 when there are fewer rows: a search over the boundaries, then
// one scan of a bucket's seqs.
func (rk *ranked) seqAtRow(ctx context.Context, p *storage.Prepared, row, horizon int64) (int64, error) {
	r := rk.r
	// The last boundary at or below both horizons with at most row matches
	// before it (boundaries past the index's horizon are not exact).
	lo, hi := int64(0), min(horizon, r.horizon)>>r.shift
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if rk.r.boundary(rk.ids, mid) <= row {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	skip := row - rk.r.boundary(rk.ids, lo)
	// The bucket, then (a live capture past the index) the rest: bounded
	// scans, as SQLite sorts a topic set's matches in a range to order them.
	bucketEnd := min(horizon, (lo+1)<<r.shift-1)
	for _, span := range [][2]int64{{lo << r.shift, bucketEnd}, {bucketEnd + 1, horizon}} {
		for seq, err := range p.Seqs(ctx, span[0], span[1]) {
			if err != nil {
				return 0, err
			}
			if skip == 0 {
				return seq, nil
			}
			skip--
		}
	}
	return horizon + 1, nil
}
