package storage_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// TestPagesOfManyTopics: a page (Limit) of a query over many topics is
// read first in seq order near its start, then through the topic index
// beyond (Messages); either way it holds exactly the messages a scan of
// everything selects, forwards and backwards, on both sides of the window
// and across it, with matches rare and common.
func TestPagesOfManyTopics(t *testing.T) {
	ctx := context.Background()
	const n = 40000 // more than twice the window
	var msgs []storage.Message
	for i := range n {
		topic := fmt.Sprintf("plant/%d/temp", i%50)
		if i%997 == 0 {
			topic = fmt.Sprintf("rare/%d", i%3)
		}
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Millisecond, topic, byte(i%3), "{}"))
	}
	path := filepath.Join(t.TempDir(), "c.db")
	capturetest.Write(t, path, capturetest.Session{Messages: msgs})
	c, err := storage.Open(path)
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
	seqs := func(q storage.Query) []int64 {
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
		q    storage.Query
	}{
		{"common topics, qos 1-2", storage.Query{TopicIDs: idsOf("plant/"), QoS: []byte{1, 2}}},
		{"rare topics", storage.Query{TopicIDs: idsOf("rare/")}},
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
