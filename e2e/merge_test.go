package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestMergeSharedSubscription is the README's scale-out recipe: two
// recorders share one $share subscription, each stores part of the traffic,
// and the merge holds all of it, in order.
func TestMergeSharedSubscription(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []func() (int, string, string)
	var paths []string
	for i := range 2 {
		p := filepath.Join(dir, fmt.Sprintf("rec%d.db", i))
		paths = append(paths, p)
		waits = append(waits, recordCLI(t, ctx, p, "--broker", b.URL(), "-t", "$share/mqtape/plant/#", "--quiet"))
	}
	pub := testbroker.Connect(t, b.URL())
	const n = 60
	for i := range n {
		testbroker.Publish(t, pub, fmt.Sprintf("plant/m%d", i%4), 1, false, []byte(fmt.Sprint(i)))
	}
	count := func(p string) int64 {
		c, err := storage.Open(p)
		if err != nil {
			return 0
		}
		defer c.Close()
		n, _ := c.Count(context.Background(), storage.Query{})
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(paths[0])+count(paths[1]) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	for _, w := range waits {
		if code, _, stderr := w(); code != 0 {
			t.Fatalf("record: %d %s", code, stderr)
		}
	}
	c0, c1 := count(paths[0]), count(paths[1])
	if c0 == 0 || c1 == 0 || c0+c1 != n {
		t.Fatalf("the recorders stored %d and %d of %d messages", c0, c1, n)
	}
	out := filepath.Join(dir, "all.db")
	if code, _, stderr := runCLI(t, context.Background(), "merge", paths[0], paths[1], "-o", out); code != 0 {
		t.Fatalf("merge: %d %s", code, stderr)
	}
	// Ordered by receive time (the broker may deliver to one recorder a
	// little later than to the other), complete, and each recorder's own
	// order kept.
	msgs, _, _ := capturetest.Read(t, out)
	var got []int
	for i, m := range msgs {
		var v int
		fmt.Sscan(string(m.Payload), &v)
		got = append(got, v)
		if i > 0 && m.TimeNS < msgs[i-1].TimeNS {
			t.Fatalf("not in time order at %d", i)
		}
	}
	for _, p := range paths {
		own, _, _ := capturetest.Read(t, p)
		k := 0
		for _, m := range msgs {
			if k < len(own) && string(m.Payload) == string(own[k].Payload) && m.TimeNS == own[k].TimeNS {
				k++
			}
		}
		if k != len(own) {
			t.Errorf("%s: only %d of its %d messages appear in order", p, k, len(own))
		}
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i {
			t.Fatalf("merged payloads %v", got)
		}
	}
}
