package storage

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPagesOfManyTopics: a page (Limit) of a query over many topics is
// read first in seq order near its start, then through the topic index
// beyond (Messages); either way it holds exactly the messages a scan of
// everything selects, forwards and backwards, on both sides of the window
// and across it, with matches rare and common.
func TestPagesOfManyTopics(t *testing.T) {
	ctx := context.Background()
	const n = 40000 // more than twice the window
	var msgs []Message
	for i := range n {
		topic := fmt.Sprintf("plant/%d/temp", i%50)
		if i%997 == 0 {
			topic = fmt.Sprintf("rare/%d", i%3)
		}
		off := int64(i) * int64(time.Millisecond)
		msgs = append(msgs, Message{TimeNS: 1e18 + off, OffsetNS: off, Topic: topic, QoS: byte(i % 3), Payload: []byte("{}")})
	}
	path := filepath.Join(t.TempDir(), "c.db")
	w, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := begin(t, w).Write(ctx, msgs, nil, 1e18+n*int64(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topics, err := c.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idsOf := func(prefix string) []int64 {
		var ids []int64
		for _, tp := range topics {
			if len(tp.Name) >= len(prefix) && tp.Name[:len(prefix)] == prefix {
				ids = append(ids, tp.ID)
			}
		}
		return ids
	}
	seqs := func(q Query) []int64 {
		var out []int64
		for m, err := range c.Messages(ctx, q) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m.Seq)
		}
		return out
	}
	for _, sel := range []struct {
		name string
		q    Query
	}{
		{"common topics, qos 1-2", Query{TopicIDs: idsOf("plant/"), QoS: []byte{1, 2}}},
		{"rare topics", Query{TopicIDs: idsOf("rare/")}},
	} {
		all := seqs(sel.q) // no limit: the plain query
		for _, after := range []int64{0, 100, 16000, 16384, 20000, 39990} {
			q := sel.q
			q.AfterSeq, q.Limit = after, 50
			i, _ := slices.BinarySearch(all, after+1)
			want := all[i:min(i+50, len(all))]
			if got := seqs(q); !slices.Equal(got, want) {
				t.Errorf("%s after %d: %v, want %v", sel.name, after, got, want)
			}
		}
		for _, before := range []int64{0, 100, 16500, 30000, 40001, math.MaxInt64} { // the web page asks "from the end" with the largest seq
			q := sel.q
			q.BeforeSeq, q.Desc, q.Limit = before, true, 50
			var want []int64
			for j := len(all) - 1; j >= 0 && len(want) < 50; j-- {
				if before == 0 || all[j] < before {
					want = append(want, all[j])
				}
			}
			if got := seqs(q); !slices.Equal(got, want) {
				t.Errorf("%s before %d: %v, want %v", sel.name, before, got, want)
			}
		}
	}
}
