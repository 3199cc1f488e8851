package inspector

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/mqtape/mqtape/storage"
)

const (
	pageRows     = 128 // rows per cached page (one keyset query)
	cachedPages  = 24  // pages kept (LRU), a few thousand rows of previews
	previewBytes = 160 // payload bytes fetched per row for the table
)

// Variables so tests can exercise every path on small captures.
var (
	listCap = 200_000 // a payload filter with at most this many matches keeps their seqs (1.6 MB)
	maxWalk = 64      // pages walked from an anchor before a counting search
)

// Model modes: how a row index maps to a message.
type modelMode int

const (
	// modeContiguous: no filter and no gaps in seq: row r is seq lo+r.
	modeContiguous modelMode = iota
	// modeList: the matching seqs are held (payload filters with few matches).
	modeList
	// modeAnchored: rows are reached by keyset queries from known
	// (row, seq) anchors (cached pages, the start, the end, jump targets);
	// a row's index is found by counting matches before its seq.
	modeAnchored
)

// model is the virtual message list behind the table: a filter over the
// capture up to a seq horizon. It keeps only a few pages of row summaries.
// Use it from one goroutine (the UI's); build it anywhere.
type model struct {
	c       *storage.Capture
	q       query
	mode    modelMode
	total   int64 // rows
	lo      int64 // contiguous: the first seq
	horizon int64 // the highest seq covered (the capture's max seq when counted)
	seqs    []int64
	pages   map[int64]*cachedPage
	tick    int64
	anchors []anchor // extra (row, seq) pairs from jumps
	// summarize gives the payload column's decoded text for a fetched
	// page's rows (nil: no decoder).
	summarize func(ctx context.Context, rows []storage.Row) map[int64]string
}

// query is a prepared filter with the fastest way to count it.
type query struct {
	p *storage.Prepared
	// rank: a topic-only filter counts from the rank index (the sum of its
	// topics' counts at a bucket boundary and one count inside the bucket)
	// instead of over the capture.
	rank *ranked
}

// count returns the number of matches with seq in [from, through].
func (q query) count(ctx context.Context, from, through int64) (int64, error) {
	if from > through {
		return 0, nil
	}
	if q.rank == nil {
		return countSQL(ctx, q.p, from, through)
	}
	a, err := q.rank.before(ctx, q.p, from)
	if err != nil {
		return 0, err
	}
	b, err := q.rank.before(ctx, q.p, through+1)
	return b - a, err
}

// countHook, when set (tests), sees the seq range of every count the
// inspector asks SQLite for.
var countHook atomic.Pointer[func(from, through int64)]

// countSQL counts p's matches in [from, through] in SQLite: the one place
// the inspector reads a range of the capture to count it.
func countSQL(ctx context.Context, p *storage.Prepared, from, through int64) (int64, error) {
	if hook := countHook.Load(); hook != nil {
		(*hook)(from, through)
	}
	return p.Count(ctx, from, through)
}

type cachedPage struct {
	rows []storage.Row
	used int64
	// decoded holds the payload column's text for the rows a binary or
	// compressed decoder reads (by seq); nil without a decoder.
	decoded map[int64]string
}

type anchor struct{ row, seq int64 }

// newContiguousModel is the unfiltered view of seqs lo..hi without gaps.
func newContiguousModel(c *storage.Capture, p *storage.Prepared, lo, hi int64) *model {
	m := &model{c: c, q: query{p: p}, mode: modeContiguous, lo: lo, horizon: hi, pages: map[int64]*cachedPage{}}
	if hi >= lo && lo > 0 {
		m.total = hi - lo + 1
	}
	return m
}

// buildModel counts the matches of p up to horizon (a full scan for payload
// filters) and returns the model. It may run on any goroutine.
func buildModel(ctx context.Context, c *storage.Capture, q query, payload bool, horizon int64) (*model, error) {
	p := q.p
	m := &model{c: c, q: q, mode: modeAnchored, horizon: horizon, pages: map[int64]*cachedPage{}}
	if !payload {
		n, err := q.count(ctx, 0, horizon)
		m.total = n
		return m, err
	}
	// One pass: keep the seqs while there are few, count the rest.
	var seqs []int64
	for seq, err := range p.Seqs(ctx, 0, horizon) {
		if err != nil {
			return nil, err
		}
		if seqs != nil || m.total == 0 {
			if len(seqs) < listCap {
				seqs = append(seqs, seq)
			} else {
				seqs = nil
			}
		}
		m.total++
	}
	if m.total == int64(len(seqs)) {
		m.mode, m.seqs = modeList, seqs
	}
	return m, nil
}

// rowAt returns row r, or nil when r is out of range or unreadable.
func (m *model) rowAt(ctx context.Context, r int64) *storage.Row {
	if r < 0 || r >= m.total {
		return nil
	}
	pg, err := m.page(ctx, r/pageRows)
	if err != nil || pg == nil {
		return nil
	}
	i := r - (r/pageRows)*pageRows
	if i >= int64(len(pg.rows)) {
		return nil
	}
	return &pg.rows[i]
}

// page returns cached page p, fetching it when needed.
func (m *model) page(ctx context.Context, p int64) (*cachedPage, error) {
	m.tick++
	if pg, ok := m.pages[p]; ok {
		pg.used = m.tick
		return pg, nil
	}
	rows, err := m.fetch(ctx, p)
	if err != nil {
		return nil, err
	}
	pg := m.store(p, rows)
	if m.summarize != nil {
		pg.decoded = m.summarize(ctx, rows)
	}
	return pg, nil
}

// decodedAt returns the payload column's decoded text for row r (ok false:
// none, the row shows its payload as recorded).
func (m *model) decodedAt(ctx context.Context, r int64) (string, bool) {
	if m.summarize == nil || r < 0 || r >= m.total {
		return "", false
	}
	pg, err := m.page(ctx, r/pageRows)
	if err != nil || pg == nil || pg.decoded == nil {
		return "", false
	}
	i := r - (r/pageRows)*pageRows
	if i >= int64(len(pg.rows)) {
		return "", false
	}
	s, ok := pg.decoded[pg.rows[i].Seq]
	return s, ok
}

func (m *model) store(p int64, rows []storage.Row) *cachedPage {
	pg := &cachedPage{rows: rows, used: m.tick}
	m.pages[p] = pg
	for len(m.pages) > cachedPages {
		oldest, at := int64(-1), int64(math.MaxInt64)
		for k, v := range m.pages {
			if v.used < at {
				oldest, at = k, v.used
			}
		}
		delete(m.pages, oldest)
	}
	return pg
}

// pageLen is how many rows page p has.
func (m *model) pageLen(p int64) int {
	return int(max(0, min(pageRows, m.total-p*pageRows)))
}

func (m *model) fetch(ctx context.Context, p int64) ([]storage.Row, error) {
	n := m.pageLen(p)
	if n == 0 {
		return nil, nil
	}
	first := p * pageRows
	switch m.mode {
	case modeContiguous:
		from := m.lo + first
		return m.q.p.Rows(ctx, from, min(m.horizon, from+int64(n)-1), n, previewBytes)
	case modeList:
		return m.c.RowsBySeq(ctx, m.seqs[first:first+int64(n)], previewBytes)
	}
	return m.fetchAnchored(ctx, p, n)
}

// fetchAnchored walks from the nearest anchor to page p.
func (m *model) fetchAnchored(ctx context.Context, p int64, n int) ([]storage.Row, error) {
	first := p * pageRows
	last := first + int64(n) - 1
	// Candidates: the ends, cached pages' edges, jump anchors.
	best := anchor{row: -1, seq: 0} // before the first row
	bestDist := first + 1
	consider := func(a anchor) {
		var d int64
		switch {
		case a.row < first:
			d = first - a.row
		case a.row > last:
			d = a.row - last
		default:
			d = 0
		}
		if d < bestDist {
			best, bestDist = a, d
		}
	}
	consider(anchor{row: m.total, seq: m.horizon + 1}) // after the last row
	for k, pg := range m.pages {
		if len(pg.rows) > 0 {
			consider(anchor{k * pageRows, pg.rows[0].Seq})
			consider(anchor{k*pageRows + int64(len(pg.rows)) - 1, pg.rows[len(pg.rows)-1].Seq})
		}
	}
	for _, a := range m.anchors {
		consider(a)
	}
	if bestDist > int64(maxWalk)*pageRows {
		seq, err := m.seqAtRow(ctx, first)
		if err != nil {
			return nil, err
		}
		best, bestDist = anchor{first, seq}, 0
		m.addAnchor(best)
	}
	switch {
	case best.row < first: // forward from best (exclusive)
		rows, err := m.q.p.Rows(ctx, best.seq+1, m.horizon, int(first-best.row-1)+n, previewBytes)
		if err != nil {
			return nil, err
		}
		skip := int(first - best.row - 1)
		if skip >= len(rows) {
			return nil, nil
		}
		return rows[skip:], nil
	case best.row > last: // backward from best (exclusive)
		rows, err := m.q.p.RowsBefore(ctx, 0, best.seq-1, int(best.row-first), previewBytes)
		if err != nil {
			return nil, err
		}
		slices.Reverse(rows)
		if len(rows) < n {
			return rows, nil
		}
		return rows[:n], nil
	default: // an anchor inside the page: fetch from it both ways
		before, err := m.q.p.RowsBefore(ctx, 0, best.seq-1, int(best.row-first), previewBytes)
		if err != nil {
			return nil, err
		}
		slices.Reverse(before)
		after, err := m.q.p.Rows(ctx, best.seq, m.horizon, int(last-best.row)+1, previewBytes)
		if err != nil {
			return nil, err
		}
		return append(before, after...), nil
	}
}

// seqAtRow finds the seq of row r by binary search on counts (a fallback for
// rows far from every anchor; the UI always anchors its jumps).
func (m *model) seqAtRow(ctx context.Context, r int64) (int64, error) {
	if m.q.rank != nil {
		return m.q.rank.seqAtRow(ctx, m.q.p, r, m.horizon)
	}
	lo, hi := int64(0), m.horizon
	for lo < hi { // smallest seq s with count(<= s) > r
		mid := lo + (hi-lo)/2
		n, err := m.q.count(ctx, 0, mid)
		if err != nil {
			return 0, err
		}
		if n > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

func (m *model) addAnchor(a anchor) {
	m.anchors = append(m.anchors, a)
	if len(m.anchors) > 16 {
		m.anchors = m.anchors[1:]
	}
}

// locate returns the row of the first match at or after seq (total when
// there is none) when that needs no counting: always for contiguous and
// list models, never for anchored ones (use countRow off the UI goroutine).
func (m *model) locate(seq int64) (row, at int64, ok bool) {
	switch m.mode {
	case modeContiguous:
		seq = max(seq, m.lo)
		if seq > m.horizon {
			return m.total, 0, true
		}
		return seq - m.lo, seq, true
	case modeList:
		i := sort.Search(len(m.seqs), func(i int) bool { return m.seqs[i] >= seq })
		if i == len(m.seqs) {
			return m.total, 0, true
		}
		return int64(i), m.seqs[i], true
	}
	return 0, 0, false
}

// countRow is locate for anchored models: it finds the first match at or
// after seq and counts the matches before it (a scan for payload filters).
// It touches no model state, so it runs on any goroutine.
func countRow(ctx context.Context, q query, horizon, seq int64) (row, at int64, found bool, err error) {
	rows, err := q.p.Rows(ctx, seq, horizon, 1, 0)
	if err != nil || len(rows) == 0 {
		return 0, 0, false, err
	}
	at = rows[0].Seq
	n, err := q.count(ctx, 0, at-1)
	return n, at, err == nil, err
}

// growth is what a capture that is still being recorded added.
type growth struct {
	q       query // re-prepared for new topics and time bounds
	horizon int64
	added   int64
	seqs    []int64 // modeList: the new matches
}

// measureGrowth counts the matches in (m.horizon, horizon]. It only reads
// m's immutable fields, so it may run off the UI goroutine.
func measureGrowth(ctx context.Context, mode modelMode, q query, from, horizon int64) (growth, error) {
	p := q.p
	g := growth{q: q, horizon: horizon}
	if mode == modeContiguous {
		g.added = horizon - from + 1
		return g, nil
	}
	if mode == modeList {
		for seq, err := range p.Seqs(ctx, from, horizon) {
			if err != nil {
				return g, err
			}
			g.seqs = append(g.seqs, seq)
		}
		g.added = int64(len(g.seqs))
		return g, nil
	}
	n, err := q.count(ctx, from, horizon)
	g.added = n
	return g, err
}

// grow applies a growth (UI goroutine).
func (m *model) grow(g growth) {
	if g.horizon <= m.horizon {
		return
	}
	if m.total == 0 && m.mode == modeContiguous {
		m.lo = m.horizon + 1
	}
	m.q, m.horizon = g.q, g.horizon
	if lastPage := (m.total - 1) / pageRows; m.total > 0 && m.pageLen(lastPage) < pageRows {
		delete(m.pages, lastPage) // it gains rows
	}
	m.total += g.added
	if m.mode == modeList {
		m.seqs = append(m.seqs, g.seqs...)
		if len(m.seqs) > listCap {
			m.mode, m.seqs = modeAnchored, nil
		}
	}
}
