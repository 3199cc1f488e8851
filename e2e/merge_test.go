package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestMergeSharedSubscription is the README's scale-out recipe: two
// recorders share one $share subscription on one broker that holds a
// retained state, each stores part of the traffic, and the merge holds all
// of it, in receive-time order, with the retained state once. Mosquitto
// sends its retained store to every member of a shared subscription (mochi,
// like MQTT 5's 4.8.2, to none).
func TestMergeSharedSubscription(t *testing.T) {
	b := testbroker.StartMosquittoDefaults(t)
	dir := t.TempDir()
	pub := testbroker.Connect(t, b.URL())
	for i := range 4 {
		testbroker.Publish(t, pub, fmt.Sprintf("plant/state%d", i), 1, true, []byte(fmt.Sprint("on", i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []func() (int, string, string)
	var paths []string
	for i := range 2 {
		p := filepath.Join(dir, fmt.Sprintf("rec%d.db", i))
		paths = append(paths, p)
		waits = append(waits, recordCLI(t, ctx, p, "--broker", b.URL(), "-t", "$share/mqtape/#", "--quiet"))
	}
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
		n, _ := c.Count(context.Background(), storage.Query{FromStore: new(false)})
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
	code, _, stderr := runCLI(t, context.Background(), "merge", paths[0], paths[1], "-o", out)
	if code != 0 {
		t.Fatalf("merge: %d %s", code, stderr)
	}
	// Each recorder got the broker's retained store; the merge keeps it once.
	stored := map[string]int{}
	for _, p := range paths {
		own, _, _ := capturetest.Read(t, p)
		for _, m := range own {
			if m.FromStore {
				stored[p]++
			}
		}
	}
	if stored[paths[0]] != 4 || stored[paths[1]] != 4 || !strings.Contains(stderr, "4 identical retained-store messages kept once") {
		t.Errorf("retained store per recorder: %v\n%s", stored, stderr)
	}
	// Ordered by receive time (the broker may deliver to one recorder a
	// little later than to the other), complete, and each recorder's own
	// order kept.
	msgs, _, _ := capturetest.Read(t, out)
	var got []int
	var retained []string
	outOfOrder := 0
	for i, m := range msgs {
		if m.FromStore {
			retained = append(retained, m.Topic+"="+string(m.Payload))
			continue
		}
		var v int
		fmt.Sscan(string(m.Payload), &v)
		if len(got) > 0 && v < got[len(got)-1] {
			outOfOrder++
		}
		got = append(got, v)
		if i > 0 && m.TimeNS < msgs[i-1].TimeNS {
			t.Fatalf("not in time order at %d", i)
		}
	}
	for _, p := range paths {
		checkOwnOrder(t, p, msgs)
	}
	t.Logf("%d of %d messages of one publisher follow a later one (receive times of two recorders)", outOfOrder, n)
	slices.Sort(retained)
	if want := []string{"plant/state0=on0", "plant/state1=on1", "plant/state2=on2", "plant/state3=on3"}; !slices.Equal(retained, want) {
		t.Errorf("merged retained state %v, want %v", retained, want)
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i {
			t.Fatalf("merged payloads %v", got)
		}
	}
}

// checkOwnOrder checks that the live messages of the input at path appear
// in merged in their own order.
func checkOwnOrder(t *testing.T, path string, merged []storage.Message) {
	t.Helper()
	all, _, _ := capturetest.Read(t, path)
	var own []storage.Message
	for _, m := range all {
		if !m.FromStore {
			own = append(own, m)
		}
	}
	k := 0
	for _, m := range merged {
		if k < len(own) && string(m.Payload) == string(own[k].Payload) && m.TimeNS == own[k].TimeNS {
			k++
		}
	}
	if k != len(own) {
		t.Errorf("%s: only %d of its %d messages appear in order", path, k, len(own))
	}
}
