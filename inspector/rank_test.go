package inspector

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
)

// TestRankedModelMatchesReference reads topic filters through the rank
// index (buckets of 64 seqs over 5000 messages) against the matching seqs
// computed in memory: rows in every order, far rows, located seqs; with the
// index covering the whole capture and, as for a live capture that grew
// since, only its first part.
func TestRankedModelMatchesReference(t *testing.T) {
	ctx := context.Background()
	ref := newModelReference(t)
	defer func(w int, s uint) { maxWalk, rankShift = w, s }(maxWalk, rankShift)
	maxWalk, rankShift = 3, 6
	for _, indexed := range []int64{ref.hi, 3500} {
		buckets, err := ref.c.TopicBuckets(ctx, 0, indexed, rankShift)
		if err != nil {
			t.Fatal(err)
		}
		rank := newRankIndex(buckets, indexed, rankShift)
		for _, text := range []string{"a/#", "a/1 topic:b", "c/x/y", "!b", "zzz/#"} {
			f, err := parseFilter(text, filterEnv{Start: time.Unix(0, t0), Loc: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			sel := f.Query(ref.topics)
			p, err := ref.c.Prepare(ctx, sel)
			if err != nil {
				t.Fatal(err)
			}
			q := query{p: p, rank: &ranked{r: rank, ids: sel.TopicIDs}}
			want := preparedSeqs(t, p, ref.hi)
			fresh := func() *model {
				m, err := buildModel(ctx, ref.c, q, false, ref.hi)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			if m := fresh(); m.total != int64(len(want)) {
				t.Fatalf("%q (index to %d): total %d, want %d", text, indexed, m.total, len(want))
			}
			fwd, back, random, far := rowOrders(int64(len(want)))
			checkModelRows(t, fresh(), want, text+" forward", fwd)
			checkModelRows(t, fresh(), want, text+" backward", back)
			checkModelRows(t, fresh(), want, text+" random", random)
			checkModelRows(t, fresh(), want, text+" far", far)
			for _, seq := range []int64{ref.lo, 63, 64, 65, 1234, 3500, 3501, ref.hi, ref.hi + 5} {
				i, _ := slices.BinarySearch(want, seq)
				row, at, found, err := countRow(ctx, q, ref.hi, seq)
				if err != nil || found != (i < len(want)) || (found && (row != int64(i) || at != want[i])) {
					t.Errorf("%q (index to %d): countRow(%d) = %d, %d, %v, %v; want row %d", text, indexed, seq, row, at, found, err, i)
				}
			}
		}
	}
}

// TestTopicFilterCountsNothing applies topic filters once the topic counts
// are in: the matches and the rows come from the rank index and counts
// inside one bucket, never from a count over the capture (which made a
// wildcard filter take seconds on 10 million messages).
func TestTopicFilterCountsNothing(t *testing.T) {
	defer func(s uint) { rankShift = s }(rankShift)
	rankShift = 6
	ref := newModelReference(t)
	h := startOn(t, ref.c, Options{}, 120, 30)
	var mu sync.Mutex
	var widest int64
	hook := func(from, through int64) {
		mu.Lock()
		widest = max(widest, min(through, ref.hi)-max(from, ref.lo)+1)
		mu.Unlock()
	}
	countHook.Store(&hook)
	defer countHook.Store(nil)
	for _, text := range []string{"a/#", "a/1 topic:b", "!b"} {
		h.press('/', tcell.KeyCtrlU, text, tcell.KeyEnter, tcell.KeyEnd, ':', "2s", tcell.KeyEnter, tcell.KeyPgDn, tcell.KeyHome)
		if !h.contains(" matches") || !h.contains("jumped to +2s") {
			t.Fatalf("%q: the filter or the jump did not show:\n%s", text, h.text())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if widest == 0 || widest > 1<<rankShift {
		t.Errorf("widest count spans %d seqs; want at most a bucket (%d)", widest, 1<<rankShift)
	}
}

// TestFilterRacesRank applies a topic filter while the topic count still
// runs: the filter counts and waits for the rank index at the same time,
// and when the index comes first (here the count is held until then) the
// view is ranked with it, the count abandoned.
func TestFilterRacesRank(t *testing.T) {
	defer func(s uint) { rankShift = s }(rankShift)
	rankShift = 6
	ctx := context.Background()
	ref := newModelReference(t)
	u := &UI{c: ref.c, topics: ref.topics, rankDone: make(chan struct{})}
	hook := func(from, through int64) {
		if min(through, ref.hi)-max(from, ref.lo)+1 > 1<<rankShift {
			<-u.rankDone // a count over the capture: slower than the index
		}
	}
	countHook.Store(&hook)
	defer countHook.Store(nil)
	f, err := parseFilter("a/#", filterEnv{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ref.c.Prepare(ctx, f.Query(ref.topics))
	if err != nil {
		t.Fatal(err)
	}
	want := preparedSeqs(t, p, ref.hi)
	keep := int64(2500)
	build := u.waitRank(&f)
	type result struct {
		m   *model
		row int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		m, row, err := build(ctx, viewJob{c: ref.c, q: query{p: p}, horizon: ref.hi, lo: ref.lo, keep: keep})
		res <- result{m, row, err}
	}()
	buckets, err := ref.c.TopicBuckets(ctx, 0, ref.hi, rankShift)
	if err != nil {
		t.Fatal(err)
	}
	u.rank = newRankIndex(buckets, ref.hi, rankShift)
	close(u.rankDone)
	r := <-res
	i, _ := slices.BinarySearch(want, keep)
	if r.err != nil || r.m.total != int64(len(want)) || r.row != int64(i) {
		t.Fatalf("model total %v row %d err %v; want total %d row %d", r.m, r.row, r.err, len(want), i)
	}
	if r.m.q.rank == nil {
		t.Errorf("the view counted the capture; want it ranked by the index that came first")
	}
}
