package storage

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// manySessions writes sessions × perSession messages, one closed session
// after another (an hour apart, 100 ms between messages), into a new
// capture and returns its path.
func manySessions(tb testing.TB, sessions, perSession int) string {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "many.db")
	c, err := OpenWrite(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := NewSessionWriter(c, SessionInfo{Source: "subscriber", Broker: "mqtt://x", Protocol: 4, Version: "test", Host: "h"})
	for s := range sessions {
		start := int64(1.7e18) + int64(s)*3600e9
		if err := w.StartSession(ctx, start, "count", nil); err != nil {
			tb.Fatal(err)
		}
		for i := range perSession {
			off := int64(i) * 100e6
			m := Message{TimeNS: start + off, OffsetNS: off, Topic: fmt.Sprintf("fleet/%d/%d", s%50, i%4), QoS: byte(i % 3),
				Retain: i == 0, Payload: []byte(fmt.Sprintf(`{"s":%d,"i":%d}`, s, i))}
			if err := w.Add(ctx, m); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := w.EndSession(ctx, "count"); err != nil {
		tb.Fatal(err)
	}
	if err := c.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func benchmarkCut(b *testing.B, from *int64) {
	ctx := context.Background()
	in, err := Open(manySessions(b, 1200, 20))
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	for b.Loop() {
		out, err := OpenWrite(filepath.Join(b.TempDir(), "cut.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Cut(ctx, in, out, CutOptions{Select: Query{FromOffset: from}}); err != nil {
			b.Fatal(err)
		}
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/24000, "ns/msg")
}

// BenchmarkCutManySessions cuts 24,000 messages in 1,200 sessions (issue
// 15: the cost must be linear in messages).
func BenchmarkCutManySessions(b *testing.B) { benchmarkCut(b, nil) }

// BenchmarkCutManySessionsFrom cuts the same from 500 ms into each session
// (retained state carried to the slice's start).
func BenchmarkCutManySessionsFrom(b *testing.B) { benchmarkCut(b, new(int64(500e6))) }

// TestTimeFiltersAnyNumberOfSessions: time and offset bounds select the
// same messages as testing each one, with few sessions (seq ranges found by
// binary search) and with more than maxSpans (one range, bounds per row);
// 1,200 sessions once made SQLite refuse the query ("Expression tree is
// too large").
func TestTimeFiltersAnyNumberOfSessions(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{3, maxSpans + 1, 1200} {
		c, err := Open(manySessions(t, n, 6))
		if err != nil {
			t.Fatal(err)
		}
		all, err := c.Page(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		p := func(v int64) *int64 { return &v }
		mid := all[len(all)/2].TimeNS
		for _, q := range []Query{
			{FromOffset: p(0)}, {FromOffset: p(250e6)}, {ToOffset: p(250e6)}, {FromOffset: p(100e6), ToOffset: p(400e6)},
			{FromTime: p(mid)}, {ToTime: p(mid)}, {FromTime: p(mid), ToTime: p(mid + 3600e9)},
			{Session: 2, FromOffset: p(200e6)}, {Session: 2}, {FromOffset: p(1e12)},
		} {
			var want []int64
			for _, m := range all {
				if (q.Session == 0 || m.Session == q.Session) &&
					(q.FromOffset == nil || m.OffsetNS >= *q.FromOffset) && (q.ToOffset == nil || m.OffsetNS < *q.ToOffset) &&
					(q.FromTime == nil || m.TimeNS >= *q.FromTime) && (q.ToTime == nil || m.TimeNS < *q.ToTime) {
					want = append(want, m.Seq)
				}
			}
			got, err := c.Page(ctx, q)
			if err != nil {
				t.Fatalf("%d sessions, %+v: %v", n, q, err)
			}
			var seqs []int64
			for _, m := range got {
				seqs = append(seqs, m.Seq)
			}
			count, err := c.Count(ctx, q)
			if err != nil || fmt.Sprint(seqs) != fmt.Sprint(want) || count != int64(len(want)) {
				t.Errorf("%d sessions, %+v: %d messages (count %d, %v), want %d", n, q, len(seqs), count, err, len(want))
			}
		}
		c.Close()
	}
}

// TestMergeChainsKeepOrder: sessions that follow each other in time are read
// by one cursor in turn; the merged order is still by time, ties in input
// order then seq, as a k-way merge of every session gives.
func TestMergeChainsKeepOrder(t *testing.T) {
	ctx := context.Background()
	a, b := manySessions(t, 5, 4), manySessions(t, 3, 7) // b's sessions overlap a's
	var ins []*Capture
	var want []Message
	for order, path := range []string{a, b} {
		c, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ins = append(ins, c)
		msgs, err := c.Page(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			m.Session = int64(order)*1000 + m.Session // input order, then session order
			want = append(want, m)
		}
	}
	slices.SortStableFunc(want, func(x, y Message) int {
		return cmp.Or(cmp.Compare(x.TimeNS, y.TimeNS), cmp.Compare(x.Session, y.Session), cmp.Compare(x.Seq, y.Seq))
	})
	out, err := OpenWrite(filepath.Join(t.TempDir(), "merged.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(ctx, ins, out, MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := out.Page(ctx, Query{})
	out.Close()
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d messages (%v), want %d", len(got), err, len(want))
	}
	for i := range got {
		if got[i].TimeNS != want[i].TimeNS || string(got[i].Payload) != string(want[i].Payload) {
			t.Fatalf("message %d: %d %s, want %d %s", i, got[i].TimeNS, got[i].Payload, want[i].TimeNS, want[i].Payload)
		}
	}
}
