package inspector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// TestModelMatchesReference checks every model mode against the matching
// seqs computed in memory, reading rows in several orders (forward,
// backward, random, far jumps) so pages come from every kind of anchor.
func TestModelMatchesReference(t *testing.T) {
	ctx := context.Background()
	ref := newModelReference(t)
	defer func(l, w int) { listCap, maxWalk = l, w }(listCap, maxWalk)
	maxWalk = 3 // far rows go through the counting search

	for _, tc := range modelReferenceCases {
		t.Run(tc.name, func(t *testing.T) {
			listCap = tc.listCap
			f, err := parseFilter(tc.query, filterEnv{Start: time.Unix(0, t0), Loc: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			p, err := ref.c.Prepare(ctx, f.Query(ref.topics))
			if err != nil {
				t.Fatal(err)
			}
			want := preparedSeqs(t, p, ref.hi)
			fresh := func() *model {
				if tc.contiguous {
					return newContiguousModel(ref.c, p, ref.lo, ref.hi)
				}
				m, err := buildModel(ctx, ref.c, query{p: p}, f.HasPayload(), ref.hi)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			m := fresh()
			if m.mode != tc.mode || m.total != int64(len(want)) {
				t.Fatalf("mode %d total %d, want mode %d total %d", m.mode, m.total, tc.mode, len(want))
			}
			fwd, back, random, far := rowOrders(int64(len(want)))
			checkModelRows(t, fresh(), want, "forward", fwd)
			checkModelRows(t, fresh(), want, "backward", back)
			checkModelRows(t, fresh(), want, "random", random)
			checkModelRows(t, fresh(), want, "far", far)
			// Locating a seq: the first match at or after it.
			checkModelLocate(t, m, p, want, []int64{ref.lo, ref.lo + 1, 1234, 2999, 3000, 3001, ref.hi, ref.hi + 5})
		})
	}
}

// modelReferenceCase is one filter of TestModelMatchesReference, with the
// list cap it runs under and the model mode it must end up in.
type modelReferenceCase struct {
	name, query string
	listCap     int
	contiguous  bool
	mode        modelMode
}

var modelReferenceCases = []modelReferenceCase{
	{"contiguous", "", 1, true, modeContiguous},
	{"anchored all", "", 1, false, modeAnchored},
	{"anchored topic", "a/# qos>=1", 1, false, modeAnchored},
	{"list payload", "needle", 1000, false, modeList},
	{"anchored payload", "payload~[05]$", 10, false, modeAnchored},
	{"time range", "1s..2500ms topic:b", 1, false, modeAnchored},
	{"nothing", "zzz/#", 1, false, modeAnchored},
}

// modelReference is the capture TestModelMatchesReference reads: 5000
// messages on four topics in two sessions, every 97th with "needle".
type modelReference struct {
	c      *storage.Capture
	topics []storage.Topic
	lo, hi int64
}

func newModelReference(t *testing.T) modelReference {
	t.Helper()
	var msgs []storage.Message
	topics := []string{"a/1", "a/2", "b", "c/x/y"}
	for i := range 5000 {
		p := fmt.Sprintf("v%d", i)
		if i%97 == 0 {
			p += " needle"
		}
		msgs = append(msgs, msg(time.Duration(i)*time.Millisecond, topics[(i*7+i/3)%len(topics)], byte(i%3), p))
	}
	path := writeCapture(t, msgs[:3000], msgs[3000:])
	ref := modelReference{c: open(t, path)}
	var err error
	if ref.topics, err = ref.c.Topics(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ref.lo, ref.hi, err = ref.c.SeqBounds(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ref
}

// preparedSeqs is the reference: every seq p selects up to hi.
func preparedSeqs(t *testing.T, p *storage.Prepared, hi int64) []int64 {
	t.Helper()
	var want []int64
	for seq, err := range p.Seqs(context.Background(), 0, hi) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, seq)
	}
	return want
}

// rowOrders lists the rows 0..n-1 forward, backward, in a random sample of
// at most 500, and in far jumps through the second half.
func rowOrders(n int64) (fwd, back, random, far []int64) {
	for r := range n {
		fwd = append(fwd, r)
		back = append(back, n-1-r)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	random = slices.Clone(fwd)
	rnd.Shuffle(len(random), func(i, j int) { random[i], random[j] = random[j], random[i] })
	random = random[:min(len(random), 500)]
	for r := n / 2; r < n; r += 331 {
		far = append(far, r, max(0, r-700))
	}
	return fwd, back, random, far
}

// checkModelRows reads rows from m in the given order and wants the
// reference seq for each, and nil for rows out of range.
func checkModelRows(t *testing.T, m *model, want []int64, order string, rows []int64) {
	t.Helper()
	ctx := context.Background()
	for _, r := range rows {
		got := m.rowAt(ctx, r)
		if got == nil || got.Seq != want[r] {
			t.Fatalf("%s: row %d = %v, want seq %d", order, r, got, want[r])
		}
	}
	if m.rowAt(ctx, m.total) != nil || m.rowAt(ctx, -1) != nil {
		t.Fatalf("%s: rows out of range are not nil", order)
	}
}

// checkModelLocate wants each seq located at the row of the first
// reference seq at or after it, through the model or the counting search.
func checkModelLocate(t *testing.T, m *model, p *storage.Prepared, want, seqs []int64) {
	t.Helper()
	n := int64(len(want))
	for _, seq := range seqs {
		i, _ := slices.BinarySearch(want, seq)
		row, at, ok := m.locate(seq)
		if !ok {
			var found bool
			var err error
			row, at, found, err = countRow(context.Background(), query{p: p}, m.horizon, seq)
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				row = n
			}
		}
		if row != int64(i) || (i < len(want) && at != want[i]) {
			t.Errorf("locate(%d) = row %d seq %d, want row %d", seq, row, at, i)
		}
	}
}

// TestModelGrowth appends to a capture and checks that growth keeps rows
// and counts right in every mode.
func TestModelGrowth(t *testing.T) {
	ctx := context.Background()
	path := writeCapture(t, nil)
	w, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, err := w.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "x", ClientID: "c", Protocol: 4,
		StartedNS: t0, Version: "t", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	c := open(t, path)
	var written []storage.Message
	add := func(n int) {
		var b []storage.Message
		for range n {
			i := len(written) + len(b)
			b = append(b, storage.Message{TimeNS: t0 + int64(i), OffsetNS: int64(i), Topic: []string{"x", "y"}[i%2],
				Payload: []byte(strings.Repeat("p", i%5))})
		}
		if err := s.Write(ctx, b, nil, t0); err != nil {
			t.Fatal(err)
		}
		written = append(written, b...)
	}
	defer func(l int) { listCap = l }(listCap)
	listCap = 150
	type view struct {
		m    *model
		f    Filter
		want func(storage.Message) bool
	}
	topics := func() []storage.Topic {
		ts, err := c.Topics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	mk := func(q string, want func(storage.Message) bool) *view {
		f, err := parseFilter(q, filterEnv{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Prepare(ctx, f.Query(topics()))
		if err != nil {
			t.Fatal(err)
		}
		v := &view{f: f, want: want}
		if f.Empty() {
			v.m = newContiguousModel(c, p, 0, 0)
		} else if v.m, err = buildModel(ctx, c, query{p: p}, f.HasPayload(), 0); err != nil {
			t.Fatal(err)
		}
		return v
	}
	views := []*view{
		mk("", func(storage.Message) bool { return true }),
		mk("topic:y", func(m storage.Message) bool { return m.Topic == "y" }), // a topic that does not exist yet
		mk("ppp", func(m storage.Message) bool { return strings.Contains(string(m.Payload), "ppp") }),
	}
	for round, n := range []int{0, 7, 128, 300, 1} {
		add(n)
		_, hi, err := c.SeqBounds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for vi, v := range views {
			p, err := c.Prepare(ctx, v.f.Query(topics()))
			if err != nil {
				t.Fatal(err)
			}
			g, err := measureGrowth(ctx, v.m.mode, query{p: p}, v.m.horizon+1, hi)
			if err != nil {
				t.Fatal(err)
			}
			v.m.grow(g)
			var want []int64
			for _, m := range written {
				if v.want(m) {
					want = append(want, m.Seq)
				}
			}
			if v.m.total != int64(len(want)) {
				t.Fatalf("round %d view %d: total %d, want %d", round, vi, v.m.total, len(want))
			}
			for r := v.m.total - 1; r >= 0; r-- {
				if got := v.m.rowAt(ctx, r); got == nil || got.Seq != want[r] {
					t.Fatalf("round %d view %d: row %d = %v, want %d", round, vi, r, got, want[r])
				}
			}
		}
	}
	if views[2].m.mode != modeAnchored {
		t.Errorf("the payload view did not leave list mode past listCap (mode %d, %d rows)", views[2].m.mode, views[2].m.total)
	}
}
